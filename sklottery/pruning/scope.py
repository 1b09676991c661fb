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

Rates: :func:`resolve_rate` takes either a per-round ``prune_rate`` or a
``target_sparsity`` reached after ``n_rounds`` (:func:`per_round_rate`);
``schedule="oneshot"`` compounds every group's rate over ``n_rounds`` into a
single prune (:func:`compound_plan`); ``schedule="linear"`` reads each rate as
a fraction of the group's *original* weights (``of_original`` of
:func:`masks_from_scores`: prune ``k`` keeps ``1 - k * rate`` of them, Chen
et al. 2020). :func:`mask_distance` is the normalized
Hamming distance early-bird detection uses (You et al. 2020).

This module holds the mask maths (:func:`masks_from_scores`,
:func:`mask_distance`) and re-exports the plans of :mod:`sklottery.pruning.plan`
and the rates of :mod:`sklottery.pruning.rates`, its 0.1 names.
"""

from __future__ import annotations

import torch

from .plan import (
    SCHEDULES,
    Plan,
    compound_plan,
    make_plan,
    match_names,
    planned_kept,
    scaled_plan,
    stalled_groups,
    target_plan,
)
from .rates import (
    DEFAULT_PRUNE_RATE,
    compound_rate,
    n_to_prune,
    n_to_prune_of_original,
    per_round_rate,
    resolve_rate,
)
from .tensors import kth_smallest

__all__ = [
    "DEFAULT_PRUNE_RATE",
    "SCHEDULES",
    "Plan",
    "compound_plan",
    "compound_rate",
    "make_plan",
    "mask_distance",
    "masks_from_scores",
    "match_names",
    "n_to_prune",
    "per_round_rate",
    "planned_kept",
    "resolve_rate",
    "scaled_plan",
    "stalled_groups",
    "target_plan",
]


def mask_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Normalized Hamming distance between two sets of masks.

    The fraction of all mask entries that differ -- the distance You et al.
    (2020), "Drawing Early-Bird Tickets", use to detect that masks settled.

    >>> m = {"w": torch.tensor([True, True, False, False])}
    >>> mask_distance(m, {"w": torch.tensor([True, False, True, False])})
    0.5
    """
    if set(a) != set(b):
        raise ValueError("masks to compare must have the same keys")
    differ = sum(int(torch.count_nonzero(a[n].cpu() != b[n].cpu())) for n in a)
    total = sum(a[n].numel() for n in a)
    return differ / total if total else 0.0


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    """One flat CPU tensor; a single contiguous tensor is viewed, not copied."""
    if len(tensors) == 1:
        return tensors[0].reshape(-1).cpu()
    return torch.cat([t.reshape(-1).cpu() for t in tensors])


def masks_from_scores(
    scores: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    plan: Plan,
    *,
    of_original: bool = False,
) -> dict[str, torch.Tensor]:
    """Prune each group of ``plan``: the lowest-scored surviving weights go.

    A group prunes ``rate`` of its remaining weights (:func:`n_to_prune`), or
    with ``of_original`` down to the next count of ``schedule="linear"``,
    ``rate`` of its original weights per prune
    (:func:`~sklottery.pruning.rates.n_to_prune_of_original`).
    Returns new boolean masks (True = kept); the inputs are not modified.
    Ties are broken by position (stable sort), so results are deterministic.
    """
    planned = {n for names, _ in plan for n in names}
    new = {name: m if name in planned else m.clone() for name, m in masks.items()}
    for names, rate in plan:
        flat_masks = torch.cat([masks[n].reshape(-1).cpu() for n in names])
        alive = int(torch.count_nonzero(flat_masks))
        if of_original:
            n_prune = n_to_prune_of_original(alive, flat_masks.numel(), rate)
        else:
            n_prune = n_to_prune(alive, rate)
        if n_prune == 0:
            new.update({n: masks[n].clone() for n in names})
            continue
        flat_scores = _flat([scores[n] for n in names])
        # The n_prune lowest surviving scores, ties going to the earlier
        # position: exactly the first n_prune of a stable ascending sort. The
        # threshold is found by a radix selection that copies nothing (a
        # sort, or even torch.kthvalue, would build int64 index arrays the
        # size of the layer: the largest transient of a whole fit).
        everyone = bool(flat_masks.all())
        threshold = kth_smallest(flat_scores, n_prune, None if everyone else flat_masks)
        prune = (flat_scores < threshold) & flat_masks
        n_ties = n_prune - int(torch.count_nonzero(prune))
        if n_ties > 0:
            ties = ((flat_scores == threshold) & flat_masks).nonzero().squeeze(1)
            prune[ties[:n_ties]] = True
        flat_new = flat_masks & ~prune
        start = 0
        for n in names:
            size = masks[n].numel()
            new[n] = flat_new[start : start + size].reshape(masks[n].shape).to(
                masks[n].device
            )
            start += size
    return new
