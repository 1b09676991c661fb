"""Structured rounds that train shrunk: a round trained on physically smaller
layers (ShrunkLayer) ends with the weights a masked round reaches, and the
module is given back with its original shapes."""

import copy

import pytest
import torch
from torch import nn

from sklottery import Pruner
from sklottery.pruning.shrink import ShrunkLayer, to_shrunk_training


class UserMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(10, 32)
        self.l2 = nn.Linear(32, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        return self.out(torch.relu(self.l2(torch.relu(self.l1(x)))))


class ConvBN(nn.Module):
    def __init__(self):
        super().__init__()
        # no conv bias before a BatchNorm: its true gradient is 0, and Adam
        # would turn float noise in it into lr-sized steps on both sides
        self.conv1 = nn.Conv2d(2, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 12)
        self.out = nn.Linear(12, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        return self.out(torch.relu(self.fc(torch.flatten(x, 1))))


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _data(kind, n=8):
    shape = (n, 10) if kind == "mlp" else (n, 2, 8, 8)
    return torch.randn(*shape, generator=_gen(1)), torch.randn(n, 3, generator=_gen(2))


def _net(kind):
    torch.manual_seed(0)
    return UserMLP() if kind == "mlp" else ConvBN()


def _pruners(kind):
    """Two pruners on copies of one net, pruned once with the same masks: the
    first trains shrunk (default sparse_training), the second masked."""
    net = _net(kind)
    x, _ = _data(kind)
    kw = {"granularity": "neuron", "example_inputs": x[:2], "prune_rate": 0.25}
    shrunk = Pruner(net, **kw)
    masked = Pruner(copy.deepcopy(net), sparse_training=False, **kw)
    shrunk.prune()
    masked.prune()
    for name in shrunk.masks:
        assert torch.equal(shrunk.masks[name], masked.masks[name]), name
    return shrunk, masked


OPTIMIZERS = [
    (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    (torch.optim.Adam, {"lr": 0.01}),
]


def _train(pruner, opt_cls, kwargs, kind, steps=5, apply=False):
    x, y = _data(kind)
    module = pruner.module
    module.train()
    opt = opt_cls(module.parameters(), **kwargs)
    for _ in range(steps):
        opt.zero_grad()
        (module(x) - y).pow(2).mean().backward()
        opt.step()
        if apply:
            pruner.apply()


def _inner_shapes(module):
    out = {}
    for name, m in module.named_modules():
        if isinstance(m, ShrunkLayer):
            out[name] = {n: tuple(p.shape) for n, p in m.inner.named_parameters()}
    return out


@pytest.mark.parametrize("opt_cls,kwargs", OPTIMIZERS, ids=["sgd", "adam"])
@pytest.mark.parametrize("kind", ["mlp", "conv"])
def test_shrunk_and_masked_rounds_agree(kind, opt_cls, kwargs):
    shrunk, masked = _pruners(kind)
    net = shrunk.module
    shapes = {n: p.shape for n, p in net.named_parameters()}
    layers = dict(net.named_children())
    params = dict(net.named_parameters())

    rows = shrunk.begin_sparse_training(8)
    assert masked.begin_sparse_training(8) == []  # sparse_training=False: masked
    assert shrunk.training_layouts == rows
    inner = _inner_shapes(net)
    assert set(inner) == {r["name"] for r in rows}
    for name, tensors in inner.items():  # every swapped layer's weight is smaller
        full = params[f"{name}.weight"].shape
        assert len(tensors["weight"]) == len(full)
        assert all(a <= b for a, b in zip(tensors["weight"], full))
        assert tensors["weight"] != tuple(full), name
    _train(shrunk, opt_cls, kwargs, kind)
    _train(masked, opt_cls, kwargs, kind, apply=True)
    assert shrunk.end_sparse_training() == [r["name"] for r in rows]

    # the original layers and parameter objects are back, original shapes
    assert dict(net.named_children()) == layers
    for name, p in net.named_parameters():
        assert p is params[name], name
        assert p.shape == shapes[name], name
    assert not any(isinstance(m, ShrunkLayer) for m in net.modules())

    got, want = dict(net.named_parameters()), dict(masked.module.named_parameters())
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-5,
                                   msg=name)
    for name, mask in shrunk.masks.items():
        assert torch.count_nonzero(got[name][~mask]) == 0, name  # exact zeros
    # the kept units' running statistics agree too
    if kind == "conv":
        units = shrunk.unit_masks()
        for bn, group in (("bn1", "conv1"), ("bn2", "conv2")):
            keep = units[group]
            for stat in ("running_mean", "running_var"):
                torch.testing.assert_close(
                    getattr(getattr(net, bn), stat)[keep],
                    getattr(getattr(masked.module, bn), stat)[keep],
                    atol=1e-5, rtol=1e-5,
                )
    # the round changed the weights
    assert not torch.equal(got[next(iter(shrunk.masks))],
                           shrunk.rewind_point[next(iter(shrunk.masks))])


def test_mlp_round_holds_smaller_layers():
    shrunk, _ = _pruners("mlp")
    net = shrunk.module
    counts = shrunk.unit_counts()
    assert counts == {"l1": (24, 32), "l2": (12, 16)}
    originals = {n: getattr(net, n) for n in ("l1", "l2", "out")}
    rows = shrunk.begin_sparse_training(8)
    assert [r["name"] for r in rows] == ["l1", "l2", "out"]
    for name in ("l1", "l2", "out"):
        layer = getattr(net, name)
        assert isinstance(layer, ShrunkLayer)
        assert layer._original[0] is originals[name]
    assert (net.l1.inner.in_features, net.l1.inner.out_features) == (10, 24)
    assert (net.l2.inner.in_features, net.l2.inner.out_features) == (24, 12)
    assert (net.out.inner.in_features, net.out.inner.out_features) == (12, 3)
    assert net.l1.inner.bias.shape == (24,)
    fractions = {r["name"]: r["fraction"] for r in rows}
    assert {r["layout"] for r in rows} == {"shrunk"}
    assert fractions == pytest.approx({
        "l1": 24 * 10 / (32 * 10), "l2": 12 * 24 / (16 * 32), "out": 3 * 12 / (3 * 16),
    })
    for r in rows:  # the kept share of the weight, as the masks say
        mask = shrunk.masks[f"{r['name']}.weight"]
        assert r["fraction"] == pytest.approx(float(mask.float().mean()))
    # the optimizer built now holds the small tensors only
    n_small = sum(p.numel() for p in net.parameters())
    assert n_small == (10 * 24 + 24) + (24 * 12 + 12) + (12 * 3 + 3)
    shrunk.end_sparse_training()
    assert sum(p.numel() for p in net.parameters()) == (
        10 * 32 + 32 + 32 * 16 + 16 + 16 * 3 + 3
    )


def test_conv_round_holds_smaller_layers():
    shrunk, _ = _pruners("conv")
    net = shrunk.module
    assert shrunk.unit_counts() == {"conv1": (6, 8), "conv2": (6, 8), "fc": (9, 12)}
    rows = shrunk.begin_sparse_training(8)
    names = {r["name"] for r in rows}
    assert names == {"conv1", "bn1", "conv2", "bn2", "fc", "out"}
    assert (net.conv1.inner.in_channels, net.conv1.inner.out_channels) == (2, 6)
    assert net.bn1.inner.num_features == 6
    assert net.bn1.inner.running_mean.shape == (6,)
    assert (net.conv2.inner.in_channels, net.conv2.inner.out_channels) == (6, 6)
    assert net.bn2.inner.weight.shape == (6,)
    assert (net.fc.inner.in_features, net.fc.inner.out_features) == (6 * 16, 9)
    assert (net.out.inner.in_features, net.out.inner.out_features) == (9, 3)
    fractions = {r["name"]: r["fraction"] for r in rows}
    assert fractions["conv1"] == pytest.approx(6 * 2 / (8 * 2))
    assert fractions["conv2"] == pytest.approx(36 / 64)
    assert fractions["bn1"] == pytest.approx(6 / 8)
    assert fractions["fc"] == pytest.approx(9 * 96 / (12 * 128))
    for r in rows:
        assert r["layout"] == "shrunk"
        key = f"{r['name']}.weight"
        if key in shrunk.masks:
            mask = shrunk.masks[key]
            assert r["fraction"] == pytest.approx(float(mask.float().mean()))
    x, _ = _data("conv")
    net.eval()
    with torch.no_grad():
        during = net(x)
    shrunk.end_sparse_training()
    with torch.no_grad():
        torch.testing.assert_close(net(x), during, atol=1e-5, rtol=1e-5)
    assert net.fc.weight.shape == (12, 128) and net.bn1.num_features == 8


def test_verbs_refused_while_shrunk():
    shrunk, _ = _pruners("mlp")
    shrunk.begin_sparse_training(8)
    for verb, args in (
        ("prune", ()),
        ("compute_masks", ()),
        ("rewind", ()),
        ("set_rewind_point", ()),
        ("to_compact", ()),
        ("set_masks", (shrunk.masks,)),
        ("begin_sparse_training", (8,)),
    ):
        with pytest.raises(RuntimeError, match="end_sparse_training"):
            getattr(shrunk, verb)(*args)
    shrunk.apply()  # allowed: the shrunk layers hold no pruned weight
    shrunk.end_sparse_training()
    shrunk.prune()  # dense again
    assert shrunk.unit_counts() == {"l1": (18, 32), "l2": (9, 16)}


def test_outputs_during_the_round_are_the_masked_modules():
    shrunk, masked = _pruners("mlp")
    x, _ = _data("mlp")
    shrunk.begin_sparse_training(8)
    with torch.no_grad():
        torch.testing.assert_close(shrunk.module(x), masked.module(x),
                                   atol=1e-5, rtol=1e-5)
    shrunk.end_sparse_training()


def test_unpruned_structured_round_swaps_nothing():
    net = _net("mlp")
    pruner = Pruner(net, granularity="neuron", example_inputs=_data("mlp")[0][:2])
    assert pruner.begin_sparse_training(8) == []
    assert not any(isinstance(m, ShrunkLayer) for m in net.modules())
    assert pruner.end_sparse_training() == []


def test_restored_layers_take_the_modules_train_mode():
    shrunk, _ = _pruners("conv")
    net = shrunk.module.train()
    shrunk.begin_sparse_training(8)
    net.eval()  # e.g. a validation pass at the end of the round
    shrunk.end_sparse_training()
    assert not any(m.training for m in net.modules())
    net.train()
    shrunk.begin_sparse_training(8)
    shrunk.end_sparse_training()
    assert all(m.training for m in net.modules())


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(8, 8)
        self.l2 = nn.Linear(8, 8)
        self.l2.weight = self.l1.weight
        self.out = nn.Linear(8, 2)

    def forward(self, x):
        return self.out(torch.relu(self.l2(torch.relu(self.l1(x)))))


def test_tied_weights_train_masked():
    from sklottery.pruning.graph import trace_units

    net = Tied()
    graph = trace_units(net, torch.randn(2, 8))
    units = {g.name: torch.arange(g.size) % 2 == 0 for g in graph.groups}
    assert to_shrunk_training(net, graph, units) == []
    assert not any(isinstance(m, ShrunkLayer) for m in net.modules())
    # the Pruner refuses units that reach a tied weight: cutting the shared
    # tensor's rows for one layer would cut the other's too
    with pytest.raises(ValueError, match="shared \\(tied\\) weights"):
        Pruner(Tied(), granularity="neuron", example_inputs=torch.randn(2, 8),
               prune_rate=0.5)
