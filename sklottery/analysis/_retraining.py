"""The estimator side of a retraining: which estimators can be retrained,
and their preamble (:func:`sklottery.lottery.prepare`) with the round score."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..estimators import BaseLotteryTicket, task_of
from ..lottery import Retraining, prepare

__all__ = ["check_estimator", "prepare_retraining"]


def check_estimator(estimator, fitted: bool) -> None:
    """``estimator`` is a lottery-ticket estimator (fitted, if asked)."""
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


def prepare_retraining(estimator, X, y, sample_weight=None) -> Retraining:
    """The net, data and configuration a fit of ``estimator`` on ``X``, ``y``
    would use; the estimator is not changed.

    The seed is the one ``fit`` draws from the estimator's ``random_state``:
    with an int ``random_state`` the validation split is exactly the fit's
    (with ``None`` it is a new one). A fitted estimator's ``X`` must be what
    it was fitted on, and ``y`` must have the classes or outputs of its fit.
    """
    fitted = hasattr(estimator, "masks_")
    task = task_of(estimator)
    prep = prepare(estimator, X, y, sample_weight, task=task, fitted=fitted)
    if fitted:
        outputs = estimator._n_outputs
        classes = getattr(estimator, "classes_", None)
        if prep.n_outputs != outputs or not np.array_equal(
            prep.learnt.get("classes_"), classes
        ):
            what = (f"classes {classes.tolist()}" if classes is not None
                    else f"{outputs} output(s)")
            raise ValueError(
                f"y must have the {what} of the estimator's fit; got "
                + (f"classes {prep.learnt['classes_'].tolist()}"
                   if "classes_" in prep.learnt else f"{prep.n_outputs} output(s)")
            )
    return Retraining.from_prepared(prep, task.score)
