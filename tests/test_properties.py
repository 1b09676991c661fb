"""Property-based tests of the two invariants, over random shapes, rates,
round counts and optimizers: kept counts are exactly what the rates say, and
pruned weights are exactly zero after training."""

import math

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skorch import NeuralNetClassifier
from torch import nn

from sklottery import MLP, LotteryTicketClassifier, Pruner

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: a reproducible suite
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

rates = st.floats(0.01, 0.99, allow_nan=False)
factors = st.sampled_from([None, 0.5, 1.0, 0.3])


def expected_kept(sizes, rates_per_layer, n_rounds):
    kept, out = list(sizes), [list(sizes)]
    for _ in range(n_rounds):
        kept = [
            k - min(math.floor(r * k + 0.5), k - 1)
            for k, r in zip(kept, rates_per_layer)
        ]
        out.append(list(kept))
    return out


def layer_rates(n_layers, prune_rate, factor):
    r = [prune_rate] * n_layers
    if factor is not None:
        r[-1] = prune_rate * factor
    return r


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
    prune_rate=rates,
    factor=factors,
    n_rounds=st.integers(0, 6),
    seed=st.integers(0, 2**16),
    strategy=st.sampled_from(["large_final", "random"]),
)
def test_pruner_kept_counts_are_exactly_what_the_rates_say(
    net, prune_rate, factor, n_rounds, seed, strategy
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
    rates_per_layer = layer_rates(len(sizes), prune_rate, factor)
    expected = expected_kept(sizes, rates_per_layer, n_rounds)
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


@SETTINGS
@given(
    sizes=st.lists(st.integers(2, 40), min_size=3, max_size=5),
    prune_rate=rates,
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


OPTIMIZERS = [
    (torch.optim.SGD, {"optimizer__momentum": 0.9}),
    (torch.optim.SGD, {"optimizer__momentum": 0.9, "optimizer__nesterov": True}),
    (torch.optim.Adam, {}),
    (torch.optim.AdamW, {"optimizer__weight_decay": 0.5}),
    (torch.optim.RMSprop, {"optimizer__momentum": 0.3}),
]


@SETTINGS
@given(
    n_features=st.integers(2, 6),
    n_classes=st.integers(2, 3),
    hidden=st.lists(st.integers(1, 10), min_size=1, max_size=2).map(tuple),
    prune_rate=rates,
    n_rounds=st.integers(0, 3),
    optimizer=st.sampled_from(range(len(OPTIMIZERS))),
    batch_size=st.integers(4, 32),
    seed=st.integers(0, 1000),
)
def test_fit_keeps_exact_counts_and_exact_zeros(
    n_features, n_classes, hidden, prune_rate, n_rounds, optimizer, batch_size, seed
):
    rng = np.random.RandomState(seed)
    X = rng.randn(40, n_features).astype(np.float32)
    y = np.arange(40) % n_classes
    opt, kw = OPTIMIZERS[optimizer]
    net = NeuralNetClassifier(
        MLP, module__hidden_units=hidden, criterion=nn.CrossEntropyLoss,
        optimizer=opt, lr=0.1, max_epochs=1, batch_size=batch_size,
        train_split=None, iterator_train__shuffle=True, verbose=0, **kw,
    )
    clf = LotteryTicketClassifier(
        net, n_rounds=n_rounds, prune_rate=prune_rate, random_state=seed
    ).fit(X, y)

    widths = [n_features, *hidden, n_classes]
    sizes = [a * b for a, b in zip(widths[:-1], widths[1:])]
    expected = expected_kept(sizes, layer_rates(len(sizes), prune_rate, 0.5), n_rounds)
    names = list(clf.masks_)
    assert [int(clf.masks_[n].sum()) for n in names] == expected[-1]
    assert clf.rounds_["n_weights"].tolist() == [sum(e) for e in expected]
    params = dict(clf.net_.module_.named_parameters())
    for n in names:
        assert (params[n].detach()[~clf.masks_[n]] == 0.0).all(), n
    zeros = sum(int((params[n] == 0).sum()) for n in names)
    assert zeros >= sum(sizes) - sum(expected[-1])
