"""Which tensors are pruned together, and at what rate -- pure mask maths.

A *plan* is a list of groups ``(names, rate)``. Each group loses ``rate`` of
its *remaining* weights, ranked by score across the whole group:

* ``scope="layer"``: every tensor is its own group (Frankle & Carbin 2019).
* ``scope="global"``: one group of all tensors, one threshold (the Keras
  pruner's ``smallest_weights_global``; Frankle & Carbin's deeper conv nets).
* a list of groups ``[(layers, rate), ...]``: each pruned collectively at its
  own rate, like ``MagnitudePruneGroup`` in the Julia library.

Tensors with a rate of their own (``layer_rates``, the output layer's
``output_rate_factor``) form their own group in every scope. Excluded tensors
are never pruned.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from .targets import PrunableTensor

__all__ = ["make_plan", "masks_from_scores", "n_to_prune", "match_names"]

Plan = list[tuple[list[str], float]]


def n_to_prune(n_alive: int, rate: float, keep_one: bool = True) -> int:
    """How many of ``n_alive`` weights a group prunes at ``rate``.

    ``round(rate * n_alive)`` with halves rounded up; a group never loses its
    last weight (``keep_one``), so no layer is cut off entirely.
    """
    n = math.floor(rate * n_alive + 0.5)
    if keep_one:
        n = min(n, n_alive - 1)
    return max(n, 0)


def match_names(
    patterns: Sequence[str], targets: Sequence[PrunableTensor], what: str
) -> list[str]:
    """Resolve layer or parameter names to prunable tensor names.

    A pattern matches a tensor if it is the tensor's parameter name
    (``"fc1.weight"``), its module name (``"fc1"``) or a parent module
    (``"encoder"`` matches ``"encoder.0.weight"``).
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    out: list[str] = []
    for pat in patterns:
        if not isinstance(pat, str):
            raise TypeError(f"{what} must hold layer names (str); got {pat!r}")
        hits = [
            t.name
            for t in targets
            if pat in (t.name, t.module_name) or t.name.startswith(pat + ".")
        ]
        if not hits:
            raise ValueError(
                f"{what}: {pat!r} matches no prunable tensor; prunable tensors are "
                f"{[t.name for t in targets]}"
            )
        out.extend(h for h in hits if h not in out)
    return out


def _check_rate(rate, what: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"{what} must be a float in [0, 1); got {rate!r}")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{what} must be in [0, 1); got {rate!r}")
    return float(rate)


def make_plan(
    targets: Sequence[PrunableTensor],
    *,
    prune_rate: float,
    scope="layer",
    output_rate_factor: float | None = 0.5,
    layer_rates: dict | None = None,
    exclude: Sequence[str] | None = None,
) -> Plan:
    """Build the list of ``(tensor names, rate)`` groups for one pruning step."""
    if not targets:
        raise ValueError("the network has no prunable tensors")
    excluded = set(match_names(exclude, targets, "exclude")) if exclude else set()
    rates: dict[str, float] = {}
    output = targets[-1].name
    if output_rate_factor is not None and output not in excluded:
        if isinstance(output_rate_factor, bool) or not isinstance(
            output_rate_factor, numbers.Real
        ) or not 0.0 <= output_rate_factor:
            raise ValueError(
                "output_rate_factor must be a float >= 0 or None; "
                f"got {output_rate_factor!r}"
            )
        if output_rate_factor != 1.0:
            rates[output] = _check_rate(
                prune_rate * output_rate_factor, "prune_rate * output_rate_factor"
            )
    for pat, rate in (layer_rates or {}).items():
        rate = _check_rate(rate, f"layer_rates[{pat!r}]")
        for name in match_names([pat], targets, "layer_rates"):
            rates[name] = rate

    plan: Plan = []
    grouped: set[str] = set()
    if isinstance(scope, str):
        if scope not in ("layer", "global"):
            raise ValueError(
                f"scope={scope!r} is not valid; use 'layer', 'global' or a list of "
                "(layers, rate) groups"
            )
    else:
        try:
            groups = list(scope)
        except TypeError:
            raise TypeError(
                f"scope must be 'layer', 'global' or a list of (layers, rate) groups; "
                f"got {scope!r}"
            ) from None
        for i, group in enumerate(groups):
            if not (isinstance(group, (tuple, list)) and len(group) == 2):
                raise ValueError(
                    f"scope[{i}] must be a (layers, rate) pair; got {group!r}"
                )
            layers, rate = group
            rate = _check_rate(rate, f"scope[{i}] rate")
            names = [
                n
                for n in match_names(layers, targets, f"scope[{i}]")
                if n not in excluded
            ]
            overlap = grouped.intersection(names)
            if overlap:
                raise ValueError(
                    f"scope[{i}]: {sorted(overlap)} already in another group"
                )
            grouped.update(names)
            if names:
                plan.append((names, rate))

    rest = [
        t.name
        for t in targets
        if t.name not in excluded and t.name not in grouped
    ]
    own = [n for n in rest if n in rates]
    shared = [n for n in rest if n not in rates]
    plan.extend(([n], rates[n]) for n in own)
    if scope == "global":
        if shared:
            plan.append((shared, float(prune_rate)))
    else:
        plan.extend(([n], float(prune_rate)) for n in shared)
    # keep the targets' order for readable tables and stable results
    order = {t.name: i for i, t in enumerate(targets)}
    plan.sort(key=lambda g: order[g[0][0]])
    return plan


def masks_from_scores(
    scores: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    plan: Plan,
) -> dict[str, torch.Tensor]:
    """Prune each group of ``plan``: the lowest-scored surviving weights go.

    Returns new boolean masks (True = kept); the inputs are not modified.
    Ties are broken by position (stable sort), so results are deterministic.
    """
    new = {name: m.clone() for name, m in masks.items()}
    for names, rate in plan:
        flat_masks = torch.cat([masks[n].reshape(-1).cpu() for n in names])
        alive = flat_masks.nonzero().squeeze(1)
        n_prune = n_to_prune(int(alive.numel()), rate)
        if n_prune == 0:
            continue
        flat_scores = torch.cat([scores[n].reshape(-1).cpu() for n in names])
        order = torch.sort(flat_scores[alive], stable=True).indices
        flat_new = flat_masks.clone()
        flat_new[alive[order[:n_prune]]] = False
        start = 0
        for n in names:
            size = masks[n].numel()
            new[n] = flat_new[start : start + size].reshape(masks[n].shape).to(
                masks[n].device
            )
            start += size
    return new
