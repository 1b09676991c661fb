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
from .pruning.masks import snapshot

__all__ = [
    "DenseInterrupted",
    "FixedValidation",
    "RoundData",
    "StopRound",
    "dense_record",
    "dense_round",
    "train_round",
    "run_rounds",
]


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


class FixedValidation:
    """A skorch ``train_split`` returning one validation set, split once per fit."""

    def __init__(self, valid):
        self.valid = valid

    def __call__(self, dataset, y=None, **kwargs):
        return dataset, self.valid


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


class DenseInterrupted(Exception):
    """Raised by :func:`dense_round` when the user interrupts round 0.

    An exception (rather than a return value) so that a cache around
    :func:`dense_round` never stores an unfinished round. ``result`` holds
    the same keys as a finished round's result, ``stats`` excepted.
    """

    def __init__(self, result: dict):
        super().__init__("round 0 (dense training) was interrupted")
        self.result = result


def dense_round(
    net, X_train, y_train, X_eval, y_eval, *, eval_on: str, seed: int
) -> dict:
    """Round 0: initialize ``net`` from ``seed`` and train it dense.

    Everything round 1 onwards needs from round 0 comes back as plain
    values, so the function can be cached (``joblib.Memory``): its inputs are
    an *unfitted* skorch net (a specification: its parameters), numpy arrays
    and plain values -- exactly what determines the dense round, and nothing
    about pruning. Candidates of a search that differ only in pruning
    parameters therefore share one cached result.

    Parameters
    ----------
    net : skorch.NeuralNet
        Unfitted net; it is cloned, never changed. Its ``train_split`` is
        ignored: the validation data is ``X_eval``/``y_eval``.
    X_train, y_train, X_eval, y_eval : ndarray
        Training data and the data the round is scored on.
    eval_on : {"valid", "train"}
        ``"valid"`` validates on ``X_eval`` every epoch (``valid_loss``).
    seed : int
        Seeds torch's generator for initialization and shuffling.

    Returns
    -------
    dict
        ``init`` and ``trained`` (state dicts of the module before and after
        training, on CPU), ``history`` (skorch history as a list),
        ``rng_state`` (torch's generator state after the round, so later
        rounds draw the same numbers whether or not round 0 came from a
        cache) and ``stats`` (``epochs``, ``train_loss``, ``valid_loss``,
        ``wall_time``).

    Raises
    ------
    DenseInterrupted
        When the user interrupts training (never cached).
    """
    from sklearn.base import clone
    from skorch.dataset import Dataset

    net = clone(net)
    X_tr, y_tr = torch.from_numpy(X_train), torch.from_numpy(y_train)
    valid = None
    if eval_on == "valid":
        valid = Dataset(torch.from_numpy(X_eval), torch.from_numpy(y_eval))
    net.set_params(train_split=None if valid is None else FixedValidation(valid))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net.initialize()
        init = _cpu(snapshot(net.module_))
        start = time.perf_counter()
        interrupted = train_round(net, X_tr, y_tr)
        wall_time = time.perf_counter() - start
        result = {
            "init": init,
            "trained": _cpu(snapshot(net.module_)),
            "history": net.history.to_list(),
            "rng_state": torch.get_rng_state(),
        }
    if interrupted:
        raise DenseInterrupted(result)
    hist = net.history
    result["stats"] = {
        "epochs": len(hist),
        "train_loss": _last(hist, "train_loss"),
        "valid_loss": _last(hist, "valid_loss"),
        "wall_time": wall_time,
    }
    return result


def _cpu(state: dict) -> dict:
    return {n: t.cpu() for n, t in state.items()}


def dense_record(pruner: Pruner, stats: dict, score: float, eval_on: str) -> dict:
    """The round-0 record, in the same columns as :func:`run_rounds` records."""
    total = sum(m.numel() for m in pruner.masks.values())
    kept = sum(pruner.n_kept().values())
    return {
        "round": 0,
        "weights_remaining": kept / total,
        "n_weights": kept,
        "epochs": stats["epochs"],
        "train_loss": stats["train_loss"],
        "valid_loss": stats["valid_loss"],
        "score": float(score),
        "score_on": eval_on,
        "wall_time": stats["wall_time"],
    }


def run_rounds(
    net,
    pruner: Pruner,
    data: RoundData,
    *,
    n_rounds: int,
    score: Callable[[object, torch.Tensor, torch.Tensor], float],
    first_round: int = 0,
    on_round_end: Callable[[dict, object, Pruner], None] | None = None,
) -> tuple[list[dict], bool]:
    """Run rounds ``first_round .. n_rounds``; return (records, interrupted).

    ``net`` is an initialized skorch net whose callbacks include the pruner's
    :class:`~sklottery.pruning.ApplyMasks`; ``pruner.rewind_point`` holds the
    values survivors return to. On interruption the records cover the
    completed rounds only and no further round starts.
    ``on_round_end(record, net, pruner)``, when given, is called after each
    completed round (the estimator uses it to keep the selected round and to
    drive its progress bar).
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
        if on_round_end is not None:
            on_round_end(records[-1], net, pruner)
    return records, False


def accuracy(net, X, y) -> float:
    proba = net.predict_proba(X)
    return float(np.mean(np.argmax(proba, axis=1) == y.cpu().numpy()))
