"""Pruning at initialization: SNIP, GraSP, SynFlow, random and magnitude scores."""

import pytest
import torch
from torch import nn

from sklottery import Pruner
from sklottery.pruning import at_init
from sklottery.pruning.at_init import (
    at_init_masks,
    grasp_scores,
    snip_scores,
    synflow_scores,
)
from sklottery.pruning.scope import planned_kept, scaled_plan

STRATEGIES = ["snip", "grasp", "synflow", "random", "large_final", "small_init"]


def make_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)
    )


def make_batches(seed, n=2):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g))
        for _ in range(n)
    ]


LOSS = nn.CrossEntropyLoss()


def state(module):
    return {n: t.detach().clone() for n, t in module.state_dict().items()}


def kept(masks):
    return {n: int(m.sum()) for n, m in masks.items()}


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize(
    "options",
    [
        {"scope": "layer"},
        {"scope": "global"},
        {"scope": "global", "layer_rates": {"2": 0.05}},
        {"type_rates": {"linear": 0.3}, "output_rate_factor": 0.2},
    ],
)
def test_exact_planned_counts(strategy, options):
    net = make_net()
    pruner = Pruner(net, prune_rate=0.2, n_rounds=4, schedule="oneshot", **options)
    expected = planned_kept(pruner.plan, pruner.masks)
    masks = pruner.prune_at_init(strategy, batches=make_batches(1), loss_fn=LOSS)
    for names, n in expected.items():
        assert sum(int(masks[name].sum()) for name in names) == n
    # the pruned weights are exact zeros, the kept ones the initialization
    params = dict(net.named_parameters())
    init = pruner.rewind_point
    for name, m in masks.items():
        assert torch.equal(params[name], init[name] * m)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_scores_leave_the_module_unchanged(strategy):
    net = make_net()
    net.train()
    before = state(net)
    masks = {n: torch.ones_like(p, dtype=torch.bool)
             for n, p in net.named_parameters() if n.endswith("weight")}
    plan = [([n], 0.5) for n in masks]
    at_init_masks(net, strategy, plan, masks, batches=make_batches(1), loss_fn=LOSS)
    after = state(net)
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert all(p.grad is None for p in net.parameters())
    assert net.training


def test_synflow_needs_no_data_and_ignores_it():
    pruner = Pruner(make_net(), prune_rate=0.5, scope="global")
    no_data = pruner.prune_at_init("synflow")
    pruner2 = Pruner(make_net(), prune_rate=0.5, scope="global")
    with_data = pruner2.prune_at_init("synflow", batches=make_batches(3), loss_fn=LOSS)
    assert all(torch.equal(no_data[n], with_data[n]) for n in no_data)


def test_synflow_score_is_w_times_downstream_path_sum():
    # two linear layers: R = 1' |W2| relu(|W1| 1 + |b1|) + ..., so
    # dR/dW1[i, j] = sum_k |W2[k, i]| and dR/dW2[k, i] = (|W1| 1 + |b1|)[i]
    net = make_net()[:3]
    names = ["0.weight", "2.weight"]
    masks = {n: torch.ones_like(dict(net.named_parameters())[n], dtype=torch.bool)
             for n in names}
    scores = synflow_scores(net, names, masks)
    w1, b1, w2 = (net[0].weight.double(), net[0].bias.double(), net[2].weight.double())
    expected1 = w1.abs() * w2.abs().sum(0)[:, None]
    expected2 = w2.abs() * (w1.abs().sum(1) + b1.abs())[None, :]
    torch.testing.assert_close(scores["0.weight"], expected1)
    torch.testing.assert_close(scores["2.weight"], expected2)


def test_synflow_iterates_with_the_exponential_schedule(monkeypatch):
    counts = []
    real = at_init.masks_from_scores

    def recording(scores, masks, plan):
        out = real(scores, masks, plan)
        counts.append(sum(int(m.sum()) for m in out.values()))
        return out

    monkeypatch.setattr(at_init, "masks_from_scores", recording)
    pruner = Pruner(make_net(), prune_rate=0.9, scope="global",
                    output_rate_factor=None)
    n0 = sum(m.numel() for m in pruner.masks.values())
    final = n0 - round(0.9 * n0)
    pruner.prune_at_init("synflow", iterations=10)
    expected = [
        max(final, int(n0 * (final / n0) ** (t / 10) + 0.5)) for t in range(1, 11)
    ]
    expected[-1] = final
    assert counts == expected
    counts.clear()
    pruner = Pruner(make_net(), prune_rate=0.9, scope="global",
                    output_rate_factor=None)
    pruner.prune_at_init("synflow")  # 100 steps by default (those pruning >= 1)
    assert 50 < len(counts) <= 100 and counts[-1] == final
    assert all(a > b for a, b in zip(counts, counts[1:]))


def test_snip_is_abs_w_times_summed_gradient():
    net = make_net()
    batches = make_batches(1)
    names = [n for n, _ in net.named_parameters() if n.endswith("weight")]
    masks = {n: torch.ones_like(dict(net.named_parameters())[n], dtype=torch.bool)
             for n in names}
    scores = snip_scores(net, names, masks, batches, LOSS)
    mean = Pruner(net).gradients(lambda m, b: LOSS(m(b[0]), b[1]), batches)
    params = dict(net.named_parameters())
    for n in names:
        torch.testing.assert_close(
            scores[n], (params[n].detach() * mean[n] * len(batches)).abs()
        )


def test_grasp_is_w_times_hessian_gradient_product():
    net = make_net()[:3]
    batches = make_batches(2)
    names = ["0.weight", "2.weight"]
    params = dict(net.named_parameters())
    masks = {n: torch.ones_like(params[n], dtype=torch.bool) for n in names}
    scores = grasp_scores(net, names, masks, batches, LOSS, temperature=3.0)

    def loss_of(w1, w2):
        total = 0.0
        for X, y in batches:
            h = torch.relu(X @ w1.T + net[0].bias)
            total = total + LOSS((h @ w2.T + net[2].bias) / 3.0, y)
        return total

    w = (params["0.weight"].detach(), params["2.weight"].detach())
    g = torch.func.grad(loss_of, argnums=(0, 1))(*w)
    _, hg = torch.autograd.functional.hvp(loss_of, w, g)
    # keep the highest w * Hg: the paper removes the highest -w * Hg
    torch.testing.assert_close(scores["0.weight"], w[0] * hg[0], rtol=1e-4,
                               atol=1e-7)
    torch.testing.assert_close(scores["2.weight"], w[1] * hg[1], rtol=1e-4,
                               atol=1e-7)


@pytest.mark.parametrize("strategy", ["snip", "grasp"])
def test_data_strategies_use_the_given_batches_only(strategy):
    seen = []

    def loss_fn(module, batch):
        seen.append(id(batch))
        return LOSS(module(batch[0]), batch[1])

    one, two = make_batches(1), make_batches(2)
    a = Pruner(make_net(), prune_rate=0.5).prune_at_init(
        strategy, batches=one, loss_fn=loss_fn)
    assert set(seen) == {id(b) for b in one}
    b = Pruner(make_net(), prune_rate=0.5).prune_at_init(
        strategy, batches=one, loss_fn=loss_fn)
    c = Pruner(make_net(), prune_rate=0.5).prune_at_init(
        strategy, batches=two, loss_fn=loss_fn)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in a)


def test_magnitude_at_init_matches_a_prune_of_the_initialization():
    net = make_net()
    a = Pruner(net, prune_rate=0.3).compute_masks()
    b = Pruner(make_net(), prune_rate=0.3).prune_at_init("large_final")
    c = Pruner(make_net(), prune_rate=0.3).prune_at_init("large_init")
    assert all(torch.equal(a[n], b[n]) and torch.equal(a[n], c[n]) for n in a)


def test_n_rounds_matches_oneshot_and_density_stretches_the_plan():
    oneshot = Pruner(make_net(), prune_rate=0.2, n_rounds=3, schedule="oneshot")
    iterative = Pruner(make_net(), prune_rate=0.2)
    a = oneshot.prune_at_init("random")
    b = iterative.prune_at_init("random", n_rounds=3)
    assert kept(a) == kept(b)
    c = Pruner(make_net(), prune_rate=0.2).prune_at_init("random", density=0.512)
    assert kept(c) == kept(a)
    # output layer (24 weights) at half the rate: 1 - 0.9 ** 3 of it pruned
    assert kept(c)["4.weight"] == 24 - round((1 - 0.9**3) * 24)
    assert scaled_plan([(["a"], 0.2)], 0.2, 1.0) == [(["a"], 0.0)]


def test_random_is_seeded_by_the_pruner():
    a = Pruner(make_net(), prune_rate=0.5, random_state=1).prune_at_init("random")
    b = Pruner(make_net(), prune_rate=0.5, random_state=1).prune_at_init("random")
    c = Pruner(make_net(), prune_rate=0.5, random_state=2).prune_at_init("random")
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert any(not torch.equal(a[n], c[n]) for n in a)


def test_pruner_default_strategy_is_its_own():
    pruner = Pruner(make_net(), strategy="synflow", prune_rate=0.5)
    masks = pruner.prune_at_init(iterations=2)
    assert pruner.sparsity() > 0.4 and masks is pruner.masks


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: p.prune_at_init("snip"), "strategy='snip' needs training data"),
        (lambda p: p.prune_at_init("grasp", batches=make_batches(1)),
         "strategy='grasp' needs a loss"),
        (lambda p: p.prune_at_init("snip", batches=[], loss_fn=LOSS),
         "needs at least one batch"),
        (lambda p: p.prune_at_init("snip", batches=torch.ones(3), loss_fn=LOSS),
         "batches must be an iterable"),
        (lambda p: p.prune_at_init("nope"), "not a pruning-at-initialization"),
        (lambda p: p.prune_at_init("movement"), "scores every weight 0"),
        (lambda p: p.prune_at_init("random", density=0.0), r"density must be in"),
        (lambda p: p.prune_at_init("random", density=1.5), r"density must be in"),
        (lambda p: p.prune_at_init("random", density=0.5, n_rounds=2),
         "either density"),
        (lambda p: p.prune_at_init("random", n_rounds=0), "n_rounds must be"),
        (lambda p: p.prune_at_init("synflow", iterations=0), "iterations must be"),
        (lambda p: p.prune_at_init("grasp", batches=make_batches(1), loss_fn=LOSS,
                                   temperature=0), "temperature must be"),
        (lambda p: p.prune_at_init("synflow", input_shape=(0,)), "input_shape"),
    ],
)
def test_bad_options(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(Pruner(make_net(), prune_rate=0.5))


def test_grasp_and_synflow_refuse_trained_weights():
    pruner = Pruner(make_net(), strategy="grasp", prune_rate=0.5)
    with pytest.raises(ValueError, match="prunes at initialization only"):
        pruner.prune()


def test_synflow_on_a_conv_net_needs_its_input_shape():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 4 * 4, 3))
    pruner = Pruner(net, prune_rate=0.5, scope="global", output_rate_factor=None)
    with pytest.raises(ValueError, match="pass input_shape"):
        pruner.prune_at_init("synflow")
    masks = pruner.prune_at_init("synflow", input_shape=(1, 6, 6), iterations=5)
    assert sum(kept(masks).values()) == 36 + 192 - round(0.5 * (36 + 192))


def test_synflow_refuses_token_inputs():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 2))
    pruner = Pruner(net, prune_rate=0.5)
    with pytest.raises(ValueError, match="embedding layers"):
        pruner.prune_at_init("synflow")
    tokens = [(torch.randint(0, 10, (8, 3)), torch.randint(0, 2, (8,)))]
    masks = pruner.prune_at_init("snip", batches=tokens, loss_fn=LOSS)
    assert kept(masks) == {"0.weight": 20, "2.weight": 18}


# -- shapes that do not fit the network: clear errors, nothing changed (issue 19) ------
def test_synflow_input_shape_that_does_not_fit_the_network():
    pruner = Pruner(make_net(), prune_rate=0.5)
    before = state(pruner.module)
    match = r"input_shape=\(7,\) does not fit the network.*in_features=6"
    with pytest.raises(ValueError, match=match):
        pruner.prune_at_init("synflow", input_shape=(7,), iterations=2)
    assert all(torch.equal(before[n], t) for n, t in state(pruner.module).items())
    assert all(bool(m.all()) for m in pruner.masks.values())


@pytest.mark.parametrize("strategy", ["snip", "grasp"])
def test_batches_that_do_not_fit_the_network(strategy):
    pruner = Pruner(make_net(), prune_rate=0.5)
    before = state(pruner.module)
    bad = [(torch.randn(16, 7), torch.randint(0, 3, (16,)))]
    match = rf"strategy='{strategy}'.*batches\[0\] .*\(16, 7\).*in_features=6"
    with pytest.raises(ValueError, match=match):
        pruner.prune_at_init(strategy, batches=bad, loss_fn=LOSS)
    assert all(torch.equal(before[n], t) for n, t in state(pruner.module).items())
    assert pruner.module.training  # the mode is restored too


def test_gradients_of_batches_that_do_not_fit():
    pruner = Pruner(make_net(), strategy="snip", prune_rate=0.5)
    bad = [(torch.randn(4, 6), torch.randint(0, 3, (4,))), (torch.randn(4, 5), None)]
    with pytest.raises(ValueError, match=r"batches\[1\] .*\(4, 5\)"):
        pruner.gradients(lambda m, b: LOSS(m(b[0]), b[1]), bad)


def test_a_loss_that_is_not_a_scalar():
    pruner = Pruner(make_net(), prune_rate=0.5)
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        pruner.prune_at_init("snip", batches=make_batches(0),
                             loss_fn=lambda m, b: m(b[0]))
