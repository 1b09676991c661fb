"""Argument checking of :class:`~sklottery.Pruner`: what its constructor and
:meth:`~sklottery.Pruner.set_masks` accept, each error naming the parameter.

Pure: the functions read the module and the arguments and return checked
values (a strategy's score function, masks on the parameters' devices, a
generator); none changes a module.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .at_init import AT_INIT_ONLY, init_only_score
from .masks import RESCALE_KINDS
from .patterns import pattern_hits
from .strategies import resolve_strategy
from .targets import unwrap_compiled

__all__ = [
    "all_kept",
    "check_keep_trained",
    "check_masks",
    "check_module",
    "check_rescale",
    "check_rewind_point",
    "make_generator",
    "resolve_score",
]


def check_module(module) -> nn.Module:
    """``module`` if it is a ``torch.nn.Module`` (the module it compiles if
    it is a ``torch.compile`` wrapper), else a TypeError."""
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module; got {type(module).__name__}"
        )
    return unwrap_compiled(module)


def check_keep_trained(patterns, module: nn.Module) -> list[str]:
    """The parameter and buffer names of ``module`` that ``keep_trained``
    (names or patterns, :mod:`sklottery.pruning.patterns`) matches; a name is
    matched with its module's too (``"classifier"`` is ``"classifier.*"``)."""
    if patterns is None:
        return []
    names = [n for n, _ in module.named_parameters()]
    names += [n for n, _ in module.named_buffers()]
    candidates = [(n, (n, n.rpartition(".")[0])) for n in names]
    return pattern_hits(
        patterns, candidates, "keep_trained", known="parameter or buffer name"
    )


def resolve_score(strategy, scope, granularity="weight"):
    """``(score_fn, scope)`` for ``strategy``: its score function and the
    scope it implies (``"smallest_weights_global"`` ranks globally), or
    ``scope`` itself. GraSP and SynFlow get a score function that refuses
    trained weights (they prune at initialization only). A structured
    ``granularity`` also takes the unit criteria
    (:data:`~sklottery.pruning.units.UNIT_CRITERIA`; ``"bn_scale"`` reads
    no weights: its function is never called)."""
    from .units import UNIT_CRITERIA

    if granularity != "weight" and isinstance(strategy, str) and (
        strategy in UNIT_CRITERIA
    ):
        return UNIT_CRITERIA[strategy] or UNIT_CRITERIA["l1_norm"], scope
    if isinstance(strategy, str) and strategy in AT_INIT_ONLY:
        score_fn, forced_scope = init_only_score(strategy), None
    else:
        score_fn, forced_scope = resolve_strategy(strategy)
    if forced_scope is None:
        return score_fn, scope
    if scope not in ("layer", forced_scope):
        raise ValueError(
            f"strategy={strategy!r} implies scope={forced_scope!r}; "
            f"it cannot be combined with scope={scope!r}"
        )
    return score_fn, forced_scope


def check_rescale(rescale, plan, targets, *, compiled: bool = False) -> bool:
    """``rescale`` as a bool; with True, every pruned tensor's kind must be
    one of :data:`~sklottery.pruning.masks.RESCALE_KINDS`, and the module
    must not be compiled (``compiled``): rescaling is done by forward hooks,
    re-registered as the masks change, which a ``torch.compile`` graph
    traced before does not run (PyTorch issues #111966, #117265)."""
    if not isinstance(rescale, bool):
        raise TypeError(f"rescale must be True or False; got {rescale!r}")
    if rescale and compiled:
        raise ValueError(
            "rescale=True cannot be combined with a compiled module "
            "(torch.compile, skorch's compile=True): rescaling is done by "
            "forward hooks, which a compiled graph does not run once traced; "
            "use rescale=False or compile=False"
        )
    if rescale:
        pruned = {n for names, _ in plan for n in names}
        bad = [t.name for t in targets if t.name in pruned
               and t.kind not in RESCALE_KINDS]
        if bad:
            raise ValueError(
                f"rescale=True supports layers of kind {list(RESCALE_KINDS)}; "
                f"{bad} are not (exclude them, or use rescale=False)"
            )
    return rescale


def all_kept(targets, params) -> dict[str, torch.Tensor]:
    """All-True masks of the targets, on their parameters' devices."""
    return {
        t.name: torch.ones(t.shape, dtype=torch.bool, device=params[t.name].device)
        for t in targets
    }


def check_masks(targets, masks, params) -> dict[str, torch.Tensor]:
    """``masks`` checked against ``targets`` (exactly their names, bool,
    their shapes) and moved to the devices of ``params``."""
    expected = {t.name: t.shape for t in targets}
    if set(masks) != set(expected):
        raise ValueError(
            f"masks must have exactly the keys {sorted(expected)}; "
            f"got {sorted(masks)}"
        )
    out = {}
    for name, m in masks.items():
        m = torch.as_tensor(m)
        if m.dtype != torch.bool or tuple(m.shape) != expected[name]:
            raise ValueError(
                f"mask for {name!r} must be a bool tensor of shape "
                f"{expected[name]}; "
                f"got {m.dtype} {tuple(m.shape)}"
            )
        out[name] = m.to(params[name].device)
    return out


def check_rewind_point(values, module: nn.Module, names) -> dict[str, torch.Tensor]:
    """``values`` as a rewind point of ``module``: tensors named like its
    parameters and buffers, with their shapes, holding every one of ``names``
    (the prunable tensors); detached copies on the module's devices."""
    state = dict(module.named_parameters())
    state.update(module.named_buffers())
    unknown = [n for n in values if n not in state]
    if unknown:
        raise ValueError(
            f"set_rewind_point: values for unknown tensors {unknown}; the "
            f"module's parameters and buffers are {list(state)}"
        )
    missing = [n for n in names if n not in values]
    if missing:
        raise ValueError(
            f"set_rewind_point: values are missing the prunable tensors {missing}"
        )
    out = {}
    for name, value in values.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"set_rewind_point: {name!r} must be a tensor; got "
                f"{type(value).__name__}"
            )
        if tuple(value.shape) != tuple(state[name].shape):
            raise ValueError(
                f"set_rewind_point: {name!r} must have the module's shape "
                f"{tuple(state[name].shape)}; got {tuple(value.shape)}"
            )
        out[name] = value.detach().to(state[name].device).clone()
    return out


def make_generator(random_state) -> torch.Generator:
    """The Pruner's torch generator, seeded from ``random_state`` (None: fresh
    entropy) through :class:`numpy.random.SeedSequence`."""
    return torch.Generator().manual_seed(
        int(np.random.SeedSequence(random_state).generate_state(1)[0])
    )
