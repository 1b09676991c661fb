"""The iterative loop of Frankle & Carbin (2019): train -> prune -> rewind.

Round 0 trains the dense network. Each later round prunes the trained
weights with the pruner's criterion and plan, rewinds the survivors to the
rewind point and retrains from a fresh optimizer, history and callbacks. One
record (a dict) is produced per round; the estimator turns them into
``rounds_``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .pruning import Pruner

__all__ = ["RoundData", "StopRound", "train_round", "run_rounds"]


class StopRound(KeyboardInterrupt):
    """Raised by a callback to end the current round's training on purpose.

    It derives from ``KeyboardInterrupt`` because that is how skorch lets a
    callback stop ``fit_loop`` (skorch's own ``EarlyStopping`` raises a plain
    ``KeyboardInterrupt``). :func:`train_round` tells such deliberate stops
    apart from a user's Ctrl-C.
    """


def _deliberate_stop(net, exc: KeyboardInterrupt) -> bool:
    """True if ``exc`` came from a callback that stops training on purpose."""
    if isinstance(exc, StopRound):
        return True
    from skorch.callbacks import EarlyStopping

    return any(
        isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience
        for _, cb in getattr(net, "callbacks_", [])
    )


@dataclass
class RoundData:
    """Tensors for training and for the per-round score.

    ``X_eval``/``y_eval`` are the validation split when the net has one, else
    the training data (``eval_on`` says which).
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_eval: torch.Tensor
    y_eval: torch.Tensor
    eval_on: str


def train_round(net, X, y) -> bool:
    """Train ``net`` from its current weights with a fresh optimizer state.

    The history and callbacks are re-initialized too, so learning-rate
    schedules and early stopping restart every round. Returns True when the
    round was interrupted by the user (``KeyboardInterrupt``, which skorch
    itself would swallow); a deliberate stop by a callback (:class:`StopRound`,
    skorch's ``EarlyStopping``) just ends the round.
    """
    net.initialize_callbacks()
    net.initialize_optimizer()
    net.initialize_history()
    net.notify("on_train_begin", X=X, y=y)
    interrupted = False
    try:
        net.fit_loop(X, y)
    except KeyboardInterrupt as exc:
        interrupted = not _deliberate_stop(net, exc)
    net.notify("on_train_end", X=X, y=y)
    return interrupted


def _last(history, key) -> float:
    try:
        return float(history[-1, key])
    except (KeyError, IndexError):
        return float("nan")


def run_rounds(
    net,
    pruner: Pruner,
    data: RoundData,
    *,
    n_rounds: int,
    score: Callable[[object, torch.Tensor, torch.Tensor], float],
    first_round: int = 0,
) -> tuple[list[dict], bool]:
    """Run rounds ``first_round .. n_rounds``; return (records, interrupted).

    ``net`` is an initialized skorch net whose callbacks include the pruner's
    :class:`~sklottery.pruning.ApplyMasks`; ``pruner.rewind_point`` holds the
    values survivors return to. On interruption the records cover the
    completed rounds only and no further round starts.
    """
    records: list[dict] = []
    total = sum(m.numel() for m in pruner.masks.values())
    for r in range(first_round, n_rounds + 1):
        start = time.perf_counter()
        if r > 0:
            pruner.prune()
            pruner.rewind()
        interrupted = train_round(net, data.X_train, data.y_train)
        if interrupted:
            return records, True
        hist = net.history
        kept = sum(pruner.n_kept().values())
        records.append(
            {
                "round": r,
                "weights_remaining": kept / total,
                "n_weights": kept,
                "epochs": len(hist),
                "train_loss": _last(hist, "train_loss"),
                "valid_loss": _last(hist, "valid_loss"),
                "score": float(score(net, data.X_eval, data.y_eval)),
                "score_on": data.eval_on,
                "wall_time": time.perf_counter() - start,
            }
        )
    return records, False


def accuracy(net, X, y) -> float:
    proba = net.predict_proba(X)
    return float(np.mean(np.argmax(proba, axis=1) == y.cpu().numpy()))
