"""TensorLoader: whole-batch slices of a skorch Dataset, same batches as
DataLoader, and a plain DataLoader for anything that is not one tensor."""

import numpy as np
import pytest
import torch
from skorch.dataset import Dataset
from torch.utils.data import DataLoader

from sklottery import LotteryTicketClassifier
from sklottery.training import SUPPORTED_OPTIONS, TensorLoader


def _dataset(n=10, with_y=True):
    X = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n) if with_y else None
    return Dataset(X, y)


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3, 4, 10, 32])
def test_same_batches_as_dataloader(batch_size, drop_last):
    ds = _dataset(10)
    ours = list(TensorLoader(ds, batch_size=batch_size, drop_last=drop_last))
    theirs = list(DataLoader(ds, batch_size=batch_size, drop_last=drop_last))
    assert len(ours) == len(theirs) == len(
        TensorLoader(ds, batch_size=batch_size, drop_last=drop_last)
    )
    for (Xa, ya), (Xb, yb) in zip(ours, theirs):
        assert torch.equal(Xa, Xb) and torch.equal(ya, yb)


def test_shuffle_draws_from_torch_and_keeps_rows_together():
    ds = _dataset(10)
    torch.manual_seed(3)
    first = list(TensorLoader(ds, batch_size=4, shuffle=True))
    torch.manual_seed(3)
    again = list(TensorLoader(ds, batch_size=4, shuffle=True))
    for (Xa, ya), (Xb, yb) in zip(first, again):
        assert torch.equal(Xa, Xb) and torch.equal(ya, yb)
    X = torch.cat([b[0] for b in first])
    y = torch.cat([b[1] for b in first])
    assert sorted(y.tolist()) == list(range(10))
    assert y.tolist() != list(range(10))  # shuffled
    assert torch.equal(X[:, 0], y.float() * 3)  # each row with its own target


def test_no_targets():
    batches = list(TensorLoader(_dataset(5, with_y=False), batch_size=2))
    assert [len(Xb) for Xb, _ in batches] == [2, 2, 1]
    assert all(yb is None for _, yb in batches)


def test_other_data_falls_back_to_a_dataloader():
    ds = Dataset({"a": np.zeros((6, 2), dtype=np.float32)}, np.arange(6))
    loader = TensorLoader(ds, batch_size=4)
    assert loader._fallback is not None and loader.X is None
    batches = list(loader)
    assert len(loader) == len(batches) == 2
    assert batches[0][0]["a"].shape == (4, 2)


def test_the_estimator_uses_it_only_where_it_changes_nothing(tiny_net, digits):
    X, y = digits[0][:120], digits[1][:120]

    def fit(**net_params):
        net = tiny_net(max_epochs=1, iterator_train__shuffle=False, **net_params)
        return LotteryTicketClassifier(net, n_rounds=1, random_state=0).fit(X, y)

    plain = fit()
    assert plain.net_.iterator_train is TensorLoader
    assert plain.net_.iterator_valid is TensorLoader
    # an option TensorLoader does not support: the user's DataLoader is kept
    assert "num_workers" not in SUPPORTED_OPTIONS
    workers = fit(iterator_train__num_workers=0)
    assert workers.net_.iterator_train is DataLoader
    assert workers.net_.iterator_valid is TensorLoader
    # the same batches either way: identical fits
    np.testing.assert_array_equal(workers.predict_proba(X), plain.predict_proba(X))
