"""sklottery: find lottery tickets in PyTorch networks with scikit-learn."""

from .analysis import (
    plot_sanity_checks,
    sanity_checks,
    stability_analysis,
    suggest_rewind_epoch,
)
from .estimators import (
    LotteryTicketClassifier,
    LotteryTicketRegressor,
    SupermaskClassifier,
    SupermaskRegressor,
)
from .modules import MLP, ConvNet, EmbeddingNet, RecurrentNet
from .pruning import Pruner
from .training import ApplyMasks, EarlyBird, RewindCheckpoint, StopRound

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
