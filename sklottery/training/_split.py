"""The data split made once per fit: the tensors of a round
(:class:`RoundData`), split with the net's own ``train_split``
(:func:`split_data`, seeded by :func:`seed_train_split`) and validated on
every epoch (:class:`FixedValidation`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from skorch.dataset import Dataset, ValidSplit
from torch.utils.data import DataLoader, Subset

from . import _scores
from ._dict import DictRows
from ._loader import as_rows, take_rows

__all__ = ["FixedValidation", "RoundData", "seed_train_split", "split_data"]


@dataclass
class RoundData:
    """Tensors for training and for the per-round score.

    ``X_eval``/``y_eval`` are the validation split when the net has one, else
    the training data (``eval_on`` says which). ``X`` is a tensor,
    :class:`~sklottery.training.SparseRows` or
    :class:`~sklottery.training.DictRows`; ``w_train``/``w_eval`` are the
    rows' ``sample_weight`` (None: unweighted).
    """

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_eval: torch.Tensor
    y_eval: torch.Tensor
    eval_on: str
    w_train: torch.Tensor | None = None
    w_eval: torch.Tensor | None = None
    #: per-sample forward multiply-adds of the layers
    #: (:func:`~sklottery.training.forward_macs_of`)
    macs: dict | None = None

    def score(self, score, net, outputs=None) -> float:
        """``score(net, X_eval, y_eval)``, weighted by ``w_eval`` if any.

        With ``outputs`` (:class:`~sklottery.training.ValidationOutputs` of
        the round just trained) a built-in score (:func:`accuracy`,
        :func:`r2`) is computed from the predictions of the round's last
        validation pass when they are still those of the net's weights: the
        same value, without a second forward pass over the same rows.
        """
        from_predictions = _scores.FROM_PREDICTIONS.get(score)
        if outputs is not None and from_predictions is not None:
            pred = outputs.predictions(net, self.y_eval)
            if pred is not None:
                return from_predictions(pred, self.y_eval, self.w_eval)
        if self.w_eval is None:
            return score(net, self.X_eval, self.y_eval)
        return score(net, self.X_eval, self.y_eval, sample_weight=self.w_eval)

    def valid_split(self):
        """The ``train_split`` that validates on this split every epoch."""
        if self.eval_on != "valid":
            return None
        return FixedValidation(Dataset(self.X_eval, self.y_eval))


class FixedValidation:
    """A skorch ``train_split`` returning one validation set, split once per fit."""

    def __init__(self, valid):
        self.valid = valid

    def __call__(self, dataset, y=None, **kwargs):
        return dataset, self.valid


def seed_train_split(net, seed: int):
    """Give the net's ``ValidSplit`` the fit's seed when it has none of its own.

    skorch's default ``train_split`` is ``ValidSplit(5)`` without a seed; left
    so, every fit would validate on other rows and ``random_state`` would not
    make a fit repeatable (nor let a ``memory`` cache hit).
    """
    split = net.train_split
    # (an int cv takes the last fold, which needs no seed; a float cv draws)
    if (
        isinstance(split, ValidSplit)
        and split.random_state is None
        and isinstance(split.cv, float)
    ):
        net.set_params(
            train_split=ValidSplit(
                split.cv, stratified=split.stratified, random_state=seed
            )
        )
    return net


def _rows(ds, X, y, w):
    """The rows of a split dataset (and their weights), without going item by
    item where the split is a plain ``Subset`` of the data; sparse rows stay
    sparse, dict rows a dict."""
    if isinstance(ds, Subset) and isinstance(ds.dataset, Dataset):
        idx = torch.as_tensor(np.asarray(ds.indices), dtype=torch.long)
        return take_rows(X, idx), y[idx], None if w is None else w[idx]
    if w is not None:
        raise ValueError(
            "sample_weight needs the net's train_split to return subsets of the "
            "data (skorch's ValidSplit does); this train_split returns "
            f"{type(ds).__name__}"
        )
    Xs, ys = next(iter(DataLoader(ds, batch_size=len(ds))))
    if isinstance(Xs, Mapping):  # a dict X: its values, collated
        return DictRows({k: torch.as_tensor(v) for k, v in Xs.items()}), \
            torch.as_tensor(ys), None
    return torch.as_tensor(Xs), torch.as_tensor(ys), None


def split_data(net, X, y, sample_weight=None) -> RoundData:
    """Split once per fit with the net's own ``train_split``; ``X`` is an
    ndarray, a tensor or :class:`~sklottery.training.SparseRows`, ``y`` an
    ndarray (the net's ``train_split`` is given it as such)."""
    X_t, y_t = as_rows(X), torch.from_numpy(y)
    w = None if sample_weight is None else torch.as_tensor(sample_weight)
    if net.train_split is None:
        return RoundData(X_t, y_t, X_t, y_t, "train", w, w)
    ds_train, ds_valid = net.get_split_datasets(X_t, y)
    X_tr, y_tr, w_tr = _rows(ds_train, X_t, y_t, w)
    if ds_valid is None or len(ds_valid) == 0:
        return RoundData(X_tr, y_tr, X_tr, y_tr, "train", w_tr, w_tr)
    X_va, y_va, w_va = _rows(ds_valid, X_t, y_t, w)
    return RoundData(X_tr, y_tr, X_va, y_va, "valid", w_tr, w_va)
