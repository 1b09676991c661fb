"""Structured pruning with the Pruner (granularity="neuron"/"channel"): unit
counts per round, the masks of a pruned unit, the unit criteria, scopes,
rates, schedules and what is refused."""

import copy
import warnings

import pytest
import torch
from torch import nn

from sklottery import Pruner

# -- tiny nets ---------------------------------------------------------------------


class UserMLP(nn.Module):
    def __init__(self, sizes=(10, 100, 50, 3)):
        super().__init__()
        a, b, c, d = sizes
        self.l1 = nn.Linear(a, b)
        self.l2 = nn.Linear(b, c)
        self.out = nn.Linear(c, d)

    def forward(self, x):
        return self.out(torch.relu(self.l2(torch.relu(self.l1(x)))))


class ConvNet(nn.Module):
    """conv1 (8) -> conv2 (8) -> pool -> flatten -> fc (20) -> out; without
    ``hidden`` the flattened channels go straight to ``out``."""

    def __init__(self, bn=True, hidden=True):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8) if bn else nn.Identity()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8) if bn else nn.Identity()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 20) if hidden else nn.Identity()
        self.out = nn.Linear(20 if hidden else 8 * 4 * 4, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(torch.relu(self.bn2(self.conv2(x))))
        return self.out(torch.relu(self.fc(torch.flatten(x, 1))))


X_MLP = torch.randn(4, 10, generator=torch.Generator().manual_seed(1))
X_CONV = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _mlp_pruner(**kwargs):
    kwargs.setdefault("prune_rate", 0.2)
    return Pruner(UserMLP(), granularity="neuron", example_inputs=X_MLP, **kwargs)


def _kept(keep):
    return keep.nonzero().squeeze(1).tolist()


def _check_structured_mlp(pruner):
    """Every pruned unit: exactly zero producer rows and consumer columns in
    the masks and the weights; every kept unit: all its weights kept."""
    units = pruner.unit_masks()
    k1, k2 = units["l1"], units["l2"]
    masks, net = pruner.masks, pruner.module
    assert torch.equal(masks["l1.weight"], k1[:, None].expand(-1, net.l1.in_features))
    assert torch.equal(masks["l2.weight"], k2[:, None] & k1[None, :])
    assert torch.equal(masks["out.weight"], k2[None, :].expand(3, -1))
    for name, mask in masks.items():
        weight = dict(net.named_parameters())[name]
        assert torch.count_nonzero(weight[~mask]) == 0, name  # exact zeros
        assert torch.count_nonzero(weight[mask]) == int(mask.sum()), name


# -- unit counts per round ---------------------------------------------------------
def test_counts_per_round_follow_the_rate_exactly():
    pruner = _mlp_pruner()
    assert pruner.granularity == "neuron" and pruner.structured
    assert pruner.unit_counts() == {"l1": (100, 100), "l2": (50, 50)}
    expected_l1, expected_l2 = [100], [50]
    for _ in range(5):
        expected_l1.append(expected_l1[-1] - round(0.2 * expected_l1[-1]))
        expected_l2.append(expected_l2[-1] - round(0.2 * expected_l2[-1]))
    assert expected_l1 == [100, 80, 64, 51, 41, 33]
    assert expected_l2 == [50, 40, 32, 26, 21, 17]
    for k in range(1, 6):
        pruner.prune()
        assert pruner.unit_counts() == {
            "l1": (expected_l1[k], 100), "l2": (expected_l2[k], 50),
        }
        _check_structured_mlp(pruner)
    # the output layer's units are never pruned: every row keeps weights
    assert bool(pruner.masks["out.weight"].any(dim=1).all())
    assert "out" not in pruner.unit_counts()


def test_pruned_units_stay_pruned_across_rounds_and_rewinds():
    pruner = _mlp_pruner()
    pruner.prune_and_rewind()
    first = pruner.unit_masks()
    pruner.prune_and_rewind()
    second = pruner.unit_masks()
    for name in first:
        assert bool((second[name] <= first[name]).all())  # only fewer units
    _check_structured_mlp(pruner)
    # the rewound weights are the initial ones, masked
    for name, mask in pruner.masks.items():
        init = pruner.rewind_point[name]
        weight = dict(pruner.module.named_parameters())[name]
        assert torch.equal(weight, init * mask)


def test_channel_is_a_synonym_of_neuron():
    net = ConvNet()
    a = Pruner(net, granularity="neuron", example_inputs=X_CONV, prune_rate=0.25)
    b = Pruner(copy.deepcopy(net), granularity="channel", example_inputs=X_CONV,
               prune_rate=0.25)
    assert a.granularity == b.granularity == "neuron"
    a.prune()
    b.prune()
    assert a.masks.keys() == b.masks.keys()
    for name in a.masks:
        assert torch.equal(a.masks[name], b.masks[name]), name
    assert b.unit_counts() == {"conv1": (6, 8), "conv2": (6, 8), "fc": (15, 20)}


# -- criteria ----------------------------------------------------------------------
def _spread_and_peaked():
    """A 4-10-3 net: even units' rows [1, 1, 1, 1] (L1 4, L2 2), odd units'
    rows [3, 0, 0, 0] (L1 3, L2 3), each scaled by 1 + i/100 (no ties)."""
    net = UserMLP((4, 10, 6, 3))
    with torch.no_grad():
        for i in range(10):
            row = torch.ones(4) if i % 2 == 0 else torch.tensor([3.0, 0, 0, 0])
            net.l1.weight[i] = row * (1 + i / 100)
        net.l1.bias.zero_()
    return net


def _l1_pruner(net, strategy, **kwargs):
    return Pruner(
        net, granularity="neuron", strategy=strategy, prune_rate=0.5,
        example_inputs=torch.randn(2, 4), layer_rates={"l2": 0.0}, **kwargs,
    )


def test_l1_norm_prunes_the_smallest_l1_rows():
    pruner = _l1_pruner(_spread_and_peaked(), "l1_norm")
    pruner.prune()
    assert _kept(pruner.unit_masks()["l1"]) == [0, 2, 4, 6, 8]
    assert pruner.unit_counts()["l2"] == (6, 6)  # rate 0


def test_l2_norm_prunes_the_smallest_l2_rows():
    pruner = _l1_pruner(_spread_and_peaked(), "l2_norm")
    pruner.prune()
    assert _kept(pruner.unit_masks()["l1"]) == [1, 3, 5, 7, 9]


def test_default_strategy_ranks_units_by_l1_norm():
    net = UserMLP()
    norms = net.l1.weight.detach().abs().sum(1)
    a = Pruner(net, granularity="neuron", example_inputs=X_MLP, prune_rate=0.2)
    b = Pruner(copy.deepcopy(net), granularity="neuron", example_inputs=X_MLP,
               prune_rate=0.2, strategy="l1_norm")
    a.prune()
    b.prune()
    for name in a.masks:
        assert torch.equal(a.masks[name], b.masks[name]), name
    # and those are the rows of smallest L1 norm
    assert _kept(a.unit_masks()["l1"]) == sorted(norms.argsort()[20:].tolist())


def test_bn_scale_prunes_the_smallest_gammas():
    net = ConvNet(hidden=False)
    gammas1 = torch.tensor([0.9, -0.05, 0.7, 0.3, -0.01, 0.5, 0.8, 0.02])
    gammas2 = torch.tensor([0.1, 2.0, -3.0, 0.5, 1.0, -0.2, 0.04, 0.6])
    with torch.no_grad():
        net.bn1.weight.copy_(gammas1)
        net.bn2.weight.copy_(gammas2)
        # the filters bn_scale cuts have the largest weights: not an L1 pick
        net.conv1.weight[[4, 7]] *= 100
        net.conv2.weight[[0, 6]] *= 100
    pruner = Pruner(
        net, granularity="channel", strategy="bn_scale", prune_rate=0.25,
        example_inputs=X_CONV,
    )
    pruner.prune()
    units = pruner.unit_masks()
    assert _kept(units["conv1"]) == [0, 1, 2, 3, 5, 6]
    assert _kept(units["conv2"]) == [1, 2, 3, 4, 5, 7]
    assert set(units) == {"conv1", "conv2"}
    # the pruned channels lose their conv2 columns / out column blocks too
    assert not pruner.masks["conv2.weight"][:, [4, 7]].any()
    out = pruner.masks["out.weight"].reshape(3, 8, 16)
    assert not out[:, [0, 6]].any() and out[:, [1, 2, 3, 4, 5, 7]].all()


def test_bn_scale_without_batchnorm_names_the_layer():
    with pytest.raises(ValueError, match=r"bn_scale.*'l1'"):
        _mlp_pruner(strategy="bn_scale")
    with pytest.raises(ValueError, match=r"bn_scale.*'conv1'"):
        Pruner(ConvNet(bn=False), granularity="neuron", strategy="bn_scale",
               example_inputs=X_CONV)


def test_random_units_reproducible_with_random_state():
    def pruned(seed):
        torch.manual_seed(0)
        pruner = _mlp_pruner(strategy="random", random_state=seed)
        pruner.prune()
        assert pruner.unit_counts() == {"l1": (80, 100), "l2": (40, 50)}
        _check_structured_mlp(pruner)
        return pruner.unit_masks()

    a, b, c = pruned(0), pruned(0), pruned(1)
    assert torch.equal(a["l1"], b["l1"]) and torch.equal(a["l2"], b["l2"])
    assert not torch.equal(a["l1"], c["l1"])
    torch.manual_seed(0)
    by_norm = _mlp_pruner()
    by_norm.prune()
    assert not torch.equal(a["l1"], by_norm.unit_masks()["l1"])


# -- scopes, rates, exclude, schedules -------------------------------------------
def test_global_scope_ranks_units_across_layers():
    net = UserMLP()
    with torch.no_grad():
        # unit scores (row L1 norms): l1: 10 x 1.0, then 90 x 10.0;
        # l2: 20 x 2.0, then 30 x 20.0 -- the 30 smallest of 150 span both
        net.l1.weight.fill_(1.0)
        net.l1.weight[:10] = 0.1
        net.l2.weight.fill_(0.2)
        net.l2.weight[20:40] = 0.02
    pruner = Pruner(net, granularity="neuron", example_inputs=X_MLP,
                    prune_rate=0.2, scope="global")
    pruner.prune()
    units = pruner.unit_masks()
    assert _kept(units["l1"]) == list(range(10, 100))
    assert _kept(units["l2"]) == list(range(20)) + list(range(40, 50))
    # by layer, each loses its own 20%
    layer = Pruner(copy.deepcopy(net), granularity="neuron", example_inputs=X_MLP,
                   prune_rate=0.2)
    layer.prune()
    assert layer.unit_counts() == {"l1": (80, 100), "l2": (40, 50)}


def test_layer_rates_give_a_layer_its_own_rate():
    pruner = _mlp_pruner(layer_rates={"l1": 0.5})
    pruner.prune()
    assert pruner.unit_counts() == {"l1": (50, 100), "l2": (40, 50)}
    pruner.prune()
    assert pruner.unit_counts() == {"l1": (25, 100), "l2": (32, 50)}


def test_type_rates_by_the_units_layer_kind():
    pruner = Pruner(ConvNet(), granularity="neuron", example_inputs=X_CONV,
                    prune_rate=0.2, type_rates={"conv": 0.5, "linear": 0.25})
    pruner.prune()
    assert pruner.unit_counts() == {"conv1": (4, 8), "conv2": (4, 8), "fc": (15, 20)}


def test_excluding_a_consumer_leaves_the_group_unpruned_with_a_warning():
    with pytest.warns(UserWarning, match=r"'l2' \(its units reach \['out\.weight'\]"):
        pruner = _mlp_pruner(exclude="out")
    pruner.prune()
    assert bool(pruner.masks["out.weight"].all())
    assert pruner.unit_counts() == {"l1": (80, 100), "l2": (50, 50)}
    assert bool(pruner.masks["l2.weight"].any(dim=1).all())  # every l2 row lives
    assert int(pruner.masks["l2.weight"].sum()) == 50 * 80


def test_no_warning_for_the_output_layer():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _mlp_pruner()


def test_linear_schedule_counts_of_the_original_units():
    pruner = _mlp_pruner(schedule="linear")
    counts = []
    for _ in range(4):
        pruner.prune()
        counts.append((pruner.unit_counts()["l1"][0], pruner.unit_counts()["l2"][0]))
    assert counts == [(80, 40), (60, 30), (40, 20), (20, 10)]


def test_target_sparsity_derives_the_rate():
    pruner = Pruner(UserMLP(), granularity="neuron", example_inputs=X_MLP,
                    target_sparsity=0.36, n_rounds=2)
    assert pruner.rate == pytest.approx(0.2)
    pruner.prune()
    pruner.prune()
    assert pruner.unit_counts() == {"l1": (64, 100), "l2": (32, 50)}


# -- refusals ----------------------------------------------------------------------
def test_bad_granularity():
    with pytest.raises(ValueError, match="granularity"):
        Pruner(UserMLP(), granularity="filter", example_inputs=X_MLP)
    with pytest.raises(ValueError, match="granularity"):
        Pruner(UserMLP(), granularity=None)


def test_structured_needs_example_inputs():
    with pytest.raises(ValueError, match="example_inputs"):
        Pruner(UserMLP(), granularity="neuron")


def test_structured_refuses_rescale():
    with pytest.raises(ValueError, match="rescale"):
        Pruner(UserMLP(), granularity="neuron", example_inputs=X_MLP, rescale=True)


def test_structured_refuses_prune_at_init():
    pruner = _mlp_pruner()
    with pytest.raises(ValueError, match="prune_at_init"):
        pruner.prune_at_init()
    assert pruner.unit_counts() == {"l1": (100, 100), "l2": (50, 50)}


def test_nothing_to_prune_is_refused():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.out = nn.Linear(10, 3)

        def forward(self, x):
            return self.out(x)

    with pytest.raises(ValueError, match="finds no units to prune"):
        Pruner(Tiny(), granularity="neuron", example_inputs=X_MLP)
