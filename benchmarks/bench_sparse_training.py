"""Sparse training speed: one epoch of a 784-4096-4096-10 MLP (issue 11).

For each density (fraction of the weights kept, the same in every layer,
random masks -- the speed of a sparse product depends on shape and density,
not on which weights survive) one training epoch is timed three ways, on the
same batches, with Adam:

* dense: the dense network with the masks multiplied in after every
  optimizer step (what a fit with ``sparse_training=False`` does);
* auto: :func:`~sklottery.pruning.sparse_training.to_sparse_training` with
  ``mode="auto"`` (per layer, sparse or dense, whichever a short timing at
  the start says is faster); layers left dense keep the mask multiply;
* sparse: ``mode=True`` (every masked Linear sparse, even where slower).

"Epoch" here is ``--batches`` batches of ``--batch-size`` rows (a full
60k-row epoch scales linearly). The variants are interleaved repeat by
repeat (dense, auto, sparse, dense, ...) and medians are reported, because
the 2 CPUs of the benchmark machine are shared: absolute times are noisy,
ratios less so. ``ratio`` is variant time / dense time (< 1 = faster). The
one-off cost of the swap at the start of a round (``to_sparse_training``,
its timing included, plus ``to_dense`` at the end) is printed separately.

Run: ``PYTHONPATH=$PWD nice -n 10 python benchmarks/bench_sparse_training.py``
(about 4 minutes on 2 cores); ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch
from torch import nn

from sklottery.pruning.sparse_training import to_dense, to_sparse_training

SIZES = (784, 4096, 4096, 10)


def build():
    layers = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def make_masks(module, density, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {
        name: torch.rand(p.shape, generator=gen) < density
        for name, p in module.named_parameters()
        if name.endswith("weight")
    }


def epoch_fn(module, masks, batches, mode, batch_size):
    """A closure running one epoch; for ``mode`` other than None the layers
    are swapped once, before (the swap is a per-round cost)."""
    rows = []
    if mode is not None:
        rows = to_sparse_training(module, masks, mode=mode, batch_size=batch_size)
    sparse = {r["param"] for r in rows if r["layout"] == "sparse"}
    params = dict(module.named_parameters())
    pairs = [(params[n], m) for n, m in masks.items() if n not in sparse]
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def run():
        for X, y in batches:
            optimizer.zero_grad()
            loss_fn(module(X), y).backward()
            optimizer.step()
            with torch.no_grad():
                for p, m in pairs:
                    p.mul_(m)

    return run, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--densities", default="0.02,0.05,0.1,0.2,0.5")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.densities, args.batches, args.repeats = "0.02,0.5", 1, 1
    densities = [float(d) for d in args.densities.split(",")]
    gen = torch.Generator().manual_seed(0)
    batches = [
        (
            torch.randn(args.batch_size, SIZES[0], generator=gen),
            torch.randint(0, SIZES[-1], (args.batch_size,), generator=gen),
        )
        for _ in range(args.batches)
    ]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}; MLP {SIZES}, "
        f"{args.batches} batches of {args.batch_size}, Adam, "
        f"median of {args.repeats} interleaved repeats"
    )
    header = (
        f"{'density':>8} {'dense_s':>8} {'auto_s':>8} {'auto':>6} "
        f"{'sparse_s':>8} {'sparse':>6}  {'swap_s':>6}  auto layouts"
    )
    print(header)
    for density in densities:
        torch.manual_seed(0)
        base = build()
        masks = make_masks(base, density)
        with torch.no_grad():
            for name, p in base.named_parameters():
                if name in masks:
                    p.mul_(masks[name])
        nets = {key: copy.deepcopy(base) for key in ("dense", "auto", "sparse")}
        fns = {}
        fns["dense"], _ = epoch_fn(nets["dense"], masks, batches, None, 0)
        start = time.perf_counter()
        fns["auto"], rows = epoch_fn(
            nets["auto"], masks, batches, "auto", args.batch_size
        )
        swap_s = time.perf_counter() - start
        fns["sparse"], _ = epoch_fn(
            nets["sparse"], masks, batches, True, args.batch_size
        )
        for fn in fns.values():  # warm-up (and the optimizers' state)
            fn()
        samples = {key: [] for key in fns}
        for _ in range(args.repeats):
            for key, fn in fns.items():
                start = time.perf_counter()
                fn()
                samples[key].append(time.perf_counter() - start)
        start = time.perf_counter()
        to_dense(nets["auto"])
        swap_s += time.perf_counter() - start
        med = {key: statistics.median(s) for key, s in samples.items()}
        layouts = ",".join(r["layout"][0] for r in rows)
        print(
            f"{density:8.2f} {med['dense']:8.3f} {med['auto']:8.3f} "
            f"{med['auto'] / med['dense']:6.3f} {med['sparse']:8.3f} "
            f"{med['sparse'] / med['dense']:6.3f}  {swap_s:6.2f}  {layouts}"
        )


if __name__ == "__main__":
    main()
