"""Compare dependency-graph tracers for structured pruning on small nets.

Options measured: torch.fx.symbolic_trace (basis of our own tracer),
Torch-Pruning's DepGraph (benchmark-only dependency, ``pip install torch-pruning``) and
``sklottery.pruning.graph.trace_units`` when it exists.

For Torch-Pruning each net is pruned with MetaPruner (L1 magnitude, pruning_ratio=0.5,
output layer ignored) and the pruned model is compared with a zeroed reference: a
deepcopy of the original with the removed units' producer rows and consumer input
columns set to 0.

    .venv/bin/python benchmarks/bench_depgraph.py --out benchmarks/results
"""

import argparse
import copy
import importlib.metadata
import json
import os
import time
import warnings

import torch
from graph_nets import NETS, output_layer
from torch import nn

try:
    import torch_pruning as tp
except ImportError:  # benchmark-only dependency
    tp = None


def best_time(fn, repeat=3):
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return result, best * 1000.0


def first_line(exc):
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def bench_fx(model):
    try:
        _, ms = best_time(lambda: torch.fx.symbolic_trace(model))
        return {"ok": True, "ms": round(ms, 2)}
    except Exception as exc:  # noqa: BLE001 - report any tracing failure
        return {"ok": False, "error": first_line(exc)}


def bench_sklottery(model, x):
    try:
        from sklottery.pruning.graph import trace_units
    except (ImportError, AttributeError):
        return {"available": False}
    try:
        g, ms = best_time(lambda: trace_units(model, x))
        return {
            "available": True,
            "ok": True,
            "groups": len(g.groups),
            "ms": round(ms, 2),
        }
    except ImportError as exc:  # module present but incomplete
        return {"available": False, "error": first_line(exc)}
    except Exception as exc:  # noqa: BLE001
        return {"available": True, "ok": False, "error": first_line(exc)}


ROOTS = [
    nn.Conv2d,
    nn.Linear,
    nn.LSTM,
    nn.MultiheadAttention,
]  # tp 1.6.1 has no GRU pruner


def _zero(mod, is_out, idxs):
    """Zero the slice of ``mod`` that tp removed; return False if zeroing != removal."""
    idx = torch.as_tensor(sorted(set(idxs)), dtype=torch.long)
    with torch.no_grad():
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            if is_out:
                mod.weight[idx] = 0
                if mod.bias is not None:
                    mod.bias[idx] = 0
            else:
                mod.weight[:, idx] = 0
        elif isinstance(mod, nn.BatchNorm2d):  # eval mode: output becomes exactly 0
            mod.weight[idx] = 0
            mod.bias[idx] = 0
        elif isinstance(mod, nn.LSTM) and mod.num_layers == 1:
            sfx = ["", "_reverse"] if mod.bidirectional else [""]
            h = mod.hidden_size
            rows = torch.cat([idx + k * h for k in range(4)])
            for s in sfx:
                if is_out:
                    for name in (
                        "weight_ih_l0",
                        "weight_hh_l0",
                        "bias_ih_l0",
                        "bias_hh_l0",
                    ):
                        getattr(mod, name + s)[rows] = 0
                    getattr(mod, "weight_hh_l0" + s)[:, idx] = 0
                else:
                    getattr(mod, "weight_ih_l0" + s)[:, idx] = 0
        elif n_params(mod):
            return (
                False  # LayerNorm, MultiheadAttention, GRU, ...: zeroing is not removal
            )
    return True


def _plan(DG, group, names):
    """(module name, 'out'|'in', idxs) for every module-with-params item of a group."""
    items = []
    for dep, idxs in group:
        mod = dep.target.module
        if isinstance(mod, nn.Module) and id(mod) in names:
            items.append(
                (
                    names[id(mod)],
                    "out" if DG.is_out_channel_pruning_fn(dep.handler) else "in",
                    [int(i) for i in idxs],
                )
            )
    return items


# Extra Torch-Pruning runs: row name -> (net, MetaPruner kwargs).
TP_VARIANTS = {
    "transformer_embed[heads]": (
        "transformer_embed",
        {"prune_num_heads": True, "prune_head_dims": False, "head_pruning_ratio": 0.5},
    ),
}


def bench_tp(name, model, x, extra=None):
    res = {}
    out_layer = output_layer(model)
    try:
        DG, ms = best_time(
            lambda: tp.DependencyGraph().build_dependency(model, x, verbose=False)
        )
        res.update(build_ok=True, build_ms=round(ms, 2))
    except Exception as exc:  # noqa: BLE001
        res.update(build_ok=False, build_error=first_line(exc))
        return res
    try:
        groups = list(
            DG.get_all_groups(ignored_layers=[out_layer], root_module_types=ROOTS)
        )
        res["groups"] = len(groups)
        res["group_roots"] = [
            DG._module2name.get(g[0].dep.target.module, "?") for g in groups
        ]
    except Exception as exc:  # noqa: BLE001
        res.update(groups=f"FAIL: {first_line(exc)}")
    orig = copy.deepcopy(model)
    names = {id(m): n for n, m in model.named_modules()}
    kw = {}
    mhas = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    if mhas:
        kw["num_heads"] = {m: m.num_heads for m in mhas}
    kw.update(extra or {})
    plan = []
    try:
        pruner = tp.pruner.MetaPruner(
            model,
            x,
            importance=tp.importance.MagnitudeImportance(p=1),
            pruning_ratio=0.5,
            ignored_layers=[out_layer],
            root_module_types=ROOTS,
            **kw,
        )
        for group in pruner.step(interactive=True):
            plan += _plan(pruner.DG, group, names)
            group.prune()
        res["prune_ok"] = True
    except Exception as exc:  # noqa: BLE001
        res.update(prune_ok=False, prune_error=first_line(exc))
        return res
    res["params"] = f"{n_params(orig)}->{n_params(model)}"
    res["pruned_modules"] = sorted({f"{n}:{k}" for n, k, _ in plan})
    for m in model.modules():
        if isinstance(m, (nn.GRU, nn.LSTM, nn.MultiheadAttention)):
            o = orig.get_submodule(
                next(n for n, mm in model.named_modules() if mm is m)
            )
            res.setdefault("rnn_attn", []).append(_describe(o, m))
    ref = copy.deepcopy(orig)
    exact = all(_zero(ref.get_submodule(n), k == "out", i) for n, k, i in plan)
    inputs = [("x", x)] + ([("-x", -x)] if name == "untraceable" else [])
    for tag, xi in inputs:
        key = "runs" if tag == "x" else "runs_other_branch"
        try:
            with torch.no_grad():
                y, y_ref = model(xi), ref(xi)
            res[key] = True
            match = y.shape == y_ref.shape and torch.allclose(y, y_ref, atol=1e-5)
            res["matches_zeroed" + ("" if tag == "x" else "_other_branch")] = (
                bool(match)
                if exact
                else f"n/a ({'yes' if match else 'no'}; zeroing != removal here)"
            )
        except Exception as exc:  # noqa: BLE001
            res[key] = f"no: {first_line(exc)}"
    return res


def _describe(o, m):
    kind = type(m).__name__
    if isinstance(m, nn.MultiheadAttention):
        e, h = f"{o.embed_dim}->{m.embed_dim}", f"{o.num_heads}->{m.num_heads}"
        return f"{kind}: embed {e}, heads {h}"
    shapes = "; ".join(
        f"{n} {tuple(p.shape)}->{tuple(getattr(m, n).shape)}"
        for n, p in o.named_parameters()
        if tuple(p.shape) != tuple(getattr(m, n).shape)
    )
    return f"{kind}: hidden {o.hidden_size}->{m.hidden_size}" + (
        f" ({shapes})" if shapes else " (untouched)"
    )


def fmt(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return ", ".join(map(str, v)) or "-"
    return "-" if v is None else str(v).replace("|", "/")


def render(rows, tp_version):
    cols = [
        "net",
        "fx trace",
        "fx ms",
        "tp build",
        "tp ms",
        "tp groups",
        "tp pruned runs",
        "tp == zeroed ref",
        "params orig->pruned",
        "sklottery (fx)",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        fx, t, sk = r["fx"], r.get("tp") or {}, r["sklottery"]
        skl = (
            f"not available {sk.get('error', '')}"
            if not sk["available"]
            else f"{sk['groups']} groups, {sk['ms']} ms"
            if sk.get("ok")
            else f"error: {sk['error']}"
        )
        cells = [
            r["net"],
            "ok" if fx["ok"] else f"FAIL: {fx['error']}",
            fx.get("ms"),
            ("ok" if t.get("build_ok") else f"FAIL: {t.get('build_error')}")
            if t
            else "not installed",
            t.get("build_ms"),
            t.get("groups"),
            t.get("runs")
            if t.get("prune_ok", True)
            else f"prune FAIL: {t.get('prune_error')}",
            t.get("matches_zeroed"),
            t.get("params"),
            skl,
        ]
        lines.append("| " + " | ".join(fmt(c) for c in cells) + " |")
    lines += [
        "",
        f"Torch-Pruning {tp_version}; torch {torch.__version__}. Details per net:",
        "",
    ]
    for r in rows:
        t = r.get("tp") or {}
        extra = {
            k: t[k]
            for k in (
                "group_roots",
                "pruned_modules",
                "rnn_attn",
                "runs_other_branch",
                "matches_zeroed_other_branch",
            )
            if k in t
        }
        if extra:
            lines.append(
                f"- **{r['net']}**: "
                + "; ".join(f"{k}: {fmt(v)}" for k, v in extra.items())
            )
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/output")
    ap.add_argument("--nets", nargs="*", default=list(NETS))
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    runs = [(n, n, None) for n in args.nets] + [
        (row, net, kw)
        for row, (net, kw) in TP_VARIANTS.items()
        if net in args.nets and tp is not None
    ]
    for label, name, kw in runs:
        model, x = NETS[name]()
        row = {
            "net": label,
            "fx": bench_fx(model),
            "sklottery": bench_sklottery(model, x),
        }
        if tp is not None:
            model, x = NETS[name]()
            row["tp"] = bench_tp(name, model, x, kw)
        rows.append(row)
        print(label, json.dumps(row, default=str))
    version = importlib.metadata.version("torch-pruning") if tp else "not installed"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "depgraph.json"), "w") as f:
        json.dump(
            {"torch": torch.__version__, "torch_pruning": version, "rows": rows},
            f,
            indent=1,
        )
    with open(os.path.join(args.out, "depgraph.md"), "w") as f:
        f.write(render(rows, version))


if __name__ == "__main__":
    main()
