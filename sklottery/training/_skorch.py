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
* :func:`clone_net` -- reads and writes ``AccelerateMixin``'s
  ``_wrapped_with_accelerator``: skorch's ``get_params`` reports that flag
  as a parameter, so an initialized (prepared) accelerate net cannot be
  cloned by scikit-learn, which checks that the constructor keeps it.
* :func:`prepare_accelerated` -- calls ``AccelerateMixin``'s
  ``_unwrap_accelerator``/``_initialize_accelerator``: every round builds a
  fresh optimizer, which must be ``accelerator.prepare``-d (the grad
  scaler's and gradient accumulation's step), and the module must be wrapped
  again (DDP's gradient all-reduce) after ``on_train_end`` unwrapped it.
  It and :func:`accelerated_initialization` also keep accelerate from
  wrapping a module without trainable parameters (a loss) in
  ``DistributedDataParallel`` in several CPU processes, which torch refuses
  ("DistributedDataParallel is not needed when a module doesn't have any
  parameter that requires a gradient"): skorch prepares the criterion too.
* :func:`local_evaluation_step` -- calls the ``evaluation_step`` that
  ``AccelerateMixin`` overrides: its override gathers the outputs of every
  process, right for a sharded DataLoader, but a round's score is computed by
  each process on all evaluation rows itself (the same figure everywhere).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from skorch.callbacks import EarlyStopping, LRScheduler

from ._callbacks import StopRound

__all__ = [
    "accelerated_initialization",
    "accelerator_of",
    "clone_net",
    "deliberate_stop",
    "infer_classes",
    "install_round_callbacks",
    "local_evaluation_step",
    "predict_nonlinearity",
    "prepare_accelerated",
    "run_fit_loop",
]

_WRAPPED = "_wrapped_with_accelerator"  # AccelerateMixin's flag


def accelerator_of(net):
    """The ``accelerate.Accelerator`` of a skorch ``AccelerateMixin`` net,
    None for any other net."""
    if not hasattr(net, _WRAPPED):
        return None
    return getattr(net, "accelerator", None)


def local_evaluation_step(net, batch):
    """``net.evaluation_step(batch, training=False)`` in this process only:
    for an ``AccelerateMixin`` net, without gathering the outputs of the
    other processes."""
    if accelerator_of(net) is None:
        return net.evaluation_step(batch, training=False)
    from skorch.hf import AccelerateMixin

    return super(AccelerateMixin, net).evaluation_step(batch, training=False)


def clone_net(net):
    """``sklearn.base.clone(net)``: an unfitted copy of ``net``'s parameters,
    for an initialized ``AccelerateMixin`` net too (its wrapped flag is
    reported as a parameter, which the clone must start without)."""
    from sklearn.base import clone

    if not getattr(net, _WRAPPED, False):
        return clone(net)
    setattr(net, _WRAPPED, False)
    try:
        return clone(net)
    finally:
        setattr(net, _WRAPPED, True)


def prepare_accelerated(net) -> None:
    """For an ``AccelerateMixin`` net, ``accelerator.prepare`` its module,
    criterion and current optimizer again (a no-op for other nets).

    A round builds a fresh optimizer (:func:`~sklottery.training.train_round`)
    after the last round's ``on_train_end`` unwrapped the module; both must
    go through ``accelerator.prepare`` -- the optimizer for the grad
    scaler's (mixed precision) and gradient accumulation's step, the module
    for its data-parallel wrapper's gradient all-reduce in several
    processes. The module's parameters stay the same tensors.
    """
    if accelerator_of(net) is None:
        return
    net._unwrap_accelerator()
    with accelerated_initialization(net):
        net._initialize_accelerator()


@contextmanager
def accelerated_initialization(net):
    """While it lasts, the accelerator of an ``AccelerateMixin`` net in
    several processes leaves a module without trainable parameters (the
    criterion) unwrapped, only placed on its device; anything else is
    prepared as accelerate does (a no-op context for other nets)."""
    accelerator = accelerator_of(net)
    if accelerator is None or accelerator.num_processes < 2:
        yield
        return
    prepare_model = accelerator.prepare_model

    def prepare(model, device_placement=None, evaluation_mode=False):
        if any(p.requires_grad for p in model.parameters()):
            return prepare_model(model, device_placement, evaluation_mode)
        if device_placement is None:
            device_placement = accelerator.device_placement
        return model.to(accelerator.device) if device_placement else model

    accelerator.prepare_model = prepare  # an instance attribute, removed after
    try:
        yield
    finally:
        del accelerator.prepare_model


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
