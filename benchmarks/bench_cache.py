"""Shared dense pre-training: a search with ``memory`` against a naive one.

A grid over ``k`` prune rates, each candidate running ``R = n_rounds + 1``
rounds (the dense round 0 and ``n_rounds`` pruning rounds). Without a cache
every candidate trains its own dense round: ``k * R`` rounds per fold. With
``memory`` the candidates of a fold share one dense round: ``k * (R - 1) + 1``
rounds. The expected cost ratio is therefore ``(k(R-1)+1) / (kR)``.

Both searches run in this process, one after the other, on sklearn's digits
with the LeNet-300-100 MLP; the cached search starts from an empty cache
each time, so it pays for each fold's dense round once. Epochs are counted
exactly with a callback; wall time and process CPU time (torch runs on one
thread, so CPU time is less disturbed by other jobs on a shared machine) are
the best of ``--repeats`` runs, the two searches alternating.

Run: ``python benchmarks/bench_cache.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
from sklottery import MLP, LotteryTicketClassifier  # noqa: E402

EPOCHS = {"n": 0}


class CountEpochs(Callback):
    """Stateless epoch counter (so it does not change the cache key)."""

    def on_epoch_end(self, net, **kwargs):
        EPOCHS["n"] += 1


def make_search(k, n_rounds, epochs, memory):
    net = NeuralNetClassifier(
        MLP,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1.2e-3,
        batch_size=60,
        max_epochs=epochs,
        train_split=ValidSplit(5, stratified=True),
        iterator_train__shuffle=True,
        callbacks=[("count", CountEpochs())],
        verbose=0,
    )
    est = LotteryTicketClassifier(net, n_rounds=n_rounds, memory=memory, random_state=0)
    rates = list(np.linspace(0.1, 0.6, k).round(3))
    return GridSearchCV(
        est,
        {"prune_rate": rates},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
        refit=False,
        error_score="raise",
    )


def run(k, n_rounds, epochs, repeats, X, y):
    times = {"naive": [], "cached": []}
    cpu = {"naive": [], "cached": []}
    counts = {}
    scores = {}
    for rep in range(repeats):
        # alternate the order so drift on the shared machine hits both
        order = ["naive", "cached"] if rep % 2 == 0 else ["cached", "naive"]
        for kind in order:
            with tempfile.TemporaryDirectory() as tmp:
                memory = tmp if kind == "cached" else None
                search = make_search(k, n_rounds, epochs, memory)
                EPOCHS["n"] = 0
                start, start_cpu = time.perf_counter(), time.process_time()
                search.fit(X, y)
                times[kind].append(time.perf_counter() - start)
                cpu[kind].append(time.process_time() - start_cpu)
                counts[kind] = EPOCHS["n"]
                scores[kind] = search.cv_results_["mean_test_score"]
    R = n_rounds + 1
    return {
        "k": k,
        "R": R,
        "expected": (k * (R - 1) + 1) / (k * R),
        "epochs_naive": counts["naive"],
        "epochs_cached": counts["cached"],
        "epoch_ratio": counts["cached"] / counts["naive"],
        "time_naive": min(times["naive"]),
        "time_cached": min(times["cached"]),
        "time_ratio": min(times["cached"]) / min(times["naive"]),
        "cpu_ratio": min(cpu["cached"]) / min(cpu["naive"]),
        "same_scores": bool(np.array_equal(scores["naive"], scores["cached"])),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    configs = [(4, 1), (4, 3), (2, 3)]
    if args.quick:
        X, y, configs, args.epochs, args.repeats = X[:400], y[:400], [(2, 1)], 1, 1
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, 1 torch thread, {args.epochs} epochs/round, "
        f"cv=2, best of {args.repeats}"
    )
    header = (
        "| k | R | expected (k(R-1)+1)/(kR) | epochs naive | epochs cached "
        "| epoch ratio | naive s | cached s | wall ratio | CPU ratio | same scores |"
    )
    print(header)
    print("|---" * 11 + "|")
    # warm-up (imports, first allocations), not timed
    make_search(2, 1, 1, None).fit(X[:200], y[:200])
    for k, n_rounds in configs:
        r = run(k, n_rounds, args.epochs, args.repeats, X, y)
        print(
            f"| {r['k']} | {r['R']} | {r['expected']:.3f} | {r['epochs_naive']} "
            f"| {r['epochs_cached']} | {r['epoch_ratio']:.3f} | {r['time_naive']:.1f} "
            f"| {r['time_cached']:.1f} | {r['time_ratio']:.3f} | {r['cpu_ratio']:.3f} "
            f"| {r['same_scores']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
