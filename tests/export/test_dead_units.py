"""Structured export: dead units removed exactly, counted, and only where provable."""

import pytest
import torch
from torch import nn

from sklottery import MLP, Pruner
from sklottery.export import (
    SparseLinear,
    remove_dead_units,
    structured_chains,
    to_sparse,
)


def _dense_random(module):
    """Non-zero random weights and biases everywhere (no accidental dead unit)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_((torch.rand(p.shape, generator=g) + 0.1) * 0.5)
            p.mul_(torch.where(torch.rand(p.shape, generator=g) < 0.5, -1.0, 1.0))
    return module


def _assert_same(exported, module, x, atol=1e-5):
    module.eval()
    with torch.no_grad():
        expected, got = module(x), exported(x)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=atol, rtol=1e-5), (
        (got - expected).abs().max()
    )


def _three(act=nn.ReLU, bias=True):
    return _dense_random(
        nn.Sequential(
            nn.Linear(6, 5, bias=bias), act(), nn.Linear(5, 4, bias=bias), act(),
            nn.Linear(4, 3),
        )
    )


@pytest.mark.parametrize(
    "act",
    [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.Identity, nn.Dropout,
     nn.ELU],
)
@pytest.mark.parametrize("bias", [True, False])
def test_dead_in_and_dead_out_units_are_removed_exactly(act, bias):
    net = _three(act, bias)
    with torch.no_grad():
        net[0].weight[1] = 0.0      # unit 1: constant act(bias) (or act(0))
        net[2].weight[:, 3] = 0.0   # unit 3: feeds nothing
    exported = to_sparse(net, layout="dense")
    assert exported.removed_units == {"0": 2, "2": 0}
    assert exported[0].weight.shape == (3, 6) and exported[2].weight.shape == (4, 3)
    assert exported[0].out_features == 3 and exported[2].in_features == 3
    rows = {r["name"]: r for r in exported.sparse_layouts}
    assert rows["0"]["original_shape"] == (5, 6) and rows["0"]["shape"] == (3, 6)
    assert rows["0"]["removed_units"] == 2 and rows["4"]["removed_units"] == 0
    _assert_same(exported, net, torch.randn(20, 6))
    # the original is untouched
    assert net[0].weight.shape == (5, 6)


def test_folding_creates_a_bias_where_the_constant_is_not_zero():
    # no biases: a unit without inputs outputs sigmoid(0) = 0.5, not 0
    net = _three(nn.Sigmoid, bias=False)
    with torch.no_grad():
        net[0].weight[2] = 0.0
    exported = to_sparse(net, layout="dense")
    assert exported.removed_units["0"] == 1
    assert exported[2].bias is not None
    _assert_same(exported, net, torch.randn(9, 6))
    # with relu a unit without inputs and bias outputs 0: no bias is needed
    net = _three(nn.ReLU, bias=False)
    with torch.no_grad():
        net[0].weight[2] = 0.0
    exported = to_sparse(net, layout="dense")
    assert exported.removed_units["0"] == 1 and exported[2].bias is None
    _assert_same(exported, net, torch.randn(9, 6))


def test_removal_cascades_forward_and_backward():
    net = _three(nn.Tanh)
    with torch.no_grad():
        # unit 0 of layer 0 has no input; unit 1 of layer 2 reads only it, so
        # once unit 0 is folded, unit 1 has no input either
        net[0].weight[0] = 0.0
        net[2].weight[1] = 0.0
        net[2].weight[1, 0] = 0.7
        # unit 2 of layer 2 feeds nothing; unit 4 of layer 0 feeds only it
        net[4].weight[:, 2] = 0.0
        net[2].weight[:, 4] = 0.0
        net[2].weight[2, 4] = -0.4
    exported = to_sparse(net, layout="dense")
    assert exported.removed_units == {"0": 2, "2": 2}
    assert exported[0].weight.shape == (3, 6)
    assert exported[2].weight.shape == (2, 3)
    assert exported[4].weight.shape == (3, 2)
    _assert_same(exported, net, torch.randn(20, 6))


def test_every_unit_dead_keeps_one():
    net = _three()
    with torch.no_grad():
        net[2].weight.zero_()
    exported = to_sparse(net, layout="dense")
    assert exported[0].out_features == 1 and exported[2].out_features == 1
    _assert_same(exported, net, torch.randn(4, 6))


@pytest.mark.parametrize("rate", [0.9, 0.99])
def test_pruned_mlp_and_csr_on_the_smaller_layers(rate):
    module = MLP(40, 5, hidden_units=(64, 32))
    pruner = Pruner(module, prune_rate=rate, output_rate_factor=None)
    pruner.prune()
    exported = to_sparse(module, pruner.masks, layout="sparse")
    removed = exported.removed_units
    assert set(removed) == {"hidden.0", "hidden.2"}
    for row in exported.sparse_layouts:
        layer = exported.get_submodule(row["name"])
        assert isinstance(layer, SparseLinear)
        assert (layer.out_features, layer.in_features) == row["shape"]
        out, _ = row["original_shape"]
        assert layer.out_features == out - removed.get(row["name"], 0)
        # pruned weights are dropped, never survivors: nnz = kept weights
        # minus those of removed units (all zero there) or of folded ones
        assert layer.nnz <= int(pruner.masks[f"{row['name']}.weight"].sum())
    if rate == 0.99:  # 26 weights left in 2560: most units are dead
        assert removed["hidden.0"] > 32
    _assert_same(exported, module, torch.randn(30, 40))


def test_rescale_hooks_are_honoured_when_folding():
    module = nn.Sequential(
        nn.Linear(8, 10), nn.Sigmoid(), nn.Linear(10, 6), nn.ReLU(), nn.Linear(6, 2)
    )
    pruner = Pruner(module, prune_rate=0.6, output_rate_factor=None, rescale=True)
    pruner.prune()
    with torch.no_grad():
        module[0].weight[3] = 0.0  # a dead-in unit feeding a rescaled layer
    exported = to_sparse(module, layout="dense")
    assert exported.removed_units["0"] >= 1
    _assert_same(exported, module, torch.randn(10, 8))


def test_custom_forward_is_not_analysed():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 5), nn.Linear(5, 3)

        def forward(self, x):
            return self.b(torch.relu(self.a(x))) + self.a.weight.sum()

    net = _dense_random(Net())
    with torch.no_grad():
        net.b.weight[:, 0] = 0.0
    exported = to_sparse(net, layout="dense")
    assert exported.removed_units == {}
    assert exported.a.weight.shape == (5, 6)
    _assert_same(exported, net, torch.randn(4, 6))


def test_unknown_ops_hooks_and_shared_layers_stop_the_analysis():
    net = _dense_random(
        nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5), nn.Linear(5, 4),
                      nn.ReLU(), nn.Linear(4, 3))
    )
    with torch.no_grad():
        net[2].weight[:, 0] = 0.0  # behind LayerNorm: mixes units, not analysed
        net[4].weight[:, 1] = 0.0  # behind ReLU: removed
    exported = to_sparse(net, layout="dense")
    assert exported.removed_units == {"2": 1}
    _assert_same(exported, net, torch.randn(4, 6))

    hooked = _three()
    with torch.no_grad():
        hooked[2].weight[:, 0] = 0.0
    hooked[1].register_forward_hook(lambda m, i, o: o * torch.arange(5.0))
    exported = to_sparse(hooked, layout="dense")
    assert exported.removed_units == {"2": 0}
    _assert_same(exported, hooked, torch.randn(4, 6))

    shared = nn.Linear(4, 4)
    net = _dense_random(nn.Sequential(shared, nn.ReLU(), shared, nn.ReLU(),
                                      nn.Linear(4, 2)))
    with torch.no_grad():
        net[4].weight[:, 0] = 0.0
    assert structured_chains(net) == []
    exported = to_sparse(net, layout="dense")
    _assert_same(exported, net, torch.randn(4, 4))


def test_structured_false_and_eval_mode_required():
    net = _three()
    with torch.no_grad():
        net[2].weight[:, 3] = 0.0
    exported = to_sparse(net, layout="dense", structured=False)
    assert exported.removed_units == {}
    assert exported[0].weight.shape == (5, 6)
    with pytest.raises(TypeError, match="structured must be True or False"):
        to_sparse(net, structured="yes")
    with pytest.raises(ValueError, match="eval mode"):
        remove_dead_units(net.train())


def _conv_net(between, padding=0, padding_mode="zeros"):
    net = nn.Sequential(
        nn.Conv2d(2, 5, 3), *between,
        nn.Conv2d(5, 4, 3, padding=padding, padding_mode=padding_mode), nn.ReLU(),
        nn.Flatten(),
    )
    return _dense_random(net)


@pytest.mark.parametrize(
    "between, padding, padding_mode, removed",
    [
        ([nn.ReLU()], 0, "zeros", 2),                      # both removed
        ([nn.Tanh()], 1, "zeros", 1),                      # zero padding: no fold
        ([nn.Tanh()], 1, "replicate", 2),                  # constants survive it
        ([nn.BatchNorm2d(5), nn.ReLU()], 0, "zeros", 2),   # sliced
        ([nn.ReLU(), nn.MaxPool2d(2)], 0, "zeros", 1),     # pooling: no fold
    ],
)
def test_conv_channels(between, padding, padding_mode, removed):
    net = _conv_net(between, padding, padding_mode)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    with torch.no_grad():
        net[0].weight[1] = 0.0          # channel 1: constant act(bias)
        conv_b = net[len(between) + 1]
        conv_b.weight[:, 3] = 0.0       # channel 3: feeds nothing
    exported = to_sparse(net, layout="dense")
    assert exported.removed_units == {"0": removed}
    assert exported[0].out_channels == 5 - removed
    _assert_same(exported, net, torch.randn(3, 2, 12, 12))


def test_reparametrized_layers_are_baked_and_exact():
    from torch.nn.utils import prune
    from torch.nn.utils.parametrizations import spectral_norm

    net = nn.Sequential(
        spectral_norm(nn.Linear(6, 8)), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
        nn.Linear(8, 3),
    )
    prune.l1_unstructured(net[2], "weight", amount=0.5)
    pruner = Pruner(net, prune_rate=0.8, output_rate_factor=None)
    assert pruner.targets[0].name == "0.parametrizations.weight.original"
    assert pruner.targets[1].name == "2.weight_orig"
    pruner.prune()
    net.eval()
    exported = to_sparse(net, pruner.masks, layout="sparse")
    assert type(exported[0]) in (nn.Linear, SparseLinear)
    assert not hasattr(exported[0], "parametrizations")
    _assert_same(exported, net, torch.randn(5, 6))


def test_fitted_estimator_structured_export_matches_the_ticket(digits, tiny_net):
    import numpy as np

    from sklottery import LotteryTicketClassifier

    X, y = digits[0][:150], digits[1][:150]
    est = LotteryTicketClassifier(
        tiny_net(max_epochs=2, module__hidden_units=(48, 24)), n_rounds=2,
        prune_rate=0.9, output_rate_factor=None, random_state=0,
    ).fit(X, y)
    exported = est.to_sparse(measure=False)
    removed = exported.removed_units
    assert sum(removed.values()) > 0  # 99% sparse: dead units exist
    rows = {r["name"]: r for r in exported.sparse_layouts}
    for name, n in removed.items():
        assert rows[name]["removed_units"] == n
        assert rows[name]["shape"][0] == rows[name]["original_shape"][0] - n
    plain = est.to_sparse(measure=False, structured=False)
    assert not any(plain.removed_units.values())
    Xt = torch.from_numpy(X)
    est.net_.module_.eval()
    with torch.no_grad():
        ticket = est.net_.module_(Xt)
        assert torch.allclose(exported(Xt), ticket, atol=1e-5)
        assert torch.allclose(plain(Xt), ticket, atol=1e-5)
    dense_pred = est.predict(X)
    # inference="sparse" set after fit: predict exports (structured) on the fly
    est.set_params(inference="sparse")
    np.testing.assert_array_equal(est.predict(X), dense_pred)
