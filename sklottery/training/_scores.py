"""The built-in round scores, in batched forward passes (:func:`accuracy`,
:func:`r2`) or from predictions already made (:data:`FROM_PREDICTIONS`, fed
by :class:`ValidationOutputs`, the round's last validation pass)."""

from __future__ import annotations

import torch
from skorch.callbacks import Callback

from ._callbacks import parameter_state
from ._skorch import local_evaluation_step, predict_nonlinearity

__all__ = [
    "FROM_PREDICTIONS",
    "SCORE_BATCH_SIZE",
    "ValidationOutputs",
    "accuracy",
    "accuracy_from_predictions",
    "r2",
    "r2_from_predictions",
]

#: Rows per forward pass when a round is scored. The score does not depend on
#: it; skorch's default for prediction (the training batch size, e.g. 60)
#: makes scoring cost a sizeable share of a short round on CPU.
SCORE_BATCH_SIZE = 4096


def _predictions(net, X, batch_size: int = SCORE_BATCH_SIZE):
    """What ``net.predict_proba`` gives (the net's predict nonlinearity applied
    to its outputs), in forward passes of ``batch_size`` rows, as batches."""
    nonlin = predict_nonlinearity(net)
    for start in range(0, len(X), batch_size):
        out = local_evaluation_step(net, (X[start : start + batch_size], None))
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
    holds those very weights (:func:`~sklottery.training.parameter_state`:
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
