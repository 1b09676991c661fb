"""Which tensors of a module are prunable, found by what the layers are.

Layers are recognised with ``isinstance`` against torch's layer families, so
subclasses of a supported layer are found too (the Keras pruner matched class
names and missed them). Biases and normalization parameters are never
prunable.

A weight behind a reparametrization is pruned through the parameter the
optimizer really updates, when zeros there are exact zeros of the weight the
layer computes with:

* ``torch.nn.utils.parametrizations.spectral_norm`` (``W / sigma``): its
  ``parametrizations.weight.original``; the old-style
  ``torch.nn.utils.spectral_norm``: its ``weight_orig``;
* ``torch.nn.utils.prune`` (``W * mask``): its ``weight_orig``.

Weight normalization (``W = g * v / ||v||``, both the parametrization and the
old ``torch.nn.utils.weight_norm``) and any other parametrization are listed
but *blocked* (:attr:`PrunableTensor.blocked`): pruning a whole row of ``v``
makes its norm 0 and the row's weights NaN, and other parametrizations do not
keep zeros at all. :func:`~sklottery.pruning.scope.make_plan` refuses to prune
a blocked tensor unless it is excluded.

Lazy modules (``nn.LazyLinear``, ``nn.LazyConv2d``, ...) have no shapes until
a first forward pass: :func:`find_prunable` refuses them with a clear error,
and :func:`has_uninitialized_params` tells a training loop to run one batch
first.

A module compiled with ``torch.compile`` (skorch's ``compile=True``) is an
``OptimizedModule`` whose tensors are named ``_orig_mod.<name>``: everything
in :mod:`sklottery.pruning` that names tensors sees the module it wraps
instead (:func:`unwrap_compiled`), so masks, snapshots and tickets carry the
uncompiled module's names and are interchangeable between compiled and
uncompiled fits of the same network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = [
    "PrunableTensor",
    "find_prunable",
    "has_uninitialized_params",
    "require_prunable",
    "uninitialized_params",
    "unwrap_compiled",
]

#: Layer families whose tensors are pruned by default. Values are the kind
#: reported in tables.
_WEIGHT_LAYERS: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.Linear, "linear"),
    (nn.Bilinear, "bilinear"),
    (nn.modules.conv._ConvNd, "conv"),
    (nn.Embedding, "embedding"),
    (nn.EmbeddingBag, "embedding"),
)

_WEIGHT_NORM_REASON = (
    "it is weight-normalized (W = g * v / ||v||): pruning a whole row of v "
    "makes its norm 0 and that row's weights NaN"
)


@dataclass(frozen=True)
class PrunableTensor:
    """A prunable parameter: its full name, owning module name and layer kind.

    Attributes
    ----------
    name : str
        The parameter that is masked, as in ``module.named_parameters()``
        (e.g. ``"fc.weight"``, or ``"fc.parametrizations.weight.original"``
        for a spectral-normalized layer).
    module_name : str
        The layer owning it.
    kind : str
        ``"linear"``, ``"conv"``, ``"rnn"``, ...
    shape : tuple of int
    via : str
        The reparametrization pruned through: ``""`` (none),
        ``"spectral_norm"``, ``"torch_prune"`` or ``"weight_norm"``/the
        parametrization's class name for blocked tensors.
    blocked : str
        Why the tensor cannot be pruned exactly (``""`` if it can); such a
        tensor must be excluded.
    effective_name : str
        The full name of the tensor the layer computes with (``"fc.weight"``);
        equal to ``name`` without a reparametrization. Layer and parameter
        names given by a user may use either.
    """

    name: str
    module_name: str
    kind: str
    shape: tuple[int, ...]
    via: str = ""
    blocked: str = ""
    effective_name: str = ""

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


def unwrap_compiled(module):
    """The module a ``torch.compile`` wrapper (``OptimizedModule``) compiles,
    or that a data-parallel wrapper (``DistributedDataParallel``, as
    ``accelerate`` prepares a module in several processes, or
    ``DataParallel``) holds; ``module`` itself otherwise: the one whose
    tensor names sklottery uses.

    The wrapper and the module share their parameters and buffers, so values
    written into one are the other's; only the names differ (the wrapper's
    carry the ``_orig_mod.`` or ``module.`` prefix). Nested wrappers are all
    removed.
    """
    parallel = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    while True:
        if type(module).__name__ == "OptimizedModule" and isinstance(
            getattr(module, "_orig_mod", None), nn.Module
        ):
            module = module._orig_mod
        elif isinstance(module, parallel):
            module = module.module
        else:
            return module


def uninitialized_params(module: nn.Module) -> list[str]:
    """Names of the parameters and buffers of lazy modules not yet materialized."""
    module = unwrap_compiled(module)
    out = [
        n
        for n, p in module.named_parameters(remove_duplicate=False)
        if nn.parameter.is_lazy(p)
    ]
    out += [
        n
        for n, b in module.named_buffers(remove_duplicate=False)
        if nn.parameter.is_lazy(b)
    ]
    return out


def has_uninitialized_params(module: nn.Module) -> bool:
    """True if ``module`` holds lazy parameters or buffers (``nn.LazyLinear``,
    ``nn.LazyConv2d``, ``nn.LazyBatchNorm1d``, ...) not yet shaped by a first
    forward pass.

    A training loop calls ``module(first_batch)`` (under ``torch.no_grad()``)
    before pruning when this is True.
    """
    return bool(uninitialized_params(module))


def _layer_tensors(module: nn.Module) -> list[tuple[str, str]]:
    """(local parameter name, kind) pairs of one layer, without recursion."""
    for cls, kind in _WEIGHT_LAYERS:
        if isinstance(module, cls):
            return [("weight", kind)]
    if isinstance(module, nn.RNNBase):
        return [
            (name, "rnn")
            for name, _ in module.named_parameters(recurse=False)
            if name.startswith(("weight_ih_l", "weight_hh_l"))
        ] + [
            (name, "rnn")
            for name in getattr(module, "parametrizations", {})
            if name.startswith(("weight_ih_l", "weight_hh_l"))
        ]
    if isinstance(module, nn.MultiheadAttention):
        # ``out_proj`` is a Linear subclass and is found as its own layer.
        return [
            (name, "attention")
            for name in (
                "in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"
            )
            if getattr(module, name, None) is not None
        ]
    return []


def _resolve(sub: nn.Module, module_name: str, local: str):
    """``(parameter local name, via, blocked)`` for tensor ``local`` of ``sub``."""
    from torch.nn.utils.prune import BasePruningMethod
    from torch.nn.utils.spectral_norm import SpectralNorm
    from torch.nn.utils.weight_norm import WeightNorm

    if parametrize.is_parametrized(sub, local):
        plist = sub.parametrizations[local]
        kinds = [type(p).__name__ for p in plist]
        if kinds == ["_SpectralNorm"]:
            return f"parametrizations.{local}.original", "spectral_norm", ""
        if kinds == ["_WeightNorm"]:
            return (
                f"parametrizations.{local}.original1",
                "weight_norm",
                _WEIGHT_NORM_REASON,
            )
        with torch.no_grad():
            shape = tuple(getattr(sub, local).shape)
        originals = [
            n for n, p in plist.named_parameters(recurse=False)
            if n.startswith("original") and tuple(p.shape) == shape
        ]
        label = "+".join(kinds)
        reason = (
            f"it has the parametrization {label}, which does not keep pruned "
            "zeros exact in the weight it computes"
        )
        if not originals:
            full = f"{module_name}.{local}" if module_name else local
            raise ValueError(
                f"cannot prune {full!r}: {reason}, and it has no underlying "
                "parameter of the weight's shape; remove the parametrization "
                "(torch.nn.utils.parametrize.remove_parametrizations) first"
            )
        return f"parametrizations.{local}.{originals[0]}", label, reason
    for hook in sub._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm) and hook.name == local:
            return f"{local}_v", "weight_norm", _WEIGHT_NORM_REASON
        if isinstance(hook, SpectralNorm) and hook.name == local:
            return f"{local}_orig", "spectral_norm", ""
        if (
            isinstance(hook, BasePruningMethod)
            and getattr(hook, "_tensor_name", None) == local
        ):
            return f"{local}_orig", "torch_prune", ""
    return local, "", ""


def find_prunable(module: nn.Module) -> list[PrunableTensor]:
    """List the prunable tensors of ``module`` in registration order.

    The last entry is the output layer (the last prunable layer registered).
    Parameters shared between layers are listed once.

    Raises
    ------
    ValueError
        If the module has uninitialized lazy parameters (run one forward pass
        first), or a parametrization with no parameter to prune.
    """
    module = unwrap_compiled(module)  # names without torch.compile's prefix
    lazy = uninitialized_params(module)
    if lazy:
        raise ValueError(
            f"{type(module).__name__} has uninitialized (lazy) parameters "
            f"{lazy}: lazy modules such as LazyLinear must be initialized by a "
            "first forward pass (module(X[:1]) under torch.no_grad()) before "
            "their weights can be pruned"
        )
    found: list[PrunableTensor] = []
    seen: set[int] = set()
    for module_name, sub in module.named_modules():
        params = dict(sub.named_parameters())
        for local, kind in _layer_tensors(sub):
            if not parametrize.is_parametrized(sub, local) and (
                getattr(sub, local, None) is None
            ):
                continue
            pname, via, blocked = _resolve(sub, module_name, local)
            param = params.get(pname)
            if param is None or not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            prefix = f"{module_name}." if module_name else ""
            found.append(
                PrunableTensor(
                    prefix + pname,
                    module_name,
                    kind,
                    tuple(param.shape),
                    via=via,
                    blocked=blocked,
                    effective_name=prefix + local,
                )
            )
    return found


def require_prunable(module: nn.Module) -> list[PrunableTensor]:
    """:func:`find_prunable`, or a ``ValueError`` saying which layers are
    prunable when ``module`` has none."""
    module = unwrap_compiled(module)
    targets = find_prunable(module)
    if not targets:
        raise ValueError(
            f"{type(module).__name__} has no prunable tensors: sklottery prunes "
            "the weights of Linear, Bilinear, Conv*, ConvTranspose*, "
            "RNN/LSTM/GRU, Embedding and MultiheadAttention layers"
        )
    return targets
