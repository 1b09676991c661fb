"""Retraining a network outside a fit: the building block of the sanity
checks and the stability analysis (:mod:`sklottery.analysis`).

:class:`Retraining` is what :func:`~sklottery.lottery.prepare` builds -- the
net (a fresh clone of the estimator's ``net``, sized for the data and
initialized), the split data and the validated configuration -- with the
round score. :func:`train_from` then trains that net from given values
under given masks exactly as a pruning round of the fit trains
(:func:`~sklottery.lottery.run_round`: a fresh optimizer, history and
callbacks, sparse training where the estimator uses it, the masks kept by
:class:`~sklottery.ApplyMasks`) and scores it as rounds are scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import LotteryConfig
from ..pruning import Pruner, find_prunable, load_values, unwrap_compiled
from ..pruning.rng import seeded
from ..training import ApplyMasks, RoundData
from ._loop import MASKS_CALLBACK
from ._prepare import Prepared
from ._round import RoundPlan, run_round

__all__ = ["Retraining", "evaluate", "train_from"]


@dataclass
class Retraining:
    """An initialized ``net`` (its module holds the fresh initialization
    ``init``), the split ``data``, the fit's ``config``, the round ``score``
    function and the user's callbacks."""

    net: object
    data: RoundData
    config: LotteryConfig
    score: object
    user_callbacks: list
    init: dict

    @classmethod
    def from_prepared(cls, prep: Prepared, score) -> Retraining:
        """The retraining set-up of a preamble, scored by ``score``."""
        return cls(
            net=prep.net, data=prep.data, config=prep.config, score=score,
            user_callbacks=prep.user_callbacks, init=prep.initialization(),
        )


def _all_kept(module) -> dict:
    names = {t.name for t in find_prunable(module)}
    return {
        n: torch.ones_like(p, dtype=torch.bool)
        for n, p in module.named_parameters() if n in names
    }


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
    module = unwrap_compiled(net.module_)
    if masks is None:
        masks = _all_kept(module)
    load_values(module, values, masks)
    options = setup.config.pruner
    pruner = Pruner(module, masks=masks, rescale=options["rescale"],
                    sparse_training=options["sparse_training"])
    net.callbacks = [*setup.user_callbacks, (MASKS_CALLBACK, ApplyMasks(pruner))]
    net.initialize_callbacks()
    try:
        with seeded(seed):
            plan = RoundPlan(round=round_, record=False)
            outcome = run_round(net, pruner, setup.data, plan, score=setup.score)
        if outcome.interrupted:
            raise KeyboardInterrupt("retraining was interrupted")
        return float(setup.data.score(setup.score, net))
    finally:
        # rescaling hooks belong to this retraining only
        pruner.remove_rescaling()


def evaluate(setup: Retraining, values: dict, masks: dict | None) -> float:
    """The round score of the net holding ``values`` (pruned weights zeroed
    where ``masks`` says), without training."""
    module = unwrap_compiled(setup.net.module_)
    load_values(module, values, masks)
    if masks is None or not setup.config.pruner["rescale"]:
        return float(setup.data.score(setup.score, setup.net))
    pruner = Pruner(module, masks=masks, rescale=True)
    try:
        return float(setup.data.score(setup.score, setup.net))
    finally:
        pruner.remove_rescaling()
