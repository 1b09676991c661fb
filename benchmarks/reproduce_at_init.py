"""Pruning at initialization on LeNet-300-100 and MNIST (issue 12).

SNIP (Lee et al. 2019), GraSP (Wang et al. 2020), SynFlow (Tanaka et al.
2020) and random pruning at initialization, each a
:class:`~sklottery.LotteryTicketClassifier` with ``schedule="at_init"``, at
about 10%, 3.6% and 1% of the weights, beside the iterative-magnitude-pruning
ticket of ``reproduce_mnist.py`` (Frankle & Carbin 2019).

The network, data, training and measurements are ``reproduce_mnist.py``'s,
imported as they are (``import reproduce_mnist as rm``): LeNet-300-100
(784-300-100-10, ReLU), Adam 1.2e-3, batches of 60, 3 epochs (2,502
iterations); its early-stop tracker records the test accuracy at the
iteration of lowest validation loss. Round 0 (the dense network) is trained
once and read from a ``memory`` cache by every other fit. Two settings:

* ``layer``: the plan of the IMP ticket -- each hidden layer pruned to
  ``0.8 ** n`` of its weights, the output layer to ``0.9 ** n``
  (``prune_rate=0.2, output_rate_factor=0.5``) with ``n_rounds`` n = 10, 15
  and 21 (10.8%, 3.6% and 0.96% of the weights): the same per-layer counts as
  the IMP ticket's rounds 10 and 15, so the methods only choose *which*
  weights of each layer survive;
* ``global``: the papers' setting -- one global ranking of all weights
  (``scope="global", output_rate_factor=None``) to exactly 10%, 3.6% and 1%
  (``prune_rate`` 0.9, 0.964, 0.99, ``n_rounds=1``): the methods also choose
  how much of each layer survives.

The IMP ticket and IMP random pruning are read from
``benchmarks/results/reproduce_mnist.csv``, the committed one (same network,
training, seed and data; ``--imp-csv`` reads another);
``--imp`` reruns IMP to 21 rounds (0.96%) here, through the same cache.

Writes ``reproduce_at_init.csv`` (one row per fit), ``reproduce_at_init.png``
and ``reproduce_at_init_table.csv`` into ``--out`` (``reproduce_at_init_digits*``
with ``--quick``: scikit-learn's digits, 20 epochs, no download).

References
----------
N. Lee, T. Ajanthan and P. Torr, "SNIP", ICLR 2019. C. Wang, G. Zhang and R.
Grosse, "GraSP", ICLR 2020. H. Tanaka et al., "SynFlow", NeurIPS 2020. J.
Frankle et al., "Pruning Neural Networks at Initialization: Why Are We
Missing the Mark?", ICLR 2021.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from joblib import Memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reproduce_mnist as rm  # noqa: E402

from sklottery import LotteryTicketClassifier, Pruner  # noqa: E402

METHODS = ["snip", "grasp", "synflow", "random"]
#: setting -> [(label, estimator parameters)]
SETTINGS = {
    "layer": [
        (f"n={n}", {"prune_rate": 0.2, "output_rate_factor": 0.5, "n_rounds": n})
        for n in (10, 15, 21)
    ],
    "global": [
        (f"{100 * (1 - r):.3g}%", {"prune_rate": r, "n_rounds": 1,
                                   "scope": "global", "output_rate_factor": None})
        for r in (0.9, 0.964, 0.99)
    ],
}


class StableLog(rm.SharedLog):
    """reproduce_mnist's shared log, hashed as an empty one, so the tracker's
    records do not change the round-0 cache key between fits."""

    def __reduce__(self):
        return (StableLog, ())


def fit_one(method, params, data, *, memory, epochs, every, seed, hidden,
            schedule="at_init"):
    (X_tr, y_tr), _, _ = data
    log = StableLog()
    net = rm.make_net(data, epochs=epochs, every=every, hidden=hidden, log=log)
    clf = LotteryTicketClassifier(
        net, schedule=schedule, strategy=method, random_state=seed,
        memory=memory, **params,
    )
    cpu = time.process_time()
    clf.fit(X_tr, y_tr)
    return clf, log, time.process_time() - cpu


def prune_cpu(method, params, data, *, hidden, seed):
    """CPU seconds of the at-init prune alone, on a fresh LeNet-300-100, with
    the estimator's batches (10 of 60 training samples)."""
    (X_tr, y_tr), _, _ = data
    torch.manual_seed(seed)
    net = rm.make_net(data, epochs=1, every=100, hidden=hidden, log=StableLog())
    net.initialize()
    pruner = Pruner(net.module_, **{**params, "schedule": "oneshot"},
                    strategy=method)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(X_tr), generator=g)[:600].reshape(10, 60)
    X, y = torch.as_tensor(X_tr), torch.as_tensor(y_tr)
    batches = [(X[i], y[i]) for i in idx]
    cpu = time.process_time()
    pruner.prune_at_init(batches=batches, loss_fn=torch.nn.CrossEntropyLoss())
    return time.process_time() - cpu


def imp_rows(path, levels):
    """The IMP ticket and IMP random pruning of reproduce_mnist.csv at the
    rounds of ``levels``."""
    if not path.is_file():
        return pd.DataFrame()
    table = pd.read_csv(path)
    names = {"winning ticket": "IMP ticket", "random pruning": "IMP random"}
    rows = table[table["arm"].isin(names) & table["round"].isin(levels)]
    return pd.DataFrame({
        "setting": "layer",
        "method": rows["arm"].map(names),
        "level": rows["round"].map(lambda n: f"n={n}"),
        "weights_remaining": rows["weights_remaining"],
        "untrained_acc": float("nan"),
        "test_acc": rows["test_acc"],
        "final_test_acc": rows["final_test_acc"],
        "early_stop_iteration": rows["early_stop_iteration"],
        "cpu_s": float("nan"),
        "prune_cpu_s": float("nan"),
        "source": path.name,
    })


def plot(results, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, setting in zip(axes, ("layer", "global")):
        part = results[results["setting"] == setting]
        for method, rows in part.groupby("method", sort=False):
            rows = rows.sort_values("weights_remaining")
            ax.plot(100 * rows["weights_remaining"], rows["test_acc"], "o-",
                    label=method)
        dense = results[results["method"] == "dense"]["test_acc"]
        if len(dense):
            ax.axhline(float(dense.iloc[0]), color="grey", ls="--", label="dense")
        ax.set_xscale("log")
        ax.set_xlabel("% of weights remaining")
        ax.set_title(f"scope={setting!r}")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("test accuracy at early stop")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="sklearn digits, 20 epochs (a minute or two)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--settings", default="layer,global")
    parser.add_argument("--imp", action="store_true",
                        help="also run IMP (ticket) to 21 rounds here")
    parser.add_argument("--resume", action="store_true",
                        help="keep the fits already in the CSV of --out and "
                        "run the others (the CSV is rewritten after each fit)")
    parser.add_argument("--cache", default=None,
                        help="joblib cache directory of round 0 (default: a "
                        "temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help=rm.OUT_HELP)
    parser.add_argument("--imp-csv", type=Path,
                        default=rm.RESULTS / "reproduce_mnist.csv",
                        help="reproduce_mnist.py's CSV, for the IMP columns "
                        "(default: the committed benchmarks/results one)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        data, name, epochs, every = rm.load_digits_splits(), "digits", 20, 10
    else:
        data, name, epochs, every = rm.load_mnist(), "mnist", 3, 100
    epochs = args.epochs or epochs
    hidden = (300, 100)
    out = Path(args.out) if args.out else rm.OUTPUT
    out.mkdir(parents=True, exist_ok=True)
    stem = "at_init" if name == "mnist" else "at_init_digits"
    n_iter = epochs * math.ceil(len(data[0][1]) / 60)
    print(f"LeNet-300-100 on {name}: {epochs} epochs ({n_iter} iterations), "
          f"Adam 1.2e-3, batch 60, seed {args.seed}", flush=True)
    csv = out / f"reproduce_{stem}.csv"
    rows = []
    if args.resume and csv.is_file():
        previous = pd.read_csv(csv)
        previous = previous[previous["source"] != "reproduce_mnist.csv"]
        for column in ("setting", "level"):  # the dense row's are empty
            previous[column] = previous[column].fillna("")
        rows = previous.drop(columns=["dataset", "epochs"]).to_dict("records")
    done = {(r["setting"], r["method"], r["level"]) for r in rows}

    def save():
        frame = pd.DataFrame(rows)
        frame.insert(0, "dataset", name)
        frame["epochs"] = epochs
        frame.to_csv(csv, index=False)

    total = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        memory = Memory(args.cache or tmp, verbose=0)
        common = {"memory": memory, "epochs": epochs, "every": every,
                  "seed": args.seed, "hidden": hidden}
        for setting in args.settings.split(","):
            for label, params in SETTINGS[setting]:
                for method in args.methods.split(","):
                    if (setting, method, label) in done:
                        continue
                    clf, log, cpu = fit_one(method, params, data, **common)
                    rec, track = clf.rounds_.iloc[1], log.records[-1]
                    if len(log.records) == 2 and "dense" not in {
                        r["method"] for r in rows
                    }:  # this fit trained the dense round
                        dense = clf.rounds_.iloc[0]
                        rows.append({
                            "setting": "", "method": "dense", "level": "",
                            "weights_remaining": 1.0, "untrained_acc": math.nan,
                            **{k: log.records[0][k] for k in
                               ("test_acc", "final_test_acc",
                                "early_stop_iteration")},
                            "cpu_s": math.nan, "prune_cpu_s": math.nan,
                            "source": f"score {dense['score']:.4f}",
                        })
                    rows.append({
                        "setting": setting, "method": method, "level": label,
                        "weights_remaining": rec["weights_remaining"],
                        "untrained_acc": rec["untrained_score"],
                        "test_acc": track["test_acc"],
                        "final_test_acc": track["final_test_acc"],
                        "early_stop_iteration": track["early_stop_iteration"],
                        "cpu_s": cpu,
                        "prune_cpu_s": prune_cpu(method, params, data,
                                                 hidden=hidden, seed=args.seed),
                        "source": "this run",
                    })
                    save()
                    r = rows[-1]
                    print(f"  {setting:6s} {label:6s} {method:8s} "
                          f"{100 * r['weights_remaining']:6.2f}% weights: untrained "
                          f"{r['untrained_acc']:.4f}, test {r['test_acc']:.4f} "
                          f"(fit {cpu:5.1f}s CPU, prune {r['prune_cpu_s']:.2f}s)",
                          flush=True)
        if args.imp:
            clf, log, cpu = fit_one(
                "large_final", {"prune_rate": 0.2, "output_rate_factor": 0.5,
                                "n_rounds": 21}, data, schedule="iterative",
                **common)
            for rec, track in zip(clf.rounds_.to_dict("records")[1:],
                                  log.records[-21:]):
                if rec["round"] in (10, 15, 18, 21):
                    rows.append({
                        "setting": "layer", "method": "IMP ticket (rerun)",
                        "level": f"n={rec['round']}",
                        "weights_remaining": rec["weights_remaining"],
                        "untrained_acc": rec["untrained_score"],
                        **{k: track[k] for k in ("test_acc", "final_test_acc",
                                                 "early_stop_iteration")},
                        "cpu_s": cpu if rec["round"] == 21 else math.nan,
                        "prune_cpu_s": math.nan, "source": "this run",
                    })
            print(f"  IMP to 21 rounds: {cpu:.1f}s CPU", flush=True)
    results = pd.DataFrame(rows)
    if name == "mnist":
        imp = imp_rows(args.imp_csv, (10, 15, 18))
        results = pd.concat([results, imp], ignore_index=True)
    results.insert(0, "dataset", name)
    results["epochs"] = epochs
    results.to_csv(csv, index=False)
    table = results.pivot_table(index=["setting", "level"], columns="method",
                                values="test_acc", sort=False)
    weights = results.groupby(["setting", "level"], sort=False)[
        "weights_remaining"].first()
    table.insert(0, "% weights", (100 * weights).round(2))
    table = table.round(4)
    table.to_csv(out / f"reproduce_{stem}_table.csv")
    print(table.to_string())
    plot(results, out / f"reproduce_{stem}.png",
         f"pruning at initialization, LeNet-300-100 on {name}, {epochs} epochs")
    print(f"\ntotal {time.process_time() - total:.0f}s CPU; wrote "
          f"{out}/reproduce_{stem}*")


if __name__ == "__main__":
    main()
