"""sklottery: find lottery tickets in PyTorch networks with scikit-learn."""

from .estimator import LotteryTicketClassifier, LotteryTicketRegressor
from .modules import MLP
from .pruning import ApplyMasks, Pruner, RewindCheckpoint
from .rounds import EarlyBird

__version__ = "0.1.0"

__all__ = [
    "ApplyMasks",
    "EarlyBird",
    "LotteryTicketClassifier",
    "LotteryTicketRegressor",
    "MLP",
    "Pruner",
    "RewindCheckpoint",
    "__version__",
]
