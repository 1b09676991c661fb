"""Pruning strategies: pure functions from a round's tensors to keep-scores.

A strategy (Zhou et al. call it a *mask criterion*) maps ``(w_init,
w_final)`` -- the weights at the start of the round (the rewind point) and
after training -- to a score tensor of the same shape; the weights with the
*highest* scores are kept. Strategies never touch a module. A new strategy
is one small function added to :data:`STRATEGIES`.

The names and definitions follow Zhou et al. (2019), "Deconstructing Lottery
Tickets: Zeros, Signs, and the Supermask", Table 1, and Frankle & Carbin
(2019), "The Lottery Ticket Hypothesis" (``large_final``); ``snip`` is the
saliency of Lee et al. (2019).

``w_init`` is the round's start: the values the round's training started
from (the initialization, the late-rewinding point, the re-initialized or
reshuffled values, or the previous round's trained weights for
``rewind="none"``/``"lr"``). Scores are compared in float64 (float32 scores
as they are: widening them would change no ranking). Ties are broken
by position: among equal scores the weight that comes first (row-major order,
tensors concatenated in registration order within a group) is pruned first.
Already-pruned weights are never ranked again.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

__all__ = [
    "STRATEGIES",
    "ALIASES",
    "resolve_strategy",
    "compute_scores",
    "needs_grad",
]

ScoreFn = Callable[..., torch.Tensor]


def _ref_scale(w_init, w_final):
    """Scale ``alpha`` putting |w_f| on the scale of |w_i|: mean|w_i| / mean|w_f|.

    Zhou et al. (2019) compare initial and final magnitudes through a
    per-layer constant; this is that constant (1.0 when w_f is all zero).
    """
    num = w_init.abs().mean()
    den = w_final.abs().mean()
    if float(den) == 0.0:
        return torch.ones((), dtype=w_final.dtype)
    return num / den


def _sign(w):
    """Sign with ``sign(0) = 0``."""
    return torch.sign(w)


def large_final(w_init, w_final, **_):
    """Keep the largest trained magnitudes: ``|w_f|``.

    The strategy of Frankle & Carbin (2019); "large final" in Zhou et al.
    (2019), Table 1.
    """
    return w_final.abs()


def small_final(w_init, w_final, **_):
    """Keep the smallest trained magnitudes: ``-|w_f|`` (Zhou et al. 2019, Table 1)."""
    return -w_final.abs()


def large_init(w_init, w_final, **_):
    """Keep the largest initial magnitudes: ``|w_i|`` (Zhou et al. 2019, Table 1)."""
    return w_init.abs()


def small_init(w_init, w_final, **_):
    """Keep the smallest initial magnitudes: ``-|w_i|`` (Zhou et al. 2019, Table 1)."""
    return -w_init.abs()


def large_init_large_final(w_init, w_final, **_):
    """Keep weights large both at the start and after training.

    ``min(alpha * |w_f|, |w_i|)`` with ``alpha = mean|w_i| / mean|w_f|`` of
    the tensor, so both magnitudes are on one scale (Zhou et al. 2019,
    Table 1: a weight must clear one threshold on both axes).
    """
    return torch.minimum(_ref_scale(w_init, w_final) * w_final.abs(), w_init.abs())


def small_init_small_final(w_init, w_final, **_):
    """Keep weights small both at the start and after training.

    ``-max(alpha * |w_f|, |w_i|)``, ``alpha`` as in
    :func:`large_init_large_final` (Zhou et al. 2019, Table 1).
    """
    return -torch.maximum(_ref_scale(w_init, w_final) * w_final.abs(), w_init.abs())


def magnitude_increase(w_init, w_final, **_):
    """Keep the weights whose magnitude grew most: ``|w_f| - |w_i|``.

    Zhou et al. (2019), Table 1 ("magnitude increase").
    """
    return w_final.abs() - w_init.abs()


def movement(w_init, w_final, **_):
    """Keep the weights that moved most during training: ``|w_f - w_i|``.

    Zhou et al. (2019), Table 1 ("movement").
    """
    return (w_final - w_init).abs()


def random(w_init, w_final, *, generator=None, **_):
    """Keep a uniformly random subset: the control of Frankle & Carbin (2019).

    Scores are i.i.d. uniform draws from ``generator`` (Zhou et al. 2019,
    Table 1, "random").
    """
    return torch.rand(w_final.shape, generator=generator, dtype=torch.float32)


def large_final_same_sign(w_init, w_final, **_):
    """Keep large trained weights that kept their initial sign: ``sign(w_i) * w_f``.

    Every weight whose sign is unchanged (score ``|w_f| > 0``) outranks every
    weight whose sign flipped (score ``-|w_f| < 0``); within each class the
    larger ``|w_f|`` is kept first among the same-sign ones and pruned first
    among the flipped ones. A weight that is zero at the start or the end
    scores 0. This is the supermask criterion of Zhou et al. (2019), Table 1
    and sec. 5.
    """
    return _sign(w_init) * w_final


def large_final_diff_sign(w_init, w_final, **_):
    """Keep large trained weights whose sign flipped: ``-sign(w_i) * w_f``.

    The mirror image of :func:`large_final_same_sign` (Zhou et al. 2019,
    Table 1).
    """
    return -_sign(w_init) * w_final


def snip(w_init, w_final, *, grad=None, **_):
    """Keep the weights with the largest connection sensitivity ``|w * dL/dw|``.

    The saliency of SNIP (Lee et al. 2019, "SNIP: Single-shot Network Pruning
    based on Connection Sensitivity"), evaluated at the weights being pruned
    (``w_final``): ``grad`` is the gradient of the training loss with respect
    to them, averaged over training batches. The estimator computes it with
    the net's own criterion; with :class:`~sklottery.Pruner` pass
    ``grad=pruner.gradients(loss_fn, batches)``. For SNIP at initialization,
    prune before training (``Pruner.prune`` on a fresh module).
    """
    if grad is None:
        raise ValueError(
            "strategy='snip' needs gradients: pass grad={name: dL/dw} (see "
            "Pruner.gradients)"
        )
    return (w_final * grad.to(w_final.device, w_final.dtype)).abs()


STRATEGIES: dict[str, ScoreFn] = {
    "large_final": large_final,
    "small_final": small_final,
    "large_init": large_init,
    "small_init": small_init,
    "large_init_large_final": large_init_large_final,
    "small_init_small_final": small_init_small_final,
    "magnitude_increase": magnitude_increase,
    "movement": movement,
    "random": random,
    "large_final_same_sign": large_final_same_sign,
    "large_final_diff_sign": large_final_diff_sign,
    "snip": snip,
}

#: Names accepted for compatibility with the Keras pruner: name -> (strategy, scope).
ALIASES: dict[str, tuple[str, str | None]] = {
    "smallest_weights": ("large_final", None),
    "smallest_weights_global": ("large_final", "global"),
}


def needs_grad(score_fn: ScoreFn) -> bool:
    """True if ``score_fn`` takes a ``grad`` keyword (gradient saliency).

    Built-in strategies accept ``**kwargs`` and ignore what they do not use, so
    only an explicitly named ``grad`` parameter counts.
    """
    try:
        params = inspect.signature(score_fn).parameters
    except (TypeError, ValueError):
        return False
    return "grad" in params


def valid_names() -> list[str]:
    return sorted(STRATEGIES) + sorted(ALIASES)


def resolve_strategy(strategy) -> tuple[ScoreFn, str | None]:
    """Return ``(score function, forced scope or None)`` for ``strategy``.

    ``strategy`` is a name from :data:`STRATEGIES` or :data:`ALIASES`, or a
    callable ``f(w_init, w_final, **kwargs) -> scores``.
    """
    if callable(strategy):
        return strategy, None
    if isinstance(strategy, str):
        if strategy in STRATEGIES:
            return STRATEGIES[strategy], None
        if strategy in ALIASES:
            name, scope = ALIASES[strategy]
            return STRATEGIES[name], scope
    raise ValueError(
        f"strategy={strategy!r} is not a known pruning strategy; valid strategies are "
        f"{valid_names()} or a callable f(w_init, w_final) -> scores."
    )


def _accepted_kwargs(fn: ScoreFn, kwargs: dict) -> dict:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


def _strategy_name(score_fn) -> str:
    return getattr(score_fn, "__name__", type(score_fn).__name__)


def _per_tensor(kwargs: dict, name: str, wf: torch.Tensor, names) -> dict:
    """The keywords for tensor ``name`` (one of ``names``): a dict gives its
    entry (it must have one); ``grad`` must have the tensor's shape."""
    out = {}
    for key, value in kwargs.items():
        if isinstance(value, dict):
            if name not in value:
                missing = [n for n in names if n not in value]
                raise ValueError(
                    f"{key} must hold a tensor for every prunable tensor; "
                    f"missing {missing}"
                )
            value = value[name]
        if key == "grad" and isinstance(value, torch.Tensor) and (
            tuple(value.shape) != tuple(wf.shape)
        ):
            raise ValueError(
                f"grad[{name!r}] must have the shape of the tensor it is the "
                f"gradient of, {tuple(wf.shape)}; got {tuple(value.shape)}"
            )
        out[key] = value
    return out


def _checked_scores(s, wf: torch.Tensor, name: str, score_fn) -> torch.Tensor:
    """``s`` as the CPU scores of ``name``: a real floating-point tensor of
    ``wf``'s shape with finite values, else a ValueError naming the strategy
    (complex, integer or bool scores are never converted silently)."""
    strategy = _strategy_name(score_fn)
    if not isinstance(s, torch.Tensor) or tuple(s.shape) != tuple(wf.shape):
        raise ValueError(
            f"the pruning strategy must return a tensor of shape "
            f"{tuple(wf.shape)} for {name!r}; got {type(s).__name__} "
            f"{tuple(getattr(s, 'shape', ()))}"
        )
    if not s.dtype.is_floating_point:
        raise ValueError(
            f"the pruning strategy {strategy} returned "
            f"{str(s.dtype).removeprefix('torch.')} scores for {name!r}: a "
            "strategy must return real floating-point scores (higher = kept)"
        )
    # float32 scores are ranked as they are: widening them to float64 is
    # exact and changes no ranking, but doubles the largest memory
    # transient of a fit (the scores of the biggest layer)
    wide = s.dtype in (torch.float32, torch.float64)
    s = s.detach().to(device="cpu", dtype=s.dtype if wide else torch.float64)
    if not bool(torch.isfinite(s).all()):
        raise ValueError(
            f"the pruning strategy {strategy} returned non-finite (NaN or inf) "
            f"scores for {name!r}: scores must be finite to be ranked"
        )
    return s


def compute_scores(
    score_fn: ScoreFn,
    w_init: dict[str, torch.Tensor],
    w_final: dict[str, torch.Tensor],
    **kwargs,
) -> dict[str, torch.Tensor]:
    """Apply ``score_fn`` tensor by tensor; checks the scores (shape, a real
    floating-point dtype, finite values) and the per-tensor keywords.

    Extra keyword arguments (``generator``, ``grad``, ...) are passed to the
    score function only where its signature accepts them, so a user's
    two-argument function works unchanged. A dict keyword holds one value per
    tensor and must name every tensor of ``w_final``; ``grad`` must have each
    tensor's shape.
    """
    scores = {}
    for name, wf in w_final.items():
        if not bool(torch.isfinite(wf).all()):
            raise ValueError(
                f"the trained weights of {name!r} contain NaN or inf: training "
                "diverged, so there is nothing to rank (lower the learning rate, "
                "clip gradients or check the inputs for extreme values)"
            )
        extra = _per_tensor(kwargs, name, wf, w_final)
        s = score_fn(w_init[name], wf, **_accepted_kwargs(score_fn, extra))
        scores[name] = _checked_scores(s, wf, name, score_fn)
    return scores
