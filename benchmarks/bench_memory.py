"""Peak memory of a sklottery fit against a dense skorch fit of the same net.

Each fit runs in a fresh subprocess, which reports

* ``before``: its resident set size (RSS) after importing torch/skorch/
  sklottery, making the data and building the (unfitted) net;
* ``peak``: its peak RSS over its whole life (``ru_maxrss``), i.e. during
  the fit.

Modes: ``skorch`` -- ``NeuralNetClassifier(...).fit(X, y)``, the dense
baseline; ``sklottery`` -- ``LotteryTicketClassifier(same net, n_rounds,
prune_rate=0.5).fit(X, y)``, which trains ``n_rounds + 1`` rounds of the
same epochs. Runs are interleaved (skorch, sklottery, skorch, ...) and the
median of each is reported. Two ratios are given: of the peak RSS (what the
operating system sees: the process with torch loaded, its data and the fit)
and of the *growth* during the fit (peak - before: the fit's own memory:
weights, gradients, Adam's moments, masks, copies).

The parameter bytes ``P`` of the net are printed too, so the growth can be
read in units of ``P``: a dense Adam fit holds about 4P (weights, gradients,
two moments) plus activations.

``--late`` adds a third mode, ``late``: a sklottery fit of ``--late-rounds``
rounds at ``prune_rate=0.5`` (1.6% of the weights left after 6), whose
reported peak is that of its *last round's training* only -- the peak RSS
of the process from the start to the end of that round's training (Linux:
``/proc/self/clear_refs`` resets the high-water mark); the peak from there
to the end of the fit, when the dense weights are put back, is printed too. It answers
"how much memory does a round need once most weights are pruned and train
sparse", against the dense skorch fit's peak.

Run: ``python benchmarks/bench_memory.py`` (a few minutes on 2 shared
cores); ``--hidden 300 100`` for LeNet-300-100.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys

ROUNDS_STARTED = [0]
TRAINING_PEAK = [0]


def _high_water_mark() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset_high_water_mark() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _last_round_probe(last_round):
    from skorch.callbacks import Callback

    class LastRound(Callback):
        """Resets the peak RSS when the last round starts training."""

        def on_train_begin(self, net, **kwargs):
            ROUNDS_STARTED[0] += 1
            if ROUNDS_STARTED[0] == last_round + 1:
                _reset_high_water_mark()

        def on_train_end(self, net, **kwargs):
            if ROUNDS_STARTED[0] == last_round + 1:
                TRAINING_PEAK[0] = _high_water_mark()

    return LastRound()


def child(mode, hidden, epochs, n_rounds, n_rows):
    import numpy as np
    import psutil
    import torch
    from skorch import NeuralNetClassifier

    from sklottery import MLP, LotteryTicketClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_rows, 784), dtype=np.float32)
    y = rng.integers(0, 10, n_rows)
    net = NeuralNetClassifier(
        MLP,
        module__input_units=784,
        module__output_units=10,
        module__hidden_units=tuple(hidden),
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=epochs,
        batch_size=256,
        train_split=None,
        verbose=0,
    )
    n_params = sum(p.numel() for p in MLP(784, 10, hidden_units=hidden).parameters())
    before = psutil.Process().memory_info().rss
    if mode == "skorch":
        net.fit(X, y)
    elif mode == "sklottery":
        LotteryTicketClassifier(
            net, n_rounds=n_rounds, prune_rate=0.5, random_state=0
        ).fit(X, y)
    elif mode == "late":
        net.set_params(callbacks=[("last_round", _last_round_probe(n_rounds))])
        clf = LotteryTicketClassifier(
            net, n_rounds=n_rounds, prune_rate=0.5, random_state=0
        ).fit(X, y)
        last = clf.rounds_.iloc[-1]
        extra = {"density": float(last["weights_remaining"]),
                 "sparse_layers": last["sparse_layers"],
                 "to_end": _high_water_mark()}  # fmt: skip
        peak = TRAINING_PEAK[0]
        print(json.dumps({"before": before, "peak": peak,
                          "param_bytes": 4 * n_params, **extra}))  # fmt: skip
        return
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"before": before, "peak": peak, "param_bytes": 4 * n_params}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[4096, 4096])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--late", action="store_true")
    parser.add_argument("--late-rounds", type=int, default=6)
    parser.add_argument("--child", choices=["skorch", "sklottery", "late"])
    args = parser.parse_args()
    if args.child:
        rounds = args.late_rounds if args.child == "late" else args.rounds
        child(args.child, args.hidden, args.epochs, rounds, args.rows)
        return

    results = {"skorch": [], "sklottery": []}
    if args.late:
        results["late"] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for _ in range(args.repeats):
        for mode in results:
            cmd = [
                sys.executable, __file__, "--child", mode,
                "--hidden", *map(str, args.hidden), "--epochs", str(args.epochs),
                "--rounds", str(args.rounds), "--rows", str(args.rows),
                "--late-rounds", str(args.late_rounds),
            ]  # fmt: skip
            out = subprocess.run(
                cmd, check=True, capture_output=True, text=True, env=env
            )
            results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    mib = 2**20
    param = results["skorch"][0]["param_bytes"]
    print(
        f"MLP 784-{'-'.join(map(str, args.hidden))}-10: P = {param / mib:.1f} MiB of "
        f"float32 parameters; {args.rows} rows, batch 256, Adam, {args.epochs} "
        f"epoch(s) per round, sklottery n_rounds={args.rounds}; "
        f"medians of {args.repeats} interleaved runs"
    )
    summary = {}
    for mode, runs in results.items():
        before = statistics.median(r["before"] for r in runs)
        peak = statistics.median(r["peak"] for r in runs)
        summary[mode] = (before, peak)
        print(
            f"  {mode:<10} RSS before fit {before / mib:7.1f} MiB   peak "
            f"{peak / mib:7.1f} MiB   growth {(peak - before) / mib:7.1f} MiB "
            f"= {(peak - before) / param:4.2f} P"
        )
    (b0, p0), (b1, p1) = summary["skorch"], summary["sklottery"]
    print(
        f"  sklottery / skorch: peak RSS {p1 / p0:.2f}x, growth during fit "
        f"{(p1 - b1) / (p0 - b0):.2f}x"
    )
    if args.late:
        run = results["late"][0]
        p2 = summary["late"][1]
        end = statistics.median(r["to_end"] for r in results["late"])
        print(
            f"  late: the last of {args.late_rounds} rounds ({run['density']:.1%} of "
            f"the weights, trained sparse: {run['sparse_layers'] or 'none'}) peaks "
            f"at {p2 / mib:.1f} MiB while it trains = {p2 / p0:.2f}x the dense "
            f"skorch fit's peak; {end / mib:.1f} MiB = {end / p0:.2f}x from its "
            "start to the end of the fit (the dense weights put back)"
        )


if __name__ == "__main__":
    main()
