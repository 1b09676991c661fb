"""The iterative loop of Frankle & Carbin (2019): train -> prune -> rewind.

Round 0 trains the dense network. Each later round prunes the trained
weights with the pruner's criterion and plan, rewinds the survivors to the
rewind point and retrains from a fresh optimizer, history and callbacks. One
record (a dict) is produced per round; the estimator turns them into
``rounds_``.

Round 0 may also set a late-rewinding point
(:class:`~sklottery.pruning.RewindCheckpoint`, Frankle et al. 2020) and stop
early once its masks settle (:class:`EarlyBird`, You et al. 2020). With
``freeze_lr`` later rounds fine-tune at the learning rate the previous round
ended with (``rewind="none"``); otherwise every round replays the learning-rate
schedule (Renda et al. 2020's learning-rate rewinding when the weights are
kept, ``rewind="lr"``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from skorch.callbacks import Callback, LRScheduler

from .pruning import Pruner, RewindCheckpoint, mask_distance
from .pruning.masks import snapshot

__all__ = [
    "DenseInterrupted",
    "EarlyBird",
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


class EarlyBird(Callback):
    """skorch callback drawing an early-bird ticket (You et al. 2020).

    At the end of every epoch it computes the masks the pruner's next
    :meth:`~sklottery.Pruner.prune` would give, records their normalized
    Hamming distance to the previous epoch's masks in the history
    (``mask_distance``), and stops training (:class:`StopRound`) once that
    distance has stayed below ``threshold`` for ``patience`` consecutive
    epochs -- the masks have settled, so the ticket can be drawn without
    finishing dense training. You et al. (2020), "Drawing Early-Bird
    Tickets", use a queue of 5 masks and ``threshold=0.1``.

    Parameters
    ----------
    pruner : Pruner
    threshold : float, default=0.1
    patience : int, default=4
    grad_fn : callable, optional
        ``grad_fn() -> {name: grad}`` for gradient criteria (``"snip"``).

    Attributes
    ----------
    epoch_ : int or None
        The epoch (1-based) at which the ticket was drawn; None if training
        ended first.
    """

    def __init__(self, pruner, threshold=0.1, patience=4, grad_fn=None):
        self.pruner = pruner
        self.threshold = threshold
        self.patience = patience
        self.grad_fn = grad_fn

    def initialize(self):
        self.previous_ = None
        self.streak_ = 0
        self.epoch_ = None
        return self

    def on_epoch_end(self, net, **kwargs):
        extra = {"grad": self.grad_fn()} if self.grad_fn is not None else {}
        # a fixed generator: random criteria must not consume the pruner's draws
        masks = self.pruner.compute_masks(
            generator=torch.Generator().manual_seed(0), **extra
        )
        if self.previous_ is not None:
            distance = mask_distance(self.previous_, masks)
            net.history.record("mask_distance", distance)
            self.streak_ = self.streak_ + 1 if distance < self.threshold else 0
        self.previous_ = masks
        if self.streak_ >= self.patience:
            self.epoch_ = len(net.history)
            raise StopRound(f"early-bird ticket drawn at epoch {self.epoch_}")


def train_round(net, X, y, *, callbacks=(), lrs=None) -> bool:
    """Train ``net`` from its current weights with a fresh optimizer state.

    The history and callbacks are re-initialized too, so learning-rate
    schedules and early stopping restart every round. Returns True when the
    round was interrupted by the user (``KeyboardInterrupt``, which skorch
    itself would swallow); a deliberate stop by a callback (:class:`StopRound`,
    skorch's ``EarlyStopping``) just ends the round.

    ``callbacks`` are ``(name, callback)`` pairs added for this round only.
    ``lrs`` (one learning rate per optimizer parameter group) freezes the
    learning rates for the round: the optimizer starts at them and skorch
    ``LRScheduler`` callbacks are left out (fine-tuning at the final learning
    rate, ``rewind="none"``).
    """
    net.initialize_callbacks()
    for _, cb in callbacks:
        cb.initialize()
    net.callbacks_ = [*net.callbacks_, *callbacks]
    if lrs is not None:
        net.callbacks_ = [
            (name, cb) for name, cb in net.callbacks_ if not isinstance(cb, LRScheduler)
        ]
    net.initialize_optimizer()
    if lrs is not None:
        for group, lr in zip(net.optimizer_.param_groups, lrs):
            group["lr"] = lr
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


def gradient_function(net, pruner: Pruner, X, y, *, max_batches=10, seed=0):
    """``grad_fn() -> {name: mean dL/dw}`` for gradient criteria (``"snip"``).

    The loss is the net's own criterion (``net.get_loss``), averaged over up
    to ``max_batches`` training batches of ``net.batch_size`` drawn once, in
    a seeded random order, so every call uses the same batches.
    """
    n = len(X)
    bs = n if net.batch_size in (None, -1) else min(int(net.batch_size), n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    batches = [
        (X[idx], y[idx])
        for idx in (order[i : i + bs] for i in range(0, min(n, bs * max_batches), bs))
    ]

    def loss_fn(module, batch):
        Xb, yb = batch
        return net.get_loss(net.infer(Xb), yb, X=Xb, training=False)

    return lambda: pruner.gradients(loss_fn, batches)


def round0_callbacks(
    pruner: Pruner,
    *,
    rewind_epoch: int | None = None,
    early_bird: dict | None = None,
    grad_fn: Callable[[], dict] | None = None,
) -> list:
    """The callbacks only the dense round gets: late rewinding's checkpoint
    and the early-bird detector, as ``(name, callback)`` pairs."""
    callbacks = []
    if rewind_epoch:
        callbacks.append(
            ("lottery_rewind_checkpoint", RewindCheckpoint(pruner, rewind_epoch))
        )
    if early_bird is not None:
        bird = EarlyBird(
            pruner, grad_fn=grad_fn if pruner.needs_grad else None, **early_bird
        )
        callbacks.append(("lottery_early_bird", bird))
    return callbacks


def _round0_results(callbacks, pruner: Pruner, n_epochs: int) -> dict:
    """Late-rewinding point and early-bird epoch after the dense round."""
    out = {}
    for name, cb in callbacks:
        if name == "lottery_rewind_checkpoint":
            if not cb.done_:
                warnings.warn(
                    f"rewind={cb.epoch}: the dense round stopped after {n_epochs} "
                    "epoch(s); rewinding to the weights at its end instead",
                    RuntimeWarning,
                    stacklevel=3,
                )
                pruner.set_rewind_point()
            out["rewind_point"] = _cpu(pruner.rewind_point)
        if name == "lottery_early_bird" and cb.epoch_ is not None:
            out["ticket_epoch"] = cb.epoch_
    return out


def dense_round(
    net,
    X_train,
    y_train,
    X_eval,
    y_eval,
    *,
    eval_on: str,
    seed: int,
    rewind_epoch: int | None = None,
    early_bird: dict | None = None,
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
    rewind_epoch : int, optional
        Late rewinding: also return the state after this epoch.
    early_bird : dict, optional
        ``{"threshold", "patience", "pruner"}``: stop the round once the
        masks of the first prune settle (:class:`EarlyBird`), computed by a
        :class:`~sklottery.Pruner` built with the keyword arguments in
        ``"pruner"`` (part of the cache key, like ``rewind_epoch``).

    Returns
    -------
    dict
        ``init`` and ``trained`` (state dicts of the module before and after
        training, on CPU), ``history`` (skorch history as a list),
        ``rng_state`` (torch's generator state after the round, so later
        rounds draw the same numbers whether or not round 0 came from a
        cache), ``final_lrs`` (the optimizer's learning rates at the end),
        ``stats`` (``epochs``, ``train_loss``, ``valid_loss``,
        ``wall_time``), and with the options above ``rewind_point`` (state
        after epoch ``rewind_epoch``, or at the end if the round stopped
        before) and ``ticket_epoch`` (the early-bird epoch, or None).

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
        callbacks = []
        if rewind_epoch or early_bird is not None:
            options = dict(early_bird or {})
            pruner = Pruner(net.module_, **options.pop("pruner", {}))
            grad_fn = None
            if early_bird is not None and pruner.needs_grad:
                grad_fn = gradient_function(net, pruner, X_tr, y_tr, seed=seed)
            callbacks = round0_callbacks(
                pruner,
                rewind_epoch=rewind_epoch,
                early_bird=options if early_bird is not None else None,
                grad_fn=grad_fn,
            )
        start = time.perf_counter()
        interrupted = train_round(net, X_tr, y_tr, callbacks=callbacks)
        wall_time = time.perf_counter() - start
        result = {
            "init": init,
            # the trained tensors themselves, not a copy: this net is dropped
            # when the function returns, so no extra copy of the weights is
            # held at the peak
            "trained": _cpu(_state(net.module_)),
            "history": net.history.to_list(),
            "rng_state": torch.get_rng_state(),
            "final_lrs": [g["lr"] for g in net.optimizer_.param_groups],
            "rewind_point": None,
            "ticket_epoch": None,
        }
        if not interrupted and callbacks:
            result.update(_round0_results(callbacks, pruner, len(net.history)))
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


def _state(module) -> dict:
    state = dict(module.named_parameters())
    state.update(module.named_buffers())
    return {n: t.detach() for n, t in state.items()}


def _cpu(state: dict) -> dict:
    return {n: t.cpu() for n, t in state.items()}


def dense_record(
    pruner: Pruner,
    stats: dict,
    score: float,
    eval_on: str,
    *,
    untrained_score: float = np.nan,
    ticket_epoch: int | None = None,
) -> dict:
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
        "untrained_score": float(untrained_score),
        "ticket_epoch": np.nan if ticket_epoch is None else float(ticket_epoch),
    }


def _release_optimizer(net) -> None:
    """Free the finished round's gradients and optimizer moments.

    The next round starts from a fresh optimizer anyway; freeing them before
    pruning keeps them from adding to the pruning step's memory (Adam's
    moments alone are twice the weights). The learning rates in the param
    groups are kept (``freeze_lr`` reads them).
    """
    optimizer = getattr(net, "optimizer_", None)
    if optimizer is not None:
        optimizer.zero_grad(set_to_none=True)
        optimizer.state.clear()


def run_rounds(
    net,
    pruner: Pruner,
    data: RoundData,
    *,
    n_rounds: int,
    score: Callable[[object, torch.Tensor, torch.Tensor], float],
    first_round: int = 1,
    on_round_end: Callable[[dict, object, Pruner], None] | None = None,
    freeze_lr: bool = False,
    initial_lrs: list | None = None,
    grad_fn: Callable[[], dict] | None = None,
) -> tuple[list[dict], bool]:
    """Run pruning rounds ``first_round`` to ``n_rounds``; return (records,
    interrupted).

    Each round prunes the trained weights, rewinds and retrains. Round 0, the
    dense training, is :func:`dense_round`'s (with late rewinding and
    early-bird stopping), so ``first_round`` is at least 1. ``net`` is an
    initialized skorch net holding the previous round's trained weights, its
    callbacks include the pruner's :class:`~sklottery.pruning.ApplyMasks`, and
    ``pruner.rewind_point`` holds the values survivors return to. On
    interruption the records cover the completed rounds only and no further
    round starts. ``on_round_end(record, net, pruner)``, when given, is called
    after each completed round (the estimator uses it to keep the selected
    round and to drive its progress bar).

    Parameters
    ----------
    freeze_lr : bool
        Rounds after the first keep the learning rates the previous round
        ended with, without learning-rate schedules (``rewind="none"``).
    initial_lrs : list of float, optional
        With ``freeze_lr``: the learning rates round ``first_round - 1``
        ended with.
    grad_fn : callable, optional
        Gradients for gradient criteria; required when ``pruner.needs_grad``.

    Each record has the columns of :func:`dense_record`; ``untrained_score``
    is the score of the masked, rewound network before the round trains (the
    "supermask" score of Zhou et al. 2019) and ``ticket_epoch`` is NaN.
    """
    if first_round < 1:
        raise ValueError(
            f"first_round must be >= 1; got {first_round} (round 0, the dense "
            "training, is dense_round's)"
        )
    if pruner.needs_grad and grad_fn is None:
        raise ValueError("the pruner's criterion needs gradients: pass grad_fn")
    records: list[dict] = []
    total = sum(m.numel() for m in pruner.masks.values())
    lrs = initial_lrs
    for r in range(first_round, n_rounds + 1):
        start = time.perf_counter()
        _release_optimizer(net)
        extra = {"grad": grad_fn()} if pruner.needs_grad else {}
        pruner.prune(**extra)
        pruner.rewind()
        untrained = float(score(net, data.X_eval, data.y_eval))
        interrupted = train_round(
            net, data.X_train, data.y_train, lrs=lrs if freeze_lr else None
        )
        if interrupted:
            return records, True
        if freeze_lr:
            lrs = [g["lr"] for g in net.optimizer_.param_groups]
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
                "untrained_score": untrained,
                "ticket_epoch": np.nan,
            }
        )
        if on_round_end is not None:
            on_round_end(records[-1], net, pruner)
    return records, False


#: Rows per forward pass when a round is scored. The score does not depend on
#: it; skorch's default for prediction (the training batch size, e.g. 60)
#: makes scoring cost a sizeable share of a short round on CPU.
SCORE_BATCH_SIZE = 4096


def _predictions(net, X, batch_size: int = SCORE_BATCH_SIZE):
    """What ``net.predict_proba`` gives (the net's predict nonlinearity applied
    to its outputs), in forward passes of ``batch_size`` rows, as batches."""
    nonlin = net._get_predict_nonlinearity()
    for start in range(0, len(X), batch_size):
        out = net.evaluation_step((X[start : start + batch_size], None), training=False)
        out = out[0] if isinstance(out, tuple) else out
        yield nonlin(out).detach().cpu()


def accuracy(net, X, y, batch_size: int = SCORE_BATCH_SIZE) -> float:
    """Accuracy of ``net`` on tensors ``X``, ``y``: what ``net.predict`` gives."""
    pred = torch.cat([p.argmax(dim=1) for p in _predictions(net, X, batch_size)])
    return float((pred == torch.as_tensor(y).cpu()).double().mean())


def r2(net, X, y, batch_size: int = SCORE_BATCH_SIZE) -> float:
    """R² of ``net``'s predictions (averaged uniformly over targets)."""
    from sklearn.metrics import r2_score

    y = torch.as_tensor(y).cpu().numpy()
    pred = torch.cat(list(_predictions(net, X, batch_size))).numpy().reshape(y.shape)
    return float(r2_score(y, pred))
