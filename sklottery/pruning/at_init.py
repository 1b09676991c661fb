"""Pruning at initialization: SNIP, GraSP, SynFlow, random and magnitude scores.

Pure mask maths on a module's *initial* weights, before any training step
(the module is never changed here; :class:`~sklottery.Pruner` applies the
masks, through :mod:`sklottery.pruning.masks`). The scores themselves live in
:mod:`sklottery.pruning.gradients` (SNIP, GraSP) and
:mod:`sklottery.pruning.synflow`, and are re-exported here. The scores are turned into
masks by the same :func:`~sklottery.pruning.scope.masks_from_scores` the
iterative rounds use, on the Pruner's plan, so scopes, per-layer rates,
``type_rates``, the output layer's rate and excluded layers mean the same
thing as for iterative magnitude pruning. The weights with the *highest*
scores are kept, as everywhere in sklottery.

The strategies
--------------
Details, references and differences from the papers: the user guide's
"Pruning at initialization".

``"snip"``
    ``|w * dL/dw|``, the loss summed over the given batches (Lee et al. 2019).
``"grasp"``
    ``w * Hg`` (Wang et al. 2020), ``g`` the gradient of the loss summed over
    the batches, ``Hg`` a Hessian-gradient product by double
    back-propagation, the output divided by a ``temperature`` (200) before
    the loss. The paper removes the highest ``S(-w) = -w * Hg`` (the weights
    whose removal reduces the gradient flow least); keeping the highest
    ``w * Hg`` removes the same weights (the Synaptic-Flow code's sign).
``"synflow"``
    ``|w * dR/dw|`` (Tanaka et al. 2020), data-free: ``R`` is the sum of the
    output, for one all-ones input, of a float64 eval-mode copy of the
    module with ``|p|`` for every parameter and floating buffer (pruned
    weights zero). Iterated over 100 prune steps with the paper's
    exponential schedule: after step ``t`` of ``T`` a group keeps ``n0 *
    (nT / n0) ** (t / T)`` weights (rounded half up), exactly ``nT`` at the
    end. The copy is dropped: the module keeps its signs bit for bit.
``"random"`` and magnitude
    Uniform random scores, or any strategy of
    :data:`~sklottery.pruning.strategies.STRATEGIES` (or a callable) with
    ``w_init = w_final`` the initialization; ``"magnitude_increase"`` and
    ``"movement"`` score every weight 0 before training and are refused.

References: Lee et al., "SNIP", ICLR 2019; Wang et al., "Picking Winning
Tickets Before Training by Preserving Gradient Flow", ICLR 2020; Tanaka et
al., "Pruning neural networks without any data by iteratively conserving
synaptic flow", NeurIPS 2020.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from .gradients import (
    batch_list,
    check_temperature,
    grasp_scores,
    loss_callable,
    snip_scores,
    summed_grads,  # noqa: F401 (0.1 import path)
)
from .scope import Plan, masks_from_scores, planned_kept
from .strategies import STRATEGIES, compute_scores
from .synflow import (
    check_float_input,
    check_input_shape,
    linearized,
    synflow_scores,
)

__all__ = [
    "AT_INIT_ONLY",
    "DATA_STRATEGIES",
    "at_init_masks",
    "at_init_strategies",
    "check_at_init_strategy",
    "grasp_scores",
    "init_scores",
    "needs_data",
    "snip_scores",
    "synflow_scores",
]

#: Strategies that exist only at initialization (not in ``STRATEGIES``).
AT_INIT_ONLY = ("grasp", "synflow")
#: Strategies that need training batches and a loss.
DATA_STRATEGIES = ("snip", "grasp")
#: Strategies of ``STRATEGIES`` that score every weight 0 before training.
_DEGENERATE = ("magnitude_increase", "movement")
#: Default number of prune steps per strategy (Tanaka et al. 2020 use 100).
DEFAULT_ITERATIONS = {"synflow": 100}


def at_init_strategies() -> list[str]:
    """The strategy names pruning at initialization accepts (callables too)."""
    names = set(STRATEGIES) - set(_DEGENERATE) | set(AT_INIT_ONLY)
    return sorted(names)


def check_at_init_strategy(strategy):
    """``strategy`` if pruning at initialization knows it, else a ValueError."""
    if callable(strategy) and not isinstance(strategy, str):
        return strategy
    if isinstance(strategy, str) and strategy in _DEGENERATE:
        raise ValueError(
            f"strategy={strategy!r} compares the trained weights with the "
            "initial ones and scores every weight 0 before training: it cannot "
            f"prune at initialization; valid strategies are {at_init_strategies()} "
            "or a callable f(w_init, w_final) -> scores"
        )
    if not isinstance(strategy, str) or strategy not in at_init_strategies():
        raise ValueError(
            f"strategy={strategy!r} is not a pruning-at-initialization strategy; "
            f"valid strategies are {at_init_strategies()} or a callable "
            "f(w_init, w_final) -> scores"
        )
    return strategy


def needs_data(strategy) -> bool:
    """True if ``strategy`` needs training batches and a loss (SNIP, GraSP)."""
    return isinstance(strategy, str) and strategy in DATA_STRATEGIES


def init_only_score(strategy: str):
    """A score function for :class:`~sklottery.Pruner` that refuses to score
    trained weights: GraSP and SynFlow exist at initialization only."""

    def refuse(w_init, w_final, **_):
        raise ValueError(
            f"strategy={strategy!r} prunes at initialization only: use "
            "Pruner.prune_at_init (or schedule='at_init' in the estimators)"
        )

    refuse.__name__ = strategy
    return refuse


def _check_iterations(iterations, strategy) -> int:
    if iterations is None:
        return DEFAULT_ITERATIONS.get(strategy, 1) if isinstance(strategy, str) else 1
    if (
        isinstance(iterations, bool)
        or not isinstance(iterations, numbers.Integral)
        or iterations < 1
    ):
        raise ValueError(f"iterations must be an int >= 1; got {iterations!r}")
    return int(iterations)


def _scores(module, strategy, names, masks, *, batches, loss_fn, generator,
            input_shape, temperature, twin):
    if strategy == "snip":
        return snip_scores(module, names, masks, batches, loss_fn)
    if strategy == "grasp":
        return grasp_scores(module, names, masks, batches, loss_fn,
                            temperature=temperature)
    if strategy == "synflow":
        return synflow_scores(module, names, masks, input_shape=input_shape,
                              _twin=twin)
    score_fn = STRATEGIES[strategy] if isinstance(strategy, str) else strategy
    params = dict(module.named_parameters())
    w = {n: params[n].detach() for n in names}
    return compute_scores(score_fn, w, w, generator=generator)


# -- the exponential schedule ----------------------------------------------------
def _step_plan(plan, start, final, current, t, steps) -> Plan:
    """Step ``t`` of ``steps`` of the exponential schedule, as rates."""
    out: Plan = []
    for group, _ in plan:
        key = tuple(group)
        n0, nT = start[key], final[key]
        if t == steps or n0 == 0:
            target = nT
        else:
            target = max(nT, math.floor(n0 * (nT / n0) ** (t / steps) + 0.5))
        alive = sum(int(torch.count_nonzero(current[n])) for n in group)
        n_prune = max(alive - target, 0)
        # n_to_prune(alive, n_prune / alive) == n_prune: round half up of an
        # exact-enough product (alive < 2**52)
        out.append((list(group), n_prune / alive if alive else 0.0))
    return out


def at_init_masks(
    module: nn.Module,
    strategy,
    plan: Plan,
    masks: dict[str, torch.Tensor],
    *,
    batches=None,
    loss_fn=None,
    iterations: int | None = None,
    generator: torch.Generator | None = None,
    input_shape: Sequence[int] | None = None,
    temperature: float = 200.0,
) -> dict[str, torch.Tensor]:
    """Masks from ``module``'s current (initial) weights, pruned by ``plan``.

    Parameters
    ----------
    module : torch.nn.Module
        The network at initialization; not changed (parameters, buffers,
        ``.grad`` and train/eval mode).
    strategy : str or callable
        See :func:`at_init_strategies` and the module docstring.
    plan : list of (names, rate)
        Each group loses ``rate`` of the weights ``masks`` keep, as one IMP
        prune (:func:`~sklottery.pruning.scope.n_to_prune`).
    masks : dict of str to bool tensor
        The masks to start from; the weights they prune are zero in every
        forward pass the scores come from.
    batches, loss_fn, iterations, input_shape, temperature
        As for :meth:`Pruner.prune_at_init <sklottery.Pruner.prune_at_init>`.
    generator : torch.Generator, optional
        Randomness of ``"random"``.

    Returns
    -------
    dict of str to bool tensor
        New masks (True = kept); each group keeps exactly
        :func:`planned_kept` weights.
    """
    strategy = check_at_init_strategy(strategy)
    steps = _check_iterations(iterations, strategy)
    score = _scorer(module, strategy, batches=batches, loss_fn=loss_fn,
                    generator=generator, input_shape=input_shape,
                    temperature=temperature)
    start = {
        tuple(g): sum(int(torch.count_nonzero(masks[n])) for n in g) for g, _ in plan
    }
    final = planned_kept(plan, masks)
    current = {n: m.detach().cpu() for n, m in masks.items()}
    for t in range(1, steps + 1):
        step = _step_plan(plan, start, final, current, t, steps)
        if all(rate == 0.0 for _, rate in step):
            continue
        current = masks_from_scores(score(current), current, step)
    return {n: current[n].to(masks[n].device) for n in masks}


def init_scores(module: nn.Module, strategy, masks: dict[str, torch.Tensor], *,
                batches=None, loss_fn=None, generator=None, input_shape=None,
                temperature: float = 200.0) -> dict[str, torch.Tensor]:
    """One step's scores of ``strategy`` for ``module``'s current weights
    (higher = kept; the weights ``masks`` prunes are zero): what each step of
    :func:`at_init_masks` ranks (for ``"synflow"`` its first step only).
    The module is not changed. Options as for :func:`at_init_masks`."""
    strategy = check_at_init_strategy(strategy)
    score = _scorer(module, strategy, batches=batches, loss_fn=loss_fn,
                    generator=generator, input_shape=input_shape,
                    temperature=temperature)
    return score({n: m.detach().cpu() for n, m in masks.items()})


def _scorer(module, strategy, *, batches, loss_fn, generator, input_shape,
            temperature):
    """``score(masks) -> scores`` with the options checked once."""
    if needs_data(strategy):
        batches = batch_list(batches, strategy)
        loss_fn = loss_callable(loss_fn, strategy)
    if strategy == "grasp":
        temperature = check_temperature(temperature)
    twin = None
    if strategy == "synflow":
        check_float_input(module)
        if input_shape is not None:
            input_shape = check_input_shape(input_shape)
        twin = linearized(module)

    def score(masks):
        return _scores(
            module, strategy, list(masks), masks, batches=batches,
            loss_fn=loss_fn, generator=generator, input_shape=input_shape,
            temperature=temperature, twin=twin,
        )

    return score
