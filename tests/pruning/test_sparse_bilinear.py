"""Sparse training of pruned Bilinear layers: the twin computes what
nn.Bilinear computes, trains like it under every optimizer, and a fit swaps
it in and out at round boundaries."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from torch import nn

from sklottery import LotteryTicketClassifier
from sklottery.pruning.sparse_linear import (
    SparseTrainingBilinear,
    sparse_training_layers,
    to_dense,
)
from sklottery.pruning.sparse_training import (
    choose_training_layouts,
    measure_training_step,
    rule_training_layout,
    to_sparse_training,
    train_macs,
)
from tests.conftest import train_side_by_side


class BilinearNet(nn.Module):
    """Both halves of each row meet in a Bilinear layer, then a Linear one."""

    def __init__(self, half=8, hidden=12, classes=3):
        super().__init__()
        self.half = half
        self.pair = nn.Bilinear(half, half, hidden)
        self.out = nn.Linear(hidden, classes)

    def forward(self, x):
        a, b = x[..., : self.half], x[..., self.half :]
        return self.out(torch.relu(self.pair(a, b)))


def _masked(seed=0, density=0.3):
    torch.manual_seed(seed)
    net = BilinearNet()
    gen = torch.Generator().manual_seed(seed)
    masks = {"pair.weight": torch.rand(net.pair.weight.shape, generator=gen) < density}
    with torch.no_grad():
        net.pair.weight.mul_(masks["pair.weight"])
    return net, masks


def test_twin_computes_what_bilinear_computes():
    net, masks = _masked()
    ref = copy.deepcopy(net.pair)
    twin = SparseTrainingBilinear(net.pair, masks["pair.weight"])
    g = torch.Generator().manual_seed(1)
    # 3-d inputs: the leading dimensions are kept
    x1 = torch.randn(5, 2, 8, generator=g, requires_grad=True)
    x2 = torch.randn(5, 2, 8, generator=g, requires_grad=True)
    r1, r2 = (x.detach().clone().requires_grad_() for x in (x1, x2))
    out, want = twin(x1, x2), ref(r1, r2)
    assert out.shape == want.shape == (5, 2, 12)
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-6)
    out.pow(2).sum().backward()
    want.pow(2).sum().backward()
    torch.testing.assert_close(x1.grad, r1.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x2.grad, r2.grad, rtol=1e-5, atol=1e-5)
    mask = masks["pair.weight"]
    torch.testing.assert_close(twin.values.grad, ref.weight.grad[mask])
    torch.testing.assert_close(twin.bias.grad, ref.bias.grad)
    assert twin.nnz == int(mask.sum())
    with pytest.raises(RuntimeError, match="expects 8 and 8"):
        twin(torch.zeros(2, 7), torch.zeros(2, 8))
    with pytest.raises(RuntimeError, match="leading shapes differ"):
        twin(torch.zeros(2, 8), torch.zeros(3, 8))


def test_twin_keeps_bilinear_objects_keys_and_pickles():
    net, masks = _masked()
    layer, weight, bias = net.pair, net.pair.weight, net.pair.bias
    before = {k: v.clone() for k, v in net.state_dict().items()}
    to_sparse_training(net, masks, mode=True, batch_size=4)
    assert isinstance(net.pair, SparseTrainingBilinear) and net.pair.bias is bias
    assert torch.equal(net.pair.mask, masks["pair.weight"])
    state = net.state_dict()
    assert set(state) == set(before)
    for key, value in before.items():
        torch.testing.assert_close(state[key], value)
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert isinstance(clone.pair, SparseTrainingBilinear)
    assert to_dense(net) == ["pair"]
    assert net.pair is layer and net.pair.weight is weight
    torch.testing.assert_close(net.state_dict()["pair.weight"], before["pair.weight"])
    with pytest.raises(TypeError, match="torch.nn.Bilinear"):
        SparseTrainingBilinear(nn.Linear(3, 3))


@pytest.mark.parametrize(
    "opt_cls,kwargs",
    [
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
        (torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.01}),
        (torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    ],
)
def test_sparse_and_masked_bilinear_training_agree(opt_cls, kwargs):
    dense, masks = _masked()
    sparse = copy.deepcopy(dense)
    to_sparse_training(sparse, masks, mode=True, batch_size=8)
    assert sparse_training_layers(sparse) == ["pair"]
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    train_side_by_side(dense, sparse, masks, opt_cls, kwargs, x)
    to_dense(sparse)
    for (name, p), q in zip(dense.named_parameters(), sparse.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6, msg=name)
    weight = sparse.pair.weight
    assert torch.count_nonzero(weight[~masks["pair.weight"]]) == 0  # exact zeros


def test_rule_timing_and_cost_of_a_bilinear_layer():
    # torch's dense bilinear product is slow: sparse pays with 32 outputs
    assert rule_training_layout((32, 256, 256), 0.02, 128) == "sparse"
    assert rule_training_layout((32, 256, 256), 0.2, 128) == "dense"
    assert rule_training_layout((32, 16, 16), 0.02, 128) == "dense"  # too small
    layer = nn.Bilinear(8, 8, 4)
    mask = torch.rand(layer.weight.shape) < 0.5
    dense_s, sparse_s = measure_training_step(layer, mask, batch_size=8, repeats=1)
    assert dense_s > 0 and sparse_s > 0
    net, masks = _masked()
    (row,) = choose_training_layouts(net, masks, mode=True, batch_size=8)
    assert row["layout"] == "sparse" and row["sparse_macs"] == row["nnz"] + 64
    # a sparse Bilinear step costs its survivors plus the outer product
    macs = {"pair": (1, 8 * 8 * 12)}
    assert train_macs(macs, [row], 10) == 3 * 10 * (row["nnz"] + 64)


def test_fit_trains_a_bilinear_layer_sparse_with_exact_zeros():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 16)).astype(np.float32)
    y = (X[:, :8] * X[:, 8:]).sum(1) > 0
    net = NeuralNetClassifier(
        BilinearNet, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
        lr=0.01, max_epochs=2, batch_size=32, train_split=None, verbose=0,
    )  # fmt: skip
    clf = LotteryTicketClassifier(
        net, n_rounds=2, prune_rate=0.5, sparse_training=True, random_state=0
    ).fit(X, y.astype(np.int64))
    assert clf.rounds_["sparse_layers"].tolist()[1:] == ["pair,out", "pair,out"]
    weight = clf.net_.module_.pair.weight
    assert type(clf.net_.module_.pair) is nn.Bilinear  # dense between rounds
    mask = clf.masks_["pair.weight"]
    assert int(torch.count_nonzero(weight[~mask])) == 0
    assert int(mask.sum()) == 8 * 8 * 12 // 4  # half of them pruned, twice
    dense = LotteryTicketClassifier(
        net, n_rounds=2, prune_rate=0.5, sparse_training=False, random_state=0
    ).fit(X, y.astype(np.int64))
    for n, m in dense.masks_.items():
        assert torch.equal(m, clf.masks_[n])
