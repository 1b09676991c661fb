"""What differs between classification and regression, in one object.

A :class:`Task` is handed down to :func:`sklottery.lottery.prepare` and the
rounds: the skorch net class the ``net`` parameter must be, how ``y`` is
checked and encoded, the default network's extra options and the per-round
score. Nothing below the estimators reads the estimator class for these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from skorch import NeuralNetClassifier, NeuralNetRegressor

from ..training import accuracy, r2

__all__ = ["CLASSIFICATION", "REGRESSION", "Task"]


@dataclass(frozen=True)
class Task:
    """Classification or regression, as the lottery sees it.

    Attributes
    ----------
    name : {"classification", "regression"}
    net_class : type
        The skorch net class of the ``net`` parameter (and of the default).
    y_checks : dict
        What scikit-learn's ``validate_data`` checks of ``y``.
    score : callable
        ``score(net, X, y, sample_weight=None) -> float``, the round score.
    encode : callable
        ``encode(y, estimator_name) -> (y, n_outputs, attrs)``: the targets
        the net trains on, its number of outputs and the fitted attributes
        learnt from ``y`` (``classes_``, ``_y_1d``).
    default_net_kwargs : dict
        What the default network (``net=None``) sets beyond the shared
        defaults.
    """

    name: str
    net_class: type
    y_checks: dict
    score: Callable
    encode: Callable
    default_net_kwargs: dict = field(default_factory=dict)

    def default_net(self, module, **changes):
        """``net=None``: ``module`` (for tables a LeNet-300-100-shaped
        :class:`~sklottery.MLP`) trained with Adam (lr 1.2e-3, batch 60, 10
        epochs), no validation split; ``changes`` override these."""
        options = {
            "optimizer": torch.optim.Adam,
            "lr": 1.2e-3,
            "batch_size": 60,
            "max_epochs": 10,
            "train_split": None,
            "iterator_train__shuffle": True,
            "verbose": 0,
            **self.default_net_kwargs,
            **changes,
        }
        return self.net_class(module, **options)

    def check_net(self, net) -> None:
        """The ``net`` parameter: a skorch net of this task's kind, or None."""
        if net is None:
            return
        name = self.net_class.__name__
        if isinstance(net, type):
            raise TypeError(
                f"net must be a skorch {name} instance, e.g. {name}(MyModule, ...); "
                f"got the class {net.__name__}"
            )
        if not isinstance(net, self.net_class):
            raise TypeError(
                f"net must be a skorch {name} (or None for the default MLP); got "
                f"{type(net).__name__}"
            )


def _encode_classes(y, estimator_name):
    check_classification_targets(y)
    encoder = LabelEncoder().fit(y)
    classes = encoder.classes_
    if len(classes) < 2:
        raise ValueError(
            f"{estimator_name} needs samples of at least 2 classes in y; "
            f"got {len(classes)} class: {classes.tolist()}"
        )
    encoded = encoder.transform(y).astype(np.int64)
    return encoded, len(classes), {"classes_": classes}


def _encode_targets(y, estimator_name):
    y = np.asarray(y, dtype=np.float32)
    y_1d = y.ndim == 1
    y = np.require(y.reshape(len(y), -1), requirements=["C", "W"])
    return y, y.shape[1], {"_y_1d": y_1d}


CLASSIFICATION = Task(
    "classification",
    NeuralNetClassifier,
    {"y_numeric": False},
    accuracy,
    _encode_classes,
    # a classifier's default criterion takes logits
    {"criterion": torch.nn.CrossEntropyLoss},
)
REGRESSION = Task(
    "regression",
    NeuralNetRegressor,
    {"y_numeric": True, "multi_output": True},
    r2,
    _encode_targets,
)
