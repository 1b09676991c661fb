"""One round of a lottery: :func:`run_round`, the only way a round trains.

A round prunes (when it has a ``prune`` step), rewinds the survivors (when
it has a pruner), trains from a fresh optimizer, history and callbacks, is
scored and recorded. Round 0 (the dense round, where there is nothing to
prune), rounds 1..n of the loop, the supermask's training (its module
wrapped by its caller), the retraining of the sanity checks and the rewind
points of the stability analysis all go through it, so that Ctrl-C, sparse
training, sample weights and the per-round cost behave the same in each.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..training import (
    FROM_PREDICTIONS,
    ValidationOutputs,
    rebuild_optimizer,
    release_optimizer,
    train_round,
    training_batch_size,
)
from ._interrupt import deferred_interrupt
from ._memory import n_bytes, return_freed_memory, spill, unspill
from ._results import RoundRecord, make_record, unit_totals

__all__ = ["OUTPUTS_CALLBACK", "RoundOutcome", "RoundPlan", "run_round"]

#: Name of the round's callback keeping the validation pass's predictions.
OUTPUTS_CALLBACK = "lottery_valid_outputs"


@dataclass
class RoundPlan:
    """What one round does besides training.

    Attributes
    ----------
    round : int or None
        The round's number (None: a training outside a lottery's numbering;
        skorch checkpoints then keep their own file names).
    prune : callable, optional
        ``prune()`` before the rewind (None: nothing to prune).
    rewind : bool
        Rewind the survivors with the pruner before training.
    lrs : list, optional
        Frozen learning rates (fine-tuning, ``rewind="none"``).
    callbacks : list
        ``(name, callback)`` pairs for this round only.
    max_epochs : int, optional
        Epochs instead of the net's ``max_epochs``.
    score_untrained : bool
        Score the pruned, rewound network before it trains.
    record : bool
        Score and record the trained round (False: train only).
    """

    round: int | None = None
    prune: Callable | None = None
    rewind: bool = False
    lrs: list | None = None
    callbacks: list = field(default_factory=list)
    max_epochs: int | None = None
    score_untrained: bool = False
    record: bool = True


@dataclass
class RoundOutcome:
    """What :func:`run_round` gives: ``record`` (None when interrupted or
    not recorded), whether the user ``interrupted`` and the sparse-training
    ``layouts`` used, the ``untrained_score`` and the round's ``wall_time``."""

    record: RoundRecord | None
    interrupted: bool
    layouts: list = field(default_factory=list)
    untrained_score: float = math.nan
    wall_time: float = math.nan


def run_round(net, pruner, data, plan: RoundPlan, *, score, masks=None,
              previous=None, **extra) -> RoundOutcome:
    """Run one round of ``plan`` on ``net`` (initialized) and ``data``.

    Parameters
    ----------
    net : skorch.NeuralNet
    pruner : Pruner or None
        The round's masks, rewind point and sparse training (None: a dense
        round, nothing masked).
    data : RoundData
    plan : RoundPlan
    score : callable
        The task's round score.
    masks : dict, optional
        The masks the record counts when there is no pruner (all kept when
        None: a dense round's record counts every prunable weight).
    previous : RoundRecord, optional
        The last round's record (cumulative cost).
    **extra
        More columns of the record (``ticket_epoch``, ...).
    """
    start = time.perf_counter()
    if plan.prune is not None or plan.rewind:
        release_optimizer(net)
    if plan.prune is not None:
        plan.prune()
    if plan.rewind:
        pruner.rewind()
    untrained = math.nan
    if plan.score_untrained:
        untrained = float(data.score(score, net))
    # with a validation split, the round's score comes from its last
    # validation pass (ValidationOutputs) when that is still the net's
    reusable = plan.record and data.eval_on == "valid" and score in FROM_PREDICTIONS
    outputs = ValidationOutputs() if reusable else None
    # a structured round is scored on its shrunk layers, before they go back
    # (the same outputs up to float rounding, at the small network's cost)
    shrunk = plan.record and getattr(pruner, "structured", False)
    scored = []
    interrupted, layouts = _train(
        net, pruner, data, plan, outputs,
        then=(lambda: scored.append(data.score(score, net, outputs))) if shrunk
        else None,
    )
    if interrupted or not plan.record:
        wall_time = time.perf_counter() - start
        return RoundOutcome(None, interrupted, layouts, untrained, wall_time)
    record = make_record(
        plan.round or 0,
        pruner.masks if pruner is not None else masks,
        net.history,
        data,
        score=scored[0] if scored else data.score(score, net, outputs),
        wall_time=time.perf_counter() - start,
        layouts=layouts,
        previous=previous,
        untrained_score=untrained,
        **unit_totals(pruner),
        **extra,
    )
    return RoundOutcome(record, False, layouts, untrained, record.wall_time)


def _train(net, pruner, data, plan: RoundPlan, outputs=None, then=None):
    """:func:`~sklottery.training.train_round` with the pruner's layers
    swapped for sparse training before the optimizer is built, and back
    after (Ctrl-C or not); ``outputs`` keeps the last validation pass's
    predictions; ``then()`` runs after an uninterrupted training, while the
    layers are still swapped. The rewind point is parked and freed memory
    returned first, so that the layout timing and the swap happen below the
    round's training peak. Returns (interrupted, layouts)."""
    parked = None
    layouts: list = []
    callbacks = list(plan.callbacks)
    if outputs is not None:
        callbacks.append((OUTPUTS_CALLBACK, outputs))
    try:
        with deferred_interrupt() as caught:
            if pruner is not None:
                size = n_bytes(pruner.rewind_point)
                parked = _park(pruner)
                return_freed_memory(size)
                layouts = pruner.begin_sparse_training(
                    training_batch_size(net, len(data.X_train))
                )
        interrupted = bool(caught)
        if not interrupted:
            interrupted = train_round(
                net, data.X_train, data.y_train, lrs=plan.lrs, round_=plan.round,
                sample_weight=data.w_train, callbacks=callbacks,
                max_epochs=plan.max_epochs,
            )
        if not interrupted and then is not None:
            then()
    finally:
        with deferred_interrupt() as caught:
            if parked is not None:
                _unpark(pruner, parked)
            if pruner is not None and pruner.end_sparse_training():
                rebuild_optimizer(net)
    return interrupted or bool(caught), layouts


def _park(pruner):
    """While a round trains nothing reads the pruner's rewind point and round
    start: large ones wait in a temporary file (:func:`spill`) instead of
    under the round's memory peak. Returns what :func:`_unpark` puts back."""
    point = spill(pruner.rewind_point)
    start = None if pruner.round_start_is_rewind_point else spill(pruner.round_start)
    pruner.rewind_point = None
    pruner.round_start = None
    return point, start


def _unpark(pruner, parked) -> None:
    point, start = parked
    # a callback may have set a new rewind point while the round trained
    if pruner.rewind_point is None:
        pruner.rewind_point = unspill(point)
    if start is not None:
        pruner.round_start = unspill(start)
