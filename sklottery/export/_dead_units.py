"""Dead-unit removal at export: dead hidden units and conv channels, exactly.

After heavy pruning some hidden units are *dead*: all their outgoing weights
are pruned (nothing they compute reaches the next layer), or all their
incoming weights are (they output the constant ``act(bias)`` whatever the
input). Removing them gives physically smaller dense layers -- fewer rows of
one weight matrix, fewer columns of the next -- which are faster in every
layout, before :func:`~sklottery.export.to_sparse` chooses CSR or dense per
layer.

Only what can be proved exact is removed:

* The dataflow must be known: the module (and every container on the way
  down) is a ``torch.nn.Sequential`` or sklottery's :class:`~sklottery.MLP`
  whose ``forward`` is not overridden; a pair of layers is analysed when only
  known per-unit operations stand between them (elementwise activations,
  dropout, ``BatchNorm`` with running statistics, per-channel ``PReLU``; for
  convolutions also pooling). Any other module, any hook (other than
  sklottery's own rescaling hook) and any shared layer or parameter stops the
  analysis there; a module whose own ``forward`` is custom is left alone.
* A unit whose outgoing weights are all pruned is always removed.
* A unit whose incoming weights are all pruned is removed only when its
  constant output can be folded into the next layer's bias exactly: the ops
  between are elementwise (no pooling), and a next convolution pads with
  something other than zeros or not at all. Otherwise it stays.
* The network's inputs and outputs never change shape; each layer keeps at
  least one unit.

References
----------
S. Han, J. Pool, J. Tran and W. Dally, "Learning both Weights and Connections
for Efficient Neural Networks", NeurIPS 2015 (neurons with no input or output
connections are removed).
"""

from __future__ import annotations

from collections import Counter

import torch
from torch import nn

from ..modules import MLP
from ..pruning.masks import Rescale

__all__ = ["remove_dead_units", "structured_chains"]

#: Ops applied to each unit independently, with no parameters to slice.
ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish,
    nn.Softplus, nn.Softsign, nn.Tanhshrink, nn.Softshrink, nn.Hardshrink,
    nn.LogSigmoid, nn.Threshold, nn.Identity,
    # identity in eval mode, the mode of an export
    nn.Dropout, nn.AlphaDropout, nn.FeatureAlphaDropout, nn.Dropout1d,
    nn.Dropout2d, nn.Dropout3d,
)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
#: Per-channel ops for convolutions that do not keep a channel constant
#: pointwise-provably (padding): a dead channel through them is removed only
#: when its outgoing weights are pruned.
_POOLS = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d,
    nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d, nn.LPPool1d, nn.LPPool2d,
)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)

#: The registries holding a module's own hooks (the ``..._with_kwargs``
#: ones only flag hooks held here).
_HOOK_DICTS = (
    "_forward_pre_hooks",
    "_forward_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def _hooks(module: nn.Module) -> list:
    return [h for attr in _HOOK_DICTS for h in getattr(module, attr, {}).values()]


def _plain(module: nn.Module) -> bool:
    """No hooks except sklottery's rescaling forward hook."""
    return all(
        attr == "_forward_hooks" and isinstance(h, Rescale)
        for attr in _HOOK_DICTS
        for h in getattr(module, attr, {}).values()
    )


def _transparent_children(module: nn.Module) -> list[nn.Module] | None:
    """The modules ``module.forward`` calls in order, if it only chains them."""
    if _hooks(module):
        return None
    if isinstance(module, nn.Sequential) and (
        type(module).forward is nn.Sequential.forward
    ):
        return list(module)
    if isinstance(module, MLP) and type(module).forward is MLP.forward:
        return [module.hidden, module.output]
    return None


def _flatten(module: nn.Module) -> list[nn.Module]:
    children = _transparent_children(module)
    if children is None:
        return [module]
    return [leaf for child in children for leaf in _flatten(child)]


def _weight_layer(m: nn.Module) -> str | None:
    """``"linear"``/``"convNd"`` for a layer whose units can be sliced."""
    if type(m) is nn.Linear:
        return "linear"
    if type(m) in _CONVS and m.groups == 1:
        return type(m).__name__
    return None


def _between_ok(op: nn.Module, family: str) -> str | None:
    """``"fold"`` (per-unit, constant-preserving), ``"keep"`` (per-channel but
    not foldable) or None (unknown: the pair is not analysed)."""
    if _hooks(op):
        return None
    if type(op) in ELEMENTWISE:
        return "fold"
    if type(op) is nn.PReLU:
        return "fold"
    if type(op) in _BATCHNORMS and op.running_mean is not None:
        if family == "linear" and type(op) is not nn.BatchNorm1d:
            return None
        return "fold"
    if family != "linear" and type(op) in _POOLS:
        return "keep"
    return None


def structured_chains(module: nn.Module) -> list[tuple]:
    """The analysable pairs ``(name_a, a, ops, name_b, b, can_fold)`` of ``module``.

    ``a`` and ``b`` are consecutive weight layers of one family in the
    module's known dataflow, ``ops`` the per-unit modules between them.
    Empty when the module's dataflow is not known (see the module docstring).
    """
    if _transparent_children(module) is None:
        return []
    names = {id(m): n for n, m in module.named_modules()}
    counts = Counter(id(m) for _, m in module.named_modules(remove_duplicate=False))
    pcounts = Counter(
        id(p) for _, p in module.named_parameters(remove_duplicate=False)
    )

    def unshared(m):
        return counts[id(m)] == 1 and all(
            pcounts[id(p)] == 1 for p in m.parameters(recurse=False)
        )

    chain = _flatten(module)
    pairs = []
    i = 0
    while i < len(chain):
        a = chain[i]
        family = _weight_layer(a)
        if family is None or not _plain(a) or not unshared(a):
            i += 1
            continue
        ops, fold, j = [], True, i + 1
        while j < len(chain) and _weight_layer(chain[j]) is None:
            kind = _between_ok(chain[j], family)
            if kind is None or not unshared(chain[j]):
                break
            fold = fold and kind == "fold"
            ops.append(chain[j])
            j += 1
        if j < len(chain) and _weight_layer(chain[j]) == family:
            b = chain[j]
            if _plain(b) and unshared(b):
                if family != "linear":
                    pad = b.padding
                    zero_pad = pad == "valid" or (
                        not isinstance(pad, str) and all(p == 0 for p in pad)
                    )
                    fold = fold and (zero_pad or b.padding_mode != "zeros")
                pairs.append((names[id(a)], a, ops, names[id(b)], b, fold))
        i = j if j > i else i + 1
    return pairs


def _rescale_of(module: nn.Module) -> float:
    scale = 1.0
    for h in module._forward_hooks.values():
        if isinstance(h, Rescale):
            scale *= h.scale
    return scale


def _param(t: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(t.detach().clone(), requires_grad=False)


def _slice_out(a: nn.Module, keep: torch.Tensor) -> None:
    a.weight = _param(a.weight[keep])
    if a.bias is not None:
        a.bias = _param(a.bias[keep])
    _set_size(a, "out", int(keep.sum()))


def _slice_in(b: nn.Module, keep: torch.Tensor) -> None:
    b.weight = _param(b.weight[:, keep])
    _set_size(b, "in", int(keep.sum()))


def _set_size(layer: nn.Module, side: str, n: int) -> None:
    """``in_features``/``out_features`` of a Linear, ``*_channels`` of a conv."""
    kind = "features" if isinstance(layer, nn.Linear) else "channels"
    setattr(layer, f"{side}_{kind}", n)


def _slice_op(op: nn.Module, keep: torch.Tensor) -> None:
    if type(op) is nn.PReLU and op.num_parameters > 1:
        op.weight = _param(op.weight[keep])
        op.num_parameters = int(keep.sum())
    elif type(op) in _BATCHNORMS:
        if op.weight is not None:
            op.weight = _param(op.weight[keep])
            op.bias = _param(op.bias[keep])
        op.running_mean = op.running_mean[keep].clone()
        op.running_var = op.running_var[keep].clone()
        op.num_features = int(keep.sum())


def _constants(a: nn.Module, ops: list[nn.Module]) -> torch.Tensor:
    """Per unit of ``a``: what a unit with no incoming weight outputs after ``ops``."""
    w = a.weight
    c = w.shape[0]
    bias = a.bias if a.bias is not None else torch.zeros(c, dtype=w.dtype)
    x = bias.to(w.device).reshape(1, c, *([1] * (w.dim() - 2)))
    for op in ops:
        x = op(x)
    return x.reshape(c)


def _shrink(a, ops, b, can_fold: bool) -> int:
    """Remove the dead units between ``a`` and ``b``; return how many."""
    c = a.weight.shape[0]
    in_dead = ~a.weight.reshape(c, -1).ne(0).any(1)
    out_dead = ~b.weight.transpose(0, 1).reshape(c, -1).ne(0).any(1)
    fold = in_dead & ~out_dead if can_fold else torch.zeros_like(in_dead)
    remove = out_dead | fold
    if bool(remove.all()):  # keep one unit: no zero-width layer
        first = int(out_dead.nonzero()[0]) if bool(out_dead.any()) else 0
        remove[first] = False
        fold[first] = False
    if not bool(remove.any()):
        return 0
    if bool(fold.any()):
        const = _constants(a, ops).to(b.weight.dtype)
        w = b.weight[:, fold]
        if w.dim() > 2:  # conv: a constant channel meets every kernel tap
            w = w.sum(dim=tuple(range(2, w.dim())))
        contrib = (w @ const[fold]) * _rescale_of(b)
        if bool(contrib.ne(0).any()):
            if b.bias is None:
                b.bias = _param(torch.zeros_like(contrib))
            b.bias = _param(b.bias + contrib)
    keep = ~remove
    _slice_out(a, keep)
    for op in ops:
        _slice_op(op, keep)
    _slice_in(b, keep)
    return int(remove.sum())


@torch.no_grad()
def remove_dead_units(module: nn.Module) -> dict[str, int]:
    """Remove dead hidden units and conv channels of ``module`` in place.

    ``module`` must be in eval mode (its dropout an identity, its batch
    normalization using running statistics) with its pruned weights exactly
    zero. Its outputs are unchanged up to float rounding; pairs of layers are
    shrunk until nothing more can be removed (removing a unit can make a unit
    of a neighbour dead).

    Parameters
    ----------
    module : torch.nn.Module

    Returns
    -------
    dict of str to int
        For every layer analysed: how many of its output units (features or
        channels) were removed. Empty when nothing could be analysed.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    >>> with torch.no_grad():
    ...     net[2].weight[:, 0] = 0.0   # unit 0 feeds nothing
    ...     net[0].weight[1] = 0.0      # unit 1 is the constant relu(bias)
    >>> x = torch.randn(5, 4)
    >>> before = net(x)
    >>> remove_dead_units(net)
    {'0': 2}
    >>> net[0].weight.shape, torch.allclose(net(x), before, atol=1e-6)
    (torch.Size([1, 4]), True)
    """
    if module.training:
        raise ValueError(
            "remove_dead_units needs the module in eval mode (call module.eval())"
        )
    pairs = structured_chains(module)
    removed = {name_a: 0 for name_a, *_ in pairs}
    changed = True
    while changed:
        changed = False
        for name_a, a, ops, _, b, can_fold in pairs:
            n = _shrink(a, ops, b, can_fold)
            if n:
                removed[name_a] += n
                changed = True
    return removed
