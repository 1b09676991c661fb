"""SynFlow scores (Tanaka et al. 2020): data-free, on a linearized copy.

``|w * dR/dw|`` with ``R`` the sum of the output, for one all-ones input, of
a float64 eval-mode copy of the module with ``|p|`` for every parameter and
floating buffer (pruned weights zero). The copy is the only thing written
(through :mod:`sklottery.pruning.masks`); the module keeps its signs bit for
bit. The exponential schedule over 100 prune steps is
:func:`~sklottery.pruning.at_init.at_init_masks`'s.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from .gradients import check_finite, input_hint
from .masks import load_values, take_absolute
from .targets import find_prunable

__all__ = [
    "check_float_input",
    "check_input_shape",
    "linearized",
    "synflow_scores",
]


def linearized(module: nn.Module) -> nn.Module:
    """A float64 eval-mode copy with ``|p|`` for every parameter and floating
    buffer (the copy is SynFlow's; the module keeps its signs)."""
    twin = copy.deepcopy(module).double().eval()
    take_absolute(twin)
    return twin


def check_input_shape(input_shape) -> tuple[int, ...]:
    """One sample's shape as a tuple of ints >= 1."""
    try:
        shape = tuple(int(s) for s in input_shape)
    except TypeError:
        raise TypeError(
            "input_shape must be a tuple of ints (one sample's shape, without the "
            f"batch dimension); got {input_shape!r}"
        ) from None
    if not shape or min(shape) < 1:
        raise ValueError(f"input_shape must hold sizes >= 1; got {input_shape!r}")
    return shape


def _default_input_shape(module, names) -> tuple[int, ...]:
    owner = names[0].rsplit(".", 1)[0] if "." in names[0] else ""
    first = module.get_submodule(owner)
    if isinstance(first, nn.Linear):
        return (first.in_features,)
    raise ValueError(
        "strategy='synflow' feeds one all-ones input and cannot infer its shape "
        f"for a network whose first prunable layer is a {type(first).__name__}: "
        "pass input_shape (one sample's shape, without the batch dimension)"
    )


def check_float_input(module) -> None:
    """SynFlow feeds one all-ones float input: no token (embedding) inputs."""
    tokens = [t.name for t in find_prunable(module) if t.kind == "embedding"]
    if tokens:
        raise ValueError(
            "strategy='synflow' feeds the network one all-ones float input; it "
            f"cannot score a network with embedding layers {tokens} (token "
            "inputs): use 'snip', 'grasp', 'random' or a magnitude strategy"
        )


def _twin_abs(module, twin, names):
    """``|w|`` (float64) of the module's prunable tensors, on the twin's device."""
    params = dict(module.named_parameters())
    tparams = dict(twin.named_parameters())
    return {
        n: params[n].detach().to(tparams[n].device, torch.float64).abs()
        for n in names
    }


def _forward(twin, x, module, *, given: bool):
    """The twin's output for ``x``; an input shape the network cannot take is
    a ValueError naming ``input_shape`` (given or inferred)."""
    shape = tuple(x.shape[1:])
    try:
        out = twin(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        source = "" if given else " (inferred from the first Linear layer)"
        raise ValueError(
            f"strategy='synflow': input_shape={shape}{source} does not fit the "
            f"network: its forward pass of one all-ones input of shape "
            f"{tuple(x.shape)} failed ({exc}){input_hint(module)}. Pass "
            "input_shape, one sample's shape without the batch dimension"
        ) from exc
    return out[0] if isinstance(out, tuple) else out


def synflow_scores(
    module: nn.Module,
    names: Sequence[str],
    masks: dict,
    *,
    input_shape: Sequence[int] | None = None,
    _twin: nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """One SynFlow step: ``|w * dR/dw|`` on the linearized network (data-free).

    ``R`` is the sum of the output of :func:`linearized`'s copy of
    ``module`` (``|p|`` everywhere, float64, eval mode, weights pruned by
    ``masks`` zero) for one all-ones input of ``input_shape`` (inferred when
    the first prunable layer is ``nn.Linear``). ``module`` is not touched.
    """
    shape = (
        _default_input_shape(module, names)
        if input_shape is None
        else check_input_shape(input_shape)
    )
    twin = linearized(module) if _twin is None else _twin
    tparams = dict(twin.named_parameters())
    absolute = _twin_abs(module, twin, names)
    # each |w| is dropped as its masked product is made: one copy at a time
    load_values(twin, {
        n: absolute.pop(n) * masks[n].to(tparams[n].device, torch.float64)
        for n in names
    })
    x = torch.ones((1, *shape), dtype=torch.float64,
                   device=tparams[names[0]].device)
    tensors = [tparams[n] for n in names]
    with torch.backends.cudnn.flags(enabled=False):
        out = _forward(twin, x, module, given=input_shape is not None)
        grads = torch.autograd.grad(out.sum(), tensors, allow_unused=True)
    scores = {
        n: (torch.zeros_like(t) if g is None else (g * t).abs()).detach().cpu()
        for n, t, g in zip(names, tensors, grads)
    }
    return check_finite(scores, "synflow")
