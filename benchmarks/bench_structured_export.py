"""Structured export: what removing dead units adds to the CSR export (issue 13).

For each network and sparsity the ticket is made with the :class:`Pruner`
directly, as in ``bench_sparse.py``: one prune of the freshly initialized
network at that sparsity, every layer alike (``output_rate_factor=None``).
Magnitudes at initialization are i.i.d., so the masks are uniformly random:
the dead units counted here are the ones chance alone makes, a lower bound
for trained tickets, whose pruning concentrates on some units. Then, on the
same rows, in batches of 256:

* dense ticket: the masked dense module;
* CSR-only export: ``to_sparse(module, masks, structured=False)`` -- per
  Linear layer, CSR or dense, whichever a short timing at export says is
  faster (the export before issue 13);
* structured export: ``to_sparse(module, masks)`` -- dead hidden units
  removed first (:mod:`sklottery.export._dead_units`), then the same per-layer
  choice on the smaller layers (the default export now);
* structured, all dense: ``to_sparse(module, masks, layout="dense")`` -- the
  smaller layers alone, no CSR: the effect of removing units by itself, free
  of the layout choice (which a timing on a shared machine makes noisy).

Both exports are checked against the dense ticket (``torch.allclose``).
Repeats are interleaved (dense, CSR-only, structured, dense, ...) and medians
are reported: the machine's CPUs are shared, so ratios are more reliable than
absolute times. "vs dense" and "vs CSR" are the other module's time divided
by the structured export's (> 1 = the structured export is faster).

Run: ``python benchmarks/bench_structured_export.py`` (about 1-2 minutes on
one thread); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from sklottery import MLP
from sklottery.export import SparseLinear, to_sparse

# the ticket maker and the timing of the sparse-export benchmark, shared
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sparse import BATCH, make_ticket, predict, timed  # noqa: E402


def _shapes(export):
    """``out x in`` of each Linear layer, with S (CSR) or D (dense)."""
    parts = []
    for m in export.modules():
        if isinstance(m, SparseLinear):
            parts.append(f"{m.out_features}x{m.in_features}S")
        elif isinstance(m, torch.nn.Linear):
            parts.append(f"{m.out_features}x{m.in_features}D")
    return " ".join(parts)


def run(name, build, sparsities, n_rows, repeats):
    rows = []
    for sparsity in sparsities:
        torch.manual_seed(0)
        module = build().eval()
        masks = make_ticket(module, sparsity)
        csr = to_sparse(module, masks, batch_size=BATCH, structured=False)
        start = time.perf_counter()
        structured = to_sparse(module, masks, batch_size=BATCH)
        export_s = time.perf_counter() - start
        shrunk = to_sparse(module, masks, layout="dense")
        X = torch.randn(n_rows, module.hidden[0].in_features)
        with torch.no_grad():
            ref = module(X[:BATCH])
            assert torch.allclose(csr(X[:BATCH]), ref, atol=1e-4)
            assert torch.allclose(structured(X[:BATCH]), ref, atol=1e-4)
            assert torch.allclose(shrunk(X[:BATCH]), ref, atol=1e-4)
        dense_s, csr_s, struct_s, shrunk_s = timed(
            [lambda m=m: predict(m, X) for m in (module, csr, structured, shrunk)],
            repeats,
        )
        removed = {k: v for k, v in structured.removed_units.items() if v}
        units = sum(
            m.out_features for m in module.hidden if isinstance(m, torch.nn.Linear)
        )
        r = {
            "net": name,
            "sparsity": sparsity,
            "removed": sum(removed.values()),
            "hidden_units": units,
            "csr_layers": _shapes(csr),
            "structured_layers": _shapes(structured),
            "dense_ms": 1e3 * dense_s,
            "csr_ms": 1e3 * csr_s,
            "structured_ms": 1e3 * struct_s,
            "vs_dense": dense_s / struct_s,
            "vs_csr": csr_s / struct_s,
            "shrunk_ms": 1e3 * shrunk_s,
            "shrunk_vs_dense": dense_s / shrunk_s,
            "export_s": export_s,
        }
        rows.append(r)
        print(
            f"{name:<22} {sparsity:>4.0%}  removed {r['removed']:>5}/{units} "
            f"hidden units {removed}\n"
            f"    layers CSR-only [{r['csr_layers']}]  structured "
            f"[{r['structured_layers']}]\n"
            f"    dense {r['dense_ms']:8.1f} ms  CSR-only {r['csr_ms']:8.1f} ms  "
            f"structured {r['structured_ms']:8.1f} ms  -> vs dense "
            f"{r['vs_dense']:5.2f}x, vs CSR-only {r['vs_csr']:5.2f}x  "
            f"(structured export took {export_s:4.1f} s)\n"
            f"    structured all dense {r['shrunk_ms']:8.1f} ms -> vs dense "
            f"{r['shrunk_vs_dense']:5.2f}x",
            flush=True,
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sparsities = [0.9, 0.95, 0.98, 0.99]
    wide = 1024 if args.quick else 4096
    repeats = 2 if args.quick else args.repeats
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"batch {BATCH}, {repeats} interleaved repeats, medians; "
        "layers: out x in, S = CSR, D = dense"
    )
    run(
        "LeNet-300-100",
        lambda: MLP(784, 10, hidden_units=(300, 100)),
        sparsities,
        n_rows=16 * BATCH,
        repeats=repeats,
    )
    run(
        f"MLP {wide}-{wide}-{wide}-10",
        lambda: MLP(wide, 10, hidden_units=(wide, wide)),
        sparsities,
        n_rows=2 * BATCH,
        repeats=repeats,
    )


if __name__ == "__main__":
    main()
