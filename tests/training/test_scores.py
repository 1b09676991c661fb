"""The round scores (sklottery.training._scores): batched forward passes, and
the round's score from its last validation pass."""

import numpy as np
import pytest
import torch
from sklearn.metrics import r2_score
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit

import sklottery.training._scores as scores
from sklottery.training import accuracy, predict_nonlinearity, r2, train_round


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


def test_weighted_accuracy(net, data):
    X, y = data
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    correct = (net.predict(X) == y.numpy()).astype(float)
    w = np.linspace(0.5, 2.0, len(y))
    expected = float((correct * w).sum() / w.sum())
    got = accuracy(net, X, y, batch_size=50, sample_weight=torch.from_numpy(w))
    assert got == pytest.approx(expected, abs=1e-12)


def test_r2_is_the_r2_of_predict(tiny_regressor_net):
    rng = np.random.RandomState(0)
    X = rng.randn(80, 5).astype(np.float32)
    y = (X @ rng.randn(5, 2)).astype(np.float32)
    net = tiny_regressor_net(max_epochs=5, module__input_units=5,
                             module__output_units=2).fit(X, y)
    expected = r2_score(y, net.predict(X))
    got = r2(net, torch.from_numpy(X), torch.from_numpy(y), batch_size=9)
    assert got == pytest.approx(expected, abs=1e-6)


# -- the round's score from its last validation pass ---------------------------
FORWARD_SCORINGS = {"n": 0}


@pytest.fixture
def count_forward_scorings(monkeypatch):
    original = scores._predictions

    def counting(*args, **kwargs):
        FORWARD_SCORINGS["n"] += 1
        return original(*args, **kwargs)

    FORWARD_SCORINGS["n"] = 0
    monkeypatch.setattr(scores, "_predictions", counting)
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
    kw = {"sample_weight": np.linspace(0.5, 2.0, len(data[0]))} if weighted else {}
    reused = _valid_fit(tiny_net, data, **kw)
    # round 0 is scored by a forward pass; rounds 1 and 2 reuse their last
    # validation pass
    assert count_forward_scorings["n"] == 1
    monkeypatch.setattr(scores, "FROM_PREDICTIONS", {})
    count_forward_scorings["n"] = 0
    fresh = _valid_fit(tiny_net, data, **kw)
    assert count_forward_scorings["n"] == 3
    assert reused.rounds_["score"].tolist() == fresh.rounds_["score"].tolist()
    assert (reused.rounds_["score_on"] == "valid").all()


def test_round_score_is_recomputed_when_weights_change_after_validation(
    tiny_net, data, monkeypatch, count_forward_scorings
):
    changed = _valid_fit(tiny_net, data, callbacks=[("halve", HalveAtEnd())])
    assert count_forward_scorings["n"] == 3  # no reuse: the weights moved
    monkeypatch.setattr(scores, "FROM_PREDICTIONS", {})
    fresh = _valid_fit(tiny_net, data, callbacks=[("halve", HalveAtEnd())])
    assert changed.rounds_["score"].tolist() == fresh.rounds_["score"].tolist()


def test_regressor_round_score_comes_from_the_validation_pass(
    tiny_regressor_net, count_forward_scorings, monkeypatch
):
    from sklottery import LotteryTicketRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((160, 5)).astype(np.float32)
    y = (X @ rng.standard_normal(5)).astype(np.float32)
    net = tiny_regressor_net(max_epochs=3, train_split=ValidSplit(0.25, random_state=0))
    params = {"n_rounds": 2, "prune_rate": 0.5, "random_state": 0}
    reused = LotteryTicketRegressor(net, **params).fit(X, y)
    assert count_forward_scorings["n"] == 1
    monkeypatch.setattr(scores, "FROM_PREDICTIONS", {})
    fresh = LotteryTicketRegressor(net, **params).fit(X, y)
    assert reused.rounds_["score"].tolist() == fresh.rounds_["score"].tolist()
