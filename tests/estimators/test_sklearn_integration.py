"""The estimator inside scikit-learn: clone, pickle, search, pipelines, pandas."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklottery import LotteryTicketClassifier

pytestmark = pytest.mark.lottery(hidden_units=(8,), batch_size=32)


@pytest.fixture(scope="module")
def fitted(blobs_90x5, make_clf):
    return make_clf().fit(*blobs_90x5)


def test_clone_copies_parameters_and_not_the_fit(fitted):
    c = clone(fitted)
    assert c.get_params(deep=False).keys() == fitted.get_params(deep=False).keys()
    for key, value in fitted.get_params(deep=False).items():
        if key == "net":
            assert c.net is not fitted.net
            assert type(c.net) is type(fitted.net)
        else:
            assert c.get_params(deep=False)[key] == value
    assert c.get_params()["net__lr"] == 0.02
    assert c.get_params()["net__module__hidden_units"] == (8,)
    assert not hasattr(c, "net_") and not hasattr(c, "masks_")


def test_fit_never_changes_the_users_net(blobs_90x5, tiny_net):
    net = tiny_net(max_epochs=2, module__hidden_units=(8,), batch_size=32)
    before = dict(net.get_params(deep=False))
    state = dict(vars(net))
    clf = LotteryTicketClassifier(net, n_rounds=1, random_state=0).fit(*blobs_90x5)
    assert clf.net is net
    assert clf.net_ is not net
    assert not net.initialized_
    assert not hasattr(net, "module_") and not hasattr(net, "optimizer_")
    assert vars(net).keys() == state.keys()
    for key, value in state.items():
        assert vars(net)[key] is value, key
    after = net.get_params(deep=False)
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert after[key] is value, key


def test_set_params_reaches_the_fitted_net_and_the_pruner(make_clf, blobs_90x5):
    """Nested net__ parameters set on the estimator are what fit trains with,
    and a changed prune_rate is what it prunes with (no stale copy of either)."""
    X, y = blobs_90x5
    clf = make_clf(n_rounds=1).fit(X, y)
    clf.set_params(net__lr=0.5, net__max_epochs=1, net__module__hidden_units=(6,),
                   prune_rate=0.3)
    clf.fit(X, y)
    assert clf.net_.lr == 0.5
    assert clf.net_.optimizer_.param_groups[0]["lr"] == 0.5
    assert clf.rounds_["epochs"].tolist() == [1, 1]
    assert clf.net_.module_.hidden[0].out_features == 6
    # 5 x 6 hidden weights at rate 0.3, 6 x 3 output weights at 0.15
    assert clf.layers_["kept"].tolist() == [30 - 9, 18 - 3]


def test_pickle_round_trip_gives_identical_predictions(fitted, blobs_90x5):
    X, _ = blobs_90x5
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))
    assert restored.masks_.keys() == fitted.masks_.keys()
    for n, m in fitted.masks_.items():
        assert torch.equal(restored.masks_[n], m)
    pd.testing.assert_frame_equal(restored.rounds_, fitted.rounds_)
    # the restored net still holds exact zeros where the masks prune
    params = dict(restored.net_.module_.named_parameters())
    for n, m in restored.masks_.items():
        assert (params[n].detach()[~m] == 0.0).all()


def test_grid_search_over_rate_strategy_and_lr(blobs_90x5, make_clf):
    X, y = blobs_90x5
    grid = {
        "prune_rate": [0.2, 0.5],
        "strategy": ["large_final", "random"],
        "net__lr": [1e-3, 3e-3],
    }
    search = GridSearchCV(make_clf(n_rounds=1), grid, cv=2, error_score="raise")
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 8
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert best.prune_rate in (0.2, 0.5) and best.strategy in ("large_final", "random")
    assert best.net_.lr == search.best_params_["net__lr"]
    # the refitted best estimator prunes at its own rate (hidden 40 -> 40 - r*40)
    expected_hidden = {0.2: 32, 0.5: 20}[best.prune_rate]
    assert int(best.masks_["hidden.0.weight"].sum()) == expected_hidden
    assert search.predict(X).shape == (len(X),)


def test_pipeline_with_scaler_and_default_net(blobs_90x5):
    X, y = blobs_90x5
    pipe = make_pipeline(
        StandardScaler(), LotteryTicketClassifier(n_rounds=1, random_state=0)
    )
    pipe.fit(X * 100 + 5, y)
    clf = pipe[-1]
    # net=None: a LeNet-300-100 shaped MLP sized from the data
    shapes = {n: tuple(m.shape) for n, m in clf.masks_.items()}
    assert shapes == {
        "hidden.0.weight": (300, 5),
        "hidden.2.weight": (100, 300),
        "output.weight": (3, 100),
    }
    assert clf.net is None
    assert clf.rounds_["epochs"].tolist() == [10, 10]
    assert pipe.predict(X * 100 + 5).shape == (len(X),)
    assert pipe.score(X * 100 + 5, y) > 1 / 3  # better than chance on its training data


def test_pipeline_with_given_net_and_transform(blobs_90x5, make_clf):
    X, y = blobs_90x5
    pipe = make_pipeline(StandardScaler(), make_clf())
    Xt = pipe.fit(X, y).transform(X)
    assert Xt.shape == (len(X), 8) and Xt.dtype == np.float32


def test_cross_val_score(blobs_90x5, make_clf):
    X, y = blobs_90x5
    scores = cross_val_score(make_clf(n_rounds=1), X, y, cv=3)
    assert scores.shape == (3,)
    assert ((0 <= scores) & (scores <= 1)).all()


def test_same_random_state_is_deterministic(blobs_90x5, make_clf):
    X, y = blobs_90x5
    a = make_clf(strategy="random").fit(X, y)
    torch.manual_seed(1234)  # the global generators must not matter
    np.random.seed(99)
    b = make_clf(strategy="random").fit(X, y)
    assert a.masks_.keys() == b.masks_.keys()
    for n in a.masks_:
        assert torch.equal(a.masks_[n], b.masks_[n])
    pd.testing.assert_frame_equal(
        a.rounds_.drop(columns="wall_time"), b.rounds_.drop(columns="wall_time")
    )
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    b_params = dict(b.net_.module_.named_parameters())
    for n, p in a.net_.module_.named_parameters():
        assert torch.equal(p, b_params[n]), n


def test_different_random_state_differs(blobs_90x5, make_clf):
    X, y = blobs_90x5
    a = make_clf(random_state=0).fit(X, y)
    b = make_clf(random_state=1).fit(X, y)
    assert not all(torch.equal(a.masks_[n], b.masks_[n]) for n in a.masks_)


def test_fit_leaves_the_global_torch_generator_alone(blobs_90x5, make_clf):
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    make_clf(n_rounds=1).fit(*blobs_90x5)
    assert torch.equal(torch.rand(3), expected)


def test_pandas_input_and_string_labels_end_to_end(blobs_90x5, make_clf):
    X, y = blobs_90x5
    names = np.array(["cat", "dog", "emu"], dtype=object)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    labels = pd.Series(names[y], name="animal")
    pipe = make_pipeline(StandardScaler().set_output(transform="pandas"), make_clf())
    pipe.fit(df, labels)
    clf = pipe[-1]
    assert clf.classes_.tolist() == ["cat", "dog", "emu"]
    assert clf.feature_names_in_.tolist() == list(df.columns)
    pred = pipe.predict(df)
    assert set(pred) <= {"cat", "dog", "emu"}
    assert pred.shape == (len(df),)
    assert pipe.score(df, labels) == np.mean(pred == labels.to_numpy())

    direct = make_clf().fit(df, labels)
    assert direct.feature_names_in_.tolist() == list(df.columns)
    assert set(direct.predict(df)) <= set(names)
    assert direct.predict_proba(df).shape == (len(df), 3)
    assert direct.transform(df).shape == (len(df), 8)
    with pytest.raises(ValueError, match="feature names"):
        direct.predict(df.rename(columns={"f0": "other"}))
