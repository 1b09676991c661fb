"""The parameters of a lottery, validated once.

The estimators declare :data:`PARAMETER_CONSTRAINTS` (scikit-learn's
``_parameter_constraints``: types, ranges and options, checked by sklearn's
own ``_validate_params`` at the start of ``fit``); :func:`make_config` then
checks what depends on several parameters, resolves the options and returns
one frozen :class:`LotteryConfig` that the :class:`~sklottery.Pruner` and the
rounds loop (:func:`~sklottery.lottery._loop.run_lottery`) are built from. The
:class:`~sklottery.Pruner` checks its own arguments through the same helpers
of :mod:`sklottery.pruning` when it is used on its own.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from sklearn.utils._param_validation import HasMethods, Interval, Options, StrOptions

from .pruning import SCHEDULES as PRUNER_SCHEDULES
from .pruning import STRATEGIES
from .pruning.at_init import AT_INIT_ONLY, check_at_init_strategy
from .pruning.edge_popup import SCOPES as SUPERMASK_SCOPES
from .pruning.edge_popup import WEIGHT_INITS
from .pruning.kinds import check_type_rates
from .pruning.rewind import REWIND_MODES, check_rewind
from .pruning.sparse_training import check_sparse_training
from .pruning.strategies import ALIASES, resolve_strategy
from .pruning.units import GRANULARITIES, UNIT_CRITERIA

__all__ = [
    "EARLY_BIRD_DEFAULTS",
    "INFERENCE_MODES",
    "PARAMETER_CONSTRAINTS",
    "SELECT_MODES",
    "SUPERMASK_CONSTRAINTS",
    "SCHEDULES",
    "LotteryConfig",
    "Number",
    "make_config",
]

INFERENCE_MODES = ("dense", "sparse")
#: ``select``: which round becomes the fitted model.
SELECT_MODES = ("last", "best", "ticket")
#: The estimators' schedules: the Pruner's, and pruning at initialization
#: (one prune of the initialization to what "oneshot" reaches, then training).
SCHEDULES = (*PRUNER_SCHEDULES, "at_init")
#: ``rewind`` values that keep trained weights: meaningless at initialization.
_NOT_AT_INIT = ("none", "lr")
EARLY_BIRD_DEFAULTS = {"threshold": 0.1, "patience": 4}


class Number(Interval):
    """scikit-learn's ``Interval``, without bools: ``True`` is not the number 1.

    Every number of :data:`PARAMETER_CONSTRAINTS` and
    :data:`SUPERMASK_CONSTRAINTS` is one, so ``validate_parameter_constraints``
    refuses ``prune_rate=True`` or ``density=True`` for every family."""

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


class _CacheDirectory(Options):
    """A non-empty str: ``memory=""`` would cache into ``./joblib``."""

    def __init__(self):
        super().__init__(str, set())

    def is_satisfied_by(self, val):
        return isinstance(val, str) and val != ""

    def __str__(self):
        return "a non-empty str (a cache directory)"


#: scikit-learn's ``_parameter_constraints`` of both estimators.
PARAMETER_CONSTRAINTS: dict = {
    "net": "no_validation",  # checked by the task (Task.check_net)
    "n_rounds": [Number(numbers.Integral, 0, None, closed="left")],
    "prune_rate": [Number(numbers.Real, 0, 1, closed="neither"), None],
    "target_sparsity": [Number(numbers.Real, 0, 1, closed="neither"), None],
    "schedule": [StrOptions(set(SCHEDULES))],
    "strategy": [
        StrOptions(
            set(STRATEGIES) | set(ALIASES) | set(AT_INIT_ONLY) | set(UNIT_CRITERIA)
        ),
        callable,
    ],
    "rewind": [
        StrOptions(set(REWIND_MODES)),
        Number(numbers.Integral, 0, None, closed="left"),
    ],
    "scope": [StrOptions({"layer", "global"}), list, tuple],
    "output_rate_factor": [Number(numbers.Real, 0, None, closed="left"), None],
    "layer_rates": [dict, None],
    "type_rates": [dict, None],
    "exclude": [str, list, tuple, None],
    "include": [str, list, tuple, None],
    "keep_trained": [str, list, tuple, None],
    "rescale": ["boolean"],
    "sparse_training": [StrOptions({"auto", "timed"}), "boolean"],
    "granularity": [StrOptions(set(GRANULARITIES))],
    "score_untrained": ["boolean"],
    "early_bird": [
        None,
        "boolean",
        Number(numbers.Real, 0, 1, closed="neither"),
        dict,
    ],
    "select": [StrOptions(set(SELECT_MODES))],
    "tol": [Number(numbers.Real, 0, None, closed="left")],
    "memory": [None, _CacheDirectory(), HasMethods(["cache"])],
    "warm_start": ["boolean"],
    "inference": [StrOptions(set(INFERENCE_MODES))],
    "verbose": ["verbose"],
    "random_state": ["random_state"],
}


#: scikit-learn's ``_parameter_constraints`` of the supermask estimators.
SUPERMASK_CONSTRAINTS: dict = {
    "net": "no_validation",  # checked by the task (Task.check_net)
    "density": [Number(numbers.Real, 0, 1, closed="right")],
    "weight_init": [StrOptions(set(WEIGHT_INITS))],
    "scope": [StrOptions(set(SUPERMASK_SCOPES))],
    "scale_fan": ["boolean"],
    "inference": [StrOptions(set(INFERENCE_MODES))],
    "random_state": ["random_state"],
}


@dataclass(frozen=True)
class LotteryConfig:
    """Everything a lottery needs from the estimator's parameters, checked.

    Attributes
    ----------
    n_rounds : int
        Pruning rounds after round 0 (all of them, with ``warm_start``).
    last_round : int
        The last round that runs: ``n_rounds``, or 1 for one-shot pruning.
    pruner : mapping
        Keyword arguments of the fit's :class:`~sklottery.Pruner` (but its
        ``granularity`` and ``example_inputs``:
        :func:`~sklottery.lottery.pruner_options`).
    granularity : str
        ``"weight"`` or the structured ``"neuron"``/``"channel"``.
    rewind_epoch : int or None
        Late rewinding's epoch of the dense round.
    early_bird : mapping or None
        :class:`~sklottery.training._callbacks.EarlyBird` options.
    fine_tune : bool
        ``rewind="none"``: later rounds keep the learning rate the previous
        round ended with.
    select, tol
        Round selection (:class:`~sklottery.lottery._selection.RoundSelector`).
    seed : int
        The fit's seed: initialization, shuffling, the validation split and
        random strategies.
    seeded : bool
        ``random_state`` is an int: every fit draws the same ``seed`` (None
        or a ``RandomState`` draws a new one each fit, so a ``memory`` cache
        of round 0 would rarely hit).
    score_untrained : bool
        Score every round's masked, rewound network before it trains too.
    at_init : bool
        ``schedule="at_init"``: round 1 prunes the initialization (the
        pruner's one-shot plan) instead of the trained weights.
    """

    n_rounds: int
    last_round: int
    pruner: MappingProxyType
    rewind_epoch: int | None
    early_bird: MappingProxyType | None
    fine_tune: bool
    select: str
    tol: float
    seed: int
    extra: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    score_untrained: bool = False
    at_init: bool = False
    seeded: bool = True
    granularity: str = "weight"

    def with_pruner(self, **changes) -> LotteryConfig:
        """This configuration with some of the pruner's arguments changed."""
        pruner = MappingProxyType({**self.pruner, **changes})
        return dataclasses.replace(self, pruner=pruner)

    def early_bird_with_pruner(self) -> dict | None:
        """The early-bird options with the pruner's keyword arguments (how the
        dense round builds the pruner whose masks it watches)."""
        if self.early_bird is None:
            return None
        return {**self.early_bird, "pruner": dict(self.pruner),
                "granularity": self.granularity}


def early_bird_options(value) -> dict | None:
    """``early_bird`` as a dict of :class:`~sklottery.training._callbacks.EarlyBird`
    options, or None."""
    if value is None or value is False:
        return None
    if value is True:
        return dict(EARLY_BIRD_DEFAULTS)
    if isinstance(value, numbers.Real):
        value = {"threshold": value}
    unknown = set(value) - set(EARLY_BIRD_DEFAULTS)
    if unknown:
        raise ValueError(
            f"early_bird has unknown keys {sorted(unknown)}; valid keys are "
            f"{sorted(EARLY_BIRD_DEFAULTS)}"
        )
    options = {**EARLY_BIRD_DEFAULTS, **value}
    threshold, patience = options["threshold"], options["patience"]
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, numbers.Real)
        or not 0.0 < float(threshold) < 1.0
    ):
        raise ValueError(
            "early_bird threshold must be a float in the open interval (0, 1); "
            f"got {threshold!r}"
        )
    if isinstance(patience, bool) or not isinstance(patience, numbers.Integral):
        raise TypeError(f"early_bird patience must be an int >= 1; got {patience!r}")
    if patience < 1:
        raise ValueError(f"early_bird patience must be an int >= 1; got {patience!r}")
    return {"threshold": float(threshold), "patience": int(patience)}


def make_config(params: dict, *, seed: int, max_epochs: int | None) -> LotteryConfig:
    """The checked configuration of a fit from the estimator's parameters
    (``get_params(deep=False)``, already checked against
    :data:`PARAMETER_CONSTRAINTS`) and the fit's seed."""
    n_rounds = int(params["n_rounds"])
    prune_rate, target = params["prune_rate"], params["target_sparsity"]
    if prune_rate is not None and target is not None:
        raise ValueError(
            "give either prune_rate (the fraction of the remaining weights "
            "pruned each round) or target_sparsity (the sparsity after "
            "n_rounds, from which the per-round rate is derived), not both; got "
            f"prune_rate={prune_rate!r}, target_sparsity={target!r}"
        )
    if target is not None and n_rounds < 1:
        raise ValueError(
            "target_sparsity needs n_rounds >= 1 pruning rounds; "
            f"got n_rounds={n_rounds}"
        )
    strategy = params["strategy"]
    at_init = params["schedule"] == "at_init"
    granularity = params.get("granularity", "weight")
    if granularity != "weight" and at_init:
        raise ValueError(
            "schedule='at_init' ranks single weights (SNIP, GraSP, SynFlow); it "
            f"cannot be combined with granularity={granularity!r}"
        )
    if granularity != "weight" and params["rescale"]:
        raise ValueError(
            "rescale=True scales the weights a layer keeps, which structured "
            f"pruning does not thin out; use rescale=False with "
            f"granularity={granularity!r}"
        )
    if at_init:
        check_at_init_strategy(strategy)
    elif isinstance(strategy, str) and strategy in AT_INIT_ONLY:
        raise ValueError(
            f"strategy={strategy!r} prunes at initialization only: use "
            f"schedule='at_init' (got schedule={params['schedule']!r})"
        )
    elif granularity == "weight" or not (
        isinstance(strategy, str) and strategy in UNIT_CRITERIA
    ):
        resolve_strategy(strategy)
    rewind = check_rewind(params["rewind"])
    if at_init:
        _check_at_init(rewind, params["early_bird"])
    rewind_epoch = rewind if isinstance(rewind, int) else None
    late = rewind_epoch is not None and max_epochs is not None
    if late and rewind_epoch > max_epochs:
        raise ValueError(
            f"rewind={rewind_epoch} (late rewinding to epoch {rewind_epoch} of the "
            f"dense round) exceeds the net's max_epochs={max_epochs}"
        )
    early_bird = early_bird_options(params["early_bird"])
    if early_bird is not None and isinstance(strategy, str) and strategy == "random":
        raise ValueError(
            "early_bird needs a deterministic pruning strategy: with "
            "strategy='random' the masks never settle; valid strategies with "
            f"early_bird are {sorted(set(STRATEGIES) - {'random'})} or a callable"
        )
    # pruning at initialization prunes what one-shot pruning would, once
    oneshot = params["schedule"] in ("oneshot", "at_init")
    pruner = {
        "strategy": strategy,
        "prune_rate": None if prune_rate is None else float(prune_rate),
        "target_sparsity": None if target is None else float(target),
        # one-shot prunes what n_rounds iterative rounds would, once
        "n_rounds": max(n_rounds, 1) if oneshot else n_rounds,
        "schedule": "oneshot" if oneshot else params["schedule"],
        "scope": params["scope"],
        "output_rate_factor": params["output_rate_factor"],
        "layer_rates": params["layer_rates"],
        "type_rates": check_type_rates(params.get("type_rates")) or None,
        "exclude": params["exclude"],
        "include": params.get("include"),
        "keep_trained": params.get("keep_trained"),
        "rewind": rewind,
        "rescale": bool(params["rescale"]),
        "random_state": seed,
        "sparse_training": check_sparse_training(
            params.get("sparse_training", "auto")
        ),
    }
    return LotteryConfig(
        n_rounds=n_rounds,
        granularity=granularity,
        last_round=min(n_rounds, 1) if oneshot else n_rounds,
        pruner=MappingProxyType(pruner),
        rewind_epoch=rewind_epoch,
        early_bird=None if early_bird is None else MappingProxyType(early_bird),
        fine_tune=rewind == "none",
        select=params["select"],
        tol=float(params["tol"]),
        seed=int(seed),
        seeded=_is_int(params.get("random_state")),
        score_untrained=bool(params.get("score_untrained", False)),
        at_init=at_init,
    )


def _is_int(value) -> bool:
    """An int ``random_state`` (a bool is not one)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_at_init(rewind, early_bird) -> None:
    """What ``schedule="at_init"`` cannot be combined with."""
    if rewind in _NOT_AT_INIT or isinstance(rewind, int):
        raise ValueError(
            f"schedule='at_init' trains the pruned initialization, so rewind="
            f"{rewind!r} (which keeps trained weights or rewinds to a trained "
            "epoch) does not apply; valid: rewind='init', 'reinit', 'reshuffle' "
            "or 'signed_constant'"
        )
    if early_bird not in (None, False):
        raise ValueError(
            "early_bird draws the ticket during dense training; it cannot be "
            "combined with schedule='at_init' (use early_bird=None)"
        )
