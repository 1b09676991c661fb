"""The Pruner: kept counts, strategies and masks over rounds, in any torch loop."""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from sklottery import Pruner


def mlp(*sizes):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def test_kept_counts_per_layer_each_round(expected_kept):
    torch.manual_seed(0)
    net = mlp(7, 13, 5, 3)  # 91, 65 and 15 weights
    pruner = Pruner(net, prune_rate=0.3)
    names = ["0.weight", "2.weight", "4.weight"]
    assert list(pruner.masks) == names
    expected = expected_kept([91, 65, 15], [0.3, 0.3, 0.15], 6)
    assert [pruner.n_kept()[n] for n in names] == expected[0]
    for r in range(1, 7):
        pruner.prune_and_rewind()
        assert [pruner.n_kept()[n] for n in names] == expected[r], r
        # the module holds exactly as many non-zero weights as the masks keep
        params = dict(net.named_parameters())
        assert [int((params[n] != 0).sum()) for n in names] == expected[r]
    total = sum(expected[-1])
    assert pruner.sparsity() == pytest.approx(1 - total / (91 + 65 + 15))
    table = pruner.layer_table()
    assert table["kept"].tolist() == expected[-1]


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


def test_compute_masks_changes_nothing():
    torch.manual_seed(0)
    net = mlp(4, 6, 2)
    pruner = Pruner(net, prune_rate=0.5)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    masks = pruner.compute_masks()
    assert int(masks["0.weight"].sum()) == 12
    assert all(bool(m.all()) for m in pruner.masks.values())
    for n, p in net.named_parameters():
        assert torch.equal(p.detach(), before[n])


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


def test_snip_masks_follow_weight_times_gradient():
    torch.manual_seed(0)
    lin = nn.Linear(4, 3, bias=False)
    pruner = Pruner(lin, strategy="snip", prune_rate=0.5, output_rate_factor=None)
    assert pruner.needs_grad
    x = torch.tensor([[1.0, 2.0, -1.0, 0.5], [0.0, 1.0, 3.0, -2.0]])
    grad = pruner.gradients(lambda m, b: m(b).sum(), [x])
    # d/dW sum(x W^T) = column sums of x, for every output row
    assert torch.allclose(grad["weight"], x.sum(0).expand(3, 4))
    assert lin.weight.grad is None  # .grad untouched
    saliency = (lin.weight.detach() * grad["weight"]).abs().reshape(-1)
    pruner.prune(grad=grad)
    expected = torch.ones(12, dtype=torch.bool)
    expected[saliency.argsort()[:6]] = False
    assert torch.equal(pruner.masks["weight"].reshape(-1), expected)


def test_given_masks_are_checked():
    net = mlp(3, 4, 2)
    good = {"0.weight": torch.ones(4, 3, dtype=torch.bool),
            "2.weight": torch.ones(2, 4, dtype=torch.bool)}
    pruner = Pruner(net, masks=good)
    with pytest.raises(ValueError, match="exactly the keys"):
        pruner.set_masks({"0.weight": good["0.weight"]})
    with pytest.raises(ValueError, match=r"bool tensor of shape \(4, 3\)"):
        pruner.set_masks({**good, "0.weight": torch.ones(4, 3)})
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        Pruner("not a module")


def test_strategy_implying_a_scope_refuses_another():
    with pytest.raises(ValueError, match="implies scope='global'"):
        Pruner(mlp(3, 4, 2), strategy="smallest_weights_global",
               scope=[(["0"], 0.2)])


SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: a reproducible suite
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def networks(draw):
    """A random stack: an optional Conv2d front on 1x6x6 inputs, then Linears."""
    layers, sizes = [], []
    if draw(st.booleans()):
        c, k = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        layers += [nn.Conv2d(1, c, k), nn.ReLU(), nn.Flatten()]
        sizes.append(c * k * k)
        width = c * (7 - k) ** 2
    else:
        width = draw(st.integers(1, 9))
        layers.append(nn.Flatten())
    for out in draw(st.lists(st.integers(1, 12), min_size=1, max_size=3)):
        layers += [nn.Linear(width, out), nn.ReLU()]
        sizes.append(width * out)
        width = out
    return layers[:-1], sizes


@SETTINGS
@given(
    net=networks(),
    prune_rate=st.floats(0.01, 0.99, allow_nan=False),
    factor=st.sampled_from([None, 0.5, 1.0, 0.3]),
    n_rounds=st.integers(0, 6),
    seed=st.integers(0, 2**16),
    strategy=st.sampled_from(["large_final", "random"]),
)
def test_kept_counts_are_exactly_what_the_rates_say(
    expected_kept, net, prune_rate, factor, n_rounds, seed, strategy
):
    layers, sizes = net
    torch.manual_seed(seed)
    module = nn.Sequential(*layers)
    pruner = Pruner(
        module, prune_rate=prune_rate, output_rate_factor=factor,
        strategy=strategy, random_state=seed,
    )
    names = list(pruner.masks)
    assert [pruner.masks[n].numel() for n in names] == sizes
    rates = [prune_rate] * len(sizes)
    if factor is not None:
        rates[-1] = prune_rate * factor
    expected = expected_kept(sizes, rates, n_rounds)
    init = {n: p.detach().clone() for n, p in module.named_parameters()}
    for r in range(n_rounds + 1):
        if r:
            with torch.no_grad():  # stand-in for training: move every weight
                for p in module.parameters():
                    p.add_(torch.randn_like(p))
            pruner.prune_and_rewind()
        assert [pruner.n_kept()[n] for n in names] == expected[r]
        params = dict(module.named_parameters())
        for n in names:
            m = pruner.masks[n]
            assert (params[n][~m] == 0.0).all()
            assert torch.equal(params[n][m], init[n][m])
    assert math.isclose(
        pruner.sparsity(), 1 - sum(expected[-1]) / sum(sizes), rel_tol=1e-12
    )


# -- arguments checked against the prunable tensors (issue 19) -------------------------
def test_grad_of_the_wrong_shapes_or_names():
    net = mlp(3, 4, 2)
    pruner = Pruner(net, strategy="snip", prune_rate=0.5)
    good = {"0.weight": torch.ones(4, 3), "2.weight": torch.ones(2, 4)}
    with pytest.raises(ValueError, match=r"grad\['0.weight'\] .*\(4, 3\).*\(3, 3\)"):
        pruner.prune(grad={**good, "0.weight": torch.ones(3, 3)})
    with pytest.raises(ValueError, match=r"grad .*missing \['2.weight'\]"):
        pruner.prune(grad={"0.weight": good["0.weight"]})
    assert all(bool(m.all()) for m in pruner.masks.values())  # nothing pruned
    pruner.prune(grad={**good, "0.bias": torch.ones(4)})  # extra names are fine
    assert pruner.sparsity() > 0


@pytest.mark.parametrize("n_rounds", [True, -1, 2.5, "3"])
def test_n_rounds_is_an_int(n_rounds):
    with pytest.raises((TypeError, ValueError), match="n_rounds"):
        Pruner(mlp(3, 4, 2), n_rounds=n_rounds)
