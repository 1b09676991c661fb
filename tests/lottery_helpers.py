"""Helpers shared by the issue-4 tests (importable by worker processes too)."""

from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import Callback

from sklottery import MLP

# Epochs trained in this process, across every net carrying an EpochCounter.
EPOCHS = {"n": 0}


class EpochCounter(Callback):
    """Counts trained epochs in the module-level ``EPOCHS``.

    It holds no state of its own, so it does not change the cache key of the
    net it is attached to.
    """

    def on_epoch_end(self, net, **kwargs):
        EPOCHS["n"] += 1


def tiny_net(max_epochs=3, count=False, train_split=None, **kwargs):
    params = {
        "module__hidden_units": (16,),
        "criterion": torch.nn.CrossEntropyLoss,
        "optimizer": torch.optim.Adam,
        "lr": 0.02,
        "max_epochs": max_epochs,
        "batch_size": 64,
        "train_split": train_split,
        "iterator_train__shuffle": True,
        "verbose": 0,
        **kwargs,
    }
    if count:
        params["callbacks"] = [("count", EpochCounter())]
    return NeuralNetClassifier(MLP, **params)


def tiny_regressor_net(max_epochs=20, **kwargs):
    params = {
        "module__hidden_units": (16,),
        "optimizer": torch.optim.Adam,
        "lr": 0.02,
        "max_epochs": max_epochs,
        "batch_size": 64,
        "train_split": None,
        "iterator_train__shuffle": True,
        "verbose": 0,
        **kwargs,
    }
    return NeuralNetRegressor(MLP, **params)


def small_digits(n=300):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X[:n] / 16.0).astype(np.float32), y[:n]


# (shape, dtype) of the targets each training round saw, in this process.
TARGETS = []


class TargetSpy(Callback):
    """Records the shape and dtype of ``y`` at the start of each round."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        TARGETS.append((tuple(y.shape), y.dtype))
