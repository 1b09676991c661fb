"""A dict X (skorch's several inputs, a BatchEncoding): validated row-wise
value by value, and checked against the fitted form afterwards."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sklottery import LotteryTicketClassifier
from sklottery.inputs import (
    InputInfo,
    check_X,
    check_X_y,
    input_state,
    sample_input,
    ticket_input,
)
from sklottery.training import DictRows


def _fit_check(X, y=None):
    learnt = {}
    est = LotteryTicketClassifier()
    if y is None:
        out = check_X(est, X, reset=True, learnt=learnt)
    else:
        Xc, _, info = check_X_y(est, X, y, learnt=learnt)
        out = (Xc, info)
    return est, out, learnt


def _fitted(X):
    est, (Xc, info), learnt = _fit_check(X)
    est.__dict__.update(learnt)
    return est


def test_values_keep_their_kind():
    X = {
        "ids": np.arange(12, dtype=np.int32).reshape(4, 3),
        "num": np.ones((4, 2, 2)),
        "mask": np.ones((4, 3), dtype=bool),
        "big": np.arange(4, dtype=np.uint8),
        "half": torch.ones((4, 2), dtype=torch.float16),
    }
    _, (Xc, info), learnt = _fit_check(X)
    assert isinstance(Xc, DictRows) and len(Xc) == 4
    dtypes = {k: t.dtype for k, t in Xc.tensors.items()}
    assert dtypes == {"ids": torch.int64, "num": torch.float32, "mask": torch.bool,
                      "big": torch.int64, "half": torch.float32}
    assert info.kind == "dict" and info.shape == () and info.dtype == "dict"
    assert info.fields == (
        ("ids", (3,), "int64"), ("num", (2, 2), "float32"), ("mask", (3,), "bool"),
        ("big", (), "int64"), ("half", (2,), "float32"),
    )
    assert info.n_features == 3 + 4 + 3 + 1 + 2
    assert learnt == {"_input_info": info}  # no n_features_in_ for a dict
    assert "'ids': int64 (n, 3)" in info.describe()


@pytest.mark.parametrize("dok", [sp.dok_matrix, sp.dok_array])
def test_a_dok_matrix_is_sparse_not_a_dict(dok):
    _, (Xc, info), _ = _fit_check(dok(np.eye(3, dtype=np.float32)))
    assert info.kind == "sparse" and not isinstance(Xc, DictRows)


def test_the_callers_arrays_are_not_changed():
    ids = np.arange(6).reshape(3, 2)
    num = torch.zeros((3, 2))
    _, (Xc, _), _ = _fit_check({"ids": ids, "num": num})
    Xc.tensors["ids"][0, 0] = 99
    Xc.tensors["num"][0, 0] = 99
    assert ids[0, 0] == 0 and num[0, 0] == 0


def test_lists_as_a_tokenizer_gives_them():
    _, (Xc, info), _ = _fit_check({"input_ids": [[1, 2], [3, 4]],
                                   "attention_mask": [[1, 1], [1, 0]]})
    assert Xc.tensors["input_ids"].dtype == torch.int64 and len(Xc) == 2


@pytest.mark.parametrize(
    "X, error, match",
    [
        ({}, ValueError, "empty dict"),
        ({1: np.zeros((3, 2))}, ValueError, "keys of a dict X must be str"),
        ({"a": np.zeros((3, 2)), "b": np.zeros((4, 2))}, ValueError,
         "inconsistent numbers of samples"),
        ({"a": np.zeros((0, 2))}, ValueError, "0 sample"),
        ({"a": np.array([1.0, np.nan])}, ValueError, r"X\['a'\] contains NaN"),
        ({"a": np.array([[1.0], [np.inf]])}, ValueError, "NaN or infinity"),
        ({"a": np.array(["x", "y"])}, ValueError, "must be numbers"),
        ({"a": np.array([1j, 2j])}, ValueError, "must be numbers"),
        ({"a": np.array([object(), object()])}, TypeError, "must be numbers"),
        ({"a": np.float32(1.0)}, ValueError, "is a scalar"),
        ({"a": [[1, 2], [3]]}, ValueError, "same shape for every sample"),
        ({"a": np.zeros((3, 0))}, ValueError, "empty axis"),
        ({"a": np.array([2**63], dtype=np.uint64)}, ValueError, "int64 range"),
        ({"a": torch.zeros((3, 2)).to_sparse()}, ValueError, "must be dense"),
    ],
)
def test_bad_dicts(X, error, match):
    with pytest.raises(error, match=match):
        _fit_check(X)


def test_y_must_have_the_rows():
    with pytest.raises(ValueError, match=r"\[3, 4\]"):
        _fit_check({"a": np.zeros((3, 2))}, np.zeros(4))


def test_prediction_input_must_be_the_fitted_form():
    est = _fitted({"ids": np.zeros((3, 4), int), "num": np.zeros((3, 2))})
    ok, info = check_X(est, {"num": np.ones((2, 2)), "ids": np.ones((2, 4), int)},
                       reset=False)
    assert isinstance(ok, DictRows) and info == est._input_info
    cases = [
        ({"ids": np.zeros((2, 4), int)}, "keys"),
        ({"ids": np.zeros((2, 4), int), "num": np.zeros((2, 2)), "x": np.zeros(2)},
         "keys"),
        ({"ids": np.zeros((2, 5), int), "num": np.zeros((2, 2))}, r"X\['ids'\]"),
        ({"ids": np.zeros((2, 4)), "num": np.zeros((2, 2))}, "dtype and sample shape"),
        ({"ids": np.zeros((2, 4), int), "num": np.zeros((2, 2), int)}, r"X\['num'\]"),
        (np.zeros((2, 4)), "fitted on dict X"),
        (torch.zeros((2, 4)), "Pass a dict"),
    ]
    for X, match in cases:
        with pytest.raises(ValueError, match=match):
            check_X(est, X, reset=False)


def test_a_dict_after_an_array_fit_is_refused():
    est = _fitted(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="fitted on float32 X of shape"):
        check_X(est, {"a": np.zeros((3, 4))}, reset=False)


def test_ticket_record_round_trip():
    est = _fitted({"ids": np.zeros((3, 4), int), "m": np.zeros((3,), bool)})
    state = input_state(est)
    assert state["n_features_in"] == 5
    assert state["input"]["fields"] == [
        {"key": "ids", "shape": [4], "dtype": "int64"},
        {"key": "m", "shape": [], "dtype": "bool"},
    ]
    assert ticket_input(state) == est._input_info
    zeros = sample_input(est._input_info, 2)
    assert isinstance(zeros, DictRows) and zeros.tensors["m"].dtype == torch.bool
    assert zeros.tensors["ids"].shape == (2, 4)
    assert sample_input(InputInfo("table", (3,), "float32")).shape == (1, 3)


@pytest.mark.parametrize(
    "fields",
    [[], [{"key": "a", "shape": [0], "dtype": "int64"}],
     [{"key": "a", "shape": [1], "dtype": "float64"}],
     [{"key": "a", "shape": [1], "dtype": "int64"}] * 2, [{"shape": [1]}], None],
)
def test_malformed_ticket_record(fields):
    state = {"n_features_in": 1, "input": {"kind": "dict", "shape": [],
                                           "dtype": "dict", "max_id": None,
                                           "fields": fields}}
    with pytest.raises(ValueError, match="malformed"):
        ticket_input(state)


def test_batch_encoding():
    transformers = pytest.importorskip("transformers")
    enc = transformers.BatchEncoding(
        {"input_ids": [[1, 2, 3], [4, 5, 6]], "attention_mask": [[1, 1, 1], [1, 1, 0]]}
    )
    _, (Xc, info), _ = _fit_check(enc, np.array([0, 1]))
    assert [k for k, _, _ in info.fields] == ["input_ids", "attention_mask"]
    assert Xc.tensors["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    pt = transformers.BatchEncoding(
        {"input_ids": torch.ones((2, 3), dtype=torch.long)}, tensor_type="pt"
    )
    assert _fit_check(pt)[1][1].fields == (("input_ids", (3,), "int64"),)
