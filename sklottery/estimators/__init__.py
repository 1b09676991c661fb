"""The scikit-learn estimators: lottery-ticket and supermask classifiers and
regressors, and the task object (classification or regression) they hand
down to the lottery."""

from ._base import BaseLotteryTicket
from ._lottery import LotteryTicketClassifier, LotteryTicketRegressor
from ._supermask import SupermaskClassifier, SupermaskRegressor
from ._task import CLASSIFICATION, REGRESSION, Task

__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "BaseLotteryTicket",
    "LotteryTicketClassifier",
    "LotteryTicketRegressor",
    "SupermaskClassifier",
    "SupermaskRegressor",
    "Task",
    "task_of",
]


def task_of(estimator) -> Task:
    """The :class:`Task` (classification or regression) of a sklottery
    estimator."""
    if not isinstance(estimator, BaseLotteryTicket):
        raise TypeError(
            "estimator must be a sklottery estimator; got "
            f"{type(estimator).__name__}"
        )
    return type(estimator)._task
