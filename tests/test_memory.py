"""The ``memory`` parameter: round 0 (dense training) cached across pruning
parameters, with results identical to an uncached fit."""

import joblib
import numpy as np
import pytest
import torch
from lottery_helpers import EPOCHS, small_digits, tiny_net
from sklearn.model_selection import GridSearchCV, KFold
from skorch.dataset import ValidSplit

from sklottery import LotteryTicketClassifier


@pytest.fixture(scope="module")
def data():
    return small_digits(240)


def _clf(memory=None, **kwargs):
    net = tiny_net(max_epochs=2, count=True, train_split=ValidSplit(4, stratified=True))
    params = {"n_rounds": 2, "prune_rate": 0.5, "random_state": 0, **kwargs}
    return LotteryTicketClassifier(net, memory=memory, **params)


def test_cached_fit_identical_to_uncached(data, tmp_path):
    X, y = data
    ref = _clf().fit(X, y)
    first = _clf(memory=str(tmp_path)).fit(X, y)
    EPOCHS["n"] = 0
    second = _clf(memory=str(tmp_path)).fit(X, y)
    assert EPOCHS["n"] == 2 * 2  # rounds 1 and 2 only: round 0 came from the cache
    for fitted in (first, second):
        cols = ["round", "n_weights", "epochs", "train_loss", "valid_loss", "score"]
        assert fitted.rounds_[cols].equals(ref.rounds_[cols])
        for name, mask in ref.masks_.items():
            assert torch.equal(fitted.masks_[name], mask)
        np.testing.assert_array_equal(fitted.predict_proba(X), ref.predict_proba(X))


def test_cache_key_ignores_pruning_parameters(data, tmp_path):
    X, y = data
    memory = joblib.Memory(tmp_path, verbose=0)
    _clf(memory=memory).fit(X, y)
    EPOCHS["n"] = 0
    _clf(memory=memory, prune_rate=0.3, strategy="random", n_rounds=1).fit(X, y)
    assert EPOCHS["n"] == 2  # round 1 only
    # net parameters, data and seed are part of the key
    EPOCHS["n"] = 0
    _clf(memory=memory).set_params(net__lr=0.05).fit(X, y)
    assert EPOCHS["n"] == 2 * 3
    EPOCHS["n"] = 0
    _clf(memory=memory).set_params(random_state=1).fit(X, y)
    assert EPOCHS["n"] == 2 * 3
    EPOCHS["n"] = 0
    _clf(memory=memory).fit(X[:200], y[:200])
    assert EPOCHS["n"] == 2 * 3


def test_search_pays_round_zero_once_per_fold(data, tmp_path):
    X, y = data
    grid = {"prune_rate": [0.2, 0.5, 0.7]}
    cv = KFold(2, shuffle=True, random_state=0)

    EPOCHS["n"] = 0
    naive = GridSearchCV(_clf(), grid, cv=cv, refit=False).fit(X, y)
    naive_epochs = EPOCHS["n"]
    EPOCHS["n"] = 0
    search = GridSearchCV(_clf(memory=str(tmp_path)), grid, cv=cv, refit=False)
    cached = search.fit(X, y)
    cached_epochs = EPOCHS["n"]
    # 3 candidates x 2 folds x 3 rounds x 2 epochs, against round 0 once per fold
    assert naive_epochs == 3 * 2 * 3 * 2
    assert cached_epochs == 2 * 2 + 3 * 2 * 2 * 2
    np.testing.assert_array_equal(
        naive.cv_results_["mean_test_score"], cached.cv_results_["mean_test_score"]
    )
    # the same search again: every dense round comes from the cache
    EPOCHS["n"] = 0
    again = GridSearchCV(_clf(memory=str(tmp_path)), grid, cv=cv, refit=False)
    again.fit(X, y)
    assert EPOCHS["n"] == 3 * 2 * 2 * 2
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(naive.cv_results_[key], again.cv_results_[key])


def test_memory_validation(data):
    X, y = data
    with pytest.raises(ValueError, match="memory"):
        _clf(memory=42).fit(X, y)
