"""Gradient scores of a network at its current weights: SNIP, GraSP, and the
mean loss gradients of :meth:`Pruner.gradients <sklottery.Pruner.gradients>`.

Pure with respect to the module: every function here reads a module and
returns new tensors; the weights a mask prunes are zeroed for the scoring
only, by :func:`~sklottery.pruning.masks.zero_pruned`, and get their values
back. How the scores become masks: :mod:`sklottery.pruning.at_init`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from .masks import zero_pruned
from .targets import find_prunable

__all__ = [
    "batch_list",
    "check_finite",
    "check_temperature",
    "grasp_scores",
    "input_hint",
    "loss_callable",
    "loss_gradients",
    "snip_scores",
    "summed_grads",
]

LossFn = Callable[[nn.Module, object], torch.Tensor]


# -- argument checks ------------------------------------------------------------
def loss_callable(loss_fn, strategy) -> LossFn:
    """``loss_fn(module, batch) -> scalar`` from a callable or a torch loss
    module (applied as ``loss(module(X), y)``); ``strategy`` names the caller
    in the errors."""
    if loss_fn is None:
        raise ValueError(
            f"strategy={strategy!r} needs a loss: pass loss_fn(module, batch) -> "
            "scalar, or a torch loss module such as torch.nn.CrossEntropyLoss() "
            "(applied as loss(module(X), y) to batches (X, y))"
        )
    if isinstance(loss_fn, nn.Module):
        criterion = loss_fn

        def wrapped(module, batch):
            X, y = batch
            out = module(X)
            return criterion(out[0] if isinstance(out, tuple) else out, y)

        return wrapped
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be a callable loss_fn(module, batch) or a torch loss "
            f"module; got {type(loss_fn).__name__}"
        )
    return loss_fn


def batch_list(batches, strategy) -> list:
    """``batches`` as a non-empty list (an iterable of batches is needed)."""
    if batches is None:
        raise ValueError(
            f"strategy={strategy!r} needs training data: pass batches (a few "
            "batches of training data, e.g. [(X, y), ...]) and loss_fn; "
            "'synflow', 'random' and the magnitude strategies need none"
        )
    if isinstance(batches, torch.Tensor) or not isinstance(batches, Iterable):
        raise TypeError(
            "batches must be an iterable of batches (e.g. a list of (X, y) pairs "
            f"or a DataLoader); got {type(batches).__name__}"
        )
    out = list(batches)
    if not out:
        raise ValueError(f"strategy={strategy!r} needs at least one batch; got none")
    return out


def check_temperature(temperature) -> float:
    """GraSP's ``temperature`` as a float > 0."""
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, numbers.Real)
        or not temperature > 0
    ):
        raise ValueError(f"temperature must be a float > 0; got {temperature!r}")
    return float(temperature)


def check_finite(scores: dict[str, torch.Tensor], strategy) -> dict[str, torch.Tensor]:
    """``scores``, or a ValueError naming the first tensor with a non-finite one."""
    for name, s in scores.items():
        if not bool(torch.isfinite(s).all()):
            raise ValueError(
                f"strategy={strategy!r} gave non-finite scores for {name!r} (an "
                "overflow in the network's outputs or loss); try fewer batches, "
                "a smaller network or another strategy"
            )
    return scores


def input_hint(module: nn.Module) -> str:
    """What the first prunable layer of ``module`` takes (``"; the network's
    first prunable layer '0' (Linear) has in_features=6"``), or "": the
    expected side of an input that does not fit."""
    targets = find_prunable(module)
    if not targets:
        return ""
    name = targets[0].module_name
    layer = module.get_submodule(name)
    for attr in ("in_features", "in1_features", "in_channels", "input_size",
                 "num_embeddings", "embed_dim"):
        if isinstance(getattr(layer, attr, None), int):
            return (
                f"; the network's first prunable layer {name!r} "
                f"({type(layer).__name__}) has {attr}={getattr(layer, attr)}"
            )
    return ""


def _shapes(obj):
    """The shapes of the tensors in a batch, nested as the batch is."""
    if isinstance(obj, torch.Tensor):
        return tuple(obj.shape)
    if isinstance(obj, (tuple, list)):
        return [_shapes(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _shapes(v) for k, v in obj.items()}
    return type(obj).__name__


def _batch_loss(module, loss_fn, batch, i: int, what: str) -> torch.Tensor:
    """``loss_fn(module, batch)``, batch ``i``; a batch the network cannot
    take, or a loss that is not a scalar, is a ValueError naming ``batches``
    or ``loss_fn`` (never the forward pass's own traceback alone)."""
    try:
        loss = loss_fn(module, batch)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        raise ValueError(
            f"{what}: loss_fn(module, batch) failed on batches[{i}] (shapes "
            f"{_shapes(batch)}): {exc}{input_hint(module)}. Check that batches "
            "hold what the network and loss_fn take"
        ) from exc
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise ValueError(
            f"{what}: loss_fn must return a scalar tensor (the loss of one "
            f"batch); got {_shapes(loss)} for batches[{i}]"
        )
    return loss


# -- gradients ------------------------------------------------------------------
@contextmanager
def _masked_eval(module: nn.Module, masks: dict[str, torch.Tensor]):
    """The module in eval mode (cuDNN off) with its pruned weights zero;
    values and mode restored exactly on exit."""
    was_training = module.training
    with zero_pruned(module, masks) as params:
        module.eval()
        try:
            with torch.backends.cudnn.flags(enabled=False):
                yield params
        finally:
            module.train(was_training)


def summed_grads(module, tensors, loss_fn, batches, what: str = "gradients"):
    """Gradients of ``loss_fn(module, batch)`` w.r.t. ``tensors``, summed
    over ``batches`` (unused tensors: zero); the module is not changed.
    ``what`` names the caller in the errors of a batch that does not fit."""
    total = [torch.zeros_like(t) for t in tensors]
    for i, batch in enumerate(batches):
        loss = _batch_loss(module, loss_fn, batch, i, what)
        _accumulate(total, torch.autograd.grad(loss, tensors, allow_unused=True))
    return total


def _accumulate(total, grads) -> None:
    """``total[i] += grads[i]`` in place, for the gradients that exist."""
    for acc, g in zip(total, grads):
        if g is not None:
            acc.add_(g.detach())


def loss_gradients(
    module: nn.Module, names, loss_fn, batches
) -> dict[str, torch.Tensor]:
    """Mean gradient of ``loss_fn(module, batch)`` over ``batches`` w.r.t. ``names``.

    Computed with :func:`torch.autograd.grad` in eval mode (cuDNN off, so
    recurrent layers differentiate in eval mode on GPU too); neither the
    parameters, their ``.grad`` nor the buffers change.
    """
    params = dict(module.named_parameters())
    tensors = [params[n] for n in names]
    batches = list(batches)
    if not batches:
        raise ValueError("gradients need at least one batch")
    was_training = module.training
    module.eval()
    try:
        with torch.backends.cudnn.flags(enabled=False):
            total = summed_grads(module, tensors, loss_fn, batches,
                                 "Pruner.gradients")
    finally:
        module.train(was_training)
    return {n: g / len(batches) for n, g in zip(names, total)}


def snip_scores(
    module: nn.Module, names: Sequence[str], masks: dict, batches, loss_fn
) -> dict[str, torch.Tensor]:
    """SNIP connection sensitivity ``|w * dL/dw|`` (Lee et al. 2019).

    ``L`` is ``loss_fn(module, batch)`` summed over ``batches`` (the only data
    used), in eval mode, with the weights pruned by ``masks`` zero. Returns
    one CPU tensor per name of ``names``; the module is unchanged.
    """
    loss_fn = loss_callable(loss_fn, "snip")
    batches = batch_list(batches, "snip")
    with _masked_eval(module, masks) as params:
        tensors = [params[n] for n in names]
        grads = summed_grads(module, tensors, loss_fn, batches, "strategy='snip'")
        scores = {
            n: (t.detach() * g).abs().cpu() for n, t, g in zip(names, tensors, grads)
        }
    return check_finite(scores, "snip")


class _Temperature:
    """Forward hook dividing a module's output (or its first element) by T
    (the output only: the weights are never rewritten)."""

    def __init__(self, temperature: float):
        self.temperature = temperature

    def __call__(self, module, args, output):
        if isinstance(output, tuple):
            return (output[0] / self.temperature, *output[1:])
        return output / self.temperature


def _hessian_grad(module, tensors, loss_fn, batches) -> list[torch.Tensor]:
    """``Hg``, summed batch by batch: ``d(g . g_b)/dw`` with ``g`` the summed
    gradient (no graph) and ``g_b`` each batch's (with its graph)."""
    stopped = summed_grads(module, tensors, loss_fn, batches, "strategy='grasp'")
    hg = [torch.zeros_like(t) for t in tensors]
    for batch in batches:
        loss = loss_fn(module, batch)
        grads = torch.autograd.grad(loss, tensors, create_graph=True, allow_unused=True)
        z = sum((g * s).sum() for g, s in zip(grads, stopped) if g is not None)
        if not isinstance(z, torch.Tensor) or not z.requires_grad:
            continue  # the loss is linear in (or independent of) the weights
        _accumulate(hg, torch.autograd.grad(z, tensors, allow_unused=True))
    return hg


def grasp_scores(
    module: nn.Module,
    names: Sequence[str],
    masks: dict,
    batches,
    loss_fn,
    *,
    temperature: float = 200.0,
) -> dict[str, torch.Tensor]:
    """GraSP keep-scores ``w * Hg`` (Wang et al. 2020; highest kept).

    ``g`` is the gradient of the loss summed over ``batches`` (no graph);
    then, batch by batch, the gradient ``g_b`` is taken again with its graph
    and ``d(g . g_b)/dw = H_b g`` is summed into ``Hg``. The module's output
    is divided by ``temperature`` before the loss (1.0 turns it off).
    """
    loss_fn = loss_callable(loss_fn, "grasp")
    batches = batch_list(batches, "grasp")
    temperature = check_temperature(temperature)
    handle = module.register_forward_hook(_Temperature(temperature))
    try:
        with _masked_eval(module, masks) as params:
            tensors = [params[n] for n in names]
            hg = _hessian_grad(module, tensors, loss_fn, batches)
            scores = {n: (t.detach() * h).cpu() for n, t, h in zip(names, tensors, hg)}
    finally:
        handle.remove()
    return check_finite(scores, "grasp")
