"""sklottery: find lottery tickets in PyTorch networks with scikit-learn."""

from .callbacks import ApplyMasks, EarlyBird, RewindCheckpoint, StopRound
from .estimator import LotteryTicketClassifier, LotteryTicketRegressor
from .modules import MLP, ConvNet, EmbeddingNet, RecurrentNet
from .pruning import Pruner
from .supermask import SupermaskClassifier, SupermaskRegressor

__version__ = "0.1.0"

__all__ = [
    "ApplyMasks",
    "ConvNet",
    "EarlyBird",
    "EmbeddingNet",
    "LotteryTicketClassifier",
    "LotteryTicketRegressor",
    "MLP",
    "Pruner",
    "RecurrentNet",
    "RewindCheckpoint",
    "StopRound",
    "SupermaskClassifier",
    "SupermaskRegressor",
    "__version__",
]
