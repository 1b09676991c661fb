"""Per-round rates by layer type -- pure, from the list of prunable tensors.

Frankle & Carbin (2019) prune the convolutions of their Conv-2/4/6 networks at
a lower rate than the dense layers (conv 10-15%, dense 20%, output 10% per
round). ``type_rates={"conv": 0.1, "linear": 0.2}`` says that in one
parameter; :func:`expand_type_rates` turns it into per-tensor rates, which
:func:`~sklottery.pruning.make_plan` applies before ``layer_rates``.

Rules (precedence from weakest to strongest):

1. ``prune_rate`` (or the rate derived from ``target_sparsity``) for every
   tensor of a type not named;
2. the type's rate for every tensor of a type in ``type_rates``;
3. the output layer (the last prunable tensor) at its rate from 1 or 2 times
   ``output_rate_factor`` (``linear: 0.2`` with the default factor 0.5
   prunes the output layer 10% per round, as in the paper);
4. ``layer_rates`` given by name, which win over everything above.

Like ``layer_rates``, type rates are per-round rates: with
``target_sparsity`` they are not rescaled. The types are those
:func:`~sklottery.pruning.find_prunable` reports (the ``kind`` column of
``layers_``): :data:`LAYER_TYPES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .rates import check_rate
from .targets import PrunableTensor

__all__ = ["LAYER_TYPES", "check_type_rates", "expand_type_rates"]

#: Layer types of :class:`~sklottery.pruning.PrunableTensor` (``.kind``).
LAYER_TYPES = ("linear", "bilinear", "conv", "embedding", "rnn", "attention")


def check_type_rates(type_rates) -> dict[str, float]:
    """``type_rates`` as a plain dict of checked rates (empty for None).

    Raises
    ------
    TypeError
        When it is not a mapping of layer types to floats.
    ValueError
        For an unknown layer type (the message lists :data:`LAYER_TYPES`) or
        a rate outside [0, 1).
    """
    if type_rates is None:
        return {}
    if not isinstance(type_rates, Mapping):
        raise TypeError(
            "type_rates must be a dict of layer type to per-round rate, e.g. "
            f"{{'conv': 0.1, 'linear': 0.2}}; got {type_rates!r}"
        )
    out = {}
    for kind, rate in type_rates.items():
        if not isinstance(kind, str) or kind not in LAYER_TYPES:
            raise ValueError(
                f"type_rates: {kind!r} is not a layer type; valid types are "
                f"{list(LAYER_TYPES)}"
            )
        out[kind] = check_rate(rate, f"type_rates[{kind!r}]")
    return out


def expand_type_rates(
    targets: Sequence[PrunableTensor],
    type_rates: Mapping[str, float] | None,
    *,
    output_rate_factor: float | None = 0.5,
) -> dict[str, float]:
    """Per-tensor per-round rates from rates by layer type.

    Parameters
    ----------
    targets : sequence of PrunableTensor
        The prunable tensors, in order (the last one is the output layer).
    type_rates : dict of str to float, or None
        Per-round rate of each layer type named; tensors of other types are
        left out.
    output_rate_factor : float or None, default=0.5
        The output layer's factor (None: the output layer is pruned at its
        type's rate).

    Returns
    -------
    dict of str to float
        ``{tensor name: rate}``, in the targets' order.

    Examples
    --------
    >>> from sklottery.pruning import PrunableTensor
    >>> ts = [PrunableTensor("c.weight", "c", "conv", (4, 1, 3, 3)),
    ...       PrunableTensor("fc.weight", "fc", "linear", (8, 36)),
    ...       PrunableTensor("out.weight", "out", "linear", (2, 8))]
    >>> expand_type_rates(ts, {"conv": 0.1, "linear": 0.2})
    {'c.weight': 0.1, 'fc.weight': 0.2, 'out.weight': 0.1}
    """
    rates = check_type_rates(type_rates)
    out: dict[str, float] = {}
    last = len(targets) - 1
    for i, t in enumerate(targets):
        if t.kind not in rates:
            continue
        rate = rates[t.kind]
        if i == last and output_rate_factor is not None:
            rate = check_rate(
                rate * float(output_rate_factor),
                f"type_rates[{t.kind!r}] * output_rate_factor",
            )
        out[t.name] = rate
    return out
