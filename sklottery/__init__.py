"""sklottery: find lottery tickets in PyTorch networks with scikit-learn.

The top-level names load their subpackage on first use (PEP 562), so that
``import sklottery`` -- and the ``sklottery`` command's ``--help`` -- do not
import torch, skorch and scikit-learn until something needs them.
"""

import importlib

__version__ = "0.2.0"

#: Each public name and the subpackage (or module) that defines it.
_WHERE = {
    "ApplyMasks": "training",
    "ConvNet": "modules",
    "EarlyBird": "training",
    "EmbeddingNet": "modules",
    "LotteryTicketClassifier": "estimators",
    "LotteryTicketRegressor": "estimators",
    "MLP": "modules",
    "Pruner": "pruning",
    "RecurrentNet": "modules",
    "RewindCheckpoint": "training",
    "StopRound": "training",
    "SupermaskClassifier": "estimators",
    "SupermaskRegressor": "estimators",
    "plot_sanity_checks": "analysis",
    "sanity_checks": "analysis",
    "stability_analysis": "analysis",
    "suggest_rewind_epoch": "analysis",
}

__all__ = sorted([*_WHERE, "__version__"], key=str.lower)


def __getattr__(name):
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'sklottery' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{where}", __name__), name)
    globals()[name] = value  # loaded once
    return value


def __dir__():
    return sorted([*globals(), *_WHERE])
