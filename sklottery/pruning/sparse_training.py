"""Sparse training: which pruned ``nn.Linear`` layers train with survivors only.

While a pruning round trains, chosen ``nn.Linear`` layers are swapped for a
:class:`~sklottery.pruning.sparse_linear.SparseTrainingLinear` holding only
their surviving weights (:func:`to_sparse_training`), and put back, dense,
at the round's end (:func:`~sklottery.pruning.sparse_linear.to_dense`).

Which layers train sparse is decided per layer: with ``mode="auto"`` by
the calibrated rule :func:`rule_training_layout` (shapes, density, batch
size, device and dtype; deterministic, so that a fit with an int seed gives
bit-identical results), with ``mode="timed"`` by a short interleaved timing
of one forward and backward pass of both forms at the round's batch size (a
layer trains sparse only when that is clearly faster; the results then
depend on the machine's load). Layers that are not ``nn.Linear`` or
``nn.Bilinear`` (convolutions, recurrent layers, embeddings, attention)
always train dense with masks.

Differences from dense training with masks: results agree up to float
rounding (the sums run in another order); gradient-norm clipping sees the
survivors' gradients only. Every element-wise optimizer (SGD with momentum
or Nesterov, Adam, AdamW, RMSprop, Adagrad, ...) with or without weight
decay updates the survivors exactly as it would with masks.

:func:`forward_macs` and :func:`train_macs` (:mod:`~sklottery.pruning.macs`)
count what training costs with the layouts used (``train_macs`` of
``rounds_``). The calibrated rule's reading and the timing harness are
shared with the CSR export (:mod:`sklottery.pruning.layouts`). This module
imports torch only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .layouts import (
    MARGIN,
    check_int,
    faster_layout,
    interleaved_minimum,
    rule_layout_for,
)
from .macs import forward_macs, train_macs
from .sparse_linear import (
    DTYPES,
    SparseTrainingBilinear,
    SparseTrainingLinear,
    swap_in,
    swappable_layers,
)

__all__ = [
    "MODES",
    "check_sparse_training",
    "choose_training_layouts",
    "forward_macs",
    "measure_training_step",
    "rule_training_layout",
    "to_sparse_training",
    "train_macs",
]

#: Values of ``mode`` (``sparse_training`` of the estimators and the Pruner):
#: ``"timed"`` is ``"auto"`` deciding by timing instead of the rule.
MODES = ("auto", "timed", True, False)

#: Layers with fewer weights never train sparse with ``mode="auto"``: the
#: kernels' fixed costs dominate (measured: a 100x300 layer at batch 60 is
#: 0.8x dense at 2% density but 1.2x at 20%).
MIN_SPARSE_NUMEL = 1 << 17
#: ... nor layers with a side shorter than this (an output layer of 10 units
#: is slower in CSR at every density).
MIN_SPARSE_SIDE = 64
#: ... nor batches smaller than this.
MIN_SPARSE_BATCH = 16
#: The rule answers sparse at or below this density (measured with one
#: thread, ``benchmarks/bench_sparse_training.py``: a 784-4096-4096-10 epoch
#: at 2% density takes 0.3x the dense CPU time sparse, but 1.6x at 10%).
RULE_DENSITY = 0.05
#: With timing on, layers at or below this density train sparse untimed.
SURE_DENSITY = 0.03
#: Above this density CSR training is never timed (always dense).
MAX_SPARSE_DENSITY = 0.3
#: ... for a Bilinear layer, whose dense product is slow in torch (its twin
#: measured 0.47-0.84x the dense step at 30%, 0.62-0.94x at 40%).
MAX_BILINEAR_DENSITY = 0.6
#: Layers with more weights are timed on a slice of their rows of about
#: this many weights (64 MiB of float32): the timing's copies stay below a
#: round's training peak. Smaller slices misjudge: a 1024-row slice of a
#: 4096x4096 layer at 10% density timed sparse at 0.96x dense, the whole
#: layer at 0.63x (dense products get slower per row as they grow).
MEASURE_NUMEL = 1 << 24
#: The timing stops after its warm-up when one form takes this many times
#: the other's time.
CLEAR_FACTOR = 1.5
# A timed layer trains sparse only if it takes at most MARGIN (0.9) times
# the dense time (sklottery.pruning.layouts' margin, shared with the export).


def check_sparse_training(mode):
    """``mode`` (``"auto"``, ``"timed"``, True or False; a numpy bool becomes
    a bool), else a ValueError."""
    if isinstance(mode, str) and mode in ("auto", "timed"):
        return mode
    if type(mode).__name__ in ("bool", "bool_"):
        return bool(mode)
    raise ValueError(
        f"sparse_training must be 'auto', 'timed', True or False; got {mode!r}"
    )


def rule_training_layout(shape, density: float, batch_size: int, device="cpu") -> str:
    """Calibrated rule: ``"sparse"`` where sparse training is reliably faster.

    Calibrated on a shared 2-core CPU with torch 2.13
    (``benchmarks/bench_sparse_training.py``): sparse at or below
    :data:`RULE_DENSITY` for layers of at least ``2**17`` weights with both
    sides of at least 64 and batches of at least 16. Off the CPU the rule
    answers dense (dense GPU kernels win down to far lower densities; time
    instead, ``mode="timed"``). Conservative: between 5% and 30% density
    timing can find a large layer faster sparse (a 4096x4096 layer at 10%
    timed 0.63x the dense step) where the rule answers dense.

    Parameters
    ----------
    shape : tuple of int
        ``(out_features, in_features)``; for a Bilinear layer its weight's
        ``(out_features, in1_features, in2_features)`` (sparse when the
        weight has at least ``2**17`` entries and ``in1 * in2 >= 64**2``:
        the output side does not matter, torch's dense bilinear product
        being slow -- a forward and backward pass measured 0.14-0.22x the
        dense time at 2% density with 64 and 32 outputs).
    density : float
        Fraction of the weights kept.
    batch_size : int
        Rows per training batch.
    device : str or torch.device, default="cpu"

    Returns
    -------
    {"sparse", "dense"}

    Examples
    --------
    >>> rule_training_layout((4096, 4096), 0.02, 256)
    'sparse'
    >>> rule_training_layout((10, 4096), 0.02, 256)
    'dense'
    >>> rule_training_layout((32, 256, 256), 0.02, 128)
    'sparse'
    """
    if torch.device(device).type != "cpu":
        return "dense"
    shape = tuple(int(s) for s in shape)
    if len(shape) == 3:  # Bilinear: (out, in1, in2); torch's dense form is slow
        narrow = shape[1] * shape[2] < MIN_SPARSE_SIDE**2
    else:
        narrow = min(shape) < MIN_SPARSE_SIDE
    if narrow:
        return "dense"
    return rule_layout_for(
        math.prod(shape),
        density,
        batch_size,
        min_batch=MIN_SPARSE_BATCH,
        tiers=((MIN_SPARSE_NUMEL, RULE_DENSITY),),
    )


def measure_training_step(
    layer: nn.Module, mask: torch.Tensor, batch_size: int, repeats: int = 3
) -> tuple[float, float]:
    """Seconds of one training step, dense and sparse, of an ``nn.Linear`` or
    ``nn.Bilinear`` ``layer`` with ``mask``: forward and backward pass, an
    element-wise update of the weights the step trains (all of them dense,
    the survivors sparse; the least any optimizer does) and, dense, the
    mask multiplied in again.

    Both forms run on copies of the layer (its own parameters and gradients
    are not touched, nor is torch's random generator) and on the same random
    batch, interleaved (dense, sparse, dense, ...) so that load from other
    processes hits both alike; the fastest sample of each is returned (the
    first ones alone when one form takes over :data:`CLEAR_FACTOR` times the
    other's time). A
    layer over :data:`MEASURE_NUMEL` weights is timed on its first output
    rows only (both forms alike: the cost of both grows with the rows), so
    that the timing never holds a second copy of a large layer and its
    sparse structures at once.

    Returns
    -------
    (dense_s, sparse_s) : tuple of float
    """
    weight = layer.weight.detach()
    n_rows = max(1, min(weight.shape[0], MEASURE_NUMEL // max(1, weight[0].numel())))
    weight, mask = weight[:n_rows], mask[:n_rows]
    device = weight.device
    bilinear = isinstance(layer, nn.Bilinear)
    if bilinear:
        sizes: tuple = (layer.in1_features, layer.in2_features, n_rows)
        kind, twin = nn.Bilinear, SparseTrainingBilinear
    else:
        sizes = (layer.in_features, n_rows)
        kind, twin = nn.Linear, SparseTrainingLinear
    dense = torch.nn.utils.skip_init(
        kind, *sizes, bias=layer.bias is not None, device=device, dtype=weight.dtype
    )
    with torch.no_grad():
        dense.weight.copy_(weight).mul_(mask)
        if dense.bias is not None:
            dense.bias.copy_(layer.bias[:n_rows])
    sparse = twin(dense, mask, release=False)
    gen = torch.Generator().manual_seed(0)
    inputs = [
        torch.randn(batch_size, n, generator=gen, dtype=weight.dtype)
        .to(device)
        .requires_grad_()
        for n in sizes[:-1]
    ]
    grad = torch.randn(batch_size, n_rows, generator=gen, dtype=weight.dtype).to(
        device
    )

    def step(module, mask=None):
        params = list(module.parameters())

        def run():
            module(*inputs).backward(grad)
            # what training does per step besides the products: the
            # optimizer's update touches every weight it holds (all of them
            # dense, the survivors sparse), fresh gradients come next step,
            # and a dense layer's mask is multiplied in again
            with torch.no_grad():
                for p in params:
                    p.add_(p.grad, alpha=-1e-12)
                    p.grad = None
                if mask is not None:
                    module.weight.mul_(mask)

        return run

    # the warm-up is timed: where one form takes over CLEAR_FACTOR times the
    # other, repeats cannot change the decision (they cost seconds per round
    # on large layers); a sample is one step
    return interleaved_minimum(
        (step(dense, mask), step(sparse)),
        device,
        repeats,
        clear_factor=CLEAR_FACTOR,
    )


def _decide(mode, measure, lin, mask, nnz, batch_size, repeats, measure_fn, won):
    """(layout, reason, dense_s, sparse_s) of one swappable masked layer;
    ``won``: the density at which it last measured faster sparse, or None."""
    numel = mask.numel()
    density = nnz / max(1, numel)
    shape = tuple(lin.weight.shape)
    device = lin.weight.device
    nan = math.nan
    if nnz == numel:
        return "dense", "nothing pruned", nan, nan
    if nnz == 0:
        return "dense", "nothing kept", nan, nan
    if mode is True:
        return "sparse", "sparse_training=True", nan, nan
    if not measure:  # the deterministic rule ("auto")
        layout = rule_training_layout(shape, density, batch_size, device)
        return layout, "rule", nan, nan
    on_cpu = device.type == "cpu"
    too_small = rule_training_layout(shape, 0.0, batch_size, "cpu") == "dense"
    ceiling = (
        MAX_BILINEAR_DENSITY if isinstance(lin, nn.Bilinear) else MAX_SPARSE_DENSITY
    )
    if density > ceiling or (on_cpu and too_small):
        return "dense", "rule", nan, nan
    if on_cpu and density <= SURE_DENSITY:
        return "sparse", "rule", nan, nan
    if won is not None and density <= won:
        # a sparse product only gets cheaper against the dense one as the
        # layer gets sparser
        return "sparse", "sparse at a higher density", nan, nan
    dense_s, sparse_s = measure_fn(lin, mask.to(device), batch_size, repeats)
    layout = faster_layout(dense_s, sparse_s, MARGIN)
    return layout, "measured", float(dense_s), float(sparse_s)


def choose_training_layouts(
    module: nn.Module,
    masks: dict[str, torch.Tensor],
    *,
    mode="auto",
    batch_size: int,
    measure: bool | None = None,
    repeats: int = 3,
    measure_fn=None,
    sparse_at: dict | None = None,
) -> list[dict]:
    """Decide, per masked Linear layer, whether it trains sparse or dense.

    Parameters
    ----------
    module : torch.nn.Module
        The network (dense: ordinary ``nn.Linear`` layers).
    masks : dict of str to bool tensor
        Keyed like ``module.named_parameters()`` (``"0.weight"``); True =
        kept. Linear layers whose weight has no mask stay dense.
    mode : {"auto", "timed", True, False}, default="auto"
        ``True`` trains every eligible masked Linear sparse (all but those
        with nothing pruned or nothing kept, tied weights, an overridden
        ``forward`` or a dtype other than float32/float64), ``False`` none,
        ``"auto"`` those :func:`rule_training_layout` finds faster
        (deterministic), ``"timed"`` those a timing finds faster.
    batch_size : int
        Rows per training batch.
    measure : bool, optional
        Whether ``"auto"``/``"timed"`` time: by default only ``"timed"``
        does. Timing covers the layers where the calibrated rule is not sure
        (density between :data:`SURE_DENSITY` and :data:`MAX_SPARSE_DENSITY`
        on a layer large enough, every layer off the CPU); without it
        :func:`rule_training_layout` decides alone.
    repeats : int, default=3
        Interleaved timing samples per form.
    measure_fn : callable, optional
        ``f(linear, mask, batch_size, repeats) -> (dense_s, sparse_s)``;
        defaults to :func:`measure_training_step`.
    sparse_at : dict, optional
        ``{param: density}``: the densities at which layers were measured
        faster sparse at this batch size (a pruner keeps them from round to
        round); at that density or below they train sparse without a new
        timing.

    Returns
    -------
    list of dict
        One per masked Linear layer: ``name`` (module name), ``param``
        (the mask's key), ``shape``, ``nnz``, ``density``, ``dense_s`` and
        ``sparse_s`` (NaN where not timed), ``layout`` ("sparse"/"dense")
        and ``reason``.
    """
    mode = check_sparse_training(mode)
    check_int(batch_size, "batch_size")
    check_int(repeats, "repeats")
    if not isinstance(masks, dict):
        raise TypeError(f"masks must be a dict; got {type(masks).__name__}")
    measure_fn = measure_training_step if measure_fn is None else measure_fn
    measure = mode == "timed" if measure is None else bool(measure)
    candidates = swappable_layers(module)
    rows = []
    for name, lin in module.named_modules():
        if not isinstance(lin, (nn.Linear, nn.Bilinear)):
            continue
        param = f"{name}.weight" if name else "weight"
        if param not in masks:
            continue
        mask = torch.as_tensor(masks[param])
        if tuple(mask.shape) != tuple(lin.weight.shape):
            raise ValueError(
                f"masks[{param!r}] has shape {tuple(mask.shape)}; the weight has "
                f"shape {tuple(lin.weight.shape)}"
            )
        nnz = int(torch.count_nonzero(mask))
        if mode is False:
            decision = ("dense", "sparse_training=False", math.nan, math.nan)
        elif name not in candidates:
            decision = ("dense", "not swappable", math.nan, math.nan)
        elif lin.weight.dtype not in DTYPES:
            decision = ("dense", f"dtype {lin.weight.dtype}", math.nan, math.nan)
        else:
            won = (sparse_at or {}).get(param)
            decision = _decide(
                mode, measure, lin, mask, nnz, batch_size, repeats, measure_fn, won
            )
        layout, reason, dense_s, sparse_s = decision
        rows.append(
            {
                "name": name,
                "param": param,
                "shape": tuple(int(s) for s in lin.weight.shape),
                "nnz": nnz,
                # multiply-adds per position of one product, trained sparse:
                # a Bilinear twin also forms the outer product of its inputs
                "sparse_macs": nnz + (
                    lin.in1_features * lin.in2_features
                    if isinstance(lin, nn.Bilinear)
                    else 0
                ),
                "density": nnz / max(1, mask.numel()),
                "dense_s": dense_s,
                "sparse_s": sparse_s,
                "layout": layout,
                "reason": reason,
            }
        )
    return rows


def to_sparse_training(
    module: nn.Module, masks: dict[str, torch.Tensor], **options
) -> list[dict]:
    """Swap masked ``nn.Linear`` layers for their sparse-training twins, in place.

    Call it before building the optimizer of a round (the optimizer must see
    the swapped parameters) and
    :func:`~sklottery.pruning.sparse_linear.to_dense` after the round. The
    surviving weights keep their current values; pruned ones are dropped
    (whatever their value).

    Parameters
    ----------
    module : torch.nn.Module
    masks : dict of str to bool tensor
        Keyed like ``module.named_parameters()``; True = kept.
    **options
        ``mode``, ``batch_size`` (required), ``measure``, ``repeats``,
        ``measure_fn``, ``sparse_at``: keyword arguments of
        :func:`choose_training_layouts`, with its defaults.

    Returns
    -------
    list of dict
        The decisions (:func:`choose_training_layouts`); the layers with
        ``layout == "sparse"`` are swapped.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklottery.pruning.sparse_linear import to_dense
    >>> net = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> masks = {"0.weight": torch.arange(32).reshape(4, 8) % 2 == 0}
    >>> rows = to_sparse_training(net, masks, mode=True, batch_size=32)
    >>> type(net[0]).__name__, rows[0]["layout"]
    ('SparseTrainingLinear', 'sparse')
    >>> to_dense(net)
    ['0']
    >>> type(net[0]).__name__
    'Linear'
    """
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module; got {type(module).__name__}"
        )
    rows = choose_training_layouts(module, masks, **options)
    swap_in(module, masks, [r["name"] for r in rows if r["layout"] == "sparse"])
    return rows
