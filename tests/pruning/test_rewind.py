"""Rewind modes on their own: the values each mode loads, exactly."""

import numpy as np
import pytest
import torch
from torch import nn

from sklottery import Pruner
from sklottery.pruning import REWIND_MODES, check_rewind, rewind_values
from sklottery.pruning.rewind import fresh_values


def test_unknown_rewind_lists_valid_modes():
    for bad in ("initial", -1, True, 1.5):
        with pytest.raises(ValueError, match="valid rewind modes are"):
            check_rewind(bad)
    assert set(REWIND_MODES) == {
        "init", "reinit", "reshuffle", "signed_constant", "none", "lr"
    }
    with pytest.raises(ValueError, match="rewind='later' is not valid"):
        Pruner(nn.Linear(3, 2), rewind="later")


def test_numpy_integer_rewind_epoch():
    assert check_rewind(np.int64(2)) == 2 and type(check_rewind(np.int64(2))) is int


def test_rewind_restores_exact_initial_values_of_survivors():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Linear(6, 2))
    init = {k: v.clone() for k, v in net.state_dict().items()}
    pruner = Pruner(net, prune_rate=0.5)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0).add_(1.0)
    net.train()(torch.randn(8, 4))  # moves the BatchNorm running stats
    pruner.prune_and_rewind()
    state = net.state_dict()
    for name, value in init.items():
        if name in pruner.masks:
            m = pruner.masks[name]
            assert torch.equal(state[name][m], value[m])
            assert torch.equal(state[name][~m], torch.zeros_like(value[~m]))
        else:  # biases and buffers rewind too
            assert torch.equal(state[name], value), name
    # the round starts from the masked rewind point itself: nothing is stored
    assert pruner.round_start_is_rewind_point


def test_pruner_reinit_and_its_round_start():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 3))
    init = {n: p.detach().clone() for n, p in net.named_parameters()}
    pruner = Pruner(net, prune_rate=0.4, rewind="reinit", random_state=1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)  # "training"
    pruner.prune()
    pruner.rewind()
    after = dict(net.named_parameters())
    assert not pruner.round_start_is_rewind_point
    for n, m in pruner.masks.items():
        assert torch.equal(after[n].detach()[~m], torch.zeros(int((~m).sum())))
        # the next prune's w_init is what the round really started from
        assert torch.equal(pruner.round_start[n], after[n].detach())
        assert not torch.equal(after[n].detach()[m], init[n][m])


def test_set_rewind_point_moves_the_round_start_too():
    torch.manual_seed(0)
    net = nn.Linear(4, 3)
    pruner = Pruner(net, prune_rate=0.5, output_rate_factor=None)
    with torch.no_grad():
        net.weight.add_(1.0)  # "the first k epochs"
    late = net.weight.detach().clone()
    pruner.set_rewind_point()
    assert torch.equal(pruner.rewind_point["weight"], late)
    assert torch.equal(pruner.round_start["weight"], late)
    with torch.no_grad():
        net.weight.mul_(2.0)
    pruner.prune_and_rewind()
    m = pruner.masks["weight"]
    assert torch.equal(net.weight.detach(), late * m)


def test_fresh_values_deterministic_and_module_untouched():
    net = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.LSTM(5, 4))
    before = {n: t.clone() for n, t in net.state_dict().items()}
    a, b = fresh_values(net, 7), fresh_values(net, 7)
    assert a.keys() == set(before) | {n for n, _ in net.named_parameters()}
    for n in a:
        assert torch.equal(a[n], b[n])
    for n, t in net.state_dict().items():
        assert torch.equal(t, before[n])
    assert not torch.equal(a["0.weight"], fresh_values(net, 8)["0.weight"])


def test_rewind_values_pure():
    point = {"w": torch.tensor([[1.0, -2.0], [3.0, -4.0]]), "b": torch.tensor([9.0])}
    current = {"w": torch.full((2, 2), 5.0), "b": torch.tensor([1.0])}
    masks = {"w": torch.tensor([[True, False], [True, True]])}
    g = torch.Generator().manual_seed(0)
    kw = {"point": point, "current": current, "masks": masks, "generator": g}
    assert rewind_values("init", **kw) == point
    assert rewind_values(3, **kw) == point
    assert rewind_values("none", **kw) == current
    assert rewind_values("lr", **kw) == current
    sc = rewind_values("signed_constant", **kw)
    std = float(point["w"].std(unbiased=False))
    assert torch.allclose(sc["w"], torch.tensor([[std, -std], [std, -std]]))
    assert sc["b"] is point["b"]
    rs = rewind_values("reshuffle", **kw)
    assert rs["w"][0, 1] == -2.0  # pruned position untouched (zeroed on load)
    assert sorted(rs["w"][masks["w"]].tolist()) == [-4.0, 1.0, 3.0]
    with pytest.raises(ValueError, match="fresh values"):
        rewind_values("reinit", **kw)


def test_fresh_values_leave_the_global_generator_alone():
    net = nn.Linear(4, 3)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    fresh_values(net, 11)
    assert torch.equal(torch.rand(3), expected)


def test_set_rewind_point_checks_names_and_shapes():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    pruner = Pruner(net, prune_rate=0.5)
    point = {n: t.detach().clone() for n, t in net.state_dict().items()}
    before = pruner.rewind_point
    cases = [
        ({**point, "0.weight": torch.ones(3, 3)},
         r"'0.weight' .*shape \(3, 4\).*\(3, 3\)"),
        ({**point, "fc.weight": torch.ones(2)}, r"unknown tensors \['fc.weight'\]"),
        ({"0.bias": point["0.bias"]}, r"missing .*'0.weight', '1.weight'"),
        ({**point, "0.bias": [0.0, 0.0, 0.0]}, "'0.bias' .*tensor"),
    ]
    for values, match in cases:
        with pytest.raises((TypeError, ValueError), match=match):
            pruner.set_rewind_point(values)
        assert pruner.rewind_point is before  # unchanged
    pruner.set_rewind_point(point)
    pruner.prune_and_rewind()


@pytest.mark.parametrize("mode", ["init", 0, "reinit", "reshuffle", "signed_constant"])
def test_keep_trained_head_is_not_rewound(mode):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    p = Pruner(net, rewind=mode, keep_trained="2", prune_rate=0.5, random_state=0)
    init = {n: t.clone() for n, t in p.rewind_point.items()}
    with torch.no_grad():  # "training"
        for t in net.parameters():
            t.add_(1.0)
    trained = {n: t.detach().clone() for n, t in net.named_parameters()}
    p.prune_and_rewind()
    state = dict(net.named_parameters())
    mask = p.masks["2.weight"]
    # the head keeps its trained values, its pruned weights zeroed
    assert torch.equal(state["2.weight"], trained["2.weight"] * mask)
    assert torch.equal(state["2.bias"], trained["2.bias"])
    # the body is rewound as `rewind` says, never left trained
    assert not torch.equal(state["0.bias"], trained["0.bias"])
    if mode in ("init", 0):
        assert torch.equal(state["0.weight"], init["0.weight"] * p.masks["0.weight"])
        assert torch.equal(state["0.bias"], init["0.bias"])
    # the next prune compares the head against the values the round started from
    assert torch.equal(p.round_start["2.weight"], state["2.weight"])
