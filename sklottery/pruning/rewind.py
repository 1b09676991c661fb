"""Where the surviving weights go before retraining: pure rewind targets.

Each function returns a dict of values (parameters and buffers by name) for
:func:`~sklottery.pruning.load_values`; none changes a module (a fresh draw
re-initializes a copy, through :func:`~sklottery.pruning.masks.reinitialize`).
The modes:

``"init"``
    The exact values of the rewind point -- the initialization (Frankle &
    Carbin 2019).
``int k``
    Late rewinding: the rewind point is the state after epoch ``k`` of the
    dense round (Frankle et al. 2020, "Stabilizing the Lottery Ticket
    Hypothesis" / "Linear Mode Connectivity and the Lottery Ticket
    Hypothesis"). The values are those of ``"init"``; only the point differs.
``"reinit"``
    A fresh random initialization of the same architecture, with a new seed
    every round, so later masks come from re-initialized networks (iterative
    pruning with re-initialization). Frankle & Carbin's (2019, sec. 2) random
    reinitialization control instead keeps each winning ticket's mask and
    draws new initial values once: train a fresh module under the ticket's
    masks (``ApplyMasks(masks)``), as ``benchmarks/reproduce_mnist.py`` does.
``"reshuffle"``
    Within each pruned tensor, the surviving weights' values at the rewind
    point permuted among the surviving positions (Zhou et al. 2019, sec. 3,
    "reshuffle"; Frankle & Carbin 2019 sec. 2 re-sample the initialization).
``"signed_constant"``
    Every surviving weight set to ``sign(w_0) * std(w_0)``, the standard
    deviation of the whole initial tensor (population std), with ``sign(0) =
    +1`` (Zhou et al. 2019, sec. 3, "constant, init sign").
``"none"``
    Keep the trained weights; the next round fine-tunes them at the final
    learning rate of the previous round (Renda et al. 2020's fine-tuning
    baseline; Han et al. 2015).
``"lr"``
    Learning-rate rewinding: keep the trained weights, replay the learning
    rate schedule from its start (Renda et al. 2020, "Comparing Rewinding and
    Fine-tuning in Neural Network Pruning").

Parameters that are not pruned (biases, normalization) return to the rewind
point in every mode but ``"none"``/``"lr"`` (and to a fresh draw for
``"reinit"``). Pruned weights are zeroed by :func:`load_values` afterwards.
"""

from __future__ import annotations

import copy
import numbers

import torch
from torch import nn

from .masks import reinitialize

__all__ = [
    "REWIND_MODES",
    "check_rewind",
    "fresh_values",
    "reshuffle_values",
    "rewind_values",
    "signed_constant_values",
]

#: Rewind modes by name; an int ``k >= 0`` (late rewinding) is valid too.
REWIND_MODES = ("init", "reinit", "reshuffle", "signed_constant", "none", "lr")

#: Modes that keep the trained weights instead of loading new values.
KEEP_TRAINED = ("none", "lr")


def check_rewind(rewind):
    """Validate a rewind mode; return it (ints as ``int``)."""
    if isinstance(rewind, bool):
        pass
    elif isinstance(rewind, numbers.Integral):
        if rewind >= 0:
            return int(rewind)
    elif isinstance(rewind, str) and rewind in REWIND_MODES:
        return rewind
    raise ValueError(
        f"rewind={rewind!r} is not valid; valid rewind modes are {list(REWIND_MODES)} "
        "or an int k >= 0 (late rewinding to the weights after epoch k of the dense "
        "round)"
    )


@torch.no_grad()
def fresh_values(module: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Parameters and buffers of a fresh initialization of ``module``'s architecture.

    A deep copy of ``module`` is re-initialized with each submodule's own
    ``reset_parameters`` (``_reset_parameters`` for MultiheadAttention) under
    torch seed ``seed``; ``module`` itself and the caller's random number
    generators are untouched.
    """
    twin = copy.deepcopy(module)
    reinitialize(twin, seed)
    state = dict(twin.named_parameters())
    state.update(twin.named_buffers())
    return {n: t.detach().clone() for n, t in state.items()}


@torch.no_grad()
def reshuffle_values(
    point: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    generator: torch.Generator,
) -> dict[str, torch.Tensor]:
    """``point`` with each masked tensor's surviving values permuted among the
    surviving positions (the multiset of kept values is unchanged)."""
    out = dict(point)
    for name, mask in masks.items():
        flat = point[name].reshape(-1).clone()
        kept = mask.reshape(-1).to(flat.device).nonzero().squeeze(1)
        perm = torch.randperm(kept.numel(), generator=generator).to(flat.device)
        flat[kept] = point[name].reshape(-1)[kept[perm]]
        out[name] = flat.reshape(point[name].shape)
    return out


@torch.no_grad()
def signed_constant_values(
    point: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``point`` with each masked tensor set to ``sign(w) * std(w)`` (``sign(0) = +1``),
    ``std`` the population standard deviation of the whole tensor at ``point``."""
    out = dict(point)
    for name in masks:
        w = point[name]
        std = w.double().std(unbiased=False).to(w.dtype)
        sign = torch.where(w < 0, -torch.ones_like(w), torch.ones_like(w))
        out[name] = sign * std
    return out


def rewind_values(
    mode,
    *,
    point: dict[str, torch.Tensor],
    current: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    generator: torch.Generator,
    fresh: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """The values to load for rewind ``mode``.

    Parameters
    ----------
    mode : str or int
        See the module docstring.
    point : dict
        The rewind point (initialization, or the late-rewinding state).
    current : dict
        The module's current (trained) values.
    masks : dict
        The new masks (True = kept).
    generator : torch.Generator
        Randomness for ``"reshuffle"``.
    fresh : dict, optional
        A fresh initialization (:func:`fresh_values`), required for
        ``"reinit"``.
    """
    mode = check_rewind(mode)
    if isinstance(mode, int) or mode == "init":
        return dict(point)
    if mode in KEEP_TRAINED:
        return dict(current)
    if mode == "reinit":
        if fresh is None:
            raise ValueError("rewind='reinit' needs fresh values (see fresh_values)")
        return dict(fresh)
    if mode == "reshuffle":
        return reshuffle_values(point, masks, generator)
    return signed_constant_values(point, masks)
