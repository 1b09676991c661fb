"""Round 0 (sklottery.lottery._dense): the ``memory`` cache misses whenever what
the dense round computes would differ -- whatever was edited -- and hits,
bit-identically, when nothing was.

The cache-key tests that count epochs through the loop's callbacks (pruning
parameters left out of the key, one round 0 per fold of a search, identical
cached and uncached fits) are in ``test_loop.py``.
"""

import importlib
import sys

import joblib
import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback

import sklottery.lottery._dense as rounds
from sklottery import LotteryTicketClassifier
from sklottery.config import make_config
from sklottery.training import RoundData

# -- an edited module: a module file written, imported and edited by the tests --
_SOURCE = '''
import torch
from torch import nn

HIDDEN = 16
SWITCH = "relu"


def activate(x):
    return torch.relu(x)


class Base(nn.Module):
    def squash(self, x):
        return x


class Stale(Base):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(64, HIDDEN)
        self.b = nn.Linear(HIDDEN, 10)

    def forward(self, x):
        h = activate(self.a(x))
        if SWITCH == "tanh":
            h = torch.tanh(h)
        return self.b(self.squash(h))


class Loss(nn.CrossEntropyLoss):
    def forward(self, input, target):
        return super().forward(input, target)
'''

#: one edit of each kind the cache once missed: (original, edited) text
EDITS = {
    "module-level function": ("return torch.relu(x)", "return torch.tanh(x)"),
    "base-class method": ("        return x\n", "        return 2 * x\n"),
    "criterion class": (
        "return super().forward(input, target)",
        "return 5 * super().forward(input, target)",
    ),
    "global switch read in forward": ('SWITCH = "relu"', 'SWITCH = "tanh"'),
    "constant in __init__": ("HIDDEN = 16", "HIDDEN = 24"),
}

MODULE = "sklottery_stale_mod"


@pytest.fixture
def edited(tmp_path, monkeypatch):
    """``edited(old, new) -> module``: the module file with ``old`` replaced by
    ``new``, (re)imported."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    path = tmp_path / f"{MODULE}.py"

    def write(old, new):
        assert old in _SOURCE
        path.write_text(_SOURCE.replace(old, new))
        if MODULE in sys.modules:
            return importlib.reload(sys.modules[MODULE])
        return importlib.import_module(MODULE)

    yield write
    sys.modules.pop(MODULE, None)


def _fit(mod, X, y, memory):
    net = NeuralNetClassifier(
        mod.Stale, criterion=mod.Loss, optimizer=torch.optim.Adam, lr=0.05,
        max_epochs=2, batch_size=32, train_split=None, verbose=0,
    )
    est = LotteryTicketClassifier(net, n_rounds=1, memory=memory, random_state=0)
    return est.fit(X, y)


def _figures(est):
    """Round 0's figures and the fitted weights."""
    row = est.rounds_.loc[0, ["score", "train_loss"]].to_numpy(dtype=float)
    weights = {n: p.detach().clone() for n, p in est.net_.module_.named_parameters()}
    return row, weights


def _same(a, b) -> bool:
    (row_a, w_a), (row_b, w_b) = a, b
    return (
        np.array_equal(row_a, row_b)
        and w_a.keys() == w_b.keys()
        and all(torch.equal(w_a[n], w_b[n]) for n in w_a)
    )


@pytest.mark.parametrize("kind", list(EDITS))
def test_cache_misses_after_an_edit(kind, edited, digits_120, tmp_path):
    X, y = digits_120
    old, new = EDITS[kind]
    memory = joblib.Memory(tmp_path / "cache", verbose=0)
    before = _figures(_fit(edited(old, old), X, y, memory))
    mod = edited(old, new)
    cached = _figures(_fit(mod, X, y, memory))
    uncached = _figures(_fit(mod, X, y, None))
    assert not _same(before, uncached), kind  # the edit changes round 0
    assert _same(cached, uncached), kind


# -- the behavioural fingerprint ------------------------------------------------------
class Dropped(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(64, 16)
        self.drop = torch.nn.Dropout(0.5)
        self.b = torch.nn.Linear(16, 10)

    def forward(self, x):
        return self.b(self.drop(torch.relu(self.a(x))))


def _data(X, y):
    t = torch.from_numpy
    return RoundData(t(X[:100]), t(y[:100]), t(X[100:]), t(y[100:]), "valid")


def _spec(module=Dropped, **kwargs):
    params = {"criterion": torch.nn.CrossEntropyLoss, "lr": 0.05, "max_epochs": 1,
              "batch_size": 32, "train_split": None, "verbose": 0, **kwargs}
    return NeuralNetClassifier(module, **params)


def test_fingerprint_is_repeatable_and_leaves_the_global_generator(digits_120):
    data = _data(*digits_120)
    torch.manual_seed(3)
    state = torch.get_rng_state()
    a = rounds.behaviour_key(_spec(), data, seed=0)  # dropout: train mode, seeded
    assert torch.equal(torch.get_rng_state(), state)
    assert rounds.behaviour_key(_spec(), data, seed=0) == a
    assert rounds.behaviour_key(_spec(), data, seed=1) != a
    assert rounds.behaviour_key(_spec(lr=0.1), data, seed=0) == a  # not a net param
    other = _data(digits_120[0] + 1, digits_120[1])
    assert rounds.behaviour_key(_spec(), other, seed=0) != a  # the first batch


def test_fingerprint_sees_the_loss_and_every_gradient(digits_120):
    data = _data(*digits_120)
    key = rounds.behaviour_key(_spec(), data, seed=0)

    class Scaled(torch.nn.CrossEntropyLoss):
        def forward(self, input, target):
            return 5 * super().forward(input, target)

    assert rounds.behaviour_key(_spec(criterion=Scaled), data, seed=0) != key


class Counter(Callback):
    """Counts the epochs trained in this process (round 0 cached: fewer)."""

    epochs = 0

    def on_epoch_end(self, net, **kwargs):
        type(self).epochs += 1


def test_cache_hits_when_nothing_changed_with_dropout(digits_120, tmp_path):
    X, y = digits_120
    net = _spec(max_epochs=2, callbacks=[("count", Counter())])
    memory = joblib.Memory(tmp_path, verbose=0)

    def fit():
        return LotteryTicketClassifier(
            net, n_rounds=1, memory=memory, random_state=0
        ).fit(X, y)

    first = fit()
    Counter.epochs = 0
    second = fit()
    assert Counter.epochs == 2  # round 1 only: round 0 came from the cache
    assert _same(_figures(first), _figures(second))
    uncached = LotteryTicketClassifier(net, n_rounds=1, random_state=0).fit(X, y)
    assert _same(_figures(first), _figures(uncached))


def test_code_key_covers_base_classes_criterion_and_callbacks():
    class Base(torch.nn.Module):
        def extra(self):
            return 1

    class Child(Base):
        pass

    class OtherBase(torch.nn.Module):
        def extra(self):
            return 2

    class OtherChild(OtherBase):
        pass

    assert rounds.module_code(Child) != rounds.module_code(OtherChild)
    assert rounds.module_code(Child) == rounds.module_code(Child())
    key = rounds.code_key(_spec(Child))
    assert rounds.code_key(_spec(OtherChild)) != key
    assert rounds.code_key(_spec(Child, callbacks=[("count", Counter())])) != key

    class Loss(torch.nn.CrossEntropyLoss):
        pass

    assert rounds.code_key(_spec(Child, criterion=Loss)) != key
    assert rounds.code_key(_spec(Child)) == key


# -- a seed that does not repeat ------------------------------------------------------
def _params(random_state):
    est = LotteryTicketClassifier(_spec(), random_state=random_state)
    return est.get_params(deep=False)


@pytest.mark.parametrize(
    ("random_state", "seeded"),
    [(0, True), (np.int64(3), True), (None, False),
     (np.random.RandomState(0), False)],
)
def test_config_knows_whether_the_seed_repeats(random_state, seeded):
    config = make_config(_params(random_state), seed=1, max_epochs=1)
    assert config.seeded is seeded


def test_memory_without_an_int_random_state_warns(digits_120, tmp_path):
    X, y = digits_120
    for random_state in (None, np.random.RandomState(0)):
        est = LotteryTicketClassifier(
            _spec(), n_rounds=1, memory=str(tmp_path), random_state=random_state
        )
        with pytest.warns(UserWarning, match="memory.*random_state"):
            est.fit(X, y)


def test_memory_with_an_int_random_state_does_not_warn(digits_120, tmp_path):
    import warnings

    X, y = digits_120
    est = LotteryTicketClassifier(_spec(), n_rounds=1, memory=str(tmp_path),
                                  random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X, y)
    assert not [w for w in caught if "random_state" in str(w.message)]


def test_round_zero_is_not_cached_when_its_step_cannot_be_fingerprinted(
    digits_120, tmp_path, monkeypatch
):
    X, y = digits_120

    def fail(*args, **kwargs):
        raise RuntimeError("needs the training loop")

    monkeypatch.setattr(rounds, "behaviour_key", fail)
    net = _spec(max_epochs=2, callbacks=[("count", Counter())])
    for _ in range(2):
        Counter.epochs = 0
        est = LotteryTicketClassifier(net, n_rounds=1, memory=str(tmp_path),
                                      random_state=0)
        with pytest.warns(UserWarning, match="not cached.*needs the training loop"):
            est.fit(X, y)
        assert Counter.epochs == 2 * 2  # round 0 trained both times
    uncached = LotteryTicketClassifier(net, n_rounds=1, random_state=0).fit(X, y)
    assert _same(_figures(est), _figures(uncached))
