"""Structured pruning's mask maths: units kept, unit scores, unit plans and
the weight masks they give -- pure (tensors in, new tensors out).

With ``granularity="neuron"`` (or its synonym ``"channel"``) a
:class:`~sklottery.Pruner` ranks whole units -- the groups of
:func:`~sklottery.pruning.graph.trace_units` -- instead of single weights:

* a unit's score is a per-weight strategy's scores summed over the unit's
  own rows (its *producer* weight slices): ``"large_final"`` summed is the
  L1 norm of the unit's weights (``"l1_norm"``); ``"l2_norm"`` ranks by
  their L2 norm; ``"bn_scale"`` by ``|gamma|`` of the BatchNorm on the
  unit (the first in the graph, for units tied by a residual add; network
  slimming, Liu et al. 2017; Early-Bird tickets, You et al. 2020); every
  strategy of :data:`~sklottery.pruning.strategies.STRATEGIES`
  (``"random"`` too: random unit selection) reduces the same way;
* units are pruned by :func:`~sklottery.pruning.scope.masks_from_scores`
  exactly as weights are -- the same plans, rates, schedules and counts,
  over units (``round(rate * units alive)`` per round);
* a pruned unit becomes weight masks (:func:`expand_masks`): its producer
  rows *and* its consumers' input columns are pruned, so that the masked
  network computes what the physically smaller one does (whatever a pruned
  unit still outputs -- its bias, ``sigmoid(0)`` -- meets zero columns).

:func:`unit_keep` reads the units back from weight masks (a ticket, a
selected round): a unit is alive while any of its consumer columns is.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .graph import UnitGraph

__all__ = [
    "GRANULARITIES",
    "UNIT_CRITERIA",
    "check_granularity",
    "expand_masks",
    "unit_counts",
    "unit_keep",
    "unit_plan",
    "unit_scores",
]

#: Values of ``granularity``: single weights, or whole units (``"channel"``
#: is ``"neuron"``, named for convolutional networks).
GRANULARITIES = ("weight", "neuron", "channel")


def _l1(w_init, w_final, **_):
    return w_final.abs()


def _l2(w_init, w_final, **_):
    return w_final.square()


#: Criteria that only rank units: per-weight scores summed over a unit
#: (``"l2_norm"`` sums squares: the same order as the norm), and
#: ``"bn_scale"``, ``|gamma|`` of the unit's BatchNorm.
UNIT_CRITERIA = {"l1_norm": _l1, "l2_norm": _l2, "bn_scale": None}


def check_granularity(granularity) -> str:
    """``"weight"`` or ``"neuron"`` (for ``"channel"`` too), else a ValueError."""
    if isinstance(granularity, str) and granularity in GRANULARITIES:
        return "weight" if granularity == "weight" else "neuron"
    raise ValueError(
        f"granularity must be one of {list(GRANULARITIES)}; got {granularity!r}"
    )


def _per_unit(tensor: torch.Tensor, entry, reduce: str) -> torch.Tensor:
    """``(units,)``: ``tensor`` reduced (``"any"`` or ``"sum"``) over each
    unit's slice along ``entry.dim``. A slice spans every other dimension,
    so the tensor is reduced over those first (one pass, no copy of it)."""
    others = [d for d in range(tensor.dim()) if d != entry.dim]
    if reduce == "any":
        line = tensor.any(dim=others) if others else tensor
    else:
        line = tensor.sum(dim=others, dtype=torch.float64) if others else (
            tensor.to(torch.float64)
        )
    index = entry.positions.to(line.device)
    picked = line.cpu()[index.cpu()]
    return picked.any(dim=1) if reduce == "any" else picked.sum(dim=1)


def _prunable(group, masks, role):
    return [e for e in group.entries if e.role == role and e.name in masks]


def unit_keep(graph: UnitGraph, masks: Mapping[str, torch.Tensor]) -> dict:
    """Units alive under weight ``masks``, by group: a unit lives while any
    of its prunable consumer columns (if it has none, its producer rows) is
    kept. Returns bool tensors of each group's size."""
    out = {}
    for g in graph.groups:
        entries = _prunable(g, masks, "consumer") or _prunable(g, masks, "producer")
        alive = torch.zeros(g.size, dtype=torch.bool)
        for e in entries:
            alive |= _per_unit(masks[e.name], e, "any")
        out[g.name] = alive if entries else torch.ones(g.size, dtype=torch.bool)
    return out


def unit_counts(graph: UnitGraph, masks) -> dict[str, tuple[int, int]]:
    """``{group: (units kept, units)}`` under weight ``masks``."""
    return {n: (int(k.sum()), k.numel()) for n, k in unit_keep(graph, masks).items()}


def expand_masks(graph: UnitGraph, units: Mapping, masks: Mapping) -> dict:
    """Weight masks with every pruned unit's producer rows and consumer
    columns pruned (``units``: bool per group, True = kept; groups not in
    ``units`` are left as they are). ``masks`` is not modified."""
    new = dict(masks)
    for g in graph.groups:
        if g.name not in units:
            continue
        gone = (~units[g.name].cpu()).nonzero().squeeze(1)
        if not len(gone):
            continue
        for e in g.entries:
            if e.name not in masks:
                continue
            if new[e.name] is masks[e.name]:
                new[e.name] = masks[e.name].clone()
            index = e.positions[gone].reshape(-1).to(new[e.name].device)
            new[e.name].index_fill_(e.dim, index, False)
    return new


def unit_scores(graph, groups, criterion, weight_scores=None, norms=None) -> dict:
    """Each unit's score (float64), by group name of ``groups``.

    ``criterion`` is ``"bn_scale"`` (``norms``: module name -> its BatchNorm
    weight) or anything else, whose per-weight ``weight_scores`` (by
    tensor name) are summed over each unit's producer rows.
    """
    out = {}
    for name in groups:
        g = graph.group(name)
        if criterion == "bn_scale":
            if not g.norms:
                raise ValueError(
                    f"strategy='bn_scale' ranks units by the scale of their "
                    f"BatchNorm, and the units of {name!r} have none (exclude "
                    f"{name!r} or use 'l1_norm')"
                )
            out[name] = norms[g.norms[0]].detach().abs().to(torch.float64).cpu()
            continue
        total = torch.zeros(g.size, dtype=torch.float64)
        for e in _prunable(g, weight_scores, "producer"):
            total += _per_unit(weight_scores[e.name], e, "sum")
        out[name] = total
    return out


def unit_plan(graph: UnitGraph, plan, tied=()) -> tuple[list, dict[str, str]]:
    """The plan over groups: a group is ranked in the plan group of its
    first producer weight, at that group's rate (a rate of 0 keeps every
    unit). A group is left out (with the reason) when one of its weights is
    not in ``plan`` (``exclude``, ``include``) -- removing its units would
    change an unpruned tensor -- or is shared with another layer (``tied``
    names: its slices would be cut twice). Returns ``(plan, left_out)``."""
    where = {}
    for i, (names, _) in enumerate(plan):
        for n in names:
            where[n] = i
    chosen: dict[int, list[str]] = {}
    left_out = {}
    for g in graph.groups:
        weights = [e.name for e in g.entries if e.name in graph.targets]
        producers = [
            e.name for e in g.entries if e.role == "producer" and e.name in where
        ]
        missing = sorted({n for n in weights if n not in where})
        shared = sorted({e.name for e in g.entries if e.name in tied})
        if shared:
            left_out[g.name] = f"its units reach the shared (tied) weights {shared}"
            continue
        if missing or not producers:
            left_out[g.name] = (
                f"its units reach {missing}, which are not pruned"
                if missing
                else "none of its own weights are pruned"
            )
            continue
        chosen.setdefault(where[producers[0]], []).append(g.name)
    out = [(names, plan[i][1]) for i, names in sorted(chosen.items())]
    return out, left_out
