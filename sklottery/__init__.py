"""sklottery: find lottery tickets in PyTorch networks with scikit-learn."""

from .training import ApplyMasks, EarlyBird, RewindCheckpoint, StopRound
from .estimators import LotteryTicketClassifier, LotteryTicketRegressor
from .modules import MLP, ConvNet, EmbeddingNet, RecurrentNet
from .pruning import Pruner
from .analysis import plot_sanity_checks, sanity_checks
from .analysis import stability_analysis, suggest_rewind_epoch
from .estimators import SupermaskClassifier, SupermaskRegressor

__version__ = "0.2.0"

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
    "plot_sanity_checks",
    "sanity_checks",
    "stability_analysis",
    "suggest_rewind_epoch",
]
