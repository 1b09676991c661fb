"""One round of skorch training, the data split and the scoring helpers."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from skorch.dataset import ValidSplit

from sklottery import Pruner
from sklottery.training._callbacks import StopRound
from sklottery.training._train import (
    FixedValidation,
    RoundData,
    accuracy,
    deliberate_stop,
    gradient_function,
    last_value,
    predict_nonlinearity,
    r2,
    release_optimizer,
    seed_train_split,
    split_data,
    train_round,
)


@pytest.fixture
def net(tiny_net):
    """An initialized 64 -> 16 -> 10 net (2 epochs)."""
    return tiny_net(
        max_epochs=2, module__input_units=64, module__output_units=10
    ).initialize()


class Raise(Callback):
    def __init__(self, exc, at_batch=2):
        self.exc, self.at_batch = exc, at_batch

    def initialize(self):
        self.seen_ = 0
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.seen_ += 1
            if self.seen_ == self.at_batch:
                raise self.exc("stop")


# -- the split ---------------------------------------------------------------------
def test_split_data_without_a_split_scores_on_the_training_data(net, data):
    X, y = data
    net.set_params(train_split=None)
    split = split_data(net, X, y)
    assert split.eval_on == "train" and split.valid_split() is None
    assert torch.equal(split.X_train, torch.from_numpy(X))
    assert split.X_eval is split.X_train


def test_split_data_with_a_validation_split(net, data):
    X, y = data
    net.set_params(train_split=ValidSplit(4, stratified=True))
    split = split_data(net, X, y)
    assert split.eval_on == "valid"
    assert len(split.X_train) + len(split.X_eval) == len(X) == 240
    assert len(split.X_eval) == 60
    rows = {tuple(r) for r in split.X_train.numpy().round(6)}
    assert not rows & {tuple(r) for r in split.X_eval.numpy().round(6)}
    fixed = split.valid_split()
    assert isinstance(fixed, FixedValidation)
    train, valid = fixed("anything")
    assert train == "anything" and len(valid) == 60


def test_seed_train_split_seeds_only_an_unseeded_fraction(tiny_net):
    unseeded = ValidSplit(0.2, stratified=True)
    net = seed_train_split(tiny_net(train_split=unseeded), 17)
    assert net.train_split is not unseeded and unseeded.random_state is None
    assert net.train_split.random_state == 17
    assert net.train_split.cv == 0.2 and net.train_split.stratified
    for kept in (ValidSplit(5), ValidSplit(0.2, random_state=3), None):
        assert seed_train_split(tiny_net(train_split=kept), 17).train_split is kept


# -- one round ---------------------------------------------------------------------
def test_train_round_starts_fresh_every_round(net, data):
    X, y = map(torch.as_tensor, data)
    assert train_round(net, X, y) is False
    first_optimizer = net.optimizer_
    assert len(net.history) == 2
    assert train_round(net, X, y) is False
    assert len(net.history) == 2  # a new history, not a continued one
    assert net.optimizer_ is not first_optimizer


def test_train_round_callbacks_are_for_this_round_only(net, data):
    X, y = map(torch.as_tensor, data)
    seen = []

    class Seen(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append(len(net.history))

    train_round(net, X, y, callbacks=[("seen", Seen())])
    assert seen == [1, 2]
    train_round(net, X, y)
    assert seen == [1, 2]


def test_train_round_at_frozen_learning_rates(tiny_net, data):
    X, y = map(torch.as_tensor, data)
    schedule = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    net = tiny_net(
        max_epochs=2, lr=0.1, callbacks=[("sched", schedule)],
        module__input_units=64, module__output_units=10,
    ).initialize()
    train_round(net, X, y)
    assert net.optimizer_.param_groups[0]["lr"] == pytest.approx(0.025)
    train_round(net, X, y, lrs=[0.003])
    # the scheduler is left out: the round trains at the given rate throughout
    assert net.optimizer_.param_groups[0]["lr"] == 0.003
    train_round(net, X, y)
    assert net.optimizer_.param_groups[0]["lr"] == pytest.approx(0.025)


@pytest.mark.parametrize(
    "exc, interrupted", [(KeyboardInterrupt, True), (StopRound, False)]
)
def test_train_round_tells_ctrl_c_from_a_deliberate_stop(net, data, exc, interrupted):
    X, y = map(torch.as_tensor, data)
    assert train_round(net, X, y, callbacks=[("raise", Raise(exc))]) is interrupted
    assert len(net.history) == 1  # ended in the first epoch


def test_early_stopping_is_a_deliberate_stop(tiny_net, data):
    X, y = map(torch.as_tensor, data)
    stopper = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0)
    net = tiny_net(max_epochs=5, callbacks=[("stop", stopper)],
                   module__input_units=64, module__output_units=10).initialize()
    assert train_round(net, X, y) is False
    assert len(net.history) == 2
    assert deliberate_stop(net, KeyboardInterrupt()) is True
    assert deliberate_stop(net, StopRound()) is True
    plain = tiny_net(module__input_units=64, module__output_units=10).initialize()
    assert deliberate_stop(plain, KeyboardInterrupt()) is False  # a user's Ctrl-C


def test_release_optimizer_keeps_only_the_learning_rates(net, data):
    X, y = map(torch.as_tensor, data)
    train_round(net, X, y)
    assert net.optimizer_.state
    release_optimizer(net)
    assert not net.optimizer_.state
    assert all(p.grad is None for p in net.module_.parameters())
    assert net.optimizer_.param_groups[0]["lr"] == 0.02


def test_last_value(net, data):
    X, y = map(torch.as_tensor, data)
    train_round(net, X, y)
    assert last_value(net.history, "train_loss") == net.history[-1, "train_loss"]
    assert math.isnan(last_value(net.history, "valid_loss"))
    net.initialize_history()
    assert math.isnan(last_value(net.history, "train_loss"))


# -- scoring and gradients ----------------------------------------------------------
def test_accuracy_is_what_predict_gives(net, data):
    X, y = data
    train_round(net, *map(torch.as_tensor, data))
    expected = float(np.mean(net.predict(X) == y))
    assert accuracy(net, torch.from_numpy(X), torch.from_numpy(y)) == expected
    # the batch size of the forward passes does not change it
    assert accuracy(net, torch.from_numpy(X), y, batch_size=7) == expected
    nonlin = predict_nonlinearity(net)
    out = nonlin(net.forward(X))
    np.testing.assert_allclose(out.sum(1).numpy(), 1.0, rtol=1e-5)


def test_r2_is_the_r2_of_predict(tiny_regressor_net):
    rng = np.random.RandomState(0)
    X = rng.randn(80, 5).astype(np.float32)
    y = (X @ rng.randn(5, 2)).astype(np.float32)
    net = tiny_regressor_net(max_epochs=5, module__input_units=5,
                             module__output_units=2).fit(X, y)
    expected = r2_score(y, net.predict(X))
    got = r2(net, torch.from_numpy(X), torch.from_numpy(y), batch_size=9)
    assert got == pytest.approx(expected, abs=1e-6)


def test_gradient_function_uses_the_same_seeded_batches(net, data):
    X, y = map(torch.as_tensor, data)
    pruner = Pruner(net.module_, strategy="snip", prune_rate=0.5)
    grad_fn = gradient_function(net, pruner, X, y, max_batches=2, seed=4)
    a, b = grad_fn(), grad_fn()
    assert set(a) == set(pruner.masks)
    for name in a:
        assert torch.equal(a[name], b[name])
        assert a[name].shape == pruner.masks[name].shape
    other = gradient_function(net, pruner, X, y, max_batches=2, seed=5)()
    assert not torch.equal(a["hidden.0.weight"], other["hidden.0.weight"])
    # all batches (3 of 64 rows): the mean gradient of the net's own loss
    X, y = X[:192], y[:192]
    everything = gradient_function(net, pruner, X, y, max_batches=100, seed=0)()
    net.module_.zero_grad()
    loss = net.get_loss(net.infer(X), y, X=X, training=False)
    loss.backward()
    w = dict(net.module_.named_parameters())["output.weight"]
    assert torch.allclose(everything["output.weight"], w.grad, atol=1e-5)


def test_round_data_holds_the_split():
    X = torch.zeros(4, 2)
    y = torch.zeros(4)
    data = RoundData(X, y, X[:1], y[:1], "valid")
    valid = data.valid_split()(None)[1]
    assert len(valid) == 1


# -- the round's score from its last validation pass ---------------------------
FORWARD_SCORINGS = {"n": 0}


@pytest.fixture
def count_forward_scorings(monkeypatch):
    import sklottery.training._train as training

    original = training._predictions

    def counting(*args, **kwargs):
        FORWARD_SCORINGS["n"] += 1
        return original(*args, **kwargs)

    FORWARD_SCORINGS["n"] = 0
    monkeypatch.setattr(training, "_predictions", counting)
    return FORWARD_SCORINGS


class HalveAtEnd(Callback):
    """Changes the weights after the last validation pass."""

    def on_train_end(self, net, **kwargs):
        with torch.no_grad():
            for p in net.module_.parameters():
                p.mul_(0.5)


def _valid_fit(tiny_net, data, callbacks=(), **fit_params):
    from sklottery import LotteryTicketClassifier

    X, y = data
    net = tiny_net(
        max_epochs=2, train_split=ValidSplit(0.25, random_state=0),
        callbacks=list(callbacks),
    )  # fmt: skip
    clf = LotteryTicketClassifier(net, n_rounds=2, prune_rate=0.5, random_state=0)
    return clf.fit(X, y, **fit_params)


@pytest.mark.parametrize("weighted", [False, True])
def test_round_score_comes_from_the_validation_pass(
    tiny_net, data, monkeypatch, count_forward_scorings, weighted
):
    import sklottery.training._train as training

    kw = {"sample_weight": np.linspace(0.5, 2.0, len(data[0]))} if weighted else {}
    reused = _valid_fit(tiny_net, data, **kw)
    # round 0 is scored by a forward pass; rounds 1 and 2 reuse their last
    # validation pass
    assert count_forward_scorings["n"] == 1
    monkeypatch.setattr(training, "FROM_PREDICTIONS", {})
    count_forward_scorings["n"] = 0
    fresh = _valid_fit(tiny_net, data, **kw)
    assert count_forward_scorings["n"] == 3
    assert reused.rounds_["score"].tolist() == fresh.rounds_["score"].tolist()
    assert (reused.rounds_["score_on"] == "valid").all()


def test_round_score_is_recomputed_when_weights_change_after_validation(
    tiny_net, data, monkeypatch, count_forward_scorings
):
    import sklottery.training._train as training

    changed = _valid_fit(tiny_net, data, callbacks=[("halve", HalveAtEnd())])
    assert count_forward_scorings["n"] == 3  # no reuse: the weights moved
    monkeypatch.setattr(training, "FROM_PREDICTIONS", {})
    fresh = _valid_fit(tiny_net, data, callbacks=[("halve", HalveAtEnd())])
    assert changed.rounds_["score"].tolist() == fresh.rounds_["score"].tolist()


def test_regressor_round_score_comes_from_the_validation_pass(
    tiny_regressor_net, count_forward_scorings, monkeypatch
):
    import sklottery.training._train as training
    from sklottery import LotteryTicketRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((160, 5)).astype(np.float32)
    y = (X @ rng.standard_normal(5)).astype(np.float32)
    net = tiny_regressor_net(max_epochs=3, train_split=ValidSplit(0.25, random_state=0))
    params = {"n_rounds": 2, "prune_rate": 0.5, "random_state": 0}
    reused = LotteryTicketRegressor(net, **params).fit(X, y)
    assert count_forward_scorings["n"] == 1
    monkeypatch.setattr(training, "FROM_PREDICTIONS", {})
    fresh = LotteryTicketRegressor(net, **params).fit(X, y)
    assert reused.rounds_["score"].tolist() == fresh.rounds_["score"].tolist()
