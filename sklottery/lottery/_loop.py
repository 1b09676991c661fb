"""The lottery: round 0 (dense), then train -> prune -> rewind, round after round.

:func:`run_lottery` is the one loop of a fit (Frankle & Carbin 2019). It
trains the dense network (round 0, cached with ``memory`` when asked), then
each round prunes the trained weights with the pruner's strategy and plan,
rewinds the survivors and retrains from a fresh optimizer, history and
callbacks. A warm start is the same loop resumed from a
:class:`LotteryState`. The loop owns round selection (which round becomes
the fitted model, :class:`~sklottery.lottery._selection.RoundSelector`) and
interruption: a Ctrl-C anywhere after round 0 ends the lottery with the last
completed round in place. It returns a :class:`LotteryResult`; nothing in it
calls back into an estimator.

Round 0 is :func:`~sklottery.lottery._dense.dense_round` (cached with
``memory``). With ``fine_tune`` later rounds keep the learning rate the
previous round ended with (``rewind="none"``); otherwise every round replays
the learning-rate schedule (Renda et al. 2020's learning-rate rewinding when
the weights are kept, ``rewind="lr"``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from skorch.history import History

from ..config import LotteryConfig
from ..pruning import Pruner, load_values
from ..pruning.at_init import needs_data
from ..training import (
    ApplyMasks,
    RoundData,
    forward_macs_of,
    gradient_function,
    loss_batches,
)
from ._dense import cached_dense_round
from ._interrupt import deferred_interrupt
from ._results import (
    LotteryResult,
    LotteryState,
    make_record,
    make_result,
    unit_totals,
)
from ._round import RoundPlan, run_round
from ._selection import RoundSelector

__all__ = ["MASKS_CALLBACK", "at_init_options", "run_lottery"]

#: Name of the mask callback on the net of a fit.
MASKS_CALLBACK = "lottery_masks"


# -- the loop --------------------------------------------------------------------
def run_lottery(
    net,
    pruner: Pruner,
    data: RoundData,
    config: LotteryConfig,
    *,
    score: Callable,
    memory=None,
    resume: LotteryState | None = None,
    progress=None,
) -> LotteryResult:
    """Run a whole lottery -- round 0 and rounds 1..n, or the rounds after
    ``resume`` -- and leave the selected round in ``net``.

    Parameters
    ----------
    net : skorch.NeuralNet
        Initialized (the fit's seed), with the user's callbacks; its
        ``train_split`` is replaced by the split already made in ``data``.
    pruner : Pruner
        Built on ``net.module_`` right after initialization, so its rewind
        point is the initialization.
    data : RoundData
    config : LotteryConfig
        The validated parameters of the fit.
    score : callable
        ``score(net, X, y) -> float``, the per-round score (called with
        ``sample_weight=`` too when the fit is weighted).
    memory : joblib.Memory, optional
        Caches round 0 (:func:`dense_round`).
    resume : LotteryState, optional
        Continue from this state (``warm_start``): rounds ``len(records)`` to
        ``config.last_round``.
    progress : object, optional
        Display only: ``progress.update(record)`` after each completed round
        and ``progress.close()`` at the end.

    Returns
    -------
    LotteryResult

    Raises
    ------
    KeyboardInterrupt
        Only when the user interrupts round 0: no round completed.
    """
    selector = RoundSelector(config.select, config.tol, config.last_round)
    user_callbacks = list(net.callbacks or [])
    net.set_params(train_split=data.valid_split())
    data.macs = forward_macs_of(net, data.X_train)
    try:
        if resume is None:
            records, lrs = _round_zero(net, pruner, data, config, score, memory)
            current = records[0]
        else:
            records, lrs = _resume(net, pruner, resume)
            selector.dense_score = records[0].score
            current = resume.current
        net.callbacks = [*user_callbacks, (MASKS_CALLBACK, ApplyMasks(pruner))]
        net.initialize_callbacks()
        # from here on, Ctrl-C keeps the last completed round
        with deferred_interrupt() as caught:
            selector.update(current, net, pruner)
        interrupted = bool(caught)
        if not interrupted:
            shown = progress if resume is None else None
            interrupted = _rounds(
                net, pruner, data, config, score, selector, records, lrs, progress,
                show_first=shown is not None,
            )
    finally:
        if progress is not None:
            progress.close()
    with deferred_interrupt() as caught:
        selector.restore(net, pruner)
        return make_result(records, selector.round, pruner,
                           interrupted=interrupted or bool(caught))


def _round_zero(net, pruner, data, config, score, memory):
    """Round 0: score the initialization, train dense (or read the cache), load
    the trained weights; return ([round-0 record], final learning rates)."""
    untrained = math.nan
    if config.score_untrained:
        untrained = float(data.score(score, net))
    # round 0 trains a clone: while it does, the fit's own net (the
    # initialization, the same values as the pruner's rewind point) holds the
    # rewind point's tensors instead of a second copy of them, then takes the
    # trained tensors themselves -- no copy of the weights is made or waits
    load_values(net.module_, pruner.rewind_point, share=True)
    dense = cached_dense_round(net, data, config, memory)
    load_values(net.module_, dense.trained, share=True)
    if dense.rewind_point is not None:  # late rewinding
        pruner.set_rewind_point(dense.rewind_point)
    net.history = History(dense.history)
    # later rounds continue torch's generator exactly where round 0 left it,
    # whether round 0 was trained now or came from the cache
    torch.set_rng_state(dense.rng_state)
    record = make_record(
        0,
        pruner.masks,
        net.history,
        data,
        score=data.score(score, net),
        wall_time=dense.wall_time,
        untrained_score=untrained,
        ticket_epoch=math.nan if dense.ticket_epoch is None else dense.ticket_epoch,
        **unit_totals(pruner),
    )
    return [record], dense.final_lrs


def _resume(net, pruner, state: LotteryState):
    """Put a fitted lottery's selected round back in ``net`` and ``pruner``."""
    device = next(iter(net.module_.parameters())).device
    load_values(net.module_, state.values)
    pruner.set_masks(state.masks)
    pruner.apply()
    pruner.set_rewind_point(state.rewind_point)
    if state.round_start is not None:
        pruner.round_start = {n: t.to(device) for n, t in state.round_start.items()}
    if state.history is not None:
        net.history = state.history
    return list(state.records), state.final_lrs


def _rounds(
    net, pruner, data, config, score, selector, records, lrs, progress, show_first
):
    """The rounds after ``records[-1]`` up to ``config.last_round``; ``records``
    grows by each completed round. Returns True if the user interrupted."""
    try:
        if show_first:
            progress.update(records[-1])
        grad_fn = at_init = None
        if config.at_init:
            at_init = at_init_function(net, pruner, data, config)
        elif pruner.needs_grad:
            grad_fn = gradient_function(
                net, pruner, data.X_train, data.y_train, seed=config.seed
            )
        for current in range(records[-1].round + 1, config.last_round + 1):
            prune = at_init or functools.partial(_prune, pruner, grad_fn)
            plan = RoundPlan(
                round=current, prune=prune, rewind=True,
                lrs=lrs if config.fine_tune else None,
                score_untrained=config.score_untrained or config.at_init,
            )
            outcome = run_round(net, pruner, data, plan, score=score,
                                previous=records[-1])
            if outcome.interrupted:
                return True
            record = outcome.record
            if config.fine_tune:
                lrs = [g["lr"] for g in net.optimizer_.param_groups]
            # the round is complete once both are done, and then only
            with deferred_interrupt() as caught:
                selector.update(record, net, pruner)
                records.append(record)
            if caught:
                return True
            if progress is not None:
                progress.update(record)
    except KeyboardInterrupt:
        return True
    return False


def _prune(pruner, grad_fn) -> None:
    """A pruning round's prune of the trained weights (with the loss
    gradients of a gradient strategy)."""
    pruner.prune(**({"grad": grad_fn()} if grad_fn is not None else {}))


def at_init_function(net, pruner, data, config):
    """``prune() -> None`` for ``schedule="at_init"``: load the rewind point
    (the initialization) and prune it with :meth:`Pruner.prune_at_init`, to
    the pruner's one-shot plan, with :func:`at_init_options`."""
    kwargs = at_init_options(net, data, config.pruner["strategy"], config.seed)

    def prune():
        load_values(net.module_, pruner.rewind_point, pruner.masks)
        pruner.prune_at_init(**kwargs)

    return prune


def at_init_options(net, data, strategy, seed) -> dict:
    """What an at-initialization ``strategy`` reads besides the weights.

    SNIP and GraSP get the net's own loss on up to 10 training batches of
    ``net.batch_size`` drawn once with the fit's seed (:func:`loss_batches`,
    as for SNIP after training); GraSP divides the output by 200 before the
    loss when the net's criterion takes logits (``CrossEntropyLoss``), as
    Wang et al. do, else by 1. SynFlow is data-free: only the shape of one
    sample of ``X`` is read for its all-ones input.
    """
    kwargs: dict = {}
    if needs_data(strategy):
        loss_fn, batches = loss_batches(net, data.X_train, data.y_train, seed=seed)
        kwargs.update(loss_fn=loss_fn, batches=batches)
        if strategy == "grasp" and not isinstance(
            net.criterion_, torch.nn.CrossEntropyLoss
        ):
            kwargs["temperature"] = 1.0
    elif strategy == "synflow":
        shape = getattr(data.X_train, "shape", None)
        if shape is not None and len(shape) >= 2:
            kwargs["input_shape"] = tuple(int(d) for d in shape[1:])
    return kwargs
