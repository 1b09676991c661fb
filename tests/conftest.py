"""Shared data and tiny nets for the tests.

The net factories are fixtures returning a function (tests build nets with
their own options); every net is small enough to train in milliseconds.
"""

import copy
import math
import random

import numpy as np
import pytest
import torch
from sklearn.datasets import (
    load_digits,
    load_iris,
    make_classification,
    make_regression,
)
from skorch import NeuralNetClassifier, NeuralNetRegressor

from sklottery import MLP

# Tiny nets on two cores: one thread avoids oversubscription between workers.
torch.set_num_threads(1)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "lottery(**defaults): a test module's defaults for the make_clf and "
        "make_reg factories (set as pytestmark)",
    )


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def make_tiny_net(max_epochs=3, train_split=None, **kwargs):
    """A skorch classifier around a one-hidden-layer (16 units) MLP."""
    params = {
        "module__hidden_units": (16,),
        "criterion": torch.nn.CrossEntropyLoss,
        "optimizer": torch.optim.Adam,
        "lr": 0.02,
        "max_epochs": max_epochs,
        "batch_size": 64,
        "train_split": train_split,
        "iterator_train__shuffle": True,
        "verbose": 0,
        **kwargs,
    }
    return NeuralNetClassifier(MLP, **params)


def make_tiny_regressor_net(max_epochs=20, train_split=None, **kwargs):
    """A skorch regressor around a one-hidden-layer (16 units) MLP."""
    params = {
        "module__hidden_units": (16,),
        "optimizer": torch.optim.Adam,
        "lr": 0.02,
        "max_epochs": max_epochs,
        "batch_size": 64,
        "train_split": train_split,
        "iterator_train__shuffle": True,
        "verbose": 0,
        **kwargs,
    }
    return NeuralNetRegressor(MLP, **params)


# The net options of make_lottery: they build the tiny net (net=None only).
_NET_OPTIONS = ("max_epochs", "train_split", "hidden_units", "batch_size", "lr",
                "callbacks")


def make_lottery(net=None, *, regressor=False, n_rounds=2, prune_rate=0.5,
                 random_state=0, **params):
    """A LotteryTicketClassifier (LotteryTicketRegressor if ``regressor``) on
    ``net`` or, by default, on the tiny net built from the net options in
    ``params``: ``max_epochs`` (2 for the classifier, tiny_regressor_net's 20
    for the regressor), ``train_split``, ``hidden_units`` (16,),
    ``batch_size``, ``lr`` and ``callbacks`` (deep-copied: every net gets its
    own). The other ``params`` go to the estimator."""
    from sklottery import LotteryTicketClassifier, LotteryTicketRegressor

    options = {k: params.pop(k) for k in _NET_OPTIONS if k in params}
    if net is None:
        if "hidden_units" in options:
            options["module__hidden_units"] = options.pop("hidden_units")
        if "callbacks" in options:
            options["callbacks"] = copy.deepcopy(list(options["callbacks"]))
        if regressor:
            net = make_tiny_regressor_net(**options)
        else:
            net = make_tiny_net(**{"max_epochs": 2, **options})
    elif options:
        raise TypeError(f"net options {sorted(options)} only build the default net")
    estimator = LotteryTicketRegressor if regressor else LotteryTicketClassifier
    return estimator(net, n_rounds=n_rounds, prune_rate=prune_rate,
                     random_state=random_state, **params)


def _lottery_factory(request, regressor):
    """make_lottery with the test module's ``pytest.mark.lottery`` defaults."""
    marker = request.node.get_closest_marker("lottery")
    defaults = dict(marker.kwargs) if marker else {}

    def make(net=None, **params):
        return make_lottery(net, regressor=regressor, **{**defaults, **params})

    return make


@pytest.fixture(scope="module")
def make_clf(request):
    """``make_clf(net=None, **params)``: a LotteryTicketClassifier from
    :func:`make_lottery` (2 rounds at rate 0.5, random_state 0, a 2-epoch tiny
    net), with the module's ``pytestmark = pytest.mark.lottery(**defaults)``
    over those defaults and ``params`` over both."""
    return _lottery_factory(request, regressor=False)


@pytest.fixture(scope="module")
def make_reg(request):
    """``make_reg(net=None, **params)``: the same for LotteryTicketRegressor
    (on tiny_regressor_net by default)."""
    return _lottery_factory(request, regressor=True)


@pytest.fixture(scope="session")
def tiny_net():
    """``tiny_net(max_epochs=3, train_split=None, **net_params)``."""
    return make_tiny_net


@pytest.fixture(scope="session")
def tiny_regressor_net():
    """``tiny_regressor_net(max_epochs=20, train_split=None, **net_params)``."""
    return make_tiny_regressor_net


@pytest.fixture(scope="session")
def digits():
    """The first 300 digits images (64 features in [0, 1], float32) and labels."""
    X, y = load_digits(return_X_y=True)
    return (X[:300] / 16.0).astype(np.float32), y[:300]


@pytest.fixture(scope="session")
def data(digits):
    """240 digits: the default data of a test module (some take their own)."""
    X, y = digits
    return X[:240], y[:240]


@pytest.fixture(scope="session")
def digits_120(digits):
    """The first 120 digits."""
    X, y = digits
    return X[:120], y[:120]


@pytest.fixture(scope="session")
def digits_200(digits):
    """The first 200 digits."""
    X, y = digits
    return X[:200], y[:200]


@pytest.fixture(scope="session")
def blobs():
    """240 samples, 10 float32 features, 3 classes (make_classification)."""
    X, y = make_classification(
        240, 10, n_informative=6, n_classes=3, random_state=1
    )
    return X.astype(np.float32), y


def _blobs(n_samples, n_features, n_informative, random_state):
    X, y = make_classification(
        n_samples=n_samples, n_features=n_features, n_informative=n_informative,
        n_redundant=0, n_classes=3, random_state=random_state,
    )
    return X.astype(np.float32), y


@pytest.fixture(scope="session")
def blobs_90x5():
    """90 samples, 5 float32 features (3 informative), 3 classes."""
    return _blobs(90, 5, 3, random_state=1)


@pytest.fixture(scope="session")
def blobs_120x6():
    """120 samples, 6 float32 features (4 informative), 3 classes."""
    return _blobs(120, 6, 4, random_state=0)


@pytest.fixture(scope="session")
def regression_data():
    """160 samples, 6 float32 features (4 informative), a float64 target of
    unit standard deviation (make_regression, noise 5)."""
    X, y = make_regression(160, 6, n_informative=4, noise=5.0, random_state=0)
    return X.astype(np.float32), (y / y.std()).astype(np.float64)


def _expected_kept(sizes, rates, n_rounds):
    """Kept counts per layer for rounds 0..n_rounds, from the documented rule:
    a layer prunes floor(rate * remaining + 0.5) of its remaining weights and
    never its last one."""
    kept, out = list(sizes), [list(sizes)]
    for _ in range(n_rounds):
        kept = [k - min(math.floor(r * k + 0.5), k - 1) for k, r in zip(kept, rates)]
        out.append(list(kept))
    return out


@pytest.fixture(scope="session")
def expected_kept():
    """``expected_kept(sizes, rates, n_rounds)``: kept counts per round."""
    return _expected_kept


@pytest.fixture(scope="session")
def fitted_ticket(data):
    """A fitted LotteryTicketClassifier (2 rounds at rate 0.5, 2 epochs, a
    validation split) on ``data``: the ticket of the sanity/stability tests.
    Tests must not change it."""
    from skorch.dataset import ValidSplit

    from sklottery import LotteryTicketClassifier

    X, y = data
    net = make_tiny_net(max_epochs=2, train_split=ValidSplit(0.25))
    return LotteryTicketClassifier(
        net, n_rounds=2, prune_rate=0.5, random_state=0
    ).fit(X, y)


@pytest.fixture(scope="session")
def iris_table():
    """Iris as the command line reads it: four measurements and a string
    ``species`` column (the CLI tests write it to CSV/Parquet)."""
    frame = load_iris(as_frame=True).frame
    frame["species"] = frame.pop("target").map({0: "setosa", 1: "versicolor",
                                                 2: "virginica"})
    return frame


def train_side_by_side(dense, sparse, masks, opt_cls, kwargs, x, steps=5):
    """``steps`` optimizer steps of the same loss on a masked dense module and
    its sparse-training copy (masks multiplied into the dense one after each
    step, as ``ApplyMasks`` does)."""
    from sklottery.pruning.masks import DeviceMasks

    opt_d = opt_cls(dense.parameters(), **kwargs)
    opt_s = opt_cls(sparse.parameters(), **kwargs)
    for _ in range(steps):
        for module, opt in ((dense, opt_d), (sparse, opt_s)):
            opt.zero_grad()
            module(x).pow(2).mean().backward()
            opt.step()
        DeviceMasks(dense, masks).apply()


def cli_error(argv, capsys, code):
    """Run ``sklottery`` with ``argv``; assert exit status ``code`` and a
    one-line error without a traceback; return that line."""
    from sklottery import cli

    capsys.readouterr()
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    assert status == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err
