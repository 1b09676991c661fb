"""Retraining an estimator's network outside a fit: the building block of
:mod:`sklottery.analysis._sanity` and :mod:`sklottery.analysis._stability`.

:func:`prepare` rebuilds what ``fit`` builds before its lottery -- the
net (a fresh clone of the estimator's ``net``, sized for the data), the
split data (:func:`~sklottery.training._train.split_data`), the validated
configuration and the per-round score -- without changing the estimator.
:func:`train_from` then trains that net from given values under given masks
exactly as a pruning round of the fit trains
(:func:`sklottery.lottery._loop._train`: a fresh optimizer, history and callbacks,
sparse training where the estimator uses it, the masks kept by
:class:`~sklottery.ApplyMasks`) and scores it as rounds are scored.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from .. import inputs
from ..training import ApplyMasks
from ..training import check_fit
from ..training import initialize_net as _initialize
from ..config import LotteryConfig, make_config
from ..pruning import Pruner
from ..pruning.masks import load_values, snapshot
from ._loop import MASKS_CALLBACK, _train
from ..training import RoundData, split_data

__all__ = ["Retraining", "evaluate", "prepare", "train_from"]


@dataclass
class Retraining:
    """What :func:`prepare` builds: an initialized ``net`` (its module holds
    the fresh initialization ``init``), the split ``data``, the fit's
    ``config``, the round ``score`` function and the user's callbacks."""

    net: object
    data: RoundData
    config: LotteryConfig
    score: object
    user_callbacks: list
    init: dict


def _check_estimator(estimator, fitted: bool):
    from ..estimators import BaseLotteryTicket

    if hasattr(estimator, "steps") and isinstance(
        estimator.steps[-1][1], BaseLotteryTicket
    ):
        raise TypeError(
            "estimator is a Pipeline; pass its last step and X transformed by "
            "the steps before it: (pipe[-1], pipe[:-1].transform(X), y)"
        )
    if not isinstance(estimator, BaseLotteryTicket):
        raise TypeError(
            "estimator must be a LotteryTicketClassifier or LotteryTicketRegressor; "
            f"got {type(estimator).__name__}"
        )
    if "rewind" not in estimator.get_params(deep=False):
        raise TypeError(
            f"{type(estimator).__name__} is not a lottery-ticket estimator (a "
            "supermask's weights are never trained, so there is no ticket to "
            "retrain); pass a LotteryTicketClassifier or LotteryTicketRegressor"
        )
    if fitted:
        check_is_fitted(estimator, "masks_")


def prepare(estimator, X, y, sample_weight=None, *, fitted=True) -> Retraining:
    """The net, data and configuration a fit of ``estimator`` on ``X``, ``y``
    would use, built on a shallow copy (the estimator is not changed).

    The seed is the one ``fit`` draws from the estimator's ``random_state``:
    with an int ``random_state`` the validation split is exactly the fit's
    (with ``None`` it is a new one). ``fitted=True`` requires a fitted
    estimator (sklearn's ``NotFittedError`` otherwise) and the classes or
    outputs of its fit.
    """
    _check_estimator(estimator, fitted)
    work = copy.copy(estimator)
    work._validate_params()
    work._check_net()
    is_fitted = hasattr(estimator, "masks_")
    seed = work._seed()
    spec = work._default_net() if work.net is None else work.net
    config = make_config(work.get_params(deep=False), seed=seed,
                         max_epochs=spec.max_epochs)
    X, y, info = work._validate_X_y(X, y, reset=not is_fitted)
    sample_weight = inputs.check_sample_weight(sample_weight, len(X))
    y, n_outputs = work._encode_y(y)
    if is_fitted and (
        n_outputs != estimator._n_outputs
        or not np.array_equal(
            getattr(work, "classes_", None), getattr(estimator, "classes_", None)
        )
    ):
        raise ValueError(
            "y must have the classes/outputs of the estimator's fit "
            f"({estimator._n_outputs} outputs); got {n_outputs}"
        )
    net = work._build_net(info, n_outputs, seed)
    data = check_fit(net, split_data(net, X, y, sample_weight))
    user_callbacks = list(net.callbacks or [])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _initialize(net, data.X_train)
    net.set_params(train_split=data.valid_split())
    return Retraining(
        net=net, data=data, config=config, score=type(estimator)._round_score,
        user_callbacks=user_callbacks, init=snapshot(net.module_),
    )


def train_from(setup: Retraining, values: dict, masks: dict | None, seed: int,
               *, round_=None) -> float:
    """Load ``values`` into the net, zero what ``masks`` prunes, train as a
    pruning round of the fit does (torch seeded with ``seed``: the data
    order) and return the round score on the held-out data (the training
    data when the net has no validation split, as in ``rounds_``).

    ``masks=None`` trains dense. The learning-rate schedule starts afresh
    (as every round of the fit but those of ``rewind="none"``).
    """
    net = setup.net
    module = net.module_
    if masks is None:
        names = _prunable_names(module)
        masks = {
            n: torch.ones_like(p, dtype=torch.bool)
            for n, p in module.named_parameters() if n in names
        }
    load_values(module, values, masks)
    options = setup.config.pruner
    pruner = Pruner(module, masks=masks, rescale=options["rescale"],
                    sparse_training=options["sparse_training"])
    net.callbacks = [*setup.user_callbacks, (MASKS_CALLBACK, ApplyMasks(pruner))]
    net.initialize_callbacks()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            interrupted, _ = _train(net, pruner, setup.data, None, round_)
        if interrupted:
            raise KeyboardInterrupt("retraining was interrupted")
        return float(setup.data.score(setup.score, net))
    finally:
        # rescaling hooks belong to this retraining only
        for handle in pruner._rescale_handles.values():
            handle.remove()


def evaluate(setup: Retraining, values: dict, masks: dict | None) -> float:
    """The round score of the net holding ``values`` (pruned weights zeroed
    where ``masks`` says), without training."""
    module = setup.net.module_
    load_values(module, values, masks)
    if masks is None or not setup.config.pruner["rescale"]:
        return float(setup.data.score(setup.score, setup.net))
    pruner = Pruner(module, masks=masks, rescale=True)
    try:
        return float(setup.data.score(setup.score, setup.net))
    finally:
        for handle in pruner._rescale_handles.values():
            handle.remove()


def _prunable_names(module) -> set:
    from ..pruning import find_prunable

    return {t.name for t in find_prunable(module)}
