"""Dense or sparse, per layer: the calibrated rule and the timing harness.

Shared by the two places that choose a layer's layout: the CSR export for
inference (:mod:`sklottery.export`, which can time a forward pass) and sparse
training (:mod:`sklottery.pruning.sparse_training`, which can time a training
step). By default both decide by their rule (deterministic: the same seed
gives bit-identical results); timing is only done on request. Each keeps
its own calibration (thresholds) and its own callables; what is shared here
is how a rule reads them (:func:`rule_layout_for`), how two forms are timed
(:func:`interleaved_minimum`) and how a timing decides
(:func:`faster_layout`). Pure: this module changes no module and imports
torch only.
"""

from __future__ import annotations

import time

import torch

__all__ = [
    "MARGIN",
    "check_int",
    "faster_layout",
    "interleaved_minimum",
    "rule_layout_for",
    "sync",
    "timed",
]

#: A timed layer is given the sparse layout only if it takes at most this
#: fraction of the dense time, so that timing noise cannot make it slower.
MARGIN = 0.9


def check_int(value, name: str, minimum: int = 1) -> None:
    """A ValueError unless ``value`` is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")


def rule_layout_for(
    numel: int, density: float, batch_size: int, *, min_batch: int, tiers
) -> str:
    """A calibrated rule: ``"sparse"`` when ``batch_size >= min_batch`` and,
    for one ``(min_numel, max_density)`` of ``tiers``, the layer has at least
    ``min_numel`` weights and a density at most ``max_density`` (up to one
    weight: pruning 90% of an odd count keeps one weight over 10%); else
    ``"dense"`` (never slower than dense). Deterministic: the same
    arguments give the same answer on every machine.

    Examples
    --------
    >>> rule_layout_for(1 << 22, 0.05, 256, min_batch=32, tiers=[(1 << 22, 0.1)])
    'sparse'
    >>> rule_layout_for(1 << 22, 0.05, 8, min_batch=32, tiers=[(1 << 22, 0.1)])
    'dense'
    """
    if batch_size < min_batch:
        return "dense"
    for min_numel, max_density in tiers:
        if numel >= min_numel and density <= max_density + 1.0 / numel:
            return "sparse"
    return "dense"


def faster_layout(dense_s: float, sparse_s: float, margin: float = MARGIN) -> str:
    """``"sparse"`` if it took at most ``margin`` times the dense time."""
    return "sparse" if sparse_s <= margin * dense_s else "dense"


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA; a no-op elsewhere)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, calls: int = 1) -> float:
    """Seconds per call of ``fn``, over ``calls`` calls, the device synced
    before and after."""
    sync(device)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    sync(device)
    return (time.perf_counter() - start) / calls


def interleaved_minimum(
    fns, device: torch.device, repeats: int, *, sample_s=None, clear_factor=None
) -> tuple[float, ...]:
    """Seconds per call of each of ``fns`` (the dense form first), timed
    alike: the fastest of ``repeats`` samples each.

    Each callable is called once first (warm-up, timed). With
    ``clear_factor``, when one warm-up took over that many times another's
    time, the warm-up times are returned: repeats cannot change the
    decision. With ``sample_s``, each sample repeats the call enough times
    to last about that long (the count from one more timed call of the
    first form); else a sample is one call. Then the samples are taken
    interleaved (first form, second form, first form, ...) so that load
    from other processes hits every form alike, and the fastest of each is
    returned: load only ever adds time, so the minimum is the most stable
    estimate of what the form itself costs.
    """
    first = tuple(timed(fn, device) for fn in fns)
    if clear_factor is not None and max(first) > clear_factor * min(first):
        return first
    calls = 1
    if sample_s is not None:
        calls = max(1, int(sample_s / max(timed(fns[0], device), 1e-7)))
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, samples):
            out.append(timed(fn, device, calls))
    return tuple(min(s) for s in samples)
