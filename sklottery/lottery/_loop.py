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

import ctypes
import functools
import gc
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

import torch
from skorch.history import History

from ..training import ApplyMasks
from ..config import LotteryConfig
from ..pruning import Pruner
from ..pruning.at_init import needs_data
from ..pruning.masks import load_values
from ._dense import DenseRound, cached_dense_round, dense_round, module_code
from ._selection import RoundSelector
from ._memory import n_bytes, spill, unspill
from ..training._train import (
    FROM_PREDICTIONS,
    RoundData,
    ValidationOutputs,
    forward_macs_of,
    gradient_function,
    last_value,
    loss_batches,
    rebuild_optimizer,
    release_optimizer,
    round_cost,
    train_round,
    training_batch_size,
)

__all__ = [
    "DenseRound",
    "LotteryResult",
    "LotteryState",
    "RoundRecord",
    "dense_round",
    "module_code",
    "run_lottery",
]

#: Name of the mask callback on the net of a fit.
MASKS_CALLBACK = "lottery_masks"
#: Name of the round's callback keeping the validation pass's predictions.
OUTPUTS_CALLBACK = "lottery_valid_outputs"


@dataclass
class RoundRecord:
    """One row of ``rounds_``.

    ``untrained_score`` is the score of the masked, rewound network before the
    round trains (the "supermask" score of Zhou et al. 2019; the dense
    initialization for round 0), NaN unless ``score_untrained=True``;
    ``ticket_epoch`` is the early-bird epoch of round 0 (NaN otherwise).
    ``train_macs``: multiply-adds of the round's training with the layouts
    used (:func:`~sklottery.pruning.sparse_training.train_macs`), summed
    over rounds in ``cumulative_macs``; ``sparse_layers``: those trained sparse.
    """

    round: int
    weights_remaining: float
    n_weights: int
    epochs: int
    train_loss: float
    valid_loss: float
    score: float
    score_on: str
    wall_time: float
    untrained_score: float = math.nan
    ticket_epoch: float = math.nan
    train_macs: float = math.nan
    cumulative_macs: float = math.nan
    sparse_layers: str = ""

    @classmethod
    def from_dict(cls, row: dict) -> RoundRecord:
        """A record from a ``rounds_`` row or a ticket file's round record
        (extra columns such as ``selected`` are ignored)."""
        return cls(**{f.name: row[f.name] for f in fields(cls) if f.name in row})


def records_frame(records, selected_round):
    """``rounds_``: one row per record, with the ``selected`` column."""
    import pandas as pd

    frame = pd.DataFrame.from_records([asdict(r) for r in records])
    if records:
        frame["selected"] = frame["round"] == selected_round
    return frame


@dataclass
class LotteryState:
    """Where a lottery stands after a fit: what a warm start resumes from.

    ``values`` are the module's tensors in the selected round, ``masks`` its
    masks, ``rewind_point`` what survivors rewind to, ``round_start`` the
    weights the selected round started from (None when that is the masked
    rewind point), ``history`` its skorch history and ``final_lrs`` the
    learning rates its training ended with.
    """

    records: list[RoundRecord]
    selected_round: int
    # the selected round's tensors
    values: dict
    masks: dict
    rewind_point: dict
    round_start: dict | None = None
    history: History | None = None
    final_lrs: list | None = None

    @property
    def current(self) -> RoundRecord:
        """The selected round's record."""
        return next(r for r in self.records if r.round == self.selected_round)


@dataclass
class LotteryResult:
    """What a lottery gives besides the net (which holds the selected round).

    ``interrupted`` is True when the user pressed Ctrl-C after round 0: the
    lottery stopped after the last completed round (``records[-1]``).
    """

    records: list[RoundRecord]
    selected_round: int
    masks: dict
    rewind_point: dict
    round_start: dict | None
    sparsity: float
    layers: object
    interrupted: bool = False


def _record(round_, pruner, history, *, score, eval_on, wall_time, **extra):
    total = sum(m.numel() for m in pruner.masks.values())
    kept = sum(pruner.n_kept().values())
    return RoundRecord(
        round=round_,
        weights_remaining=kept / total,
        n_weights=kept,
        epochs=len(history),
        train_loss=last_value(history, "train_loss"),
        valid_loss=last_value(history, "valid_loss"),
        score=float(score),
        score_on=eval_on,
        wall_time=wall_time,
        **extra,
    )


# -- sparse training and cost ------------------------------------------------
def _train(net, pruner, data, lrs, round_, outputs=None):
    """:func:`train_round` with the pruner's layers swapped for sparse training
    before the optimizer is built, and back after (Ctrl-C or not);
    ``outputs`` (a :class:`~sklottery.training._train.ValidationOutputs`) keeps the
    last validation pass's predictions. The rewind point is parked and freed
    memory returned first, so that the layout timing and the swap happen
    below the round's training peak."""
    parked = None
    try:
        with deferred_interrupt() as caught:
            size = n_bytes(pruner.rewind_point)
            parked = _park(pruner)
            return_freed_memory(size)
            layouts = pruner.begin_sparse_training(
                training_batch_size(net, len(data.X_train))
            )
        interrupted = bool(caught)
        if not interrupted:
            extra = [] if outputs is None else [(OUTPUTS_CALLBACK, outputs)]
            interrupted = train_round(
                net, data.X_train, data.y_train, lrs=lrs, round_=round_,
                sample_weight=data.w_train, callbacks=extra,
            )
    finally:
        with deferred_interrupt() as caught:
            if parked is not None:
                _unpark(pruner, parked)
            if pruner.end_sparse_training():
                rebuild_optimizer(net)
    return interrupted or bool(caught), layouts


def _park(pruner):
    """While a round trains nothing reads the pruner's rewind point and round
    start: large ones wait in a temporary file (:func:`~sklottery.lottery._memory.spill`)
    instead of under the round's memory peak. Returns what :func:`_unpark`
    puts back."""
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


#: Nets with at least this many bytes of tensors (dense) give freed memory
#: back to the system before each round trains.
TRIM_BYTES = 1 << 23


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim`` (None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None


def return_freed_memory(n_bytes: int) -> bool:
    """Give the memory freed between rounds back to the system (glibc only;
    True if it was asked).

    Between two rounds a fit frees the optimizer's state and the pruning
    step's temporaries (first collected, where they sit in reference
    cycles); glibc's allocator keeps much of that in its heap
    (its mmap threshold grows with the blocks freed), where it would sit
    under the next round's training peak -- measured at 2.5 times the
    weights of a 784-4096-4096-10 net. ``malloc_trim(0)`` returns it; it
    changes no allocator setting. Skipped for nets of fewer than
    :data:`TRIM_BYTES` bytes of tensors (``n_bytes``, dense), where the
    allocator keeps little.
    """
    trim = _malloc_trim()
    if trim is None or n_bytes < TRIM_BYTES:
        return False
    # the last round's objects in reference cycles (its optimizer, the
    # swapped layers) still hold their tensors until the collector runs
    gc.collect()
    trim(0)
    return True


# -- interruption ---------------------------------------------------------------
@contextmanager
def deferred_interrupt():
    """Hold Ctrl-C while the fit's state is swapped; yields a list that gets an
    entry if one came. Outside the main thread (joblib's thread backend) there
    is no signal to hold and nothing changes."""
    caught: list = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(1))
    except ValueError:  # pragma: no cover - no signals in this interpreter
        yield caught
        return
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, previous)


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
        return LotteryResult(
            records=records,
            selected_round=selector.round,
            masks={n: m.detach().cpu() for n, m in pruner.masks.items()},
            # CPU tensors so pickling works anywhere (no copy on the CPU)
            rewind_point={n: t.detach().cpu() for n, t in pruner.rewind_point.items()},
            round_start=None
            if pruner.round_start_is_rewind_point
            else {n: t.detach().cpu() for n, t in pruner.round_start.items()},
            sparsity=pruner.sparsity(),
            layers=pruner.layer_table(),
            interrupted=interrupted or bool(caught),
        )


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
    record = _record(
        0,
        pruner,
        net.history,
        score=data.score(score, net),
        eval_on=data.eval_on,
        wall_time=dense.wall_time,
        untrained_score=untrained,
        ticket_epoch=math.nan if dense.ticket_epoch is None else dense.ticket_epoch,
        **round_cost(data, [], dense.epochs, None),
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
            start = time.perf_counter()
            release_optimizer(net)
            if at_init is not None:
                at_init()
            else:
                extra = {"grad": grad_fn()} if grad_fn is not None else {}
                pruner.prune(**extra)
            pruner.rewind()
            untrained = math.nan
            if config.score_untrained or config.at_init:
                untrained = float(data.score(score, net))
            frozen = lrs if config.fine_tune else None
            # with a validation split, the round's score comes from its last
            # validation pass (ValidationOutputs) when that is still the net's
            reusable = data.eval_on == "valid" and score in FROM_PREDICTIONS
            outputs = ValidationOutputs() if reusable else None
            interrupted, layouts = _train(net, pruner, data, frozen, current, outputs)
            if interrupted:
                return True
            if config.fine_tune:
                lrs = [g["lr"] for g in net.optimizer_.param_groups]
            record = _record(
                current,
                pruner,
                net.history,
                score=data.score(score, net, outputs),
                eval_on=data.eval_on,
                wall_time=time.perf_counter() - start,
                untrained_score=untrained,
                **round_cost(data, layouts, len(net.history), records[-1]),
            )
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
