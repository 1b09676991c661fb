"""Tickets of estimators fitted on a dict X: the input form is recorded, read
back, checked, and a loaded ticket refuses another form."""

import io

import numpy as np
import pytest
import torch

from sklottery import LotteryTicketClassifier
from tests.dict_helpers import Bert, dict_data, dict_net
from tests.tickets import ticket_helpers as th


@pytest.fixture
def fitted():
    X, y = dict_data()
    clf = LotteryTicketClassifier(dict_net(), n_rounds=1, prune_rate=0.5,
                                  random_state=0).fit(X, y)
    buf = io.BytesIO()
    clf.save_ticket(buf)
    return clf, X, buf.getvalue()


def _load(data, net=None):
    return LotteryTicketClassifier(net or dict_net()).load_ticket(io.BytesIO(data))


def test_round_trip_records_the_form(fitted):
    clf, X, data = fitted
    record = th.split(data)[1]["estimator"]["state"]["input"]
    assert record["kind"] == "dict" and record["fields"] == [
        {"key": "ids", "shape": [6], "dtype": "int64"},
        {"key": "num", "shape": [3], "dtype": "float32"},
    ]
    loaded = _load(data)
    assert loaded._input_info == clf._input_info
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.transform(X), clf.transform(X))
    for name, mask in clf.masks_.items():
        assert torch.equal(loaded.masks_[name], mask)


def test_loaded_ticket_refuses_another_form(fitted):
    _, X, data = fitted
    loaded = _load(data)
    with pytest.raises(ValueError, match="keys"):
        loaded.predict({"ids": X["ids"]})
    with pytest.raises(ValueError, match=r"X\['num'\]"):
        loaded.predict({"ids": X["ids"], "num": X["num"][:, :2]})
    with pytest.raises(ValueError, match="fitted on dict X"):
        loaded.predict(X["num"])


def _fields(edit):
    return lambda h: edit(h["estimator"]["state"]["input"])


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda i: i.update(fields=[]), "'fields' must be a non-empty list"),
        (lambda i: i.pop("fields"), "must have exactly the keys"),
        (lambda i: i.update(shape=[9]), "'shape' \\[\\]"),
        (lambda i: i["fields"][0].update(dtype="float64"), "'fields' entry"),
        (lambda i: i["fields"][1].update(key="ids"), "'fields' entry"),
        (lambda i: i["fields"][0].update(shape=[0]), "'fields' entry"),
        (lambda i: i["fields"][0].update(shape=[7]), "'n_features_in' is 9"),
        (lambda i: i["fields"].append({"key": "x", "shape": [], "dtype": "bool"}),
         "'n_features_in' is 9"),
    ],
)
def test_crafted_records_are_refused(fitted, edit, match):
    _, _, data = fitted
    with pytest.raises(ValueError, match=match):
        _load(th.craft(data, inner=_fields(edit)))


def test_a_network_that_does_not_take_the_form_is_refused(fitted):
    _, _, data = fitted
    # the recorded float values given as the wrong key: the forward fails
    crafted = th.craft(data, inner=_fields(
        lambda i: (i["fields"][1].update(key="other"))))
    with pytest.raises(ValueError, match="does not run through the network"):
        _load(crafted)


def test_bert_ticket_round_trip():
    pytest.importorskip("transformers")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 30, (32, 8))
    X = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    y = (ids[:, 0] > 15).astype(np.int64)
    net = dict_net(Bert, max_epochs=1, lr=1e-3)
    clf = LotteryTicketClassifier(net, n_rounds=1, prune_rate=0.5,
                                  random_state=0).fit(X, y)
    buf = io.BytesIO()
    clf.save_ticket(buf)
    loaded = _load(buf.getvalue(), net)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X),
                               rtol=1e-5, atol=1e-6)
