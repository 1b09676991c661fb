"""Mask criteria: pure functions from a round's tensors to keep-scores.

A criterion maps ``(w_init, w_final)`` -- the weights at the start of the
round (the rewind point) and after training -- to a score tensor of the same
shape; the weights with the *highest* scores are kept. Criteria never touch a
module. A new criterion is one small function added to :data:`CRITERIA`.

The names and definitions follow Zhou et al. (2019), "Deconstructing Lottery
Tickets: Zeros, Signs, and the Supermask", Table 1, and Frankle & Carbin
(2019), "The Lottery Ticket Hypothesis" (``large_final``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

__all__ = ["CRITERIA", "ALIASES", "resolve_criterion", "compute_scores"]

Criterion = Callable[..., torch.Tensor]


def large_final(w_init, w_final, **_):
    """Keep the largest trained magnitudes |w_f| (Frankle & Carbin 2019)."""
    return w_final.abs()


def random(w_init, w_final, *, generator=None, **_):
    """Keep a uniformly random subset: the control of Frankle & Carbin (2019)."""
    return torch.rand(w_final.shape, generator=generator, dtype=torch.float32)


CRITERIA: dict[str, Criterion] = {
    "large_final": large_final,
    "random": random,
}

#: Names accepted for compatibility with the Keras pruner: name -> (criterion, scope).
ALIASES: dict[str, tuple[str, str | None]] = {
    "smallest_weights": ("large_final", None),
    "smallest_weights_global": ("large_final", "global"),
}


def valid_names() -> list[str]:
    return sorted(CRITERIA) + sorted(ALIASES)


def resolve_criterion(strategy) -> tuple[Criterion, str | None]:
    """Return ``(criterion function, forced scope or None)`` for ``strategy``.

    ``strategy`` is a name from :data:`CRITERIA` or :data:`ALIASES`, or a
    callable ``f(w_init, w_final, **kwargs) -> scores``.
    """
    if callable(strategy):
        return strategy, None
    if isinstance(strategy, str):
        if strategy in CRITERIA:
            return CRITERIA[strategy], None
        if strategy in ALIASES:
            name, scope = ALIASES[strategy]
            return CRITERIA[name], scope
    raise ValueError(
        f"strategy={strategy!r} is not a known mask criterion; valid strategies are "
        f"{valid_names()} or a callable f(w_init, w_final) -> scores."
    )


def _accepted_kwargs(fn: Criterion, kwargs: dict) -> dict:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def compute_scores(
    criterion: Criterion,
    w_init: dict[str, torch.Tensor],
    w_final: dict[str, torch.Tensor],
    **kwargs,
) -> dict[str, torch.Tensor]:
    """Apply ``criterion`` tensor by tensor; checks shape and finiteness.

    Extra keyword arguments (``generator``, ``grad``, ...) are passed to the
    criterion only where its signature accepts them, so a user's two-argument
    function works unchanged.
    """
    scores = {}
    for name, wf in w_final.items():
        wi = w_init[name]
        extra = {k: (v[name] if isinstance(v, dict) else v) for k, v in kwargs.items()}
        s = criterion(wi, wf, **_accepted_kwargs(criterion, extra))
        if not isinstance(s, torch.Tensor) or tuple(s.shape) != tuple(wf.shape):
            raise ValueError(
                f"the mask criterion must return a tensor of shape {tuple(wf.shape)} "
                f"for {name!r}; got {type(s).__name__} "
                f"{tuple(getattr(s, 'shape', ()))}"
            )
        s = s.detach().to(device="cpu", dtype=torch.float64)
        if torch.isnan(s).any():
            raise ValueError(f"the mask criterion returned NaN scores for {name!r}")
        scores[name] = s
    return scores
