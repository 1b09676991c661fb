"""schedule="at_init" in the estimators: prune the initialization, train once."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, KFold
from skorch.callbacks import Callback

from sklottery import LotteryTicketClassifier, LotteryTicketRegressor
from sklottery.pruning import find_prunable

METHODS = ["snip", "grasp", "synflow", "random", "large_final"]
#: What FirstStep saw: one entry per round trained, {name: weight tensor}.
FIRST_STEPS: list = []


class FirstStep(Callback):
    """Records the prunable weights at the first batch of every round."""

    def on_train_begin(self, net, **kwargs):
        self.seen = False

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training and not self.seen:
            self.seen = True
            params = dict(net.module_.named_parameters())
            FIRST_STEPS.append(
                {t.name: params[t.name].detach().clone()
                 for t in find_prunable(net.module_)}
            )


@pytest.fixture(autouse=True)
def _clear():
    FIRST_STEPS.clear()


def make(tiny_net, *, callbacks=None, **kwargs):
    params = {"n_rounds": 3, "prune_rate": 0.3, "schedule": "at_init",
              "random_state": 0, **kwargs}
    net = tiny_net(max_epochs=2, callbacks=callbacks)
    return LotteryTicketClassifier(net, **params)


@pytest.mark.parametrize("strategy", METHODS)
def test_prunes_the_planned_counts_before_the_first_step(data, tiny_net, strategy):
    X, y = data
    est = make(tiny_net, strategy=strategy, callbacks=[FirstStep()]).fit(X, y)
    oneshot = make(tiny_net, strategy="large_final", schedule="oneshot").fit(X, y)
    assert len(FIRST_STEPS) == 2  # round 0 (dense) and round 1
    dense, first = FIRST_STEPS
    assert all(bool((w != 0).all()) for w in dense.values())
    # before any step of round 1: exactly the masks, on the initialization
    for name, mask in est.masks_.items():
        init = est.rewind_point_[name]
        assert torch.equal(first[name], init * mask.to(init.dtype))
        assert int((first[name] != 0).sum()) == int(mask.sum())
    # the counts of one-shot pruning with the same parameters, layer by layer
    assert est.layers_["kept"].tolist() == oneshot.layers_["kept"].tolist()
    rounds = est.rounds_
    assert rounds["round"].tolist() == [0, 1]
    assert rounds["weights_remaining"].tolist() == \
        oneshot.rounds_["weights_remaining"].tolist()
    # round 1 shows its score before and after training
    assert np.isfinite(rounds["untrained_score"].iloc[1])
    assert np.isnan(rounds["untrained_score"].iloc[0])
    # exact zeros after training
    params = dict(est.net_.module_.named_parameters())
    for name, mask in est.masks_.items():
        assert bool((params[name].detach()[~mask] == 0).all())


def test_synflow_masks_do_not_depend_on_the_data(data, tiny_net):
    X, y = data
    a = make(tiny_net, strategy="synflow").fit(X[:120], y[:120])
    b = make(tiny_net, strategy="synflow").fit(X[120:], y[120:])
    assert all(torch.equal(a.masks_[n], b.masks_[n]) for n in a.masks_)
    c = make(tiny_net, strategy="snip").fit(X[:120], y[:120])
    d = make(tiny_net, strategy="snip").fit(X[120:], y[120:])
    assert any(not torch.equal(c.masks_[n], d.masks_[n]) for n in c.masks_)
    e = make(tiny_net, strategy="snip").fit(X[:120], y[:120])
    assert all(torch.equal(c.masks_[n], e.masks_[n]) for n in c.masks_)


@pytest.mark.filterwarnings("ignore:select='best' without a validation split")
def test_scope_layer_rates_and_select(data, tiny_net):
    X, y = data
    est = make(tiny_net, strategy="grasp", scope="global",
               layer_rates={"output": 0.0}, select="best").fit(X, y)
    out = est.layers_.iloc[-1]
    assert out["kept"] == out["total"]
    assert est.selected_round_ in (0, 1)


def test_pickle_ticket_file_and_sparse_export(data, tiny_net, tmp_path):
    X, y = data
    est = make(tiny_net, strategy="snip").fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
    path = tmp_path / "t"
    est.save_ticket(path)
    loaded = make(tiny_net, strategy="snip").load_ticket(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    assert loaded.rounds_["untrained_score"].tolist()[1] == \
        est.rounds_["untrained_score"].tolist()[1]
    sparse = est.to_sparse()
    with torch.no_grad():
        dense = est.net_.module_(torch.as_tensor(X))
        np.testing.assert_allclose(sparse(torch.as_tensor(X)).numpy(),
                                   dense.numpy(), rtol=1e-5, atol=1e-5)


def test_grid_search_over_strategy(data, tiny_net):
    X, y = data
    search = GridSearchCV(
        make(tiny_net, n_rounds=2),
        {"strategy": ["snip", "synflow", "random"]},
        cv=KFold(2, shuffle=True, random_state=0), error_score="raise",
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.schedule == "at_init"


def test_regressor_grasp(tiny_regressor_net):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5)).astype(np.float32)
    y = (X @ rng.normal(size=5)).astype(np.float32)
    est = LotteryTicketRegressor(
        tiny_regressor_net(max_epochs=3), n_rounds=2, schedule="at_init",
        strategy="grasp", random_state=0,
    ).fit(X, y)
    assert est.rounds_["round"].tolist() == [0, 1]
    assert 0 < est.sparsity_ < 1


@pytest.mark.parametrize(
    "params, match",
    [
        ({"strategy": "grasp", "schedule": "iterative"},
         "prunes at initialization only"),
        ({"strategy": "synflow", "schedule": "oneshot"},
         "prunes at initialization only"),
        ({"strategy": "movement"}, "scores every weight 0"),
        ({"strategy": "magnitude_increase"}, "scores every weight 0"),
        ({"strategy": "snip", "rewind": "none"}, "rewind='none'"),
        ({"strategy": "snip", "rewind": 1}, "rewind=1"),
        ({"strategy": "snip", "early_bird": True}, "early_bird"),
        ({"schedule": "at_start"}, "schedule"),
        ({"strategy": "nope"}, "strategy"),
    ],
)
def test_bad_options(data, tiny_net, params, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        make(tiny_net, **params).fit(X, y)


def test_warm_start_is_refused(data, tiny_net):
    X, y = data
    est = make(tiny_net, strategy="random", n_rounds=1).fit(X, y)
    est.set_params(warm_start=True, n_rounds=2)
    with pytest.raises(ValueError, match="schedule='at_init'"):
        est.fit(X, y)


def test_round_zero_is_cached_with_memory(data, tiny_net, tmp_path):
    X, y = data
    iterative = LotteryTicketClassifier(
        tiny_net(max_epochs=2, callbacks=[FirstStep()]), n_rounds=1,
        prune_rate=0.3, random_state=0, memory=str(tmp_path),
    ).fit(X, y)
    assert len(FIRST_STEPS) == 2
    FIRST_STEPS.clear()
    at_init = make(tiny_net, strategy="synflow", memory=str(tmp_path),
                   callbacks=[FirstStep()]).fit(X, y)
    assert len(FIRST_STEPS) == 1  # round 0 came from the cache: round 1 only
    assert at_init.rounds_["score"].iloc[0] == iterative.rounds_["score"].iloc[0]
