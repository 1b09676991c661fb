"""Every bad input gets a clear ValueError/TypeError naming the problem."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from skorch import NeuralNetClassifier, NeuralNetRegressor

from sklottery import MLP, LotteryTicketClassifier

rng = np.random.RandomState(0)
X = rng.randn(40, 4).astype(np.float32)
y = np.arange(40) % 2


def make_net(module=MLP, **kw):
    params = {
        "module__hidden_units": (8,),
        "criterion": torch.nn.CrossEntropyLoss,
        "max_epochs": 1,
        "batch_size": 20,
        "train_split": None,
        "verbose": 0,
        **kw,
    }
    if module is not MLP:
        params.pop("module__hidden_units")
    return NeuralNetClassifier(module, **params)


def make_clf(**kw):
    return LotteryTicketClassifier(make_net(), **{"n_rounds": 1, **kw})


@pytest.fixture(scope="module")
def fitted():
    return make_clf(random_state=0).fit(X, y)


# -- X and y -----------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, match",
    [(np.nan, "Input X contains NaN"), (np.inf, "Input X contains infinity")],
)
def test_non_finite_X(bad, match):
    Xb = X.copy()
    Xb[3, 1] = bad
    with pytest.raises(ValueError, match=match):
        make_clf().fit(Xb, y)


def test_non_finite_X_at_predict(fitted):
    Xb = X.copy()
    Xb[0, 0] = np.nan
    for method in ("predict", "predict_proba", "transform"):
        with pytest.raises(ValueError, match="Input X contains NaN"):
            getattr(fitted, method)(Xb)


def test_empty_X():
    with pytest.raises(ValueError, match=r"0 sample\(s\)"):
        make_clf().fit(np.empty((0, 4), dtype=np.float32), np.array([]))


def test_one_dimensional_X():
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        make_clf().fit(X[:, 0], y)


def test_wrong_number_of_features_at_predict(fitted):
    for method in ("predict", "predict_proba", "transform", "score"):
        args = (X[:, :3], y) if method == "score" else (X[:, :3],)
        with pytest.raises(ValueError, match="X has 3 features, but .* expecting 4"):
            getattr(fitted, method)(*args)


def test_single_class():
    with pytest.raises(ValueError, match="at least 2 classes"):
        make_clf().fit(X, np.zeros(len(X)))


def test_continuous_y():
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        make_clf().fit(X, rng.randn(len(X)))


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        make_clf().fit(X, y[:-1])


# -- parameters -----------------------------------------------------------------
@pytest.mark.parametrize("rate", [0, 1, -0.1, 1.5, 0.0, 1.0, np.inf])
def test_prune_rate_outside_open_unit_interval(rate):
    match = r"prune_rate must be a float in the open interval \(0, 1\)"
    with pytest.raises(ValueError, match=match):
        make_clf(prune_rate=rate).fit(X, y)


@pytest.mark.parametrize("rate", ["0.2", [0.2], True])  # None = default (issue 3)
def test_prune_rate_not_a_number(rate):
    with pytest.raises(TypeError, match="prune_rate must be a float"):
        make_clf(prune_rate=rate).fit(X, y)


def test_prune_rate_nan():
    with pytest.raises(ValueError, match="prune_rate"):
        make_clf(prune_rate=float("nan")).fit(X, y)


def test_numpy_scalars_are_accepted():
    clf = make_clf(prune_rate=np.float32(0.5), n_rounds=np.int64(1)).fit(X, y)
    assert int(clf.masks_["hidden.0.weight"].sum()) == 16


@pytest.mark.parametrize("n", [-1, -5])
def test_negative_n_rounds(n):
    with pytest.raises(ValueError, match="n_rounds must be an int >= 0"):
        make_clf(n_rounds=n).fit(X, y)


@pytest.mark.parametrize("n", [1.5, 2.0, "3", None, False])
def test_non_integer_n_rounds(n):
    with pytest.raises(TypeError, match="n_rounds must be an int >= 0"):
        make_clf(n_rounds=n).fit(X, y)


@pytest.mark.parametrize("strategy", ["largest", "LARGE_FINAL", 3, None])
def test_unknown_strategy_lists_valid_ones(strategy):
    with pytest.raises(
        ValueError,
        match=r"valid strategies are \['large_final', .*'random', .*'snip'.*\]",
    ):
        make_clf(strategy=strategy).fit(X, y)


def test_unknown_rewind():
    match = r"rewind='late' is not valid.*\['init', 'reinit', .*'lr'\] or an int"
    with pytest.raises(ValueError, match=match):
        make_clf(rewind="late").fit(X, y)


def test_unknown_scope():
    with pytest.raises(ValueError, match="scope='everything' is not valid"):
        make_clf(scope="everything").fit(X, y)


def test_bad_output_rate_factor():
    with pytest.raises(ValueError, match="output_rate_factor"):
        make_clf(output_rate_factor=-1.0).fit(X, y)


# -- net --------------------------------------------------------------------------
def test_net_given_as_a_class():
    match = "net must be a skorch NeuralNetClassifier instance"
    with pytest.raises(TypeError, match=match):
        LotteryTicketClassifier(NeuralNetClassifier).fit(X, y)


@pytest.mark.parametrize(
    "net",
    [NeuralNetRegressor(MLP), LogisticRegression(), MLP, "mlp"],
    ids=["regressor", "sklearn", "module_class", "string"],
)
def test_net_that_is_not_a_skorch_classifier(net):
    with pytest.raises(TypeError, match="net must be a skorch NeuralNetClassifier"):
        LotteryTicketClassifier(net).fit(X, y)


class NoWeights(torch.nn.Module):
    def forward(self, X):
        return X[:, :2]


class OnlyScale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(4))
        self.norm = torch.nn.BatchNorm1d(4)

    def forward(self, X):
        return self.norm(X * self.scale)[:, :2]


@pytest.mark.parametrize("module", [NoWeights, OnlyScale])
def test_network_with_nothing_prunable(module):
    clf = LotteryTicketClassifier(make_net(module))
    match = "(nothing to prune|no prunable tensors).*Linear"
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_params_are_checked_before_any_training():
    # a bad parameter fails fast, before the (possibly long) rounds start
    net = make_net(max_epochs=10_000)
    with pytest.raises(ValueError, match="prune_rate"):
        LotteryTicketClassifier(net, prune_rate=2.0).fit(X, y)


# -- not fitted ---------------------------------------------------------------------
@pytest.mark.parametrize("method", ["predict", "predict_proba", "transform", "score"])
def test_methods_before_fit_raise_not_fitted(method):
    clf = make_clf()
    args = (X, y) if method == "score" else (X,)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(clf, method)(*args)


def test_init_only_stores_parameters():
    # invalid values are stored untouched; nothing is validated or fitted here
    clf = LotteryTicketClassifier("nonsense", n_rounds=-3, prune_rate=7, strategy=None)
    assert clf.get_params(deep=False)["net"] == "nonsense"
    assert clf.n_rounds == -3 and clf.prune_rate == 7 and clf.strategy is None
    assert not [k for k in vars(clf) if k.endswith("_")]
