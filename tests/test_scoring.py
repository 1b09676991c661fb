"""sparsity_scorer, make_ticket_scorer and make_sparsest_refit."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.dataset import ValidSplit

from sklottery.scoring import make_sparsest_refit, make_ticket_scorer, sparsity_scorer

pytestmark = pytest.mark.lottery(train_split=ValidSplit(4, stratified=True))


@pytest.fixture(scope="module")
def fitted(data, make_clf):
    return make_clf().fit(*data)


def test_sparsity_scorer(fitted, data, make_clf):
    X, y = data
    masks = fitted.masks_.values()
    zero = sum(int((~m).sum()) for m in masks) / sum(m.numel() for m in masks)
    assert sparsity_scorer(fitted, X, y) == pytest.approx(zero)
    assert sparsity_scorer(fitted, X, y) == fitted.sparsity_
    assert zero > 0.5
    pipe = make_pipeline(StandardScaler(), make_clf()).fit(X, y)
    assert sparsity_scorer(pipe, X, y) == pipe[-1].sparsity_


def test_scorers_reject_other_estimators(data, make_clf):
    X, y = data
    with pytest.raises(TypeError, match="sklottery estimator"):
        sparsity_scorer(LogisticRegression().fit(X, y), X, y)
    with pytest.raises(NotFittedError):
        sparsity_scorer(make_clf(), X, y)


def test_ticket_scorer_values(fitted, data):
    X, y = data
    s = fitted.score(X, y)
    # within tolerance of the baseline: the reward is the sparsity
    assert make_ticket_scorer(baseline=s, tol=0.0)(fitted, X, y) == fitted.sparsity_
    near = make_ticket_scorer(baseline=s + 0.05, tol=0.1)
    assert near(fitted, X, y) == fitted.sparsity_
    # below it: negative, the shortfall
    below = make_ticket_scorer(baseline=s + 0.3, tol=0.1)(fitted, X, y)
    assert below == pytest.approx(s - (s + 0.3 - 0.1))
    assert below < 0
    # another scoring on the test data
    bal = make_ticket_scorer("balanced_accuracy", baseline=1.5, tol=0.0)(fitted, X, y)
    from sklearn.metrics import balanced_accuracy_score

    assert bal == pytest.approx(balanced_accuracy_score(y, fitted.predict(X)) - 1.5)


def test_ticket_scorer_dense_baseline(fitted, data, make_clf):
    X, y = data
    dense = fitted.rounds_["score"].iloc[0]
    s = fitted.score(X, y)
    tol = 0.05
    expected = fitted.sparsity_ if s >= dense - tol else s - (dense - tol)
    assert make_ticket_scorer(tol=tol)(fitted, X, y) == pytest.approx(expected)
    no_valid = make_clf(train_split=None).fit(X, y)
    with pytest.raises(ValueError, match="validation split"):
        make_ticket_scorer()(no_valid, X, y)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tol": -1}, "tol must be a float >= 0"),
        ({"baseline": "best"}, "baseline='best' is not valid"),
        ({"baseline": None}, "baseline must be 'dense' or a float"),
        ({"scoring": "f1_macro"}, "needs scoring=None"),
    ],
)
def test_ticket_scorer_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_ticket_scorer(**kwargs)


def test_sparsest_refit_rule():
    refit = make_sparsest_refit(tol=0.02)
    results = {
        "mean_test_score": [0.90, 0.89, 0.85, 0.88, 0.895],
        "mean_test_sparsity": [0.2, 0.5, 0.9, 0.5, 0.5],
    }
    # 0.85 is out of tolerance; 0.5 is the highest sparsity left; of those
    # three, 0.895 is the best score
    assert refit(results) == 4
    assert make_sparsest_refit(tol=0.0)(results) == 0
    assert make_sparsest_refit(tol=1.0)(results) == 2
    renamed = make_sparsest_refit(0.02, score="acc", sparsity="zeros")
    assert renamed({"mean_test_acc": [0.5, 0.5], "mean_test_zeros": [0.1, 0.1]}) == 0
    with pytest.raises(ValueError, match="mean_test_sparsity"):
        refit({"mean_test_score": [0.9]})
    with pytest.raises(ValueError, match="tol must be"):
        make_sparsest_refit(tol="x")
    assert pickle.loads(pickle.dumps(refit))(results) == 4


def test_multi_metric_search_with_refit_rule(data, make_clf):
    X, y = data
    scoring = {
        "score": "accuracy",
        "sparsity": sparsity_scorer,
        "ticket": make_ticket_scorer(tol=0.05),
    }
    search = GridSearchCV(
        make_clf(),
        {"prune_rate": [0.2, 0.6], "n_rounds": [1, 2]},
        scoring=scoring,
        refit=make_sparsest_refit(tol=0.05),
        cv=KFold(2, shuffle=True, random_state=0),
        error_score="raise",
    ).fit(X, y)
    res = search.cv_results_
    score, sparsity = res["mean_test_score"], res["mean_test_sparsity"]
    ok = np.flatnonzero(score >= score.max() - 0.05)
    assert search.best_index_ in ok
    assert sparsity[search.best_index_] == sparsity[ok].max()
    assert search.best_params_ == res["params"][search.best_index_]
    best = search.best_estimator_
    assert best.get_params()["prune_rate"] == search.best_params_["prune_rate"]
    # the kept counts depend only on the shapes and rates: the refitted
    # model is exactly as sparse as the candidate was on every fold
    assert best.sparsity_ == sparsity[search.best_index_]
    for i in range(len(res["params"])):
        fold = [res[f"split{k}_test_sparsity"][i] for k in range(2)]
        assert fold[0] == fold[1] > 0
    assert np.isfinite(res["mean_test_ticket"]).all()


def test_cross_validate_with_scorers(data, make_clf):
    X, y = data
    out = cross_validate(
        make_clf(),
        X,
        y,
        cv=KFold(2),
        scoring={"score": "accuracy", "sparsity": sparsity_scorer},
        return_estimator=True,
        error_score="raise",
    )
    for est, sp, acc, (_, test) in zip(
        out["estimator"],
        out["test_sparsity"],
        out["test_score"],
        KFold(2).split(X),
    ):
        assert sp == est.sparsity_
        assert acc == pytest.approx(np.mean(est.predict(X[test]) == y[test]))
    assert clone(out["estimator"][0]).get_params()["n_rounds"] == 2
