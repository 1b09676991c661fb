"""The one place where a module's tensors are changed: masks and rewinds.

Every write into a module's parameters and buffers in sklottery goes through
a function here; the rest of :mod:`sklottery.pruning` is pure (tensors in,
new tensors out). Who calls it, by what it does to a module:

* pruning: :mod:`~sklottery.pruning.pruner` (apply, rewind, rescaling hooks),
  :mod:`~sklottery.pruning.rewind` (:func:`reinitialize` of a copy, for
  ``"reinit"``), :mod:`~sklottery.pruning.gradients` (:func:`zero_pruned`
  while SNIP and GraSP score), :mod:`~sklottery.pruning.synflow`
  (:func:`take_absolute` and :func:`load_values` on its float64 copy),
  :mod:`~sklottery.pruning.edge_popup` (:func:`load_values` of the frozen
  weights, :func:`apply_masks` on unwrapping), the sparse-training swaps
  (:func:`set_member`, :func:`set_storage`);
* :class:`sklottery.training.ApplyMasks` (:class:`DeviceMasks`, after every
  optimizer step); lottery (:func:`load_values`, :func:`load_survivors`);
  export (:func:`apply_masks`, :func:`set_member`, :class:`Rescale`);
  analysis and tickets (:func:`load_values`). :func:`snapshot`,
  :func:`survivors` and :class:`MaskedPoint` only read.

Masks are plain boolean tensors kept beside the parameters (True = kept) and
applied in place, after every optimizer step, with ``torch.mul_``. No forward
hooks and no reparametrization: ``state_dict`` keys stay the module's own,
``deepcopy`` and pickling work, and a masked step costs almost nothing more
than a dense one (unlike ``torch.nn.utils.prune``).

Each function given a ``torch.compile`` wrapper works on the module it
compiles (:func:`~sklottery.pruning.targets.unwrap_compiled`): the names are
the uncompiled module's, the tensors the very same.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager

import torch
from torch import nn

from .rng import seeded
from .swap import sparse_training_layers
from .targets import unwrap_compiled
from .tensors import masked_values

__all__ = [
    "RESCALE_KINDS",
    "DeviceMasks",
    "MaskedPoint",
    "Rescale",
    "apply_masks",
    "load_values",
    "load_survivors",
    "masked_values",
    "reinitialize",
    "set_member",
    "load_slices",
    "set_rescale",
    "set_storage",
    "set_tensor",
    "sliced",
    "snapshot",
    "survivors",
    "take_absolute",
    "zero_pruned",
]

#: Layer kinds whose output can be rescaled (their output is linear in the
#: weight plus an optional bias).
RESCALE_KINDS = ("linear", "bilinear", "conv", "embedding")


def _params(module: nn.Module) -> dict[str, torch.Tensor]:
    module = unwrap_compiled(module)
    return dict(module.named_parameters(remove_duplicate=False))


@torch.no_grad()
def apply_masks(module: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Set every pruned weight of ``module`` to exactly 0.0, in place."""
    params = _params(module)
    for name, mask in masks.items():
        p = params[name]
        # multiplied by the bool mask itself: a float copy of the mask would
        # be a transient the size of the weight
        p.mul_(mask.to(p.device))


@torch.no_grad()
def load_values(
    module: nn.Module,
    values: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor] | None = None,
    *,
    share: bool = False,
) -> None:
    """Copy ``values`` (parameters and buffers by name) into ``module`` in place.

    Parameter objects are kept, so references held elsewhere stay valid. With
    ``masks`` the pruned weights are zeroed afterwards. With ``share`` the
    parameters hold the given tensors themselves (moved to their device and
    dtype only where they differ) instead of copies, and their own storage is
    freed: for values nothing else will change, or a module that waits unused
    while its values live elsewhere.
    """
    module = unwrap_compiled(module)
    params = dict(module.named_parameters(remove_duplicate=False))
    state = dict(params)
    state.update(module.named_buffers(remove_duplicate=False))
    unknown = set(values) - set(state)
    if unknown:
        raise KeyError(f"values for unknown tensors: {sorted(unknown)}")
    for name, value in values.items():
        target = state[name]
        if share and name in params:
            target.data = value.detach().to(device=target.device, dtype=target.dtype)
        else:
            target.copy_(value)
    if masks is not None:
        apply_masks(module, masks)


@contextmanager
def zero_pruned(module: nn.Module, masks: dict[str, torch.Tensor]):
    """The module with the weights ``masks`` prunes set to 0.0 for the
    ``with`` block only; yields its parameters by name. On exit the pruned
    weights get their values back exactly (the kept ones are never written),
    so a score can be taken on the masked network without changing it."""
    module = unwrap_compiled(module)
    params = dict(module.named_parameters())
    pruned = {n: m for n, m in masks.items() if not bool(m.all())}
    saved = snapshot(module, list(pruned))
    apply_masks(module, pruned)
    try:
        yield params
    finally:
        load_values(module, saved)


@torch.no_grad()
def take_absolute(module: nn.Module) -> None:
    """Replace every parameter and floating buffer by its absolute value, in
    place (SynFlow's linearized copy of a network)."""
    module = unwrap_compiled(module)
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            t.abs_()


@torch.no_grad()
def reinitialize(module: nn.Module, seed: int) -> None:
    """Re-initialize ``module`` in place with each submodule's own
    ``reset_parameters`` (``_reset_parameters`` for MultiheadAttention) under
    torch seed ``seed``; the caller's random streams (CPU, and every CUDA
    device the module lives on) are left as they were."""
    module = unwrap_compiled(module)
    cuda = sorted(
        {t.device.index or 0 for t in module.parameters() if t.device.type == "cuda"}
    )
    with seeded(seed, devices=cuda):
        for sub in module.modules():
            reset = getattr(sub, "reset_parameters", None)
            if reset is None:
                reset = getattr(sub, "_reset_parameters", None)
            if callable(reset):
                reset()


@torch.no_grad()
def snapshot(module: nn.Module, names=None) -> dict[str, torch.Tensor]:
    """Detached copies of the module's parameters and buffers (optionally some)."""
    module = unwrap_compiled(module)
    state = dict(module.named_parameters())
    state.update(module.named_buffers())
    if names is not None:
        state = {n: state[n] for n in names}
    return {n: t.detach().clone() for n, t in state.items()}


class MaskedPoint(Mapping):
    """``{name: point[name] * masks[name]}`` for the names of ``masks``, each
    product made when it is read (and not kept), so a reader that takes one
    tensor at a time never holds a masked copy of every weight."""

    def __init__(self, point: dict, masks: dict):
        self.point = point
        self.masks = masks

    def __getitem__(self, name):
        return self.point[name].detach() * self.masks[name]

    def __iter__(self):
        return iter(self.masks)

    def __len__(self):
        return len(self.masks)


@torch.no_grad()
def survivors(module: nn.Module, masks: dict[str, torch.Tensor]) -> dict:
    """Copies of the module's parameters and buffers, each masked tensor as
    its surviving values only (1-d, in row-major order): what
    :func:`load_survivors` puts back, at a fraction of a dense copy's memory."""
    module = unwrap_compiled(module)
    state = dict(module.named_parameters())
    state.update(module.named_buffers())
    return {
        n: masked_values(t, masks[n]) if n in masks else t.detach().clone()
        for n, t in state.items()
    }


@torch.no_grad()
def load_survivors(module: nn.Module, values: dict, masks: dict) -> None:
    """Put :func:`survivors` ``values`` back in place (pruned weights 0.0)."""
    module = unwrap_compiled(module)
    state = dict(module.named_parameters())
    state.update(module.named_buffers())
    for name, value in values.items():
        target = state[name]
        if name in masks:
            target.zero_()
            target.masked_scatter_(masks[name].to(target.device), value)
        else:
            target.copy_(value)


class Rescale:
    """Forward hook: ``out -> s * (out - b) + b`` (``s * out`` without bias).

    This is the output the layer would give with its weight multiplied by
    ``s``, so the stored weights are never rewritten. A module-level class, so
    a hooked module still pickles and deep-copies.
    """

    def __init__(self, scale: float, kind: str):
        self.scale = float(scale)
        self.kind = kind

    def __call__(self, module, args, output):
        bias = getattr(module, "bias", None)
        if not isinstance(bias, torch.Tensor):
            return output * self.scale
        if self.kind == "conv":
            # channel dim: before the spatial dims (batched or not)
            dim = output.dim() - len(module.kernel_size) - 1
        else:
            dim = output.dim() - 1
        shape = [1] * output.dim()
        shape[dim] = -1
        b = bias.reshape(shape)
        return self.scale * (output - b) + b


#: The 0.1 name, kept so that pickles of hooked modules still load.
_Rescale = Rescale


def set_member(module: nn.Module, name: str, value) -> None:
    """Put ``value`` (a submodule or a parameter) in place of ``module``'s
    member at the dotted ``name`` (``"0.weight"``, ``"hidden.1"``; not the
    root), in place: how layers are swapped into and out of a module."""
    module = unwrap_compiled(module)
    parent_name, _, child = name.rpartition(".")
    setattr(module.get_submodule(parent_name), child, value)


@torch.no_grad()
def set_storage(param: torch.Tensor, value: torch.Tensor, requires_grad=None) -> None:
    """Make ``param`` (the same object) hold ``value`` itself, in place: no
    copy, and ``value`` may have another shape (an empty tensor frees the
    storage of a weight that waits unused); optionally set ``requires_grad``."""
    param.data = value
    if requires_grad is not None:
        param.requires_grad_(requires_grad)


def sliced(tensor: torch.Tensor, keep: Mapping[int, torch.Tensor]) -> torch.Tensor:
    """A copy of ``tensor`` with only the indices ``keep[dim]`` along each
    dimension given (reads only)."""
    out = tensor.detach()
    for dim, index in sorted(keep.items()):
        out = out.index_select(dim, index.to(out.device))
    return out.clone() if out is tensor else out


@torch.no_grad()
def load_slices(target: torch.Tensor, small: torch.Tensor, keep) -> None:
    """Write ``small`` into the slices ``keep[dim]`` of ``target``, in place
    (the inverse of :func:`sliced`; the other entries are left as they are):
    how a round trained on a physically smaller copy returns its weights."""
    dims = sorted(keep)
    if not dims:
        target.copy_(small)
        return
    dim, rest = dims[0], {d: keep[d] for d in dims[1:]}
    index = keep[dim].to(target.device)
    inner = target.index_select(dim, index)
    load_slices(inner, small.to(target.dtype), rest)
    target.index_copy_(dim, index, inner)


def set_tensor(module: nn.Module, name: str, value: torch.Tensor) -> None:
    """Make ``module``'s parameter or buffer ``name`` hold ``value`` (another
    shape allowed): the parameter object is kept (:func:`set_storage`), a
    buffer is replaced."""
    parent_name, _, local = name.rpartition(".")
    owner = module.get_submodule(parent_name)
    if local in owner._parameters and owner._parameters[local] is not None:
        set_storage(owner._parameters[local], value)
    else:
        owner._buffers[local] = value


def set_rescale(
    module: nn.Module, targets, masks: dict[str, torch.Tensor], handles=None
):
    """(Re)register forward hooks scaling each pruned layer by ``total / kept``.

    Dynamic weight rescaling as in the Keras pruner, done in the forward
    computation: the layer's weight contribution is multiplied by the ratio
    of its tensor's size to its surviving weights, once -- the stored weights
    are not touched (the Keras pruner rewrote them every epoch, compounding
    the factor). ``targets`` are the :class:`PrunableTensor` entries of the
    masked tensors; their kinds must be in :data:`RESCALE_KINDS`.

    Returns the dict of hook handles (by module name); pass it back to
    replace the hooks, or call ``.remove()`` on its values to undo.
    """
    module = unwrap_compiled(module)
    for h in (handles or {}).values():
        h.remove()
    handles = {}
    for t in targets:
        if t.name not in masks:
            continue
        kept = int(torch.count_nonzero(masks[t.name]))
        if kept in (0, t.numel):
            continue
        if t.kind not in RESCALE_KINDS:
            raise ValueError(
                f"rescale=True supports layers of kind {list(RESCALE_KINDS)}; "
                f"{t.name!r} is a {t.kind!r} tensor (exclude it, or use rescale=False)"
            )
        sub = module.get_submodule(t.module_name)
        handles[t.module_name] = sub.register_forward_hook(
            Rescale(t.numel / kept, t.kind)
        )
    return handles


#: Tensors with more elements than this are masked with their boolean mask
#: (1 byte per weight) instead of a float copy (4 bytes per weight): a float
#: multiplier is ~7x faster to apply, which matters for small layers, but for
#: large ones the optimizer step dominates and the copy would add a whole
#: extra set of weights to the peak memory of a fit.
FLOAT_MASK_MAX_NUMEL = 1 << 20


class DeviceMasks:
    """Masks as multipliers on the parameters' device, made once: float for
    small tensors (fastest), bool for large ones (least memory).

    Layers swapped for sparse training
    (:class:`~sklottery.pruning.sparse_linear.SparseTrainingLinear`) hold
    their survivors only and need no mask: their masks are skipped.
    """

    def __init__(self, module: nn.Module, masks: dict[str, torch.Tensor]):
        module = unwrap_compiled(module)
        params = _params(module)
        swapped = tuple(f"{n}." for n in sparse_training_layers(module))
        masks = {n: m for n, m in masks.items() if not n.startswith(swapped or ("\0",))}
        self.pairs = [
            (
                params[n],
                m.to(device=params[n].device)
                if m.numel() > FLOAT_MASK_MAX_NUMEL
                else m.to(device=params[n].device, dtype=params[n].dtype),
            )
            for n, m in masks.items()
            if not bool(m.all())
        ]

    @torch.no_grad()
    def apply(self) -> None:
        for p, m in self.pairs:
            p.mul_(m)
