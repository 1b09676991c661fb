"""Per-round rates by layer kind -- pure, from the list of prunable tensors.

Frankle & Carbin (2019) prune the convolutions of their Conv-2/4/6 networks at
a lower rate than the dense layers (e.g. conv 10%, dense 20%, output 10% per
round). ``kind_rates={"conv": 0.1, "linear": 0.2}`` says that in one
parameter; :func:`expand_kind_rates` turns it into per-tensor rates, the
``layer_rates`` that :func:`~sklottery.pruning.make_plan` already takes.

Rules:

* every prunable tensor of a kind in ``kind_rates`` is pruned at that rate
  per round; kinds not named keep the base ``prune_rate``;
* the output layer (the last prunable tensor) is pruned at its kind's rate
  times ``output_rate_factor``, as it is pruned at ``prune_rate`` times the
  factor without ``kind_rates`` (``linear: 0.2`` with the default factor 0.5
  prunes the output layer 10% per round, as in the paper);
* ``layer_rates`` given by name are more specific and win
  (:func:`merge_layer_rates`);
* like ``layer_rates``, kind rates are per-round rates: with
  ``target_sparsity`` they are not rescaled.

The kinds are those :func:`~sklottery.pruning.find_prunable` reports:
:data:`KINDS`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

from .targets import PrunableTensor

__all__ = [
    "KINDS",
    "expand_kind_rates",
    "kind_rates_from_factors",
    "merge_layer_rates",
]

#: Layer kinds of :class:`~sklottery.pruning.PrunableTensor` (``.kind``).
KINDS = ("linear", "bilinear", "conv", "embedding", "rnn", "attention")


def _check_rate(rate, what: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"{what} must be a float in [0, 1); got {rate!r}")
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"{what} must be in [0, 1); got {rate!r}")
    return float(rate)


def check_kind_rates(kind_rates) -> dict[str, float]:
    """``kind_rates`` as a plain dict of checked rates (empty for None).

    Raises
    ------
    TypeError
        When it is not a mapping of kind names to floats.
    ValueError
        For an unknown kind (the message lists :data:`KINDS`) or a rate
        outside [0, 1).
    """
    if kind_rates is None:
        return {}
    if not isinstance(kind_rates, Mapping):
        raise TypeError(
            "kind_rates must be a dict of layer kind to per-round rate, e.g. "
            f"{{'conv': 0.1, 'linear': 0.2}}; got {kind_rates!r}"
        )
    out = {}
    for kind, rate in kind_rates.items():
        if not isinstance(kind, str) or kind not in KINDS:
            raise ValueError(
                f"kind_rates: {kind!r} is not a layer kind; valid kinds are "
                f"{list(KINDS)}"
            )
        out[kind] = _check_rate(rate, f"kind_rates[{kind!r}]")
    return out


def expand_kind_rates(
    targets: Sequence[PrunableTensor],
    kind_rates: Mapping[str, float] | None,
    *,
    output_rate_factor: float | None = 0.5,
) -> dict[str, float]:
    """Per-tensor per-round rates from rates by layer kind.

    Parameters
    ----------
    targets : sequence of PrunableTensor
        The prunable tensors, in order (the last one is the output layer).
    kind_rates : dict of str to float, or None
        Per-round rate of each kind named; the others are left out.
    output_rate_factor : float or None, default=0.5
        The output layer's factor (None: the output layer is pruned at its
        kind's rate).

    Returns
    -------
    dict of str to float
        ``{tensor name: rate}``, in the targets' order: ``layer_rates`` for
        :func:`~sklottery.pruning.make_plan`.

    Examples
    --------
    >>> from sklottery.pruning import PrunableTensor
    >>> ts = [PrunableTensor("c.weight", "c", "conv", (4, 1, 3, 3)),
    ...       PrunableTensor("fc.weight", "fc", "linear", (8, 36)),
    ...       PrunableTensor("out.weight", "out", "linear", (2, 8))]
    >>> expand_kind_rates(ts, {"conv": 0.1, "linear": 0.2})
    {'c.weight': 0.1, 'fc.weight': 0.2, 'out.weight': 0.1}
    """
    rates = check_kind_rates(kind_rates)
    if output_rate_factor is not None and (
        isinstance(output_rate_factor, bool)
        or not isinstance(output_rate_factor, numbers.Real)
        or not output_rate_factor >= 0.0
    ):
        raise ValueError(
            f"output_rate_factor must be a float >= 0 or None; got "
            f"{output_rate_factor!r}"
        )
    out: dict[str, float] = {}
    last = len(targets) - 1
    for i, t in enumerate(targets):
        if t.kind not in rates:
            continue
        rate = rates[t.kind]
        if i == last and output_rate_factor is not None:
            rate = _check_rate(
                rate * float(output_rate_factor),
                f"kind_rates[{t.kind!r}] * output_rate_factor",
            )
        out[t.name] = rate
    return out


def kind_rates_from_factors(
    factors: Mapping[str, float] | None, base_rate: float
) -> dict[str, float]:
    """Kind rates as fractions of the base per-round rate.

    >>> kind_rates_from_factors({"conv": 0.5}, 0.2)
    {'conv': 0.1}
    """
    base = _check_rate(base_rate, "the base rate")
    return {k: round(float(f) * base, 12) for k, f in (factors or {}).items()}


def merge_layer_rates(
    by_kind: Mapping[str, float], layer_rates: Mapping[str, float] | None
) -> dict[str, float] | None:
    """``layer_rates`` for :func:`~sklottery.pruning.make_plan`: the expanded
    kind rates, then the rates given by name, which win where both apply
    (``make_plan`` applies later entries last). None when both are empty."""
    merged = {**by_kind, **(layer_rates or {})}
    return merged or None
