"""DictRows: a dict X's rows through the split, the batch loader and the
module call, kept a dict all the way."""

import numpy as np
import pytest
import torch
from skorch.dataset import Dataset, ValidSplit

from sklottery.training import (
    DictRows,
    TensorLoader,
    WeightedDataset,
    batch_to,
    call_module,
    dict_as_kwargs,
    split_data,
    take_rows,
)
from tests.dict_helpers import DictNet, dict_net


def _rows(n=10):
    return DictRows(
        {
            "ids": torch.arange(n * 3).reshape(n, 3),
            "num": torch.arange(n, dtype=torch.float32),
        }
    )


def test_indexing_gives_dict_batches():
    rows = _rows()
    assert len(rows) == 10 and list(rows.keys()) == ["ids", "num"]
    one = rows[2]
    assert one["ids"].tolist() == [6, 7, 8] and one["num"].item() == 2.0
    batch = rows[2:5]
    assert isinstance(batch, dict) and batch["ids"].shape == (3, 3)
    picked = rows[np.array([4, 0])]
    assert picked["num"].tolist() == [4.0, 0.0]
    mask = np.zeros(10, bool)
    mask[[1, 9]] = True
    assert rows[torch.as_tensor(mask)]["num"].tolist() == [1.0, 9.0]
    assert "ids" in repr(rows) and "(10, 3)" in repr(rows)


def test_take_keeps_dict_rows():
    taken = take_rows(_rows(), [3, 1])
    assert isinstance(taken, DictRows)
    assert taken.tensors["num"].tolist() == [3.0, 1.0]
    assert taken.tensors["ids"].dtype == torch.int64


@pytest.mark.parametrize(
    "tensors, error, match",
    [
        ({}, ValueError, "at least one"),
        ({"a": torch.zeros(3), "b": torch.zeros(4)}, ValueError, "same length"),
        ({"a": torch.tensor(1.0)}, ValueError, "no samples axis"),
        ({1: torch.zeros(3)}, TypeError, "str keys"),
        ({"a": np.zeros(3)}, TypeError, "torch tensors"),
    ],
)
def test_bad_dict_rows(tensors, error, match):
    with pytest.raises(error, match=match):
        DictRows(tensors)


@pytest.mark.parametrize("shuffle", [False, True])
def test_tensor_loader_batches_dicts(shuffle):
    rows = _rows(10)
    y = torch.arange(10)
    loader = TensorLoader(Dataset(rows, y), batch_size=4, shuffle=shuffle)
    assert loader._fallback is None and len(loader) == 3
    seen = []
    for Xb, yb in loader:
        assert isinstance(Xb, dict) and set(Xb) == {"ids", "num"}
        # every value's rows are the same samples as the targets'
        assert Xb["num"].long().tolist() == yb.tolist()
        assert Xb["ids"][:, 0].tolist() == (yb * 3).tolist()
        seen += yb.tolist()
    assert sorted(seen) == list(range(10))


def test_weighted_dataset_of_dict_rows():
    rows = _rows(6)
    w = torch.arange(1, 7, dtype=torch.float32)
    loader = TensorLoader(WeightedDataset(rows, torch.arange(6), w), batch_size=4)
    Xb, (yb, wb) = next(iter(loader))
    assert Xb["num"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert wb.tolist() == [1.0, 2.0, 3.0, 4.0] and yb.tolist() == [0, 1, 2, 3]


def test_split_keeps_the_dict_and_its_weights():
    rows = _rows(20)
    y = np.arange(20) % 2
    w = np.arange(20, dtype=np.float32)
    net = dict_net(train_split=ValidSplit(4, stratified=True))
    data = split_data(net, rows, y, w)
    assert data.eval_on == "valid"
    assert isinstance(data.X_train, DictRows) and isinstance(data.X_eval, DictRows)
    assert len(data.X_train) == 15 and len(data.X_eval) == 5
    # the rows of every value and the weights stay together
    for X, yy, ww in ((data.X_train, data.y_train, data.w_train),
                      (data.X_eval, data.y_eval, data.w_eval)):
        idx = X.tensors["num"].long()
        assert torch.equal(X.tensors["ids"][:, 0], idx * 3)
        assert yy.tolist() == (idx % 2).tolist() and ww.tolist() == idx.tolist()


def test_split_item_by_item_gives_dict_rows():
    class Halves:  # a train_split returning datasets that are not Subsets
        def __call__(self, dataset, y=None, **kwargs):
            X = dataset.X
            return Dataset(X.take(range(6)), y[:6]), Dataset(X.take(range(6, 8)),
                                                             y[6:8])

    data = split_data(dict_net(train_split=Halves()), _rows(8), np.zeros(8, int))
    assert isinstance(data.X_train, DictRows) and len(data.X_eval) == 2
    assert data.X_eval.tensors["num"].tolist() == [6.0, 7.0]


def test_call_module_and_kwargs_hook():
    module = DictNet()
    batch = batch_to(
        {"ids": torch.zeros((2, 6), dtype=torch.long), "num": torch.zeros((2, 3))},
        "cpu",
    )
    out = call_module(module, batch)
    assert out.shape == (2, 2)
    with dict_as_kwargs(module):
        assert torch.equal(module(batch), out)
    with pytest.raises(TypeError):
        module(batch)  # the hook is gone
    assert call_module(torch.nn.Linear(3, 1), torch.zeros(2, 3)).shape == (2, 1)
