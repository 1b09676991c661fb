"""Every use of skorch's private API, wrapped once, with its reason.

skorch has no public equivalent for these things sklottery needs:

* :func:`predict_nonlinearity` -- ``NeuralNet._get_predict_nonlinearity``:
  scoring and sparse inference must apply exactly what ``predict_proba``
  applies, batch by batch, without skorch's per-call overhead.
* :func:`install_round_callbacks` -- writes ``callbacks_``: callbacks that
  belong to one round only (late rewinding, early-bird) must be added to the
  initialized list without re-initializing the user's callbacks.
* :func:`deliberate_stop` -- reads ``EarlyStopping.misses_``: skorch's
  ``EarlyStopping`` stops training by raising ``KeyboardInterrupt``, the same
  exception as a user's Ctrl-C; only its counter tells them apart.
* :func:`run_fit_loop` -- re-implements ``partial_fit``'s few lines (with
  :func:`~sklottery.training.train_round`), because ``partial_fit`` swallows
  ``KeyboardInterrupt`` and a fit must know whether the user interrupted it.
* :func:`infer_classes` -- writes ``classes_inferred_``: a classifier infers
  its classes from ``y`` in ``check_data``, which a dataset passed as ``X``
  (weighted training rows) does not give it; its accuracy scoring needs them.
"""

from __future__ import annotations

import numpy as np
import torch
from skorch.callbacks import EarlyStopping, LRScheduler

from ._callbacks import StopRound

__all__ = [
    "deliberate_stop",
    "infer_classes",
    "install_round_callbacks",
    "predict_nonlinearity",
    "run_fit_loop",
]


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
    (:class:`~sklottery.training.StopRound`, skorch's ``EarlyStopping``)."""
    if isinstance(exc, StopRound):
        return True
    return any(
        isinstance(cb, EarlyStopping) and cb.misses_ >= cb.patience
        for _, cb in getattr(net, "callbacks_", [])
    )


def run_fit_loop(net, X, y=None, *, epochs=None) -> bool:
    """``net.fit_loop(X, y, epochs=epochs)`` (``epochs=None``: the net's
    ``max_epochs``); returns True when the user interrupted it
    (``KeyboardInterrupt`` that is not a :func:`deliberate_stop`), which
    ``partial_fit`` would swallow."""
    try:
        net.fit_loop(X, y, epochs=epochs)
    except KeyboardInterrupt as exc:
        return not deliberate_stop(net, exc)
    return False


def infer_classes(net, y) -> None:
    """Give a classifier with no ``classes`` of its own the classes of ``y``,
    as skorch's ``check_data`` would from a ``y`` it is given."""
    if hasattr(net, "classes") and net.classes is None:
        net.classes_inferred_ = np.unique(torch.as_tensor(y).cpu().numpy())
