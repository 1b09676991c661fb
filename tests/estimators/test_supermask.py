"""SupermaskClassifier / SupermaskRegressor: edge-popup in sklearn estimators."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from sklottery import SupermaskClassifier, SupermaskRegressor
from sklottery.pruning.edge_popup import n_kept


class Watch(Callback):
    """Records the wrapped module's weights at the start and the masks after
    every epoch (in the class: the fit trains a clone of the callback)."""

    init: dict = {}
    epochs: list = []

    def on_train_begin(self, net, **kwargs):
        inner = net.module_.module
        Watch.init = {n: p.detach().clone() for n, p in inner.named_parameters()}
        Watch.epochs = []

    def on_epoch_end(self, net, **kwargs):
        inner = net.module_.module
        weights = {n: p.detach().clone() for n, p in inner.named_parameters()}
        Watch.epochs.append((weights, net.module_.masks()))


def fitted(tiny_net, data, **params):
    params = {"density": 0.5, "random_state": 0, **params}
    net = tiny_net(max_epochs=5, lr=0.05, module__hidden_units=(64,))
    return SupermaskClassifier(net, **params).fit(*data)


def test_weights_frozen_while_masks_change(tiny_net, data):
    clf = SupermaskClassifier(
        tiny_net(max_epochs=4, callbacks=[("watch", Watch())]), density=0.5,
        random_state=0,
    ).fit(*data)
    watch = Watch
    assert len(watch.epochs) == 4
    for weights, _ in watch.epochs:
        for name, w in weights.items():
            assert torch.equal(w, watch.init[name])  # bit-identical, every epoch
    masks = [m for _, m in watch.epochs]
    changed = [
        any(not torch.equal(a[n], b[n]) for n in a) for a, b in zip(masks, masks[1:])
    ]
    assert any(changed)
    # the fitted weights: the frozen init times the final mask
    params = dict(clf.net_.module_.named_parameters())
    for name, init in clf.rewind_point_.items():
        assert torch.equal(init, watch.init[name])
        if name in clf.masks_:
            m = clf.masks_[name]
            assert torch.equal(params[name][m], init[m])
            assert not params[name][~m].any()
            assert torch.equal(m, masks[-1][name])
        else:  # biases of masked layers are frozen at 0.0
            assert torch.equal(params[name], init)


@pytest.mark.parametrize("density", [0.1, 0.5, 1.0])
def test_exact_top_k_per_layer(tiny_net, data, density):
    clf = fitted(tiny_net, data, density=density)
    for _, row in clf.layers_.iterrows():
        assert row["kept"] == n_kept(row["total"], density)
        assert int(clf.masks_[row["name"]].sum()) == row["kept"]
    kept = clf.layers_["kept"].sum()
    assert clf.sparsity_ == pytest.approx(1 - kept / clf.layers_["total"].sum())
    assert clf.rounds_["n_weights"].tolist() == [kept]


def test_global_scope_keeps_the_total(tiny_net, data):
    clf = fitted(tiny_net, data, scope="global", density=0.3)
    total = clf.layers_["total"].sum()
    assert clf.layers_["kept"].sum() == n_kept(total, 0.3)


@pytest.mark.parametrize("scale_fan", [True, False])
@pytest.mark.parametrize("weight_init", ["signed_constant", "kaiming_normal"])
def test_weight_inits(tiny_net, data, weight_init, scale_fan):
    clf = fitted(tiny_net, data, weight_init=weight_init, scale_fan=scale_fan)
    w = clf.rewind_point_["hidden.0.weight"]
    std = (2 / (w.shape[1] * (0.5 if scale_fan else 1.0))) ** 0.5
    if weight_init == "signed_constant":
        torch.testing.assert_close(w.abs().unique(), torch.tensor([std]))
    else:
        assert len(w.abs().unique()) > 100
    assert clf.score(*data) > 0.7  # far above chance (0.1) on 10 digits


def test_learns_and_is_repeatable(tiny_net, data):
    a, b = fitted(tiny_net, data), fitted(tiny_net, data)
    for n in a.masks_:
        assert torch.equal(a.masks_[n], b.masks_[n])
    np.testing.assert_array_equal(a.predict_proba(data[0]), b.predict_proba(data[0]))
    c = fitted(tiny_net, data, random_state=1)
    assert any(not torch.equal(a.masks_[n], c.masks_[n]) for n in a.masks_)
    assert set(a.scores_) == set(a.masks_)
    assert a.transform(data[0]).shape == (len(data[0]), 64)


def test_default_net(data):
    clf = SupermaskClassifier(density=0.5, random_state=0).fit(*data)
    assert clf.layers_["shape"].tolist() == [(300, 64), (100, 300), (10, 100)]
    assert clf.net_.lr == 0.01
    assert clf.n_features_in_ == 64
    assert clf.classes_.tolist() == list(range(10))


def test_regressor(tiny_regressor_net):
    rng = np.random.RandomState(0)
    X = rng.randn(200, 5).astype(np.float32)
    y = X @ rng.randn(5) + 0.1 * rng.randn(200)
    reg = SupermaskRegressor(
        tiny_regressor_net(max_epochs=30, module__hidden_units=(64,)),
        density=0.5, random_state=0,
    ).fit(X, y / y.std())
    assert reg.predict(X).shape == (200,)
    assert reg.score(X, y / y.std()) > 0.5
    assert reg.sparsity_ == pytest.approx(0.5, abs=0.01)


def test_grid_search_pipeline_pickle_clone(tiny_net, data):
    pipe = make_pipeline(
        StandardScaler(), SupermaskClassifier(tiny_net(max_epochs=2), random_state=0)
    )
    search = GridSearchCV(
        pipe, {"supermaskclassifier__density": [0.2, 0.6]}, cv=2
    ).fit(*data)
    assert search.cv_results_["mean_test_score"].shape == (2,)
    best = search.best_estimator_[-1]
    assert best.density in (0.2, 0.6)
    restored = pickle.loads(pickle.dumps(search.best_estimator_))
    np.testing.assert_array_equal(
        restored.predict(data[0]), search.best_estimator_.predict(data[0])
    )
    assert clone(best).get_params()["density"] == best.density
    assert not hasattr(clone(best), "masks_")


def test_sparse_export_and_ticket_round_trip(tiny_net, data, tmp_path):
    clf = fitted(tiny_net, data)
    X = data[0]
    module = clf.to_sparse(measure=False)
    with torch.no_grad():
        logits = module(torch.as_tensor(X))
    proba = torch.softmax(logits, dim=1).numpy()
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-5)
    sparse = clone(clf).set_params(inference="sparse").fit(*data)
    np.testing.assert_allclose(sparse.predict_proba(X), clf.predict_proba(X),
                               atol=1e-5)
    # the export's weights: the frozen init times the mask
    path = tmp_path / "mask.safetensors"
    clf.save_ticket(path)
    net = tiny_net(module__hidden_units=(64,))
    loaded = SupermaskClassifier(net).load_ticket(path)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X))
    for name, m in clf.masks_.items():
        assert torch.equal(loaded.masks_[name], m)
        w = dict(loaded.net_.module_.named_parameters())[name]
        assert torch.equal(w[m], clf.rewind_point_[name][m])
    assert loaded.sparsity_ == clf.sparsity_
    assert loaded.rounds_["score"].tolist() == clf.rounds_["score"].tolist()


def test_ticket_of_another_estimator_is_refused(tiny_net, data, tmp_path):
    from sklottery import LotteryTicketClassifier

    path = tmp_path / "mask.safetensors"
    fitted(tiny_net, data).save_ticket(path)
    with pytest.raises(ValueError, match="SupermaskClassifier"):
        LotteryTicketClassifier(tiny_net()).load_ticket(path)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"density": 0}, r"'density' parameter .* range \(0.0, 1.0\]"),
        ({"density": 1.5}, r"'density' parameter .* range \(0.0, 1.0\]"),
        ({"weight_init": "xavier"}, r"'weight_init' parameter .*kaiming_normal"),
        ({"scope": "row"}, r"'scope' parameter"),
    ],
)
def test_bad_options(tiny_net, data, params, match):
    with pytest.raises(ValueError, match=match):
        SupermaskClassifier(tiny_net(), **params).fit(*data)


def test_bad_net_and_unfitted(tiny_net, tiny_regressor_net, data):
    with pytest.raises(TypeError, match="net must be a skorch NeuralNetClassifier"):
        SupermaskClassifier(tiny_regressor_net()).fit(*data)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        SupermaskClassifier(tiny_net()).predict(data[0])
    with pytest.raises(NotFittedError, match="not fitted yet"):
        SupermaskClassifier(tiny_net()).to_sparse()


@pytest.mark.parametrize("shape", [(1, 8, 8), (8, 8)], ids=["images", "sequences"])
def test_other_inputs_and_default_networks(data, shape):
    """Images get the default ConvNet, sequences the RecurrentNet: every
    prunable tensor (convolutions, recurrent weights) is masked at top-k."""
    X, y = data
    X = X[:60].reshape(60, *shape)
    clf = SupermaskClassifier(density=0.3, random_state=0).fit(X, y[:60])
    for _, row in clf.layers_.iterrows():
        assert row["kept"] == n_kept(row["total"], 0.3)
    kinds = set(clf.layers_["kind"])
    assert kinds == ({"conv", "linear"} if len(shape) == 3 else {"rnn", "linear"})
    assert clf.predict(X).shape == (60,)
