"""Tickets of fitted estimators: ``save_ticket``/``load_ticket`` round trip,
warm start, 0.1.0's tickets, and every crafted file refused with the estimator
unchanged."""

import copy
import io

import numpy as np
import pytest
import torch

from sklottery.tickets import save_ticket
from tests.tickets import ticket_helpers as th


@pytest.fixture(scope="module")
def fitted(digits, tiny_net):
    from sklottery import LotteryTicketClassifier

    X, y = digits[0][:200], digits[1][:200]
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven",
             "eight", "nine"]
    labels = np.array(names, dtype=object)[y]
    clf = LotteryTicketClassifier(
        tiny_net(), n_rounds=2, prune_rate=0.5, random_state=0
    ).fit(X, labels)
    return clf, X, labels


def _fresh(**kwargs):
    from sklottery import LotteryTicketClassifier
    from tests.conftest import make_tiny_net

    return LotteryTicketClassifier(make_tiny_net(**kwargs), n_rounds=2, prune_rate=0.5)


def _snapshot(est, X):
    return (sorted(est.__dict__), est.predict_proba(X), est.rounds_.copy(),
            est.classes_.copy(), est.selected_round_)


def _assert_same(before, after):
    assert before[0] == after[0]
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2].equals(after[2])
    assert before[3].tolist() == after[3].tolist() and before[4] == after[4]


def _classes(h):
    return next(a for a in h["arrays"] if a["name"] == "classes_")


def _set_classes(values, shape=None):
    def edit(h):
        entry = _classes(h)
        entry["values"] = values(entry["values"])
        entry["shape"] = shape or [len(entry["values"])]

    return edit


def _weights_nan(data):
    i = th.spec_index(th.split(data)[1], "hidden.0.weight")
    return th.set_tensor(data, f"t{i}.values",
                         th.nan_first(th.tensor(data, f"t{i}.values", np.float32)))


def _table(n):
    return {"kind": "table", "shape": [n], "dtype": "float32", "max_id": None}


def _no_round(h):
    del h["rounds"][0]["round"]


ESTIMATOR_CASES = [
    (lambda d: th.craft(d, inner=_set_classes(lambda v: v[:-1])),
     "'classes_' has 9 entries; estimator state field 'n_outputs' is 10"),
    (lambda d: th.craft(d, inner=_set_classes(lambda v: v, [2, 5])),
     "'classes_' must be 1-d"),
    (lambda d: th.craft(d, inner=_set_classes(lambda v: [v[0]] + v[:-1])),
     "'classes_' holds duplicated entries"),
    (_weights_nan, "'hidden.0.weight' holds NaN or infinite"),
    (lambda d: th.craft(d, inner=th.edit_state(selected_round=99)),
     "'selected_round' is 99, which is not among the rounds"),
    (lambda d: th.craft(d, inner=th.edit_state(output_layer="hidden.0")),
     "'output_layer' is 'hidden.0'; the last pruned layer is 'output'"),
    (lambda d: th.craft(d, inner=th.edit_state(n_features_out=-5)),
     "'n_features_out' must be >= 1; got -5"),
    (lambda d: th.craft(d, inner=th.edit_state(n_features_out=8)),
     "'n_features_out' is 8; the output layer 'output' takes 16"),
    (lambda d: th.craft(d, inner=th.edit_state(n_features_in=-1)),
     "'n_features_in' must be >= 1; got -1"),
    (lambda d: th.craft(d, inner=th.edit_state(
        n_features_in=10**12, input=_table(10**12))),
     "'n_features_in' is 1000000000000, more than the"),
    (lambda d: th.craft(d, inner=th.edit_state(n_outputs=True)),
     "'n_outputs' must be a int"),
    (lambda d: th.craft(d, inner=th.edit_state(extra=1)),
     "unknown estimator state fields"),
    (lambda d: th.craft(d, inner=_no_round), "round record 0 has no field 'round'"),
    (lambda d: th.craft(d, inner=lambda h: h["rounds"].reverse()),
     "rounds must increase"),
    (lambda d: th.craft(d, inner=lambda h: h["rounds"][0].update(score=[1])),
     "'score' must be a number"),
    (lambda d: th.craft(d, inner=lambda h: h.update(rounds=[])),
     "the round history is empty"),
    (lambda d: th.craft(d, inner=lambda h: h["estimator"].update(
        {"class": "LotteryTicketRegressor"})), "saved from a LotteryTicketRegressor"),
    (lambda d: th.craft(d, inner=lambda h: h.update(estimator=None)),
     "not saved from a sklottery estimator"),
    (lambda d: th.craft(d, inner=lambda h: h["estimator"].update(state=[])),
     "header field 'estimator' must be"),
    (lambda d: d[: len(d) // 2], "truncated or corrupt|truncated"),
]


class TestEstimatorTickets:
    def test_round_trip(self, fitted, tmp_path):
        clf, X, y = fitted
        clf.save_ticket(tmp_path / "t")
        loaded = _fresh().load_ticket(tmp_path / "t")
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
        assert loaded.predict(X[:5]).tolist() == clf.predict(X[:5]).tolist()
        assert loaded.classes_.dtype == object
        assert loaded.classes_.tolist() == clf.classes_.tolist()
        assert loaded.rounds_.equals(clf.rounds_)
        assert loaded.layers_.equals(clf.layers_)
        assert loaded.sparsity_ == clf.sparsity_
        assert loaded.selected_round_ == clf.selected_round_ == 2
        assert loaded.n_features_in_ == 64 and loaded.interrupted_ is False
        np.testing.assert_array_equal(loaded.transform(X), clf.transform(X))
        for name, mask in clf.masks_.items():
            assert torch.equal(loaded.masks_[name], mask)
        assert loaded.rewind_point_ is None

    def test_with_rewind_point_warm_start_continues(self, fitted, tmp_path):
        clf, X, y = fitted
        clf.save_ticket(tmp_path / "t", rewind_point=True)
        loaded = _fresh().load_ticket(tmp_path / "t")
        for name, value in clf.rewind_point_.items():
            mask = clf.masks_.get(name)
            expected = value if mask is None else value * mask
            assert torch.equal(loaded.rewind_point_[name], expected)
        loaded.set_params(warm_start=True, n_rounds=3).fit(X, y)
        assert loaded.rounds_["round"].tolist() == [0, 1, 2, 3]

    def test_v010_ticket_predicts_as_before(self, digits):
        proba = np.load("tests/data/v010_classifier_proba.npy")
        loaded = _fresh(module__hidden_units=(8,)).load_ticket(th.LEGACY)
        X = digits[0][: len(proba)]
        np.testing.assert_allclose(loaded.predict_proba(X), proba, rtol=1e-6)
        assert loaded.classes_.dtype == object

    @pytest.mark.parametrize("edit, match", ESTIMATOR_CASES)
    def test_crafted_file_is_refused_and_estimator_unchanged(
        self, fitted, tmp_path, edit, match
    ):
        clf, X, y = fitted
        buf = io.BytesIO()
        clf.save_ticket(buf)
        target = copy.deepcopy(clf)
        before = _snapshot(target, X)
        with pytest.raises(ValueError, match=match):
            target.load_ticket(io.BytesIO(edit(buf.getvalue())))
        _assert_same(before, _snapshot(target, X))

    def test_mismatched_network_leaves_estimator_unchanged(self, fitted, tmp_path):
        clf, X, y = fitted
        clf.save_ticket(tmp_path / "t")
        other = _fresh(module__hidden_units=(8,)).fit(X[:50], y[:50])
        before = _snapshot(other, X)
        with pytest.raises(ValueError, match="does not fit this MLP"):
            other.load_ticket(tmp_path / "t")
        _assert_same(before, _snapshot(other, X))

    def test_plain_ticket_is_not_an_estimator_ticket(self, tmp_path):
        net, masks, _ = th.ticket_net()
        save_ticket(tmp_path / "t", net, masks)
        with pytest.raises(ValueError, match="not saved from a sklottery estimator"):
            _fresh().load_ticket(tmp_path / "t")

    def test_rescale_must_match(self, fitted, tiny_net, tmp_path):
        from sklottery import LotteryTicketClassifier

        clf, X, y = fitted
        clf.save_ticket(tmp_path / "t")
        other = LotteryTicketClassifier(tiny_net(), rescale=True)
        with pytest.raises(ValueError, match="rescale=False, which changes the fo"):
            other.load_ticket(tmp_path / "t")
