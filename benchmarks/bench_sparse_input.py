"""Sparse input: densified one batch at a time vs ``.toarray()`` up front (issue 10).

A TF-IDF-like random CSR matrix (``--rows`` x ``--cols``, ``--density``) is
fed to training two ways:

* up front: ``torch.from_numpy(X.toarray())`` once, then dense batches are
  indexed out of it (what a user does to get past "dense data is
  required");
* per batch: :class:`sklottery.training.SparseRows`, each shuffled batch
  densified straight from the CSR arrays (what the estimators do).

Two measurements, each the median of interleaved repeats (the 2 CPUs are
shared, so ratios are more reliable than absolute times):

1. one epoch of batches (``TensorLoader``, batch 60, shuffled), with the
   up-front ``toarray`` counted once per epoch for the dense path (it is
   needed once per fit; one epoch is the least a fit trains);
2. the per-batch cost alone (up front: indexing the dense tensor; per batch:
   densifying the rows).

Run: ``python benchmarks/bench_sparse_input.py`` (about 30 s of CPU);
``--quick`` for a smoke run. "ratio" is per-batch time / up-front time
(<= 1: the sparse path is not slower).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.sparse as sp
import torch

from sklottery.training import SparseRows, TensorLoader


class _DS:
    def __init__(self, X, y):
        self.X, self.y = X, y


def _epoch(X, y, batch_size):
    n = 0
    for Xb, _ in TensorLoader(_DS(X, y), batch_size=batch_size, shuffle=True):
        n += Xb.shape[0]
    return n


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--cols", type=int, default=5000)
    parser.add_argument("--density", type=float, default=0.005)
    parser.add_argument("--batch-size", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.cols, args.repeats = 600, 800, 3
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    X = sp.random(
        args.rows, args.cols, density=args.density, format="csr",
        dtype=np.float32, random_state=0,
    )
    y = torch.from_numpy(rng.integers(0, 2, args.rows))
    rows = SparseRows(X)
    bs = args.batch_size

    up_front, per_batch = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        dense = torch.from_numpy(X.toarray())
        _epoch(dense, y, bs)
        up_front.append(time.perf_counter() - t)
        del dense
        t = time.perf_counter()
        _epoch(rows, y, bs)
        per_batch.append(time.perf_counter() - t)

    dense = torch.from_numpy(X.toarray())
    idx = [torch.randperm(args.rows)[:bs] for _ in range(200)]
    index_dense, densify = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        for i in idx:
            dense[i]
        index_dense.append((time.perf_counter() - t) / len(idx))
        t = time.perf_counter()
        for i in idx:
            rows[i]
        densify.append((time.perf_counter() - t) / len(idx))

    med = statistics.median
    print(
        f"matrix {args.rows} x {args.cols}, density {args.density}, "
        f"nnz {X.nnz}, dense {args.rows * args.cols * 4 / 2**20:.1f} MiB; "
        f"batch {bs}; medians of {args.repeats}"
    )
    print(f"{'measure':34s} {'up front':>10s} {'per batch':>10s} {'ratio':>7s}")
    a, b = med(up_front), med(per_batch)
    print(f"{'one epoch incl. toarray (ms)':34s} {a * 1e3:10.2f} {b * 1e3:10.2f} "
          f"{b / a:7.2f}")
    a, b = med(index_dense), med(densify)
    print(f"{'one batch (us)':34s} {a * 1e6:10.1f} {b * 1e6:10.1f} {b / a:7.2f}")


if __name__ == "__main__":
    main()
