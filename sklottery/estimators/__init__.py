"""The scikit-learn estimators: lottery-ticket and supermask classifiers and
regressors.
"""

from ._base import (
    BaseLotteryTicket,
)
from ._lottery import (
    LotteryTicketClassifier,
    LotteryTicketRegressor,
)
from ._supermask import (
    SupermaskClassifier,
    SupermaskRegressor,
)

__all__ = [
    "BaseLotteryTicket",
    "LotteryTicketClassifier",
    "LotteryTicketRegressor",
    "SupermaskClassifier",
    "SupermaskRegressor",
]
