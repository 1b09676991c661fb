"""Parameters are validated once, before any training, with clear errors.

sklearn's ``_parameter_constraints`` check types, ranges and options
(``InvalidParameterError``, a ``ValueError`` and a ``TypeError``);
:func:`sklottery.config.make_config` checks what depends on several
parameters and returns the frozen :class:`~sklottery.config.LotteryConfig`.
"""

import dataclasses

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    make_constraint,
)
from skorch import NeuralNetClassifier, NeuralNetRegressor

from sklottery import MLP, LotteryTicketClassifier, Pruner, SupermaskClassifier
from sklottery.config import (
    PARAMETER_CONSTRAINTS,
    SUPERMASK_CONSTRAINTS,
    LotteryConfig,
    make_config,
)

rng = np.random.RandomState(0)
X = rng.randn(40, 4).astype(np.float32)
y = np.arange(40) % 2


# make_clf: one round on a 1-epoch net, every other parameter the estimator's
# default.
pytestmark = pytest.mark.lottery(
    max_epochs=1, n_rounds=1, prune_rate=None, random_state=None
)


def constraint(name, text):
    """sklearn's message for a parameter outside its constraints."""
    return rf"The '{name}' parameter of LotteryTicketClassifier must be {text}"


# -- one parameter at a time (sklearn's constraints) ---------------------------------
@pytest.mark.parametrize(
    "rate", [0, 1, -0.1, 1.5, 0.0, 1.0, np.inf, float("nan"), "0.2", [0.2], True]
)
def test_prune_rate_outside_open_unit_interval(make_clf, rate):
    match = constraint("prune_rate", r"a float in the range \(0.0, 1.0\) or None")
    with pytest.raises(InvalidParameterError, match=match):
        make_clf(prune_rate=rate).fit(X, y)


@pytest.mark.parametrize("n", [-1, -5, 1.5, 2.0, "3", None])
def test_n_rounds_must_be_a_non_negative_int(make_clf, n):
    match = constraint("n_rounds", r"an int in the range \[0, inf\)")
    with pytest.raises(InvalidParameterError, match=match):
        make_clf(n_rounds=n).fit(X, y)


@pytest.mark.parametrize("name", ["n_rounds", "tol", "rewind"])
def test_a_bool_is_not_a_number(make_clf, name):
    with pytest.raises(TypeError, match=f"{name}"):
        make_clf(**{name: True}).fit(X, y)


@pytest.mark.parametrize("strategy", ["largest", "LARGE_FINAL", 3, None])
def test_unknown_strategy_lists_valid_ones(make_clf, strategy):
    match = constraint("strategy", r"a str among \{.*'large_final'.*\} or a callable")
    with pytest.raises(InvalidParameterError, match=match):
        make_clf(strategy=strategy).fit(X, y)


@pytest.mark.parametrize("rewind", ["late", -1, 1.5])
def test_unknown_rewind(make_clf, rewind):
    match = constraint("rewind", r"a str among \{.*'reinit'.*\} or an int in the")
    with pytest.raises(InvalidParameterError, match=match):
        make_clf(rewind=rewind).fit(X, y)


@pytest.mark.parametrize(
    "params, name, text",
    [
        ({"scope": "everything"}, "scope", r"a str among \{.*'global'.*\}, an"),
        ({"output_rate_factor": -1.0}, "output_rate_factor", "a float in the range"),
        ({"target_sparsity": 1.0}, "target_sparsity", "a float in the range"),
        ({"schedule": "gradual"}, "schedule", r"a str among \{.*'oneshot'.*\}"),
        ({"select": "first"}, "select", r"a str among \{'"),
        ({"select": None}, "select", r"a str among \{'"),
        ({"tol": -0.1}, "tol", r"a float in the range \[0.0, inf\)"),
        ({"tol": "big"}, "tol", r"a float in the range \[0.0, inf\)"),
        ({"verbose": "yes"}, "verbose", r"an int in the range \[0, inf\)"),
        ({"warm_start": "yes"}, "warm_start", "an instance of 'bool'"),
        ({"rescale": "yes"}, "rescale", "an instance of 'bool'"),
        ({"inference": "csr"}, "inference", r"a str among \{'"),
        ({"early_bird": "yes"}, "early_bird", "None, an instance of 'bool'"),
        ({"memory": 42}, "memory",
         r"None, a non-empty str \(a cache directory\) or an object"),
        ({"layer_rates": [0.1]}, "layer_rates", "an instance of 'dict' or None"),
        ({"exclude": 3}, "exclude", "an instance of 'str'"),
    ],
)
def test_each_parameter_is_checked(make_clf, params, name, text):
    with pytest.raises(InvalidParameterError, match=constraint(name, text)):
        make_clf(**params).fit(X, y)


def test_numpy_scalars_are_accepted(make_clf):
    clf = make_clf(prune_rate=np.float32(0.5), n_rounds=np.int64(1)).fit(X, y)
    assert int(clf.masks_["hidden.0.weight"].sum()) == 32  # 4 x 16, half kept


# -- parameters that depend on each other (make_config) ---------------------------
@pytest.mark.parametrize(
    "params, match",
    [
        ({"prune_rate": 0.2, "target_sparsity": 0.9},
         "either prune_rate .* or target_sparsity"),
        ({"n_rounds": 0, "target_sparsity": 0.5},
         "target_sparsity needs n_rounds >= 1"),
        ({"rewind": 5}, "exceeds the net's max_epochs=1"),
        ({"early_bird": True, "strategy": "random"}, "deterministic pruning strategy"),
        ({"early_bird": {"tresh": 0.1}}, r"valid keys are \['patience', 'threshold'\]"),
        ({"early_bird": {"patience": 0}}, "patience must be an int >= 1"),
    ],
)
def test_combinations_are_checked(make_clf, params, match):
    with pytest.raises(ValueError, match=match):
        make_clf(**params).fit(X, y)


def test_params_are_checked_before_any_training(tiny_net):
    # a bad parameter fails fast, before the (possibly long) rounds start
    net = tiny_net(max_epochs=10_000)
    with pytest.raises(ValueError, match="prune_rate"):
        LotteryTicketClassifier(net, prune_rate=2.0).fit(X, y)
    with pytest.raises(ValueError, match="target_sparsity"):
        LotteryTicketClassifier(net, prune_rate=0.2, target_sparsity=0.5).fit(X, y)


def test_config_is_frozen_and_resolved():
    params = LotteryTicketClassifier(
        n_rounds=3, target_sparsity=0.488, schedule="oneshot", rewind="none",
        early_bird=0.2, select="best", tol=0.05,
    ).get_params(deep=False)
    config = make_config(params, seed=7, max_epochs=10)
    assert isinstance(config, LotteryConfig)
    assert config.n_rounds == 3 and config.last_round == 1  # one-shot: one prune
    assert config.pruner["n_rounds"] == 3 and config.pruner["random_state"] == 7
    assert config.fine_tune and config.rewind_epoch is None
    assert dict(config.early_bird) == {"threshold": 0.2, "patience": 4}
    assert config.early_bird_with_pruner()["pruner"] == dict(config.pruner)
    assert (config.select, config.tol, config.seed) == ("best", 0.05, 7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n_rounds = 4
    with pytest.raises(TypeError):
        config.pruner["prune_rate"] = 0.5  # a read-only mapping
    late = make_config({**params, "rewind": 2, "early_bird": None}, seed=0,
                       max_epochs=10)
    assert late.rewind_epoch == 2 and late.early_bird is None


# -- net ------------------------------------------------------------------------------
def test_net_given_as_a_class():
    match = "net must be a skorch NeuralNetClassifier instance"
    with pytest.raises(TypeError, match=match):
        LotteryTicketClassifier(NeuralNetClassifier).fit(X, y)


def test_net_of_the_other_kind():
    match = "net must be a skorch NeuralNetClassifier .*got NeuralNetRegressor"
    with pytest.raises(TypeError, match=match):
        LotteryTicketClassifier(NeuralNetRegressor(MLP)).fit(X, y)


@pytest.mark.parametrize(
    "net", [LogisticRegression(), MLP, "mlp"], ids=["sklearn", "module_class", "str"]
)
def test_net_that_is_not_a_skorch_net(net):
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
    net = NeuralNetClassifier(module, max_epochs=1, train_split=None, verbose=0)
    match = "(nothing to prune|no prunable tensors).*Linear"
    with pytest.raises(ValueError, match=match):
        LotteryTicketClassifier(net).fit(X, y)


# -- not fitted; __init__ --------------------------------------------------------
@pytest.mark.parametrize("method", ["predict", "predict_proba", "transform", "score"])
def test_methods_before_fit_raise_not_fitted(make_clf, method):
    args = (X, y) if method == "score" else (X,)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(make_clf(), method)(*args)


def test_init_only_stores_parameters():
    # invalid values are stored untouched; nothing is validated or fitted here
    clf = LotteryTicketClassifier("nonsense", n_rounds=-3, prune_rate=7, strategy=None)
    assert clf.get_params(deep=False)["net"] == "nonsense"
    assert clf.n_rounds == -3 and clf.prune_rate == 7 and clf.strategy is None
    assert not [k for k in vars(clf) if k.endswith("_")]


# -- a bool is not a number; an empty path is not a cache (issue 19) ---------------
def _numeric(constraints):
    """The parameters of ``constraints`` with an ``Interval`` among them."""
    return sorted(
        name for name, options in constraints.items()
        if name != "net" and any(isinstance(c, Interval) for c in options)
    )


def test_every_number_constraint_refuses_bools():
    # both families declare their numbers once, in config: none takes True as 1
    for constraints in (PARAMETER_CONSTRAINTS, SUPERMASK_CONSTRAINTS):
        for name in _numeric(constraints):
            numbers_of = [c for c in constraints[name] if isinstance(c, Interval)]
            for value in (True, False, np.bool_(True)):
                assert not any(c.is_satisfied_by(value) for c in numbers_of), (
                    name, value)


# early_bird=True is an option of its own: the default early-bird settings
@pytest.mark.parametrize(
    "name", [n for n in _numeric(PARAMETER_CONSTRAINTS) if n != "early_bird"]
)
def test_a_bool_is_refused_by_the_declared_constraints(make_clf, name):
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter"):
        make_clf(**{name: True}).fit(X, y)


@pytest.mark.parametrize("value", [True, False])
def test_supermask_density_is_not_a_bool(tiny_net, value):
    clf = SupermaskClassifier(tiny_net(max_epochs=1), density=value)
    match = "The 'density' parameter of SupermaskClassifier must be a float"
    with pytest.raises(InvalidParameterError, match=match):
        clf.fit(X, y)


def test_memory_empty_path_is_refused(make_clf, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the old code cached into ./joblib
    match = constraint("memory", r"None, a non-empty str")
    with pytest.raises(InvalidParameterError, match=match):
        make_clf(memory="").fit(X, y)
    assert not list(tmp_path.iterdir())


# -- one range for each parameter (the Pruner's, the estimators', the CLI's) ----------
PROBES = [-1.0, -1e-9, 0, 0.0, 1e-9, 0.2, 0.5, 1 - 1e-9, 1, 1.0, 1.5, 3.0,
          float("nan"), True, False, "0.5", np.float32(0.5), np.int64(1)]


def _pruner_accepts(**kwargs) -> bool:
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    try:
        Pruner(net, **kwargs)
    except (TypeError, ValueError):
        return False
    return True


def _declared_accepts(name, value) -> bool:
    return any(
        make_constraint(c).is_satisfied_by(value) for c in PARAMETER_CONSTRAINTS[name]
    )


@pytest.mark.filterwarnings("ignore::UserWarning")  # rates rounding to 0
@pytest.mark.parametrize(
    "name, extra",
    [
        ("prune_rate", {}),
        ("target_sparsity", {"n_rounds": 2}),
        # x 0.1: the output layer's rate stays below 1 for every finite factor
        ("output_rate_factor", {"prune_rate": 0.1}),
    ],
)
def test_config_and_pruner_ranges_agree(name, extra):
    probes = [*PROBES, None] if name != "output_rate_factor" else [*PROBES, None, 9.0]
    for value in probes:
        assert _declared_accepts(name, value) == _pruner_accepts(
            **{**extra, name: value}
        ), (name, value)
