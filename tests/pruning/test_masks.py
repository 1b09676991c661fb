"""Masks and rewinds change tensors exactly, in place, and nothing else."""

import copy
import pickle

import pytest
import torch
from torch import nn

from sklottery import Pruner
from sklottery.pruning import (
    DeviceMasks,
    apply_masks,
    find_prunable,
    load_values,
    set_rescale,
    snapshot,
)
from sklottery.pruning.masks import FLOAT_MASK_MAX_NUMEL


def mlp(*sizes):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def test_apply_masks_zeroes_exactly_and_keeps_module_clean():
    torch.manual_seed(0)
    net = mlp(4, 6, 2)
    keys = list(net.state_dict())
    pruner = Pruner(net, prune_rate=0.5)
    pruner.prune()
    with torch.no_grad():
        net[0].weight.add_(1.0)  # an optimizer step would revive pruned weights
    apply_masks(net, pruner.masks)
    m = pruner.masks["0.weight"]
    assert (net[0].weight[~m] == 0.0).all()
    # no reparametrization: same state_dict keys, no hooks, deepcopy and pickle work
    assert list(net.state_dict()) == keys
    assert not net[0]._forward_pre_hooks and not net[0]._forward_hooks
    clone = pickle.loads(pickle.dumps(copy.deepcopy(net)))
    assert torch.equal(clone[0].weight, net[0].weight)


def test_load_values_keeps_parameter_objects_and_masks():
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    weight = net[0].weight
    values = {
        "0.weight": torch.arange(6.0).reshape(2, 3) + 1,
        "1.running_mean": torch.tensor([5.0, 6.0]),
    }
    mask = {"0.weight": torch.tensor([[True, False, True], [False, True, True]])}
    load_values(net, values, mask)
    assert net[0].weight is weight  # same Parameter, new values
    assert net[0].weight.tolist() == [[1.0, 0.0, 3.0], [0.0, 5.0, 6.0]]
    assert net[1].running_mean.tolist() == [5.0, 6.0]
    with pytest.raises(KeyError, match="unknown tensors"):
        load_values(net, {"2.weight": torch.zeros(1)})


def test_snapshot_is_a_detached_copy():
    net = nn.Linear(3, 2)
    state = snapshot(net)
    assert set(state) == {"weight", "bias"}
    assert not state["weight"].requires_grad
    with torch.no_grad():
        net.weight.add_(1.0)
    assert not torch.equal(state["weight"], net.weight)
    assert set(snapshot(net, ["bias"])) == {"bias"}


def test_large_tensors_are_masked_with_bool_masks_and_stay_exactly_zero():
    """Tensors above FLOAT_MASK_MAX_NUMEL are masked with their bool mask (no
    float copy: peak memory); pruned weights must still be exactly 0.0."""
    module = nn.Sequential(nn.Linear(1040, 1024), nn.Linear(1024, 2))
    assert module[0].weight.numel() > FLOAT_MASK_MAX_NUMEL
    g = torch.Generator().manual_seed(0)
    masks = {
        "0.weight": torch.rand(1024, 1040, generator=g) < 0.3,
        "1.weight": torch.rand(2, 1024, generator=g) < 0.3,
    }
    device_masks = DeviceMasks(module, masks)
    dtypes = [m.dtype for _, m in device_masks.pairs]
    assert dtypes == [torch.bool, torch.float32]
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)  # no weight is zero before masking
    device_masks.apply()
    for name, p in module.named_parameters():
        if name in masks:
            assert int((p[~masks[name]] != 0).sum()) == 0
            assert int((p[masks[name]] != 0).sum()) == int(masks[name].sum())


def test_device_masks_skip_tensors_with_nothing_pruned():
    module = mlp(3, 4, 2)
    masks = {
        "0.weight": torch.ones(4, 3, dtype=torch.bool),
        "2.weight": torch.tensor([[True, False, True, True], [True] * 4]),
    }
    assert len(DeviceMasks(module, masks).pairs) == 1


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 2)
        self.convt = nn.ConvTranspose1d(3, 2, 2)
        self.emb = nn.EmbeddingBag(5, 4, mode="sum")
        self.bil = nn.Bilinear(4, 4, 3)
        self.lin = nn.Linear(3, 2)


def test_rescale_hook_scales_the_weight_part_once():
    torch.manual_seed(0)
    m = Mixed()
    pruner = Pruner(m, prune_rate=0.5, rescale=True, output_rate_factor=None)
    pruner.prune()
    stored = {n: p.detach().clone() for n, p in m.named_parameters()}
    twin = copy.deepcopy(m)  # same weights, hooks copied too: remove them
    for sub in twin.modules():
        sub._forward_hooks.clear()
    with torch.no_grad():
        for t in find_prunable(twin):
            w = dict(twin.named_parameters())[t.name]
            w.mul_(t.numel / int(pruner.masks[t.name].sum()))
    x4 = torch.randn(2, 2, 3, 3)
    x3 = torch.randn(2, 3, 4)
    idx = torch.tensor([[0, 1], [3, 4]])
    a, b = torch.randn(2, 4), torch.randn(2, 4)
    for _ in range(3):  # repeated forwards never compound the factor
        with torch.no_grad():
            assert torch.allclose(m.conv(x4), twin.conv(x4), atol=1e-6)
            assert torch.allclose(m.conv(x4[0]), twin.conv(x4[0]), atol=1e-6)
            assert torch.allclose(m.convt(x3), twin.convt(x3), atol=1e-6)
            assert torch.allclose(m.emb(idx), twin.emb(idx), atol=1e-6)
            assert torch.allclose(m.bil(a, b), twin.bil(a, b), atol=1e-6)
            assert torch.allclose(m.lin(a[:, :3]), twin.lin(a[:, :3]), atol=1e-6)
    for n, p in m.named_parameters():
        assert torch.equal(p.detach(), stored[n])  # stored weights unchanged
    # a second prune replaces the hooks (one per layer), with the new factor
    pruner.prune()
    assert len(m.conv._forward_hooks) == 1
    hook = next(iter(m.conv._forward_hooks.values()))
    assert hook.scale == 24 / int(pruner.masks["conv.weight"].sum())


def test_rescale_rejects_unsupported_layers():
    lstm = nn.Sequential(nn.LSTM(3, 4))
    match = r"rescale=True supports .*'linear'.*weight_ih"
    with pytest.raises(ValueError, match=match):
        Pruner(lstm, rescale=True)
    net = nn.ModuleDict({"rnn": nn.GRU(3, 4), "out": nn.Linear(4, 2)})
    Pruner(net, rescale=True, exclude=["rnn"])  # excluded: fine
    half = torch.arange(36).reshape(12, 3) < 18
    with pytest.raises(ValueError, match="supports layers of kind"):
        set_rescale(net, find_prunable(net), {"rnn.weight_ih_l0": half})
