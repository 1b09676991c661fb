"""Scopes, per-layer rates, exclusions, target sparsity and the one-shot schedule."""

import numpy as np
import pytest
import torch
from torch import nn

from sklottery import Pruner
from sklottery.pruning import (
    compound_rate,
    find_prunable,
    make_plan,
    mask_distance,
    masks_from_scores,
    per_round_rate,
    resolve_rate,
)


def three_layers():
    # 10*20 = 200, 20*20 = 400, 20*5 = 100 weights
    return nn.Sequential(
        nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 5)
    )


def kept(pruner):
    return pruner.n_kept()


def test_layer_scope_counts():
    p = Pruner(three_layers(), prune_rate=0.2)
    p.prune()
    # output layer at half rate: 100 -> 90
    assert kept(p) == {"0.weight": 160, "2.weight": 320, "4.weight": 90}
    p.prune()
    assert kept(p) == {"0.weight": 128, "2.weight": 256, "4.weight": 81}


def test_global_scope_uses_one_threshold():
    net = three_layers()
    with torch.no_grad():  # layer 0 has the largest weights, layer 2 the smallest
        net[0].weight.copy_(torch.linspace(1.0, 2.0, 200).reshape(20, 10))
        net[2].weight.copy_(torch.linspace(0.0, 0.5, 400).reshape(20, 20))
        net[4].weight.copy_(torch.linspace(0.6, 0.9, 100).reshape(5, 20))
    p = Pruner(net, prune_rate=0.5, scope="global", output_rate_factor=None)
    p.prune()
    # 700 weights, 350 pruned, all from the smallest layer
    assert kept(p) == {"0.weight": 200, "2.weight": 50, "4.weight": 100}
    p2 = Pruner(net, strategy="smallest_weights_global", prune_rate=0.5,
                output_rate_factor=None)
    assert p2.plan == p.plan


def test_global_scope_keeps_output_rate_as_its_own_group():
    p = Pruner(three_layers(), prune_rate=0.5, scope="global")
    assert p.plan == [(["0.weight", "2.weight"], 0.5), (["4.weight"], 0.25)]


def test_groups_and_overrides_are_honoured():
    net = three_layers()
    plan = make_plan(
        find_prunable(net),
        prune_rate=0.2,
        scope=[(["0", "2"], 0.5)],
        output_rate_factor=None,
        layer_rates={"4": 0.1},
    )
    assert plan == [(["0.weight", "2.weight"], 0.5), (["4.weight"], 0.1)]
    p = Pruner(net, prune_rate=0.2, scope=[(["0", "2"], 0.5)],
               output_rate_factor=None, layer_rates={"4": 0.1})
    with torch.no_grad():
        net[0].weight.fill_(1.0)  # the group ranks both tensors together
        net[2].weight.copy_(torch.linspace(0.0, 0.5, 400).reshape(20, 20))
    p.prune()
    assert kept(p) == {"0.weight": 200, "2.weight": 100, "4.weight": 90}


def test_layer_rates_and_exclude():
    p = Pruner(three_layers(), prune_rate=0.2, layer_rates={"2.weight": 0.5},
               exclude=["0"])
    p.prune()
    assert kept(p) == {"0.weight": 200, "2.weight": 200, "4.weight": 90}
    assert p.plan == [(["2.weight"], 0.5), (["4.weight"], 0.1)]


def test_unknown_layer_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"matches no prunable tensor.*'0.weight'"):
        Pruner(three_layers(), exclude=["fc9"])
    with pytest.raises(ValueError, match="scope='lots' is not valid"):
        Pruner(three_layers(), scope="lots")
    with pytest.raises(ValueError, match=r"already in another group"):
        Pruner(three_layers(), scope=[(["0"], 0.2), (["0.weight"], 0.3)])


def test_rate_maths():
    assert per_round_rate(0.36, 2) == pytest.approx(0.2)
    assert per_round_rate(0.9, 1) == pytest.approx(0.9)
    assert compound_rate(0.2, 2) == 0.36
    assert compound_rate(per_round_rate(0.75, 3), 3) == pytest.approx(0.75)
    assert resolve_rate(None, None, 5) == 0.2
    assert resolve_rate(0.3, None, 5) == 0.3
    assert resolve_rate(None, 0.36, 2) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="either prune_rate .* or target_sparsity"):
        resolve_rate(0.2, 0.5, 3)
    with pytest.raises(ValueError, match="needs n_rounds >= 1"):
        resolve_rate(None, 0.5, 0)
    with pytest.raises(ValueError, match="needs n_rounds >= 1"):
        resolve_rate(None, 0.5, None)


def test_target_sparsity_reaches_target_on_base_layers():
    p = Pruner(three_layers(), target_sparsity=0.488, n_rounds=3)
    assert p.rate == pytest.approx(0.2)
    for _ in range(3):
        p.prune()
    # 200 -> 160 -> 128 -> 102 (0.49 sparsity); the output layer at half rate
    assert kept(p) == {"0.weight": 102, "2.weight": 205, "4.weight": 73}


def test_oneshot_prunes_the_whole_amount_once():
    it = Pruner(three_layers(), prune_rate=0.2, n_rounds=3)
    for _ in range(3):
        it.prune()
    one = Pruner(three_layers(), prune_rate=0.2, n_rounds=3, schedule="oneshot")
    assert one.plan == [
        (["0.weight"], compound_rate(0.2, 3)),
        (["2.weight"], compound_rate(0.2, 3)),
        (["4.weight"], compound_rate(0.1, 3)),
    ]
    one.prune()
    # same fraction as three iterative prunes, up to the rounding of counts
    assert kept(one) == {"0.weight": 102, "2.weight": 205, "4.weight": 73}
    assert kept(it) == kept(one)
    with pytest.raises(ValueError, match="schedule='oneshot' needs n_rounds >= 1"):
        Pruner(three_layers(), schedule="oneshot")
    match = r"valid schedules are \['iterative', 'oneshot'\]"
    with pytest.raises(ValueError, match=match):
        Pruner(three_layers(), schedule="gradual")


def test_oneshot_with_target_sparsity():
    p = Pruner(three_layers(), target_sparsity=0.5, n_rounds=4, schedule="oneshot",
               output_rate_factor=None)
    p.prune()
    assert kept(p) == {"0.weight": 100, "2.weight": 200, "4.weight": 50}


def test_mask_distance():
    a = {"x": torch.tensor([True, True, False, False]), "y": torch.ones(4, dtype=bool)}
    b = {"x": torch.tensor([True, False, True, False]), "y": torch.ones(4, dtype=bool)}
    assert mask_distance(a, a) == 0.0
    assert mask_distance(a, b) == 0.25


def test_masks_from_scores_groups_rank_across_tensors():
    scores = {"a": torch.tensor([1.0, 5.0]), "b": torch.tensor([2.0, 3.0, 4.0])}
    masks = {n: torch.ones_like(s, dtype=torch.bool) for n, s in scores.items()}
    out = masks_from_scores(scores, masks, [(["a", "b"], 0.4)])
    assert out["a"].tolist() == [False, True]
    assert out["b"].tolist() == [False, True, True]
    assert np.all(masks["a"].numpy())  # inputs untouched
