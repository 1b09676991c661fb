"""Pruning strategies and rewind modes on sklearn's digits.

For each configuration, ``LotteryTicketClassifier`` (LeNet-300-100-shaped
MLP, Adam 1.2e-3 with a x0.1 step halfway through each round, batch 60) runs
a dense round and ``n_rounds`` pruning
rounds; we report, averaged over seeds, the final ticket's weights remaining,
its test accuracy, its accuracy before retraining (``untrained_score`` of the
last round on the validation split: the "supermask" score of Zhou et al.
2019) and the fit's wall time as a ratio to the baseline (``large_final`` +
``rewind="init"``) measured in the same run. A last block compares the
dense round with early-bird stopping against the full dense round.

Run: ``python benchmarks/bench_strategies.py [--seeds 3] [--epochs 10]``.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier
from skorch.callbacks import LRScheduler
from skorch.dataset import ValidSplit

from sklottery import MLP, LotteryTicketClassifier

CONFIGS = [
    # (label, estimator parameters)
    ("large_final / init (baseline)", {}),
    ("small_final / init", {"strategy": "small_final"}),
    ("large_init / init", {"strategy": "large_init"}),
    ("large_init_large_final / init", {"strategy": "large_init_large_final"}),
    ("magnitude_increase / init", {"strategy": "magnitude_increase"}),
    ("movement / init", {"strategy": "movement"}),
    ("large_final_same_sign / init", {"strategy": "large_final_same_sign"}),
    ("random / init", {"strategy": "random"}),
    ("snip / init", {"strategy": "snip"}),
    ("large_final / rewind=1 (late)", {"rewind": 1}),
    ("large_final / reinit", {"rewind": "reinit"}),
    ("large_final / reshuffle", {"rewind": "reshuffle"}),
    ("large_final / signed_constant", {"rewind": "signed_constant"}),
    ("large_final / none (fine-tune)", {"rewind": "none"}),
    ("large_final / lr (LR rewinding)", {"rewind": "lr"}),
    ("large_final_same_sign / signed_constant",
     {"strategy": "large_final_same_sign", "rewind": "signed_constant"}),
    ("large_final / oneshot", {"schedule": "oneshot"}),
    ("large_final / init, rescale", {"rescale": True}),
]


def make(seed, epochs, n_rounds, prune_rate, **params):
    net = NeuralNetClassifier(
        MLP,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1.2e-3,
        batch_size=60,
        max_epochs=epochs,
        train_split=ValidSplit(0.2, stratified=True, random_state=seed),
        iterator_train__shuffle=True,
        # a step schedule (x0.1 halfway), so that fine-tuning at the final
        # learning rate ("none") and replaying the schedule ("lr") differ
        callbacks=[
            ("lr_step", LRScheduler(torch.optim.lr_scheduler.StepLR,
                                    step_size=max(epochs // 2, 1), gamma=0.1))
        ],
        verbose=0,
    )
    return LotteryTicketClassifier(
        net, n_rounds=n_rounds, prune_rate=prune_rate, random_state=seed,
        score_untrained=True, **params,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--prune-rate", type=float, default=0.5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    rows = {}
    # warm-up fit, so the first timed configuration pays no start-up costs
    make(0, 1, 1, args.prune_rate).fit(X[:300], y[:300])
    for seed in range(args.seeds):
        X_tr, X_te, y_tr, y_te = train_test_split(
            X, y, test_size=0.25, stratify=y, random_state=seed
        )
        for label, params in CONFIGS:
            clf = make(seed, args.epochs, args.rounds, args.prune_rate, **params)
            start = time.perf_counter()
            clf.fit(X_tr, y_tr)
            wall = time.perf_counter() - start
            last = clf.rounds_.iloc[-1]
            rows.setdefault(label, []).append(
                (
                    last["weights_remaining"],
                    clf.rounds_["score"].iloc[0],
                    clf.score(X_te, y_te),
                    last["untrained_score"],
                    wall,
                )
            )
        print(f"seed {seed} done", flush=True)

    base_wall = np.mean([r[4] for r in rows[CONFIGS[0][0]]])
    print(
        f"\ndigits, {args.rounds} rounds at prune_rate={args.prune_rate} "
        f"(output layer at half rate), {args.epochs} epochs per round, "
        f"{args.seeds} seeds; {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, 1 thread\n"
    )
    print("| configuration | weights left | dense valid acc | ticket test acc "
          "| untrained valid acc (last round) | fit time / baseline |")
    print("|---|---|---|---|---|---|")
    for label, _ in CONFIGS:
        r = np.array(rows[label])
        m, s = r.mean(0), r.std(0)
        print(
            f"| {label} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} ± {s[2]:.3f} "
            f"| {m[3]:.3f} ± {s[3]:.3f} | {m[4] / base_wall:.2f} |"
        )

    # early-bird: dense round only (n_rounds=1 keeps the pruning round short)
    print("\n| dense round | epochs (mean) | ticket test acc "
          "| dense round time / full | fit time / full |")
    print("|---|---|---|---|---|")
    eb_rows = {}
    for label, params in (("full dense round", {}),
                          ("early_bird threshold 0.1, patience 4",
                           {"early_bird": True}),
                          ("early_bird threshold 0.05, patience 4",
                           {"early_bird": {"threshold": 0.05}})):
        for seed in range(args.seeds):
            X_tr, X_te, y_tr, y_te = train_test_split(
                X, y, test_size=0.25, stratify=y, random_state=seed
            )
            clf = make(seed, 4 * args.epochs, 1, args.prune_rate, **params)
            start = time.perf_counter()
            clf.fit(X_tr, y_tr)
            wall = time.perf_counter() - start
            eb_rows.setdefault(label, []).append(
                (clf.rounds_["epochs"].iloc[0], clf.score(X_te, y_te),
                 clf.rounds_["wall_time"].iloc[0], wall)
            )
    full = np.array(eb_rows["full dense round"]).mean(0)
    for label, r in eb_rows.items():
        m = np.array(r).mean(0)
        print(f"| {label} | {m[0]:.1f} of {4 * args.epochs} | {m[1]:.3f} "
              f"| {m[2] / full[2]:.2f} | {m[3] / full[3]:.2f} |")


if __name__ == "__main__":
    main()
