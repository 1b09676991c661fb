"""Dense or CSR, per Linear layer of an export: :func:`choose_layouts`.

Sparse kernels beat dense BLAS only for large, very sparse matrices, so per
layer the export keeps whichever of dense or CSR is faster for inference --
by a calibrated rule (:func:`rule_layout`, the default: deterministic) or,
on request (``measure=True``), by a short interleaved timing of a forward
pass of both (:func:`measure_layer`). The
rule and the timing harness are shared with sparse training
(:mod:`sklottery.pruning.layouts`); the calibration here is the export's.
"""

from __future__ import annotations

import torch
from torch import nn

from ..pruning.layouts import (
    MARGIN,
    check_int,
    faster_layout,
    interleaved_minimum,
    rule_layout_for,
)
from ..pruning.swap import attention_layers
from ._modules import SparseLinear

__all__ = [
    "LAYOUTS",
    "MARGIN",
    "MAX_SPARSE_DENSITY",
    "MIN_SPARSE_NUMEL",
    "choose_layouts",
    "measure_layer",
    "rule_layout",
]

LAYOUTS = ("auto", "sparse", "dense")

#: Below this many weights a layer is never worth timing: CSR cannot win.
MIN_SPARSE_NUMEL = 1 << 16
#: Above this density (fraction of weights kept) CSR cannot win.
MAX_SPARSE_DENSITY = 0.25
# A measured CSR layer is kept only if it takes at most MARGIN (0.9) times
# the dense time, so that timing noise cannot make the export slower: the
# margin of sklottery.pruning.layouts, shared with sparse training.
#: The calibrated rule (:func:`rule_layout`): CSR below this batch size never,
RULE_MIN_BATCH = 32
#: ... else for layers of at least ``min_numel`` weights at a density of at
#: most ``max_density``, per ``(min_numel, max_density)``.
RULE_TIERS = ((1 << 22, 0.1), (1 << 20, 0.02))
#: Seconds each timing sample lasts, about (the call repeated as needed).
SAMPLE_S = 0.005


def rule_layout(shape, density: float, batch_size: int = 256, device="cpu") -> str:
    """Calibrated rule: ``"sparse"`` where CSR is reliably faster, else ``"dense"``.

    Calibrated with torch's CSR ``addmm`` on a shared 2-core CPU at batch 256
    (see ``benchmarks/bench_sparse.py``): CSR wins clearly only for large
    layers at high sparsity. The rule is deliberately conservative -- when in
    doubt it answers dense, which is never slower than dense: a timing
    (``measure=True``) can find CSR faster where the rule answers dense
    (layers of ``2**16`` to ``2**20`` weights at 2-25% density, larger ones
    at 10-25%). Off the CPU it answers dense (not calibrated there; time
    instead).

    Parameters
    ----------
    shape : tuple of int
        ``(out_features, in_features)``.
    density : float
        Fraction of the weights kept (1 - sparsity).
    batch_size : int, default=256
        Rows per forward call. Below 32 rows CSR overheads dominate.
    device : str or torch.device, default="cpu"

    Returns
    -------
    {"sparse", "dense"}

    Examples
    --------
    >>> rule_layout((300, 784), 0.1)
    'dense'
    >>> rule_layout((4096, 4096), 0.02)
    'sparse'
    """
    if torch.device(device).type != "cpu":
        return "dense"
    numel = 1
    for s in shape:
        numel *= int(s)
    return rule_layout_for(
        numel, density, batch_size, min_batch=RULE_MIN_BATCH, tiers=RULE_TIERS
    )


@torch.no_grad()
def measure_layer(
    linear: nn.Linear, sparse: SparseLinear, batch_size: int, repeats: int = 5
) -> tuple[float, float]:
    """Seconds per forward of ``linear`` (dense) and ``sparse``.

    Both run on the same random batch, interleaved (dense, sparse, dense, ...)
    so that load from other processes hits both alike; each sample repeats the
    call enough times to last about 5 ms. The fastest sample of each is
    returned: load from other processes only ever adds time, so the minimum
    is the most stable estimate of what the layer itself costs.
    """
    w = linear.weight
    x = torch.randn(batch_size, linear.in_features, dtype=w.dtype, device=w.device)
    fns = (lambda: linear(x), lambda: sparse(x))
    return interleaved_minimum(fns, w.device, repeats, sample_s=SAMPLE_S)


def _convertible(module: nn.Module) -> dict[str, nn.Linear]:
    """Linear layers that may be swapped for :class:`SparseLinear`, by name.

    Excluded: Linear subclasses overriding ``forward`` (the swap would change
    what they compute) and Linear layers inside ``MultiheadAttention``, whose
    forward reads ``out_proj.weight`` directly.
    """
    attention_children = attention_layers(module)
    return {
        name: m
        for name, m in module.named_modules()
        if isinstance(m, nn.Linear)
        and type(m).forward is nn.Linear.forward
        and id(m) not in attention_children
    }


def _check_args(layout, batch_size, repeats):
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise ValueError(
            f"layout={layout!r} is not valid; valid layouts are {list(LAYOUTS)}"
        )
    check_int(batch_size, "batch_size")
    check_int(repeats, "repeats")


@torch.no_grad()
def choose_layouts(
    module: nn.Module,
    *,
    layout: str = "auto",
    batch_size: int = 256,
    measure: bool = False,
    repeats: int = 5,
    measure_fn=None,
) -> list[dict]:
    """Decide, per convertible Linear layer, whether it is exported dense or CSR.

    Parameters
    ----------
    module : torch.nn.Module
        The network with its pruned weights already exactly zero.
    layout : {"auto", "sparse", "dense"}, default="auto"
        ``"sparse"``/``"dense"`` force every layer with at least one zero
        weight; ``"auto"`` keeps the faster one per layer.
    batch_size : int, default=256
        Rows per forward call at inference; CSR pays off for large batches.
    measure : bool, default=False
        With ``layout="auto"``: ``False`` uses :func:`rule_layout` alone
        (deterministic); ``True`` times both forms on a random batch (layers
        too small or too dense to win are answered dense without timing; the
        choice then varies with the machine's load).
    repeats : int, default=5
        Interleaved timing samples per form; the fastest of each are compared.
    measure_fn : callable, optional
        ``f(linear, sparse_linear, batch_size, repeats) -> (dense_s,
        sparse_s)``; defaults to :func:`measure_layer`. For testing.

    Returns
    -------
    list of dict
        One per convertible layer: ``name``, ``shape``, ``density``,
        ``dense_s``, ``sparse_s`` (NaN where not timed), ``layout``.
    """
    _check_args(layout, batch_size, repeats)
    measure_fn = measure_layer if measure_fn is None else measure_fn
    rows = []
    for name, lin in _convertible(module).items():
        shape = tuple(int(s) for s in lin.weight.shape)
        numel = lin.weight.numel()
        density = float(torch.count_nonzero(lin.weight)) / max(1, numel)
        dense_s = sparse_s = float("nan")
        if density >= 1.0 or layout == "dense":
            choice = "dense"
        elif layout == "sparse":
            choice = "sparse"
        elif not measure:
            choice = rule_layout(shape, density, batch_size, lin.weight.device)
        elif numel < MIN_SPARSE_NUMEL or density > MAX_SPARSE_DENSITY:
            choice = "dense"
        else:
            dense_s, sparse_s = measure_fn(
                lin, SparseLinear.from_linear(lin), batch_size, repeats
            )
            choice = faster_layout(dense_s, sparse_s, MARGIN)
        rows.append(
            {
                "name": name,
                "shape": shape,
                "density": density,
                "dense_s": float(dense_s),
                "sparse_s": float(sparse_s),
                "layout": choice,
            }
        )
    return rows
