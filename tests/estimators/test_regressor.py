"""LotteryTicketRegressor: the same rounds, R² as the score."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_regression
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, KFold
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit

from sklottery import MLP, LotteryTicketRegressor
from sklottery.scoring import make_sparsest_refit, sparsity_scorer

# (shape, dtype) of the targets each training round saw, in this process.
TARGETS = []


class TargetSpy(Callback):
    """Records the shape and dtype of ``y`` at the start of each round."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        TARGETS.append((tuple(y.shape), y.dtype))


def test_single_target(regression_data, make_reg, tiny_regressor_net):
    X, y = regression_data
    TARGETS.clear()
    reg = make_reg(tiny_regressor_net(callbacks=[("spy", TargetSpy())])).fit(X, y)
    # the net trains on float32 targets of shape (n, 1), every round
    assert TARGETS == [((160, 1), torch.float32)] * 3
    pred = reg.predict(X)
    assert pred.shape == (160,) and pred.dtype == np.float64
    assert reg.net_.predict(X).shape == (160, 1)
    assert reg.score(X, y) == pytest.approx(r2_score(y, pred))
    assert reg.score(X, y) > 0.8
    # without a validation split the rounds are scored on the training data
    assert reg.rounds_["score_on"].tolist() == ["train"] * 3
    assert reg.rounds_["score"].iloc[-1] == pytest.approx(r2_score(y, pred), abs=1e-5)
    assert reg.rounds_["n_weights"].tolist() == [6 * 16 + 16, 48 + 12, 24 + 9]
    assert reg.transform(X).shape == (160, 16)


def test_multi_target(regression_data, make_reg):
    X, _ = regression_data
    X, Y = make_regression(160, 6, n_targets=3, random_state=1)
    Y = Y / Y.std(axis=0)
    reg = make_reg().fit(X, Y)
    assert reg.net_.module_.output.out_features == 3
    pred = reg.predict(X)
    assert pred.shape == (160, 3)
    assert reg.score(X, Y) == pytest.approx(r2_score(Y, pred))


def test_selection_on_validation_r2(regression_data, make_reg, tiny_regressor_net):
    X, y = regression_data
    net = tiny_regressor_net(train_split=ValidSplit(4))
    reg = make_reg(net, n_rounds=3, select="best").fit(X, y)
    scores = reg.rounds_["score"].to_numpy()
    assert (reg.rounds_["score_on"] == "valid").all()
    assert reg.selected_round_ == np.flatnonzero(scores == scores.max()).max()
    _, ds_valid = reg.net_.get_split_datasets(X, y)
    idx = np.asarray(ds_valid.indices)
    assert r2_score(y[idx], reg.predict(X[idx])) == pytest.approx(
        scores[reg.selected_round_], abs=1e-5
    )


def test_search_and_cache(regression_data, tmp_path, make_reg):
    X, y = regression_data
    search = GridSearchCV(
        make_reg(memory=str(tmp_path)),
        {"prune_rate": [0.2, 0.5, 0.8], "net__lr": [0.01, 0.03]},
        scoring={"score": "r2", "sparsity": sparsity_scorer},
        refit=make_sparsest_refit(tol=0.05),
        cv=KFold(2, shuffle=True, random_state=0),
        error_score="raise",
    ).fit(X, y)
    res = search.cv_results_
    assert np.isfinite(res["mean_test_score"]).all()
    ok = res["mean_test_score"] >= res["mean_test_score"].max() - 0.05
    assert res["mean_test_sparsity"][search.best_index_] == res["mean_test_sparsity"][
        ok
    ].max()
    # round 0 cached: one entry per (lr, fold) = 2 x 2, not per candidate
    cached = list((tmp_path / "joblib").rglob("output.pkl"))
    assert len(cached) == 2 * 2 + 1  # + the refit on all the data


def test_wrong_net_type(regression_data):
    X, y = regression_data
    net = NeuralNetClassifier(MLP)
    with pytest.raises(TypeError, match="NeuralNetRegressor"):
        LotteryTicketRegressor(net).fit(X, y)


def test_default_net(regression_data):
    X, y = regression_data
    reg = LotteryTicketRegressor(n_rounds=1, random_state=0).fit(X[:80], y[:80])
    assert reg.net_.module_.hidden[0].in_features == 6
    assert reg.net_.module_.output.out_features == 1
    assert len(reg.rounds_) == 2


def test_sparse_inference_and_warm_start(regression_data, make_reg):
    X, y = regression_data
    reg = make_reg(n_rounds=1).fit(X, y)
    dense_pred = reg.predict(X)
    reg.set_params(inference="sparse")
    np.testing.assert_allclose(reg.predict(X), dense_pred, rtol=1e-5, atol=1e-5)
    assert reg.predict(X).shape == (160,)
    reg.set_params(inference="dense", warm_start=True, n_rounds=2).fit(X, y)
    assert reg.rounds_["round"].tolist() == [0, 1, 2]
    assert reg.predict(X).shape == (160,)


def test_ticket_file_round_trip(regression_data, tmp_path, make_reg):
    X, y = regression_data
    reg = make_reg(n_rounds=1).fit(X, y)
    reg.save_ticket(tmp_path / "reg.npz")
    loaded = make_reg(n_rounds=1).load_ticket(tmp_path / "reg.npz")
    np.testing.assert_allclose(loaded.predict(X), reg.predict(X), rtol=1e-6)
    assert loaded.predict(X).shape == (160,)
    assert loaded.score(X, y) == pytest.approx(reg.score(X, y))
