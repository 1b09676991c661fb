"""The pruning machinery on its own: counts, criteria, masks, rewinding."""

import copy
import math
import pickle

import pytest
import torch
from torch import nn

from sklottery import ApplyMasks, Pruner
from sklottery.pruning import (
    apply_masks,
    compute_scores,
    find_prunable,
    make_plan,
    masks_from_scores,
    n_to_prune,
    resolve_strategy,
)


def expected_kept(sizes, prune_rate, n_rounds, output_rate_factor=0.5):
    """Kept counts per layer for rounds 0..n_rounds, from the documented rule.

    A layer prunes floor(rate * remaining + 0.5) of its remaining weights and
    never its last one; the last (output) layer's rate is
    prune_rate * output_rate_factor.
    """
    rates = [prune_rate] * len(sizes)
    if output_rate_factor is not None:
        rates[-1] = prune_rate * output_rate_factor
    kept = list(sizes)
    out = [list(kept)]
    for _ in range(n_rounds):
        kept = [
            k - min(math.floor(r * k + 0.5), k - 1) for k, r in zip(kept, rates)
        ]
        out.append(list(kept))
    return out


def mlp(*sizes):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


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


def test_kept_counts_per_layer_each_round():
    torch.manual_seed(0)
    net = mlp(7, 13, 5, 3)  # 91, 65 and 15 weights
    pruner = Pruner(net, prune_rate=0.3)
    names = ["0.weight", "2.weight", "4.weight"]
    assert list(pruner.masks) == names
    expected = expected_kept([91, 65, 15], 0.3, 6)
    assert [pruner.n_kept()[n] for n in names] == expected[0]
    for r in range(1, 7):
        pruner.prune_and_rewind()
        assert [pruner.n_kept()[n] for n in names] == expected[r], r
        # the module holds exactly as many non-zero weights as the masks keep
        params = dict(net.named_parameters())
        assert [int((params[n] != 0).sum()) for n in names] == expected[r]
    total = sum(expected[-1])
    assert pruner.sparsity() == pytest.approx(1 - total / (91 + 65 + 15))


def test_output_layer_factor_and_none():
    torch.manual_seed(0)
    p = Pruner(mlp(4, 10, 10), prune_rate=0.4, output_rate_factor=None)
    p.prune()
    assert p.n_kept() == {"0.weight": 24, "2.weight": 60}
    p = Pruner(mlp(4, 10, 10), prune_rate=0.4, output_rate_factor=0.25)
    p.prune()
    assert p.n_kept() == {"0.weight": 24, "2.weight": 90}


def test_global_scope_counts_the_group_together():
    torch.manual_seed(0)
    p = Pruner(mlp(6, 10, 8, 4), prune_rate=0.5, scope="global")
    p.prune()
    kept = p.n_kept()
    # hidden layers share one ranking: 60 + 80 = 140 weights, 70 pruned
    assert kept["0.weight"] + kept["2.weight"] == 70
    # the output layer keeps its own rate 0.25: 32 - 8
    assert kept["4.weight"] == 24


def test_large_final_keeps_the_largest_magnitudes():
    torch.manual_seed(0)
    net = mlp(5, 8, 3)
    pruner = Pruner(net, prune_rate=0.5, output_rate_factor=None)
    w = net[0].weight.detach().clone()
    pruner.prune()
    mask = pruner.masks["0.weight"]
    assert int(mask.sum()) == 20
    assert w.abs()[mask].min() > w.abs()[~mask].max()
    assert torch.equal(net[0].weight.detach(), w * mask)


def test_masks_are_nested_and_pruned_weights_stay_pruned():
    torch.manual_seed(0)
    net = mlp(6, 12, 4)
    pruner = Pruner(net, prune_rate=0.3, strategy="random", random_state=3)
    previous = {n: m.clone() for n, m in pruner.masks.items()}
    for _ in range(4):
        with torch.no_grad():  # stand-in for training: move every weight
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        pruner.prune_and_rewind()
        for n, m in pruner.masks.items():
            assert not (m & ~previous[n]).any()  # nothing comes back to life
        previous = {n: m.clone() for n, m in pruner.masks.items()}


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


def test_biases_and_norms_are_never_prunable():
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.LayerNorm(8),
        nn.Linear(8, 3),
    )
    names = [t.name for t in find_prunable(net)]
    assert names == ["0.weight", "4.weight"]


def test_subclass_of_linear_is_found():
    class MyLinear(nn.Linear):
        pass

    net = nn.Sequential(MyLinear(3, 4), nn.Linear(4, 2))
    assert [t.name for t in find_prunable(net)] == ["0.weight", "1.weight"]


def test_nothing_prunable_is_a_clear_error():
    net = nn.Sequential(nn.BatchNorm1d(3), nn.ReLU())
    with pytest.raises(ValueError, match="no prunable tensors"):
        Pruner(net)


def test_unknown_strategy_lists_the_valid_ones():
    match = r"valid strategies are \['large_final', .*'movement', 'random'"
    with pytest.raises(ValueError, match=match):
        resolve_strategy("biggest")


def test_criteria_and_mask_maths_are_pure():
    torch.manual_seed(0)
    w_init = {"a": torch.randn(4, 5)}
    w_final = {"a": torch.randn(4, 5)}
    before = (w_init["a"].clone(), w_final["a"].clone())
    crit, _ = resolve_strategy("large_final")
    scores = compute_scores(crit, w_init, w_final)
    masks = {"a": torch.ones(4, 5, dtype=torch.bool)}
    new = masks_from_scores(scores, masks, [(["a"], 0.5)])
    assert torch.equal(w_init["a"], before[0]) and torch.equal(w_final["a"], before[1])
    assert bool(masks["a"].all())  # the input masks are not modified
    assert int(new["a"].sum()) == 10


def test_ties_are_broken_by_position():
    scores = {"a": torch.zeros(6, dtype=torch.float64)}
    masks = {"a": torch.ones(6, dtype=torch.bool)}
    new = masks_from_scores(scores, masks, [(["a"], 0.5)])
    assert new["a"].tolist() == [False, False, False, True, True, True]


def test_callable_strategy():
    torch.manual_seed(0)
    net = mlp(3, 4, 2)
    # keep the smallest magnitudes: the opposite of large_final
    pruner = Pruner(net, strategy=lambda wi, wf: -wf.abs(), prune_rate=0.5)
    w = net[0].weight.detach().clone()
    pruner.prune()
    m = pruner.masks["0.weight"]
    assert w.abs()[m].max() < w.abs()[~m].min()


def test_random_strategy_is_seeded():
    def masks(seed):
        torch.manual_seed(0)
        p = Pruner(mlp(5, 9, 3), strategy="random", prune_rate=0.5, random_state=seed)
        return p.prune()

    a, b, c = masks(1), masks(1), masks(2)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not all(torch.equal(a[n], c[n]) for n in a)


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


def test_plan_rejects_bad_rates():
    targets = find_prunable(mlp(3, 4, 2))
    with pytest.raises(ValueError, match=r"layer_rates\['0'\] must be in \[0, 1\)"):
        make_plan(targets, prune_rate=0.2, layer_rates={"0": 1.5})
    with pytest.raises(ValueError, match="matches no prunable tensor"):
        make_plan(targets, prune_rate=0.2, exclude=["nope"])


def test_apply_masks_callback_with_a_plain_skorch_net():
    from skorch import NeuralNetClassifier

    torch.manual_seed(0)
    X = torch.randn(64, 5)
    y = (X[:, 0] > 0).long()
    module = mlp(5, 8, 2)
    pruner = Pruner(module, prune_rate=0.5)
    pruner.prune()
    net = NeuralNetClassifier(
        module, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.SGD,
        optimizer__momentum=0.9, lr=0.5, max_epochs=2, batch_size=16,
        train_split=None, verbose=0, callbacks=[ApplyMasks(pruner)],
    )
    net.initialize()
    net.partial_fit(X, y)  # keeps the module's weights
    for name, p in net.module_.named_parameters():
        if name in pruner.masks:
            assert (p[~pruner.masks[name]] == 0.0).all()
            assert int((p != 0).sum()) == pruner.n_kept()[name]
