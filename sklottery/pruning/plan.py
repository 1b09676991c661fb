"""Building a *plan* -- which tensors are pruned together, at what rate.

A plan is a list of groups ``(names, rate)``; :func:`make_plan` builds it
from the Pruner's parameters (the rules: :mod:`sklottery.pruning.scope`),
:func:`compound_plan`, :func:`scaled_plan` and :func:`target_plan` stretch it
for one-shot pruning and pruning at initialization, :func:`stalled_groups`
finds the groups too small for their rate. Pure: names, counts and rates in,
plans out. The masks a plan gives: :func:`~sklottery.pruning.scope.masks_from_scores`.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping, Sequence

import torch

from .kinds import expand_type_rates
from .patterns import as_patterns, pattern_hits
from .rates import check_prune_rate, check_rate, compound_rate, n_to_prune
from .targets import PrunableTensor

__all__ = [
    "SCHEDULES",
    "Plan",
    "compound_plan",
    "make_plan",
    "match_names",
    "planned_kept",
    "scaled_plan",
    "stalled_groups",
    "target_plan",
]

#: Pruning schedules: ``n_rounds`` prunes of a fraction of the remaining
#: weights, one prune of the whole amount, or ``n_rounds`` prunes of a fixed
#: fraction of the original weights (``"linear"``, Chen et al. 2020).
SCHEDULES = ("iterative", "oneshot", "linear")

Plan = list[tuple[list[str], float]]


def compound_plan(plan: Plan, n_rounds: int) -> Plan:
    """The one-shot version of ``plan``: each group prunes, in one step, what
    ``n_rounds`` iterative steps would (:func:`compound_rate`).

    One-shot and iterative pruning thus reach the same fraction per group
    (up to rounding of counts), the output layer and per-layer rates
    included (Frankle & Carbin 2019 compare the two schedules).
    """
    return [(names, compound_rate(rate, n_rounds)) for names, rate in plan]


def match_names(
    patterns: Sequence[str] | str, targets: Sequence[PrunableTensor], what: str
) -> list[str]:
    """Resolve layer or parameter names, or patterns, to prunable tensor names.

    A plain name matches a tensor if it is the tensor's parameter name
    (``"fc1.weight"``), the name of the weight its layer computes with (the
    same, or ``"fc1.weight"`` for ``"fc1.parametrizations.weight.original"``),
    its module name (``"fc1"``) or a parent module (``"encoder"`` matches
    ``"encoder.0.weight"``). A glob (``"encoder.*"``) or a ``"re:<regex>"``
    is matched against the same names (:mod:`sklottery.pruning.patterns`).

    Raises
    ------
    TypeError
        If ``patterns`` is neither a str nor a list (tuple, set) of str.
    ValueError
        If a pattern matches no prunable tensor.
    """
    candidates = [(t.name, (t.name, t.effective_name, t.module_name)) for t in targets]
    hits = []
    for pat in as_patterns(patterns, what):
        # one pattern at a time: the order given, then the targets' order
        hits.extend(h for h in pattern_hits([pat], candidates, what) if h not in hits)
    return hits


def _pruned_names(targets, include, exclude) -> set[str]:
    """The names ``include``/``exclude`` leave out of pruning: with
    ``include``, every tensor it does not match; then every ``exclude`` hit."""
    left_out: set[str] = set()
    if include is not None:
        chosen = set(match_names(include, targets, "include"))
        left_out = {t.name for t in targets if t.name not in chosen}
    if exclude is not None:
        left_out |= set(match_names(exclude, targets, "exclude"))
    return left_out


# -- make_plan, step by step ----------------------------------------------------------
def _check_schedule(schedule, n_rounds) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(
            f"schedule={schedule!r} is not valid; valid schedules are {list(SCHEDULES)}"
        )
    if n_rounds is not None and (
        isinstance(n_rounds, bool)
        or not isinstance(n_rounds, numbers.Integral)
        or n_rounds < 0
    ):
        raise ValueError(
            f"n_rounds must be an int >= 0 (the number of prunes) or None; got "
            f"n_rounds={n_rounds!r}"
        )
    if schedule == "oneshot" and (n_rounds is None or n_rounds < 1):
        raise ValueError(
            f"schedule='oneshot' needs n_rounds >= 1 (the iterative rounds it "
            f"replaces); got n_rounds={n_rounds!r}"
        )


def _own_rates(targets, prune_rate, excluded, *, output_rate_factor, layer_rates,
               type_rates) -> dict[str, float]:
    """The tensors with a rate of their own: the output layer's factor,
    ``type_rates``, ``layer_rates`` (weakest first)."""
    if layer_rates is not None and not isinstance(layer_rates, Mapping):
        raise TypeError(
            "layer_rates must be a dict mapping layer or parameter names to rates "
            f"(e.g. {{'fc1': 0.1}}); got {type(layer_rates).__name__} "
            f"{layer_rates!r}"
        )
    rates: dict[str, float] = {}
    output = targets[-1].name
    if output_rate_factor is not None and output not in excluded:
        if isinstance(output_rate_factor, bool) or not isinstance(
            output_rate_factor, numbers.Real
        ) or not 0.0 <= output_rate_factor:
            raise ValueError(
                "output_rate_factor must be a float >= 0 or None; got "
                f"{output_rate_factor!r}"
            )
        if output_rate_factor != 1.0:
            rates[output] = check_rate(
                prune_rate * output_rate_factor, "prune_rate * output_rate_factor"
            )
    by_type = expand_type_rates(
        targets, type_rates, output_rate_factor=output_rate_factor
    )
    rates.update({n: r for n, r in by_type.items() if n not in excluded})
    for pat, rate in (layer_rates or {}).items():
        rate = check_rate(rate, f"layer_rates[{pat!r}]")
        for name in match_names([pat], targets, "layer_rates"):
            rates[name] = rate
    return rates


def _scope_groups(scope, targets, excluded) -> Plan:
    """The groups a list ``scope`` names (none for ``"layer"``/``"global"``)."""
    if isinstance(scope, str):
        if scope not in ("layer", "global"):
            raise ValueError(
                f"scope={scope!r} is not valid; use 'layer', 'global' or a list of "
                "(layers, rate) groups"
            )
        return []
    try:
        groups = list(scope)
    except TypeError:
        raise TypeError(
            f"scope must be 'layer', 'global' or a list of (layers, rate) groups; "
            f"got {scope!r}"
        ) from None
    plan: Plan = []
    grouped: set[str] = set()
    for i, group in enumerate(groups):
        if not (isinstance(group, (tuple, list)) and len(group) == 2):
            raise ValueError(f"scope[{i}] must be a (layers, rate) pair; got {group!r}")
        layers, rate = group
        rate = check_rate(rate, f"scope[{i}] rate")
        matched = match_names(layers, targets, f"scope[{i}]")
        names = [n for n in matched if n not in excluded]
        overlap = grouped.intersection(names)
        if overlap:
            raise ValueError(f"scope[{i}]: {sorted(overlap)} already in another group")
        grouped.update(names)
        if names:
            plan.append((names, rate))
    return plan


def _check_blocked(plan: Plan, targets) -> None:
    pruned = {n for names, _ in plan for n in names}
    for t in targets:
        if t.blocked and t.name in pruned:
            raise ValueError(
                f"cannot prune layer {t.module_name!r} exactly: {t.blocked}. "
                f"Exclude it (exclude=[{t.module_name!r}]) or remove the "
                "reparametrization before pruning (e.g. torch.nn.utils."
                "parametrize.remove_parametrizations or "
                "torch.nn.utils.remove_weight_norm)"
            )


def make_plan(
    targets: Sequence[PrunableTensor],
    *,
    prune_rate: float,
    scope="layer",
    schedule: str = "iterative",
    n_rounds: int | None = None,
    output_rate_factor: float | None = 0.5,
    layer_rates: dict | None = None,
    exclude: Sequence[str] | None = None,
    type_rates: dict | None = None,
    include: Sequence[str] | None = None,
) -> Plan:
    """Build the list of ``(tensor names, rate)`` groups for one pruning step.

    Rates, weakest first: ``prune_rate`` (in (0, 1)); ``type_rates`` (by layer
    type, :mod:`sklottery.pruning.kinds`); the output layer's factor
    ``output_rate_factor`` on either; ``layer_rates`` by name.

    ``schedule="oneshot"`` compounds every group's rate over ``n_rounds``
    (:func:`compound_plan`): one prune of the whole amount.
    """
    _check_schedule(schedule, n_rounds)
    check_prune_rate(prune_rate, "prune_rate")
    if not targets:
        raise ValueError("the network has no prunable tensors")
    excluded = _pruned_names(targets, include, exclude)
    rates = _own_rates(
        targets, prune_rate, excluded, output_rate_factor=output_rate_factor,
        layer_rates=layer_rates, type_rates=type_rates,
    )
    plan = _scope_groups(scope, targets, excluded)
    grouped = {n for names, _ in plan for n in names}
    rest = [t.name for t in targets if t.name not in excluded | grouped]
    shared = [n for n in rest if n not in rates]
    plan.extend(([n], rates[n]) for n in rest if n in rates)
    if scope == "global":
        if shared:
            plan.append((shared, float(prune_rate)))
    else:
        plan.extend(([n], float(prune_rate)) for n in shared)
    # keep the targets' order for readable tables and stable results
    order = {t.name: i for i, t in enumerate(targets)}
    plan.sort(key=lambda g: order[g[0][0]])
    if not plan:
        given = f"exclude={exclude!r}" if include is None else (
            f"include={include!r} with exclude={exclude!r}"
        )
        raise ValueError(
            f"nothing left to prune: {given} excludes every prunable "
            f"tensor {[t.name for t in targets]}"
        )
    _check_blocked(plan, targets)
    if schedule == "oneshot":
        plan = compound_plan(plan, n_rounds)
    if schedule == "linear":
        _warn_linear(plan, targets, n_rounds)
    else:
        _warn_rounding(plan, targets, 1 if schedule == "oneshot" else n_rounds)
    return plan


def stalled_groups(
    plan: Plan, targets: Sequence[PrunableTensor], n_rounds: int | None
) -> list[tuple[list[str], int, float]]:
    """Groups of ``plan`` whose count to prune rounds to 0 too early.

    Simulates ``n_rounds`` prunes (1 if None) of each group with a positive
    rate on all-kept masks. A group stalls when ``rate * n_alive`` rounds to 0
    while it still has more than one weight: from then on it is never pruned
    again (its count only shrinks).

    Returns
    -------
    list of (names, rounds_done, sparsity)
        The rounds that still pruned something before the stall, and the
        sparsity the group ends at instead of the planned one.
    """
    sizes = {t.name: t.numel for t in targets}
    rounds = n_rounds if isinstance(n_rounds, int) and n_rounds >= 1 else 1
    out = []
    for names, rate in plan:
        if rate <= 0:
            continue
        total = sum(sizes[n] for n in names)
        alive = total
        for done in range(rounds):
            if alive <= 1:
                break
            n = n_to_prune(alive, rate)
            if n == 0:
                out.append((names, done, 1.0 - alive / total))
                break
            alive -= n
    return out


def _warn_rounding(plan, targets, n_rounds) -> None:
    stalled = stalled_groups(plan, targets, n_rounds)
    if not stalled:
        return
    rates = {tuple(names): rate for names, rate in plan}
    parts = []
    for names, done, sparsity in stalled:
        label = names[0] if len(names) == 1 else names
        parts.append(
            f"{label} (rate {rates[tuple(names)]:.4g}: "
            + (
                "never pruned, sparsity 0"
                if done == 0
                else f"pruned for {done} rounds only, sparsity {sparsity:.3f}"
            )
            + ")"
        )
    warnings.warn(
        "the number of weights to prune per round, round(rate * remaining), "
        "rounds to 0 for "
        + "; ".join(parts)
        + ". These tensors are too small for the per-round rate (a "
        "target_sparsity spread over many n_rounds gives a tiny rate): use fewer "
        "rounds, a larger rate, or scope='global'.",
        UserWarning,
        stacklevel=3,
    )


def _warn_linear(plan, targets, n_rounds) -> None:
    """``schedule="linear"``'s warnings: a step of under one weight, and
    rounds that would prune every weight (a group keeps one)."""
    sizes = {t.name: t.numel for t in targets}
    small, emptied = [], []
    for names, rate in plan:
        total = sum(sizes[n] for n in names)
        label = names[0] if len(names) == 1 else names
        if 0 < rate * total < 1:
            small.append(f"{label} ({total} weights at rate {rate:.4g})")
        if isinstance(n_rounds, int) and rate > 0 and round(n_rounds * rate, 12) >= 1:
            emptied.append(f"{label} (rate {rate:.4g})")
    if small:
        warnings.warn(
            "schedule='linear' prunes rate * original weights per round, under "
            "one weight for " + "; ".join(small) + ": these lose one weight per "
            "round instead", UserWarning, stacklevel=3,
        )
    if emptied:
        warnings.warn(
            f"schedule='linear' with n_rounds={n_rounds} prunes every weight of "
            + "; ".join(emptied) + " (n_rounds * rate >= 1): each keeps one "
            "weight; use a smaller rate or fewer rounds", UserWarning, stacklevel=3,
        )


# -- plans of pruning at initialization -----------------------------------------------
def planned_kept(plan: Plan, masks: dict[str, torch.Tensor]) -> dict[tuple, int]:
    """Weights each group of ``plan`` keeps after one prune from ``masks``:
    ``alive - n_to_prune(alive, rate)``, the count of an IMP prune."""
    out = {}
    for names, rate in plan:
        alive = sum(int(torch.count_nonzero(masks[n])) for n in names)
        out[tuple(names)] = alive - n_to_prune(alive, rate)
    return out


def scaled_plan(plan: Plan, base_rate: float, density: float) -> Plan:
    """``plan`` stretched so that the groups pruned at ``base_rate`` keep
    ``density`` of their weights.

    A group at rate ``r`` gets ``1 - (1 - r) ** k`` with ``k = log(density)
    / log(1 - base_rate)``: the (fractional) number of ``plan``'s prunes that
    take the base-rate groups to ``density``. Groups with their own rate (the
    output layer's ``output_rate_factor``, ``layer_rates``, ``type_rates``)
    keep their ratio to the base rate, as in ``n_rounds`` rounds of iterative
    pruning; ``density`` is :class:`~sklottery.Pruner`'s ``1 -
    target_sparsity``.

    >>> scaled_plan([(["a"], 0.2), (["b"], 0.1)], 0.2, 0.64)
    [(['a'], 0.36), (['b'], 0.19)]
    """
    if (
        isinstance(density, bool)
        or not isinstance(density, numbers.Real)
        or not 0.0 < density <= 1.0
    ):
        raise ValueError(
            "density must be in (0, 1] (the fraction of the weights kept by the "
            f"tensors pruned at the base rate); got {density!r}"
        )
    if density == 1.0:
        return [(list(names), 0.0) for names, _ in plan]
    if not 0.0 < base_rate < 1.0:
        raise ValueError(
            f"density={density!r} is reached by stretching the pruner's base rate, "
            f"which is {base_rate!r}: give the Pruner a prune_rate in (0, 1)"
        )
    k = math.log(density) / math.log(1.0 - base_rate)
    return [
        (list(names), round(1.0 - (1.0 - rate) ** k, 12)) for names, rate in plan
    ]


def target_plan(
    plan: Plan, base_rate: float, *, density=None, n_rounds=None
) -> Plan:
    """The plan :meth:`Pruner.prune_at_init <sklottery.Pruner.prune_at_init>`
    prunes to: ``plan`` itself (neither argument), ``n_rounds`` prunes of it
    compounded (:func:`compound_plan`), or
    :func:`scaled_plan` to ``density``."""
    if density is not None and n_rounds is not None:
        raise ValueError(
            "give either density (the fraction kept) or n_rounds (the iterative "
            f"prunes to match), not both; got density={density!r}, "
            f"n_rounds={n_rounds!r}"
        )
    if density is not None:
        return scaled_plan(plan, base_rate, density)
    if n_rounds is None:
        return plan
    if isinstance(n_rounds, bool) or not isinstance(n_rounds, int) or n_rounds < 1:
        raise ValueError(f"n_rounds must be an int >= 1; got {n_rounds!r}")
    return compound_plan(plan, n_rounds)
