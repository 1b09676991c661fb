"""Scopes, per-layer rates, exclusions, target sparsity, the one-shot schedule
and the ranking that turns scores into masks."""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from sklottery import Pruner
from sklottery.pruning import (
    compound_rate,
    find_prunable,
    make_plan,
    mask_distance,
    masks_from_scores,
    n_to_prune,
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
    match = r"valid schedules are \['iterative', 'oneshot', 'linear'\]"
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


@pytest.mark.parametrize(
    "n_alive, rate, expected",
    [
        (10, 0.2, 2),
        (5, 0.5, 3),  # 2.5 rounds half up
        (4, 0.125, 1),  # 0.5 rounds half up
        (4, 0.12, 0),
        (1, 0.9, 0),  # the last weight is never pruned
        (3, 0.99, 2),
        (0, 0.5, 0),
        (100, 0.0, 0),
    ],
)
def test_n_to_prune_rule(n_alive, rate, expected):
    assert n_to_prune(n_alive, rate) == expected


def test_n_to_prune_without_keep_one_may_empty_a_group():
    assert n_to_prune(3, 0.99, keep_one=False) == 3


def test_ties_are_broken_by_position():
    scores = {"a": torch.zeros(6, dtype=torch.float64)}
    masks = {"a": torch.ones(6, dtype=torch.bool)}
    new = masks_from_scores(scores, masks, [(["a"], 0.5)])
    assert new["a"].tolist() == [False, False, False, True, True, True]


def test_plan_rejects_bad_rates():
    targets = find_prunable(three_layers())
    with pytest.raises(ValueError, match=r"layer_rates\['0'\] must be in \[0, 1\)"):
        make_plan(targets, prune_rate=0.2, layer_rates={"0": 1.5})
    with pytest.raises(ValueError, match="matches no prunable tensor"):
        make_plan(targets, prune_rate=0.2, exclude=["nope"])


def _masks_by_stable_sort(scores, masks, plan):
    """The reference ranking: a stable ascending sort of the survivors."""
    new = {n: m.clone() for n, m in masks.items()}
    for names, rate in plan:
        flat_masks = torch.cat([masks[n].reshape(-1) for n in names])
        alive = flat_masks.nonzero().squeeze(1)
        n_prune = n_to_prune(int(alive.numel()), rate)
        flat_scores = torch.cat([scores[n].reshape(-1) for n in names])
        order = torch.sort(flat_scores[alive], stable=True).indices
        flat_masks[alive[order[:n_prune]]] = False
        start = 0
        for n in names:
            new[n] = flat_masks[start : start + masks[n].numel()].reshape(
                masks[n].shape
            )
            start += masks[n].numel()
    return new


@pytest.mark.parametrize("seed", range(25))
def test_low_memory_ranking_equals_stable_sort(seed):
    """masks_from_scores selects instead of sorting (a fit's peak memory);
    the masks must be exactly those of the stable sort, ties included."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"a": (7, 5), "b": (3, 4, 2), "c": (11,)}
    # few distinct values: many ties, also across tensors of a group
    scores = {
        n: torch.randint(-3, 4, s, generator=g).double() for n, s in shapes.items()
    }
    masks = {n: torch.rand(s, generator=g) < 0.8 for n, s in shapes.items()}
    rate = float(torch.rand((), generator=g)) * 0.95
    for plan in (
        [(["a"], rate), (["b"], rate / 2), (["c"], rate)],
        [(["a", "b", "c"], rate)],
    ):
        got = masks_from_scores(scores, masks, plan)
        expected = _masks_by_stable_sort(scores, masks, plan)
        for name in shapes:
            assert torch.equal(got[name], expected[name]), (seed, plan, name)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: a reproducible suite
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    sizes=st.lists(st.integers(2, 40), min_size=3, max_size=5),
    prune_rate=st.floats(0.01, 0.99, allow_nan=False),
    n_rounds=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_global_scope_prunes_the_shared_group_by_its_total(
    sizes, prune_rate, n_rounds, seed
):
    layers = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
    torch.manual_seed(seed)
    module = nn.Sequential(*layers)
    pruner = Pruner(module, prune_rate=prune_rate, scope="global")
    names = list(pruner.masks)
    shared, output = names[:-1], names[-1]
    n_shared = sum(pruner.masks[n].numel() for n in shared)
    n_out = pruner.masks[output].numel()
    for _ in range(n_rounds):
        pruner.prune_and_rewind()
        n_shared -= min(math.floor(prune_rate * n_shared + 0.5), n_shared - 1)
        n_out -= min(math.floor(prune_rate * 0.5 * n_out + 0.5), n_out - 1)
        kept = pruner.n_kept()
        assert sum(kept[n] for n in shared) == n_shared
        assert kept[output] == n_out


def test_linear_schedule_keeps_exact_fractions_of_the_original():
    # Chen et al. 2020: 10% of the original weights per round
    p = Pruner(three_layers(), prune_rate=0.1, schedule="linear", n_rounds=9)
    seen = []
    for _ in range(9):
        p.prune_and_rewind()
        seen.append(kept(p))
    for k, counts in enumerate(seen, start=1):
        assert counts == {
            "0.weight": 200 - 20 * k,
            "2.weight": 400 - 40 * k,
            # the output layer at half the rate: 5% of its 100 per round
            "4.weight": 100 - 5 * k,
        }
    # the geometric schedule prunes 10% of what is left instead
    geo = Pruner(three_layers(), prune_rate=0.1)
    geo.prune_and_rewind()
    geo.prune_and_rewind()
    assert kept(geo)["2.weight"] == 324 != seen[1]["2.weight"]


def test_linear_schedule_with_global_scope_counts_the_whole_group():
    p = Pruner(three_layers(), target_sparsity=0.6, n_rounds=3, schedule="linear",
               scope="global", output_rate_factor=None)
    assert p.rate == pytest.approx(0.2)
    totals = []
    for _ in range(3):
        p.prune()
        totals.append(sum(kept(p).values()))
    assert totals == [560, 420, 280]


def test_linear_schedule_warns_when_it_would_empty_a_tensor():
    with pytest.warns(UserWarning, match="prunes every weight of 0.weight"):
        Pruner(three_layers(), prune_rate=0.25, schedule="linear", n_rounds=4)
    with pytest.warns(UserWarning, match="under one weight"):
        Pruner(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), prune_rate=0.1,
               schedule="linear", output_rate_factor=None)
