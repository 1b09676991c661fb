"""sklottery: find lottery tickets in PyTorch networks with scikit-learn."""

from .estimator import LotteryTicketClassifier, LotteryTicketRegressor
from .modules import MLP
from .pruning import ApplyMasks, Pruner

__version__ = "0.1.0"

__all__ = [
    "ApplyMasks",
    "LotteryTicketClassifier",
    "LotteryTicketRegressor",
    "MLP",
    "Pruner",
    "__version__",
]
