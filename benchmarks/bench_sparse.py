"""Sparse export speed and ticket-file size (issue 5).

For each network and sparsity the ticket is made with the :class:`Pruner`
directly (one prune of the freshly initialized network at that sparsity, no
training -- the speed of a sparse product depends on shape and density, not
on which weights survive). Then, on the same rows:

* dense: the masked dense module, in batches of 256 rows;
* export: ``sklottery.export.to_sparse(module, masks)`` (``layout="auto"``:
  per layer, CSR or dense, whichever the calibrated rule says is faster;
  with ``--measure``, whichever a short timing at export says is faster --
  how ``benchmarks/RESULTS.md``'s figures of issue 5 were made), same
  batches;
* forced CSR: ``layout="sparse"`` -- every pruned Linear in CSR, what the
  automatic choice protects against.

Repeats are interleaved (dense, export, forced, dense, ...) and medians are
reported, because the 2 CPUs of the benchmark machine are shared with other
engineers' jobs: absolute times are noisy, ratios less so. "speed-up" is
dense time / export time (> 1 = the export is faster).

The ticket file of each network (``save_ticket``, no rewind point) is
written too and its size compared with the dense float32 weights.

Run: ``python benchmarks/bench_sparse.py`` (about 3 minutes on 2 cores);
``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

from sklottery import MLP, Pruner
from sklottery.export import SparseLinear, to_sparse
from sklottery.tickets import save_ticket

BATCH = 256
#: Decide the export's layouts by a timing (``--measure``) instead of the rule.
MEASURE = [False]


def make_ticket(module, sparsity, seed=0):
    """Prune every layer of ``module`` to ``sparsity`` in one step."""
    pruner = Pruner(
        module, prune_rate=sparsity, output_rate_factor=None, random_state=seed
    )
    pruner.prune()
    return pruner.masks


@torch.no_grad()
def predict(module, X):
    return [module(X[i : i + BATCH]) for i in range(0, len(X), BATCH)]


def timed(fns, repeats):
    """Median seconds of each fn, run interleaved ``repeats`` times."""
    for fn in fns:
        fn()
    samples = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, samples):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return [statistics.median(s) for s in samples]


def run(name, build, sparsities, n_rows, repeats):
    rows = []
    for sparsity in sparsities:
        torch.manual_seed(0)
        module = build().eval()
        masks = make_ticket(module, sparsity)
        start = time.perf_counter()
        export = to_sparse(
            module, masks, layout="auto", batch_size=BATCH, measure=MEASURE[0]
        )
        export_s = time.perf_counter() - start
        forced = to_sparse(module, masks, layout="sparse", batch_size=BATCH)
        X = torch.randn(n_rows, module.hidden[0].in_features)
        with torch.no_grad():
            ref = module(X[:BATCH])
            assert torch.allclose(export(X[:BATCH]), ref, atol=1e-4)
            assert torch.allclose(forced(X[:BATCH]), ref, atol=1e-4)
        dense_s, export_t, forced_s = timed(
            [
                lambda m=module: predict(m, X),
                lambda m=export: predict(m, X),
                lambda m=forced: predict(m, X),
            ],
            repeats,
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ticket.safetensors")
            save_ticket(path, module, masks)
            file_bytes = os.path.getsize(path)
        dense_bytes = 4 * sum(p.numel() for p in module.parameters())
        layouts = "".join(
            "S" if isinstance(m, SparseLinear) else "D"
            for m in export.modules()
            if isinstance(m, (SparseLinear, torch.nn.Linear))
        )
        rows.append(
            {
                "net": name,
                "sparsity": sparsity,
                "layouts": layouts,
                "dense_ms": 1e3 * dense_s,
                "export_ms": 1e3 * export_t,
                "speedup": dense_s / export_t,
                "forced_csr_speedup": dense_s / forced_s,
                "export_s": export_s,
                "file_pct": 100 * file_bytes / dense_bytes,
            }
        )
        r = rows[-1]
        for d in export.sparse_layouts:
            if d["dense_s"] == d["dense_s"]:  # timed at export (not NaN)
                print(
                    f"    export timing of {d['name']:<9} {str(d['shape']):<13} "
                    f"density {d['density']:.3f}: dense {1e3 * d['dense_s']:7.2f} ms, "
                    f"CSR {1e3 * d['sparse_s']:7.2f} ms -> {d['layout']}"
                )
        print(
            f"{name:<18} {sparsity:>5.0%}  layouts {layouts:<4} "
            f"dense {r['dense_ms']:8.1f} ms  export {r['export_ms']:8.1f} ms  "
            f"speed-up {r['speedup']:5.2f}x  "
            f"(forced CSR {r['forced_csr_speedup']:5.2f}x)"
            f"  export took {export_s:4.1f} s  ticket file {r['file_pct']:5.1f}% "
            "of dense float32",
            flush=True,
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--only", choices=["wide", "lenet"], default=None)
    parser.add_argument(
        "--measure", action="store_true", help="export layouts by a timing"
    )
    args = parser.parse_args()
    MEASURE[0] = args.measure
    if args.threads:
        torch.set_num_threads(args.threads)
    sparsities = [0.9, 0.95, 0.98, 0.99]
    wide = 1024 if args.quick else 4096
    repeats = 2 if args.quick else args.repeats
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"batch {BATCH}, {repeats} interleaved repeats, medians; "
        "layouts: D = dense, S = CSR, per Linear layer"
    )
    if args.only != "lenet":
        run(
            f"MLP {wide}-{wide}-{wide}-10",
            lambda: MLP(wide, 10, hidden_units=(wide, wide)),
            sparsities,
            n_rows=4 * BATCH,
            repeats=repeats,
        )
    if args.only != "wide":
        run(
            "LeNet-300-100",
            lambda: MLP(784, 10, hidden_units=(300, 100)),
            sparsities,
            n_rows=16 * BATCH,
            repeats=repeats,
        )


if __name__ == "__main__":
    main()
