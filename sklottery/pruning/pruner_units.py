"""The structured verbs of :class:`~sklottery.Pruner` (``granularity="neuron"``
or ``"channel"``), as a mixin the Pruner inherits: the unit graph and plan
it is built with, unit masks from scores, units kept, the compact module.

The mask maths is :mod:`sklottery.pruning.units`'; the graph
:mod:`sklottery.pruning.graph`'s; the smaller layers
:mod:`sklottery.pruning.compact`'s.
"""

from __future__ import annotations

import warnings

import torch

from .compact import compact_module
from .graph import trace_units
from .scope import masks_from_scores
from .units import (
    UNIT_CRITERIA,
    expand_masks,
    unit_counts,
    unit_keep,
    unit_plan,
    unit_scores,
)

__all__ = ["UnitVerbs", "structured_setup"]


def structured_setup(module, example_inputs, plan, *, strategy, rescale,
                     granularity="neuron"):
    """``(graph, unit plan)`` of a structured Pruner (``(None, [])`` for
    ``granularity="weight"``); warns about the layers whose units are never
    pruned (and why) and refuses what cannot be pruned by unit."""
    if granularity == "weight":
        return None, []
    if example_inputs is None:
        raise ValueError(
            "granularity='neuron' needs example_inputs (one batch, a couple of "
            "rows, as the module takes it): the units are found by tracing the "
            "module on it"
        )
    if rescale:
        raise ValueError(
            "rescale=True scales the weights a layer keeps, which structured "
            "pruning does not thin out; use rescale=False with "
            "granularity='neuron'"
        )
    graph = trace_units(module, example_inputs)
    uplan, left_out = unit_plan(graph, plan, _tied_names(module))
    if not uplan:
        why = {**graph.fixed, **left_out}
        raise ValueError(
            "structured pruning (granularity='neuron' or 'channel') finds no "
            "units to prune in "
            f"{type(module).__name__}: "
            + "; ".join(f"{k!r}: {v}" for k, v in why.items())
        )
    planned = {n for names, _ in plan for n in names}
    owners = {t.rpartition(".")[0] for t in planned}
    quiet = ("the network's output",)
    skipped = {
        k: v for k, v in graph.fixed.items() if k in owners and v not in quiet
    }
    skipped.update({k: v for k, v in left_out.items() if k in owners})
    if skipped:
        warnings.warn(
            "structured pruning leaves the units of these layers unpruned: "
            + "; ".join(f"{k!r} ({v})" for k, v in skipped.items()),
            UserWarning,
            stacklevel=3,
        )
    if strategy == "bn_scale":
        for names, _ in _cutting(uplan):
            for n in names:
                if not graph.group(n).norms:
                    raise ValueError(
                        f"strategy='bn_scale' ranks units by the scale of their "
                        f"BatchNorm, and the units of {n!r} have none (exclude "
                        f"{n!r} or use strategy='l1_norm')"
                    )
    return graph, uplan


def keep_one(units, current, scores):
    """``units`` with at least one unit left in every group that had one:
    the best-scored of its current units comes back (a ranking across
    layers, ``scope="global"``, could empty a layer and cut the network)."""
    out = dict(units)
    for name, keep in units.items():
        if name in scores and not bool(keep.any()) and bool(current[name].any()):
            alive = current[name].nonzero().squeeze(1)
            best = alive[scores[name][alive].argmax()]
            out[name] = keep.clone()
            out[name][best] = True
    return out


def _cutting(plan):
    """The groups of a unit plan that lose units (a rate above 0)."""
    return [(names, rate) for names, rate in plan if rate > 0]


def _tied_names(module) -> set[str]:
    """Names of the parameters shared between layers (tied weights)."""
    from .targets import unwrap_compiled

    seen: dict[int, list[str]] = {}
    for name, p in unwrap_compiled(module).named_parameters(remove_duplicate=False):
        seen.setdefault(id(p), []).append(name)
    return {n for names in seen.values() if len(names) > 1 for n in names}


class UnitVerbs:
    """Mixin of :class:`~sklottery.Pruner`; needs ``module``, ``masks``,
    ``graph``, ``unit_plan``, ``strategy`` and ``schedule``."""

    def _unit_masks_from(self, start, params, generator, **strategy_kwargs):
        """New weight masks: the units of :attr:`unit_plan` ranked and cut."""
        from .strategies import compute_scores

        names = list(self.masks)
        plan = _cutting(self.unit_plan)
        groups = [n for names_, _ in plan for n in names_]
        weight_scores = None
        norms = None
        if self.strategy == "bn_scale":
            mods = dict(self.module.named_modules())
            norms = {
                n: mods[n].weight for g in groups for n in self.graph.group(g).norms
            }
        else:
            weight_scores = compute_scores(
                self.score_fn, start, {n: params[n].detach() for n in names},
                generator=generator, **strategy_kwargs,
            )
        scores = unit_scores(self.graph, groups, self.strategy, weight_scores, norms)
        current = unit_keep(self.graph, self.masks)
        units = masks_from_scores(
            scores, current, plan, of_original=self.schedule == "linear"
        )
        return expand_masks(self.graph, keep_one(units, current, scores), self.masks)

    @property
    def structured(self) -> bool:
        """True for ``granularity="neuron"``/``"channel"``."""
        return self.graph is not None

    def unit_masks(self) -> dict[str, torch.Tensor]:
        """Units kept per group (True = kept), read from :attr:`masks`.

        For ``granularity="weight"`` a module that can be traced is read the
        same way: a unit lives while any of its consumers' columns does.
        """
        return unit_keep(self._graph_for("unit_masks"), self.masks)

    def unit_counts(self) -> dict[str, tuple[int, int]]:
        """``{group: (units kept, units)}``, e.g. ``{"l1": (51, 100)}``."""
        return unit_counts(self._graph_for("unit_counts"), self.masks)

    def to_compact(self, example_inputs=None):
        """A physically smaller copy of the module: the pruned units removed,
        every other weight as the module holds it now. Its outputs are the
        masked module's (allclose): a structured ticket as a dense network.

        With ``granularity="weight"``, ``example_inputs`` traces the module
        and the units whose consumer columns are all pruned are removed.
        """
        self._check_dense("to_compact")
        graph = self._graph_for("to_compact", example_inputs)
        return compact_module(self.module, graph, unit_keep(graph, self.masks))

    def _tensor_units(self) -> dict | None:
        """``{tensor: (units kept, units)}`` for each weight whose rows are a
        group's own (None for a pruner of weights): the unit columns of
        :meth:`layer_stats`."""
        if self.graph is None:
            return None
        counts = self.unit_counts()
        out = {}
        for g in self.graph.groups:
            for e in g.entries:
                if e.role == "producer" and e.name in self.masks:
                    out.setdefault(e.name, counts[g.name])
        return out

    def _graph_for(self, verb, example_inputs=None):
        if self.graph is not None:
            return self.graph
        if example_inputs is None:
            raise ValueError(
                f"Pruner.{verb} of a granularity='weight' pruner needs "
                "example_inputs (one batch) to trace the module's units"
            )
        return trace_units(self.module, example_inputs)


_ = UNIT_CRITERIA
