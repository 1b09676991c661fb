"""One round of the lottery: train a skorch net from its current weights with
a fresh optimizer, history and callbacks; the optimizer between rounds; the
per-round checkpoint names; the last value of a round's history."""

from __future__ import annotations

from skorch.callbacks import Checkpoint, TrainEndCheckpoint

from ._finite import FINITE_CALLBACK, FiniteLoss, takes_log_of_output
from ._loader import WeightedDataset
from ._loss import weighted_criterion
from ._skorch import (
    infer_classes,
    install_round_callbacks,
    prepare_accelerated,
    run_fit_loop,
)

__all__ = [
    "last_value",
    "rebuild_optimizer",
    "release_optimizer",
    "round_checkpoints",
    "train_round",
]


def train_round(
    net, X, y, *, callbacks=(), lrs=None, round_=None, sample_weight=None,
    max_epochs=None,
) -> bool:
    """Train ``net`` from its current weights with a fresh optimizer state.

    The history and callbacks are re-initialized too, so learning-rate
    schedules and early stopping restart every round. Returns True when the
    round was interrupted by the user (``KeyboardInterrupt``, which skorch
    itself would swallow); a deliberate stop by a callback
    (:class:`~sklottery.training.StopRound`, skorch's ``EarlyStopping``)
    just ends the round.

    ``callbacks`` are ``(name, callback)`` pairs added for this round only.
    ``lrs`` (one learning rate per optimizer parameter group) freezes the
    learning rates for the round: the optimizer starts at them and skorch
    ``LRScheduler`` callbacks are left out (fine-tuning at the final learning
    rate, ``rewind="none"``). ``round_`` (the round's number) gives skorch
    checkpoints per-round file names (:func:`round_checkpoints`).
    ``max_epochs`` trains that many epochs instead of ``net.max_epochs``
    (which is left as it is).

    ``sample_weight`` (one weight per row of ``X``) weights each sample's
    training loss (:class:`~sklottery.training.SampleWeightedLoss`); the
    criterion is the net's own again when the round ends.

    A NaN or infinite training loss raises ``ValueError`` naming the
    round, epoch and batch (:class:`~sklottery.training.FiniteLoss`): a
    diverged net gives no result.
    """
    check = FiniteLoss(round_, check_probabilities=takes_log_of_output(net))
    callbacks = [(FINITE_CALLBACK, check), *callbacks]
    install_round_callbacks(net, callbacks, drop_lr_schedulers=lrs is not None)
    net.initialize_optimizer()
    if lrs is not None:
        _set_lrs(net, lrs)
    prepare_accelerated(net)  # AccelerateMixin: the fresh optimizer prepared
    net.initialize_history()
    X_fit, y_fit = X, y
    criterion = net.criterion_
    if sample_weight is not None:
        net.criterion_ = weighted_criterion(net)
        X_fit, y_fit = WeightedDataset(X, y, sample_weight), None
        infer_classes(net, y)
    restore = round_checkpoints(net, round_) if round_ is not None else None
    net.notify("on_train_begin", X=X, y=y)
    try:
        try:
            interrupted = run_fit_loop(net, X_fit, y_fit, epochs=max_epochs)
        finally:
            net.criterion_ = criterion
        net.notify("on_train_end", X=X, y=y)
    finally:
        if restore is not None:
            restore()
    return interrupted


def round_checkpoints(net, round_: int):
    """Give each skorch ``Checkpoint``/``TrainEndCheckpoint`` among the net's
    initialized callbacks a per-round file name for round ``round_``: its
    ``fn_prefix`` gets ``"round{round_}_"`` appended, so that no round
    overwrites another round's files (the selected round's are
    ``f"{fn_prefix}round{selected_round_}_params.pt"``, ...). Returns a
    function that puts the user's prefixes back."""
    saved = []
    for _, cb in getattr(net, "callbacks_", []):
        if isinstance(cb, TrainEndCheckpoint):
            cb = getattr(cb, "checkpoint_", None)
        if isinstance(cb, Checkpoint):
            saved.append((cb, cb.fn_prefix))
            cb.fn_prefix = f"{cb.fn_prefix}round{round_}_"

    def restore():
        for cb, prefix in saved:
            cb.fn_prefix = prefix

    return restore


def release_optimizer(net) -> None:
    """Free the finished round's gradients and optimizer moments.

    The next round starts from a fresh optimizer anyway; freeing them before
    pruning keeps them from adding to the pruning step's memory (Adam's
    moments alone are twice the weights). The learning rates in the param
    groups are kept (fine-tuning reads them).
    """
    optimizer = getattr(net, "optimizer_", None)
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
        optimizer.state.clear()


def rebuild_optimizer(net) -> None:
    """A fresh optimizer on the module's current parameters, at the learning
    rates the old one ended with.

    After a round that trained layers sparse the old optimizer holds the
    survivors' parameters, which are gone once the dense layers are back;
    the rebuilt one holds the module's own (its moments start empty, as they
    would at the next round anyway).
    """
    lrs = [g["lr"] for g in net.optimizer_.param_groups]
    net.initialize_optimizer()
    _set_lrs(net, lrs)
    prepare_accelerated(net)


def _set_lrs(net, lrs) -> None:
    """Set the learning rate of each of the optimizer's parameter groups."""
    for group, lr in zip(net.optimizer_.param_groups, lrs):
        group["lr"] = lr


def last_value(history, key) -> float:
    """The last epoch's ``key`` in a skorch history, NaN if absent."""
    try:
        return float(history[-1, key])
    except (KeyError, IndexError):
        return float("nan")
