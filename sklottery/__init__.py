"""sklottery: find lottery tickets in PyTorch networks with scikit-learn."""

from .callbacks import ApplyMasks, EarlyBird, RewindCheckpoint, StopRound
from .estimator import LotteryTicketClassifier, LotteryTicketRegressor
from .modules import MLP, ConvNet, EmbeddingNet, RecurrentNet
from .pruning import Pruner
from .sanity import plot_sanity_checks, sanity_checks
from .stability import stability_analysis, suggest_rewind_epoch
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
    "plot_sanity_checks",
    "sanity_checks",
    "stability_analysis",
    "suggest_rewind_epoch",
]
