"""scikit-learn's searches over pruning and net parameters."""

import numpy as np
import pytest
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    KFold,
    RandomizedSearchCV,
    cross_validate,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from sklottery.pruning import REWIND_MODES
from sklottery.scoring import sparsity_scorer

CV = KFold(2, shuffle=True, random_state=0)


pytestmark = pytest.mark.lottery(n_rounds=1)


def _kept(result, i):
    """Weights kept by candidate i, from its own fitted estimator's records."""
    return result["estimator"][i].rounds_["n_weights"].iloc[-1]


def test_grid_search_over_pruning_and_net_parameters(digits_200, make_clf):
    X, y = digits_200
    grid = {
        "prune_rate": [0.3, 0.6],
        "n_rounds": [1, 2],
        "strategy": ["large_final", "random"],
        "rewind": ["init"],
        "net__lr": [0.02],
        "net__module__hidden_units": [(8,), (16,)],
    }
    search = GridSearchCV(
        make_clf(), grid, cv=CV, error_score="raise",
        scoring={"score": "accuracy", "sparsity": sparsity_scorer}, refit="score",
    ).fit(X, y)
    res = search.cv_results_
    n = 2 * 2 * 2 * 2
    assert len(res["params"]) == n
    assert np.isfinite(res["mean_test_score"]).all()
    # each candidate really ran its own parameters: the sparsity it reports
    # is the one its prune_rate, n_rounds and layer sizes give
    for params, sparsity in zip(res["params"], res["mean_test_sparsity"]):
        h = params["net__module__hidden_units"][0]
        rate, rounds = params["prune_rate"], params["n_rounds"]
        hidden, out = 64 * h, h * 10
        for _ in range(rounds):
            hidden -= int(np.floor(rate * hidden + 0.5))
            out -= int(np.floor(rate / 2 * out + 0.5))
        assert sparsity == pytest.approx(1 - (hidden + out) / (64 * h + h * 10))
    best = search.best_estimator_
    for key, value in search.best_params_.items():
        assert best.get_params()[key] == value
    assert best.net_.module_.hidden[0].out_features == (
        search.best_params_["net__module__hidden_units"][0]
    )


def test_grid_search_over_rewind_modes(digits_200, make_clf):
    X, y = digits_200
    modes = [*REWIND_MODES, 1]  # 1: late rewinding to epoch 1
    search = GridSearchCV(
        make_clf(), {"rewind": modes}, cv=CV, error_score="raise"
    ).fit(X, y)
    res = search.cv_results_
    assert [p["rewind"] for p in res["params"]] == modes
    assert np.isfinite(res["mean_test_score"]).all()
    assert search.best_estimator_.rewind == search.best_params_["rewind"]


def test_randomized_search(digits_200, make_clf):
    X, y = digits_200
    dist = {
        "prune_rate": [0.2, 0.4, 0.6, 0.8],
        "n_rounds": [1, 2],
        "strategy": ["large_final", "random"],
        "net__lr": [0.01, 0.03],
        "net__max_epochs": [1, 2],
    }
    search = RandomizedSearchCV(
        make_clf(), dist, n_iter=3, cv=CV, random_state=0, error_score="raise"
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert best.rounds_["epochs"].tolist() == (
        [search.best_params_["net__max_epochs"]] * (search.best_params_["n_rounds"] + 1)
    )


def test_halving_grid_search(digits_200, make_clf):
    X, y = digits_200
    grid = {"prune_rate": [0.2, 0.5, 0.8], "strategy": ["large_final", "random"]}
    search = HalvingGridSearchCV(
        make_clf(), grid, cv=CV, factor=2, min_resources=60, error_score="raise",
        random_state=0,
    ).fit(X, y)
    assert search.n_candidates_[0] == 6
    assert search.n_resources_[0] == 60
    assert search.n_iterations_ >= 2
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_params_ in search.cv_results_["params"]


def test_search_over_pipeline(digits_200, make_clf):
    X, y = digits_200
    pipe = make_pipeline(MinMaxScaler(), make_clf())
    search = GridSearchCV(
        pipe,
        {"lotteryticketclassifier__prune_rate": [0.3, 0.6],
         "lotteryticketclassifier__net__lr": [0.01, 0.03]},
        cv=CV,
        error_score="raise",
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_[-1].sparsity_ > 0


def test_cross_validate_reports_rounds(digits_200, make_clf):
    X, y = digits_200
    out = cross_validate(
        make_clf(n_rounds=2, select="best"), X, y, cv=CV, return_estimator=True,
        error_score="raise",
    )
    for est, test_score in zip(out["estimator"], out["test_score"]):
        assert len(est.rounds_) == 3
        assert est.rounds_["selected"].sum() == 1
        assert 0.0 <= test_score <= 1.0
