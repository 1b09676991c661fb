"""Training one round with skorch, and every use of skorch's private API.

:func:`train_round` trains a skorch net from its current weights with a
fresh optimizer, history and callbacks -- one round of the lottery. The
rest are small adapters between the rounds loop and skorch: the data split
made once per fit (:func:`split_data`, :class:`FixedValidation`), batched
scoring (:func:`accuracy`, :func:`r2`) and the loss gradients that gradient
strategies need (:func:`gradient_function`).

skorch has no public equivalent for four things sklottery needs; each is
wrapped here, once, with the reason:

* :func:`predict_nonlinearity` -- ``NeuralNet._get_predict_nonlinearity``:
  scoring and sparse inference must apply exactly what ``predict_proba``
  applies, batch by batch, without skorch's per-call overhead.
* :func:`install_round_callbacks` -- writes ``callbacks_``: callbacks that
  belong to one round only (late rewinding, early-bird) must be added to the
  initialized list without re-initializing the user's callbacks.
* :func:`deliberate_stop` -- reads ``EarlyStopping.misses_``: skorch's
  ``EarlyStopping`` stops training by raising ``KeyboardInterrupt``, the same
  exception as a user's Ctrl-C; only its counter tells them apart.
* :func:`train_round` re-implements ``partial_fit``'s few lines, because
  ``partial_fit`` swallows ``KeyboardInterrupt`` and a fit must know whether
  the user interrupted it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skorch.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    LRScheduler,
    TrainEndCheckpoint,
)
from skorch.dataset import Dataset, ValidSplit
from torch.utils.data import DataLoader, Subset

from ._callbacks import StopRound, parameter_state
from ._loader import WeightedDataset, as_rows, take_rows
from ..pruning.sparse_training import forward_macs, train_macs

__all__ = [
    "FixedValidation",
    "RoundData",
    "SampleWeightedLoss",
    "ValidationOutputs",
    "accuracy",
    "deliberate_stop",
    "forward_macs_of",
    "gradient_function",
    "loss_batches",
    "install_round_callbacks",
    "predict_nonlinearity",
    "r2",
    "rebuild_optimizer",
    "round_cost",
    "round_checkpoints",
    "seed_train_split",
    "split_data",
    "train_round",
    "training_batch_size",
]

#: Rows per forward pass when a round is scored. The score does not depend on
#: it; skorch's default for prediction (the training batch size, e.g. 60)
#: makes scoring cost a sizeable share of a short round on CPU.
SCORE_BATCH_SIZE = 4096


@dataclass
class RoundData:
    """Tensors for training and for the per-round score.

    ``X_eval``/``y_eval`` are the validation split when the net has one, else
    the training data (``eval_on`` says which). ``X`` is a tensor or
    :class:`~sklottery.training._loader.SparseRows`; ``w_train``/``w_eval`` are the
    rows' ``sample_weight`` (None: unweighted).
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_eval: torch.Tensor
    y_eval: torch.Tensor
    eval_on: str
    w_train: torch.Tensor | None = None
    w_eval: torch.Tensor | None = None

    def score(self, score, net, outputs=None) -> float:
        """``score(net, X_eval, y_eval)``, weighted by ``w_eval`` if any.

        With ``outputs`` (:class:`ValidationOutputs` of the round just
        trained) a built-in score (:func:`accuracy`, :func:`r2`) is computed
        from the predictions of the round's last validation pass when they
        are still those of the net's weights: the same value, without a
        second forward pass over the same rows.
        """
        from_predictions = FROM_PREDICTIONS.get(score)
        if outputs is not None and from_predictions is not None:
            pred = outputs.predictions(net, self.y_eval)
            if pred is not None:
                return from_predictions(pred, self.y_eval, self.w_eval)
        if self.w_eval is None:
            return score(net, self.X_eval, self.y_eval)
        return score(net, self.X_eval, self.y_eval, sample_weight=self.w_eval)
    #: per-sample forward multiply-adds of the layers (``forward_macs_of``)
    macs: dict | None = None

    def valid_split(self):
        """The ``train_split`` that validates on this split every epoch."""
        if self.eval_on != "valid":
            return None
        return FixedValidation(Dataset(self.X_eval, self.y_eval))


class FixedValidation:
    """A skorch ``train_split`` returning one validation set, split once per fit."""

    def __init__(self, valid):
        self.valid = valid

    def __call__(self, dataset, y=None, **kwargs):
        return dataset, self.valid


def seed_train_split(net, seed: int):
    """Give the net's ``ValidSplit`` the fit's seed when it has none of its own.

    skorch's default ``train_split`` is ``ValidSplit(5)`` without a seed; left
    so, every fit would validate on other rows and ``random_state`` would not
    make a fit repeatable (nor let a ``memory`` cache hit).
    """
    split = net.train_split
    # (an int cv takes the last fold, which needs no seed; a float cv draws)
    if (
        isinstance(split, ValidSplit)
        and split.random_state is None
        and isinstance(split.cv, float)
    ):
        net.set_params(
            train_split=ValidSplit(
                split.cv, stratified=split.stratified, random_state=seed
            )
        )
    return net


def _rows(ds, X, y, w):
    """The rows of a split dataset (and their weights), without going item by
    item where the split is a plain ``Subset`` of the data; sparse rows stay
    sparse."""
    if isinstance(ds, Subset) and isinstance(ds.dataset, Dataset):
        idx = torch.as_tensor(np.asarray(ds.indices), dtype=torch.long)
        return take_rows(X, idx), y[idx], None if w is None else w[idx]
    if w is not None:
        raise ValueError(
            "sample_weight needs the net's train_split to return subsets of the "
            "data (skorch's ValidSplit does); this train_split returns "
            f"{type(ds).__name__}"
        )
    Xs, ys = next(iter(DataLoader(ds, batch_size=len(ds))))
    return torch.as_tensor(Xs), torch.as_tensor(ys), None


def split_data(net, X, y, sample_weight=None) -> RoundData:
    """Split once per fit with the net's own ``train_split``; ``X`` is an
    ndarray, a tensor or :class:`~sklottery.training._loader.SparseRows`."""
    X_t, y_t = as_rows(X), torch.from_numpy(y)
    w = None if sample_weight is None else torch.as_tensor(sample_weight)
    if net.train_split is None:
        return RoundData(X_t, y_t, X_t, y_t, "train", w, w)
    ds_train, ds_valid = net.get_split_datasets(X_t, y)
    X_tr, y_tr, w_tr = _rows(ds_train, X_t, y_t, w)
    if ds_valid is None or len(ds_valid) == 0:
        return RoundData(X_tr, y_tr, X_tr, y_tr, "train", w_tr, w_tr)
    X_va, y_va, w_va = _rows(ds_valid, X_t, y_t, w)
    return RoundData(X_tr, y_tr, X_va, y_va, "valid", w_tr, w_va)


# -- skorch's private API, wrapped once ---------------------------------------
def predict_nonlinearity(net):
    """The function ``net.predict_proba`` applies to the module's output."""
    return net._get_predict_nonlinearity()


def install_round_callbacks(net, callbacks=(), *, drop_lr_schedulers=False):
    """Re-initialize the net's callbacks, then add ``callbacks`` (``(name,
    callback)`` pairs) for this round only; optionally leave out the user's
    ``LRScheduler`` callbacks (fine-tuning at a frozen learning rate)."""
    net.initialize_callbacks()
    for _, cb in callbacks:
        cb.initialize()
    installed = [*net.callbacks_, *callbacks]
    if drop_lr_schedulers:
        installed = [(n, cb) for n, cb in installed if not isinstance(cb, LRScheduler)]
    net.callbacks_ = installed


def deliberate_stop(net, exc: KeyboardInterrupt) -> bool:
    """True if ``exc`` came from a callback that stops training on purpose
    (:class:`~sklottery.training._callbacks.StopRound`, skorch's ``EarlyStopping``)."""
    if isinstance(exc, StopRound):
        return True
    return any(
        isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience
        for _, cb in getattr(net, "callbacks_", [])
    )


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


class SampleWeightedLoss(torch.nn.Module):
    """The net's criterion with each sample's loss weighted.

    Targets ``(y, w)`` (training batches of a
    :class:`~sklottery.training._loader.WeightedDataset`) give the weighted mean
    ``sum_i(w_i * l_i) / sum_i(w_i)`` over the batch, ``l_i`` the criterion's
    unreduced loss of sample ``i`` (averaged over its outputs) -- the
    convention of torch's class weights: an integer weight counts a sample
    that many times, a zero weight removes it (a batch of zero weights has
    loss 0). ``reduction="sum"`` gives ``sum_i(w_i * l_i)``. Plain targets
    give the criterion's own loss. ``log_input`` applies what
    ``NeuralNetClassifier.get_loss`` applies before an ``NLLLoss``.
    """

    def __init__(self, criterion, log_input=False):
        super().__init__()
        if getattr(criterion, "reduction", None) not in ("mean", "sum"):
            raise ValueError(
                "sample_weight needs the net's criterion to be a torch loss with "
                "reduction='mean' or 'sum' (it weights each sample's unreduced "
                f"loss); got {type(criterion).__name__}"
            )
        self.criterion = criterion
        self.log_input = log_input

    def forward(self, y_pred, y_true):
        weights = None
        if isinstance(y_true, (tuple, list)):
            y_true, weights = y_true
        if self.log_input:
            y_pred = torch.log(y_pred + torch.finfo(y_pred.dtype).eps)
        if weights is None:
            return self.criterion(y_pred, y_true)
        reduction = self.criterion.reduction
        self.criterion.reduction = "none"
        try:
            loss = self.criterion(y_pred, y_true)
        finally:
            self.criterion.reduction = reduction
        loss = loss.reshape(len(weights), -1).mean(dim=1)
        weights = weights.to(device=loss.device, dtype=loss.dtype)
        total = (loss * weights).sum()
        if reduction == "sum":
            return total
        return total / weights.sum().clamp(min=torch.finfo(loss.dtype).tiny)


def _weighted_criterion(net):
    from skorch import NeuralNetClassifier

    inner = net.criterion_
    log_input = isinstance(net, NeuralNetClassifier) and isinstance(
        inner, torch.nn.NLLLoss
    )
    return SampleWeightedLoss(inner, log_input=log_input)


def train_round(
    net, X, y, *, callbacks=(), lrs=None, round_=None, sample_weight=None
) -> bool:
    """Train ``net`` from its current weights with a fresh optimizer state.

    The history and callbacks are re-initialized too, so learning-rate
    schedules and early stopping restart every round. Returns True when the
    round was interrupted by the user (``KeyboardInterrupt``, which skorch
    itself would swallow); a deliberate stop by a callback
    (:class:`~sklottery.training._callbacks.StopRound`, skorch's ``EarlyStopping``)
    just ends the round.

    ``callbacks`` are ``(name, callback)`` pairs added for this round only.
    ``lrs`` (one learning rate per optimizer parameter group) freezes the
    learning rates for the round: the optimizer starts at them and skorch
    ``LRScheduler`` callbacks are left out (fine-tuning at the final learning
    rate, ``rewind="none"``). ``round_`` (the round's number) gives skorch
    checkpoints per-round file names (:func:`round_checkpoints`).

    ``sample_weight`` (one weight per row of ``X``) weights each sample's
    training loss (:class:`SampleWeightedLoss`); the criterion is the net's
    own again when the round ends.
    """
    install_round_callbacks(net, callbacks, drop_lr_schedulers=lrs is not None)
    net.initialize_optimizer()
    if lrs is not None:
        for group, lr in zip(net.optimizer_.param_groups, lrs):
            group["lr"] = lr
    net.initialize_history()
    X_fit, y_fit = X, y
    criterion = net.criterion_
    if sample_weight is not None:
        net.criterion_ = _weighted_criterion(net)
        X_fit, y_fit = WeightedDataset(X, y, sample_weight), None
        if hasattr(net, "classes") and net.classes is None:
            # skorch infers a classifier's classes from y, which a dataset
            # passed as X does not give it (its accuracy scoring needs them)
            net.classes_inferred_ = np.unique(torch.as_tensor(y).cpu().numpy())
    restore = round_checkpoints(net, round_) if round_ is not None else None
    net.notify("on_train_begin", X=X, y=y)
    interrupted = False
    try:
        try:
            net.fit_loop(X_fit, y_fit)
        except KeyboardInterrupt as exc:
            interrupted = not deliberate_stop(net, exc)
        finally:
            net.criterion_ = criterion
        net.notify("on_train_end", X=X, y=y)
    finally:
        if restore is not None:
            restore()
    return interrupted


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
    for group, lr in zip(net.optimizer_.param_groups, lrs):
        group["lr"] = lr


def training_batch_size(net, n_rows: int) -> int:
    """Rows per training batch of ``net`` on ``n_rows`` rows."""
    size = net.get_params_for("iterator_train").get("batch_size", net.batch_size)
    if size in (None, -1):
        return max(1, int(n_rows))
    return max(1, min(int(size), int(n_rows)))


def last_value(history, key) -> float:
    """The last epoch's ``key`` in a skorch history, NaN if absent."""
    try:
        return float(history[-1, key])
    except (KeyError, IndexError):
        return float("nan")


def forward_macs_of(net, X):
    """Per-sample forward multiply-adds of the net's layers, or None when a
    single row cannot be run through the module on its own."""
    try:
        device = next(iter(net.module_.parameters())).device
        return forward_macs(net.module_, X[:1].to(device))
    except Exception:  # noqa: BLE001 - the cost columns are then NaN
        return None


def round_cost(data, layouts, epochs, previous):
    """A round record's cost columns (``train_macs``, ``cumulative_macs``,
    ``sparse_layers``) for ``epochs`` epochs with ``layouts``."""
    names = ",".join(r["name"] for r in layouts if r["layout"] == "sparse")
    if data.macs is None:
        return {"sparse_layers": names}
    macs = float(train_macs(data.macs, layouts, epochs * len(data.X_train)))
    before = 0.0 if previous is None else previous.cumulative_macs
    return {
        "train_macs": macs,
        "cumulative_macs": before + macs,
        "sparse_layers": names,
    }


# -- scoring and gradients ----------------------------------------------------
def _predictions(net, X, batch_size: int = SCORE_BATCH_SIZE):
    """What ``net.predict_proba`` gives (the net's predict nonlinearity applied
    to its outputs), in forward passes of ``batch_size`` rows, as batches."""
    nonlin = predict_nonlinearity(net)
    for start in range(0, len(X), batch_size):
        out = net.evaluation_step((X[start : start + batch_size], None), training=False)
        out = out[0] if isinstance(out, tuple) else out
        yield nonlin(out).detach().cpu()


def accuracy(
    net, X, y, batch_size: int = SCORE_BATCH_SIZE, sample_weight=None
) -> float:
    """Accuracy of ``net`` on tensors ``X``, ``y``: what ``net.predict`` gives
    (weighted by ``sample_weight`` if given)."""
    pred = torch.cat([p.argmax(dim=1) for p in _predictions(net, X, batch_size)])
    return _accuracy(pred, y, sample_weight)


def accuracy_from_predictions(proba, y, sample_weight=None) -> float:
    """:func:`accuracy` from the net's ``predict_proba`` output ``proba``."""
    return _accuracy(proba.argmax(dim=1), y, sample_weight)


def _accuracy(labels, y, sample_weight) -> float:
    correct = (labels == torch.as_tensor(y).cpu()).double()
    if sample_weight is None:
        return float(correct.mean())
    w = torch.as_tensor(sample_weight).double().cpu()
    return float((correct * w).sum() / w.sum())


def r2(net, X, y, batch_size: int = SCORE_BATCH_SIZE, sample_weight=None) -> float:
    """R² of ``net``'s predictions (averaged uniformly over targets; weighted
    by ``sample_weight`` if given)."""
    pred = torch.cat(list(_predictions(net, X, batch_size)))
    return r2_from_predictions(pred, y, sample_weight)


def r2_from_predictions(pred, y, sample_weight=None) -> float:
    """:func:`r2` from the net's predictions ``pred``."""
    from sklearn.metrics import r2_score

    y = torch.as_tensor(y).cpu().numpy()
    w = None if sample_weight is None else torch.as_tensor(sample_weight).numpy()
    return float(r2_score(y, pred.numpy().reshape(y.shape), sample_weight=w))


#: The built-in round scores, computed from predictions already made.
FROM_PREDICTIONS = {accuracy: accuracy_from_predictions, r2: r2_from_predictions}


class ValidationOutputs(Callback):
    """Keeps the module's outputs of the last epoch's validation pass, with
    the state of the weights that made them; :meth:`predictions` gives what
    ``predict_proba`` would (the net's predict nonlinearity applied).

    After training, :meth:`predictions` gives them back when the module still
    holds those very weights (:func:`~sklottery.training._callbacks.parameter_state`:
    no step, ``load_best``, swap or rewind since) and they cover the
    evaluation rows in order; else None and the round is scored by a forward
    pass as before.
    """

    def initialize(self):
        self.preds_, self.ys_, self.state_ = [], [], None
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.initialize()

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if training or y_pred is None or not isinstance(batch, (tuple, list)):
            return
        if self.state_ is None:
            self.state_ = parameter_state(net.module_)
        out = y_pred[0] if isinstance(y_pred, tuple) else y_pred
        self.preds_.append(out.detach().cpu())
        self.ys_.append(torch.as_tensor(batch[1]).cpu())

    def predictions(self, net, y):
        """The kept predictions if they are the net's and cover ``y`` in
        order, else None."""
        if not self.preds_ or self.state_ != parameter_state(net.module_):
            return None
        seen = torch.cat(self.ys_)
        y = torch.as_tensor(y).cpu()
        if seen.shape != y.shape or not torch.equal(seen.to(y.dtype), y):
            return None
        # the nonlinearity acts row by row: applied once, to the last pass
        return predict_nonlinearity(net)(torch.cat(self.preds_))


def loss_batches(net, X, y, *, max_batches=10, seed=0):
    """``(loss_fn, batches)``: the net's own loss (``net.get_loss``, eval mode)
    as ``loss_fn(module, batch)``, and up to ``max_batches`` training batches
    of ``net.batch_size`` drawn once, in a seeded random order."""
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

    return loss_fn, batches


def gradient_function(net, pruner, X, y, *, max_batches=10, seed=0):
    """``grad_fn() -> {name: mean dL/dw}`` for gradient strategies (``"snip"``).

    The loss is the net's own loss (``net.get_loss``), averaged over up to
    ``max_batches`` training batches of ``net.batch_size`` drawn once, in a
    seeded random order, so every call uses the same batches
    (:func:`loss_batches`).
    """
    loss_fn, batches = loss_batches(net, X, y, max_batches=max_batches, seed=seed)
    return lambda: pruner.gradients(loss_fn, batches)
