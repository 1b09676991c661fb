"""Rate arithmetic of pruning -- how many weights a rate removes, per round
and over rounds -- and the one check of every rate.

:func:`n_to_prune` is the counting rule of every sklottery prune;
:func:`resolve_rate` takes either a per-round ``prune_rate`` or a
``target_sparsity`` reached after ``n_rounds`` (:func:`per_round_rate`);
:func:`compound_rate` is what ``n_rounds`` prunes remove in all;
:func:`n_to_prune_of_original` counts the prunes of ``schedule="linear"``,
whose rate is a fraction of the *original* weights.

The ranges: the base rate (``prune_rate``, the estimators' and the CLI's too)
and ``target_sparsity`` are in (0, 1) -- a base rate of 0 would prune nothing
and give :meth:`Pruner.prune_at_init <sklottery.Pruner.prune_at_init>`'s
``density`` nothing to stretch. The rates of single tensors or groups
(``layer_rates``, ``type_rates``, a ``scope`` group's rate, the output layer's
``prune_rate * output_rate_factor``) are in [0, 1): 0 leaves them unpruned.
"""

from __future__ import annotations

import math
import numbers

__all__ = [
    "DEFAULT_PRUNE_RATE",
    "check_prune_rate",
    "check_rate",
    "compound_rate",
    "kept_of_original",
    "n_to_prune",
    "n_to_prune_of_original",
    "per_round_rate",
    "resolve_rate",
]

#: The per-round rate used when neither ``prune_rate`` nor ``target_sparsity``
#: is given (Frankle & Carbin 2019 prune 20% per round).
DEFAULT_PRUNE_RATE = 0.2


def _real(rate, what: str, interval: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"{what} must be a float in {interval}; got {rate!r}")
    return float(rate)


def check_rate(rate, what: str) -> float:
    """``rate`` as a float in [0, 1) (a tensor's or a group's rate: 0 prunes
    nothing); ``what`` names the parameter in the errors."""
    value = _real(rate, what, "[0, 1)")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be in [0, 1); got {rate!r}")
    return value


def check_prune_rate(rate, what: str = "prune_rate") -> float:
    """``rate`` as a float in (0, 1): a base rate (``prune_rate``) or a
    ``target_sparsity``, the range the estimators and the CLI accept."""
    value = _real(rate, what, "(0, 1)")
    if not 0.0 < value < 1.0:
        raise ValueError(f"{what} must be in (0, 1); got {rate!r}")
    return value


def n_to_prune(n_alive: int, rate: float, keep_one: bool = True) -> int:
    """How many of ``n_alive`` weights a group prunes at ``rate``.

    ``round(rate * n_alive)`` with halves rounded up; a group never loses its
    last weight (``keep_one``), so no layer is cut off entirely.
    """
    n = math.floor(rate * n_alive + 0.5)
    if keep_one:
        n = min(n, n_alive - 1)
    return max(n, 0)


def kept_of_original(n_total: int, rate: float, k: int) -> int:
    """Weights a group of ``n_total`` keeps after ``k`` prunes of
    ``schedule="linear"``: ``n_total - round(k * rate * n_total)`` (halves
    up), at least 1 (``k * rate >= 1`` keeps one weight).

    >>> [kept_of_original(100, 0.1, k) for k in range(4)]
    [100, 90, 80, 70]
    """
    fraction = min(round(k * float(rate), 12), 1.0)
    return n_total - n_to_prune(n_total, fraction)


def n_to_prune_of_original(n_alive: int, n_total: int, rate: float) -> int:
    """How many of ``n_alive`` weights (of ``n_total`` originally) a prune of
    ``schedule="linear"`` removes.

    The prune goes down to the next count of :func:`kept_of_original` below
    ``n_alive``: from all-kept masks, prune ``k`` keeps exactly
    ``n_total - round(k * rate * n_total)``. Nothing is counted but the masks,
    so a resumed fit (a ticket, ``warm_start``) goes on the same way. A group
    whose step ``rate * n_total`` is under one weight loses one weight per
    prune (:func:`~sklottery.pruning.plan.make_plan` warns of it).

    >>> n_to_prune_of_original(100, 100, 0.1), n_to_prune_of_original(90, 100, 0.1)
    (10, 10)
    """
    if n_alive <= 1 or rate <= 0 or n_total <= 0:
        return 0
    pruned = n_total - n_alive
    # the first k whose count is below n_alive, or just before it
    k = max(1, math.ceil((pruned + 0.5) / (float(rate) * n_total)) - 1)
    while kept_of_original(n_total, rate, k) >= n_alive:
        k += 1
    return n_alive - kept_of_original(n_total, rate, k)


def per_round_rate(target_sparsity: float, n_rounds: int) -> float:
    """The per-round rate reaching ``target_sparsity`` after ``n_rounds`` prunes.

    Each round prunes a fraction ``r`` of the *remaining* weights, so after
    ``n`` rounds ``(1 - r) ** n`` of them are left: ``r = 1 - (1 -
    target) ** (1 / n)`` (the schedule of Frankle & Carbin 2019, sec. 2).

    >>> round(per_round_rate(0.36, 2), 6)
    0.2
    """
    target = check_prune_rate(target_sparsity, "target_sparsity")
    if (
        isinstance(n_rounds, bool)
        or not isinstance(n_rounds, numbers.Integral)
        or n_rounds < 1
    ):
        raise ValueError(
            "target_sparsity needs n_rounds >= 1 pruning rounds; got "
            f"n_rounds={n_rounds!r}"
        )
    return 1.0 - (1.0 - target) ** (1.0 / n_rounds)


def compound_rate(rate: float, n_rounds: int) -> float:
    """The fraction ``n_rounds`` prunes at ``rate`` remove in all.

    ``1 - (1 - rate) ** n_rounds``, rounded to 12 decimals.

    >>> compound_rate(0.2, 2)
    0.36
    """
    return round(1.0 - (1.0 - float(rate)) ** int(n_rounds), 12)


def resolve_rate(
    prune_rate: float | None,
    target_sparsity: float | None,
    n_rounds: int | None,
    schedule: str = "iterative",
) -> float:
    """The base per-round rate from ``prune_rate`` or ``target_sparsity``.

    The rule: at most one of the two may be given. ``target_sparsity`` with
    ``n_rounds`` derives the rate with :func:`per_round_rate`; neither gives
    :data:`DEFAULT_PRUNE_RATE`. ``target_sparsity`` is the sparsity reached
    by every tensor pruned at the base rate; the output layer
    (``output_rate_factor``) and tensors with their own ``layer_rates`` keep
    their per-round rates, so they end sparser or denser than the target.
    With ``schedule="linear"`` the rate is a fraction of the original weights,
    ``target_sparsity / n_rounds``. Both are checked to be in (0, 1)
    (:func:`check_prune_rate`).
    """
    if prune_rate is not None and target_sparsity is not None:
        raise ValueError(
            f"give either prune_rate (the fraction of the remaining weights pruned "
            f"each round) or target_sparsity (the sparsity after n_rounds, from which "
            f"the per-round rate is derived), not both; got prune_rate={prune_rate!r} "
            f"and target_sparsity={target_sparsity!r}"
        )
    if target_sparsity is not None:
        rate = per_round_rate(target_sparsity, n_rounds)
        if schedule == "linear":
            return float(target_sparsity) / n_rounds
        return rate
    if prune_rate is None:
        return DEFAULT_PRUNE_RATE
    return check_prune_rate(prune_rate, "prune_rate")
