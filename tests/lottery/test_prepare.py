"""sklottery.lottery.prepare: the one preamble of every fit."""

import numpy as np
import pytest
import torch

from sklottery import LotteryTicketClassifier, LotteryTicketRegressor
from sklottery.estimators import CLASSIFICATION, REGRESSION
from sklottery.lottery import draw_seed, prepare
from tests.conftest import make_tiny_net


def test_prepare_writes_nothing_on_the_estimator(data):
    X, y = data
    est = LotteryTicketClassifier(make_tiny_net(), random_state=0)
    before = dict(vars(est))
    prep = prepare(est, X, y, task=CLASSIFICATION)
    assert vars(est) == before
    assert prep.learnt["n_features_in_"] == X.shape[1]
    assert prep.learnt["_input_info"].shape == (X.shape[1],)
    np.testing.assert_array_equal(prep.learnt["classes_"], np.unique(y))
    assert prep.n_outputs == len(np.unique(y))
    assert prep.seed == draw_seed(0)
    assert prep.config.seed == prep.seed
    assert prep.net.initialized_


def test_prepare_initializes_from_the_seed_and_hands_on_the_generator(data):
    X, y = data
    est = LotteryTicketClassifier(make_tiny_net(), random_state=3)
    a = prepare(est, X, y, task=CLASSIFICATION)
    b = prepare(est, X, y, task=CLASSIFICATION)
    for name, value in a.initialization().items():
        assert torch.equal(value, b.initialization()[name])
    assert torch.equal(a.rng_state, b.rng_state)
    # the generator after the initialization, not the seed's first state
    torch.manual_seed(a.seed)
    assert not torch.equal(torch.get_rng_state(), a.rng_state)


def test_a_failed_fit_leaves_what_was_fitted(data):
    X, y = data
    est = LotteryTicketClassifier(make_tiny_net(), n_rounds=1, random_state=0)
    est.fit(X, y)
    fitted = {k: v for k, v in vars(est).items() if k.endswith("_")}
    with pytest.raises(ValueError):
        est.fit(X[:, :10], np.full(len(X), np.nan))
    assert est.n_features_in_ == X.shape[1]
    assert {k for k in vars(est) if k.endswith("_")} == set(fitted)


def test_max_epochs_is_checked_before_it_is_compared_with_rewind(data):
    X, y = data
    est = LotteryTicketClassifier(make_tiny_net(max_epochs="x"), rewind=1)
    with pytest.raises(TypeError, match="net__max_epochs"):
        est.fit(X, y)


def test_regression_task_learns_whether_y_was_1d():
    X = np.random.RandomState(0).rand(40, 3).astype(np.float32)
    est = LotteryTicketRegressor(random_state=0)
    prep = prepare(est, X, X[:, :1], task=REGRESSION)
    assert prep.learnt["_y_1d"] is False and prep.n_outputs == 1
    prep = prepare(est, X, X[:, 0], task=REGRESSION)
    assert prep.learnt["_y_1d"] is True
