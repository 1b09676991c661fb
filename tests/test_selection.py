"""Reporting (rounds_, layers_), round selection, verbose and set_output."""

import sys

import numpy as np
import pandas as pd
import pytest
import torch
from lottery_helpers import small_digits, tiny_net
from skorch.dataset import ValidSplit

from sklottery import LotteryTicketClassifier
from sklottery.selection import RoundSelector

N_ROUNDS = 4


@pytest.fixture(scope="module")
def data():
    return small_digits(240)


def _clf(**kwargs):
    net = tiny_net(max_epochs=3, train_split=ValidSplit(4, stratified=True))
    params = {"n_rounds": N_ROUNDS, "prune_rate": 0.6, "random_state": 0, **kwargs}
    return LotteryTicketClassifier(net, **params)


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return {s: _clf(select=s, tol=0.02).fit(X, y) for s in ("last", "best", "ticket")}


def _valid_accuracy(clf, X, y):
    _, ds_valid = clf.net_.get_split_datasets(X, y)
    idx = np.asarray(ds_valid.indices)
    return float(np.mean(clf.predict(X[idx]) == y[idx]))


def test_rounds_table(fitted):
    rounds = fitted["last"].rounds_
    assert list(rounds.columns[:9]) == [
        "round", "weights_remaining", "n_weights", "epochs", "train_loss",
        "valid_loss", "score", "score_on", "wall_time",
    ]
    assert "selected" in rounds.columns
    assert rounds["round"].tolist() == list(range(N_ROUNDS + 1))
    assert rounds["epochs"].tolist() == [3] * (N_ROUNDS + 1)
    assert (rounds["score_on"] == "valid").all()
    assert rounds["weights_remaining"].iloc[0] == 1.0
    assert rounds["weights_remaining"].is_monotonic_decreasing
    total = rounds["n_weights"].iloc[0]
    np.testing.assert_allclose(rounds["weights_remaining"], rounds["n_weights"] / total)
    measured = rounds[["train_loss", "valid_loss", "score", "wall_time"]]
    assert measured.notna().all().all()
    assert (rounds["wall_time"] > 0).all()


def test_layers_table(fitted):
    clf = fitted["last"]
    layers = clf.layers_
    assert isinstance(layers, pd.DataFrame)
    columns = ["name", "kind", "shape", "kept", "total", "sparsity"]
    assert list(layers.columns) == columns
    assert layers["name"].tolist() == list(clf.masks_)
    for row in layers.itertuples():
        mask = clf.masks_[row.name]
        assert row.kept == int(mask.sum())
        assert row.total == mask.numel()
        assert tuple(row.shape) == tuple(mask.shape)
        assert row.sparsity == pytest.approx(1 - row.kept / row.total)
        weight = dict(clf.net_.module_.named_parameters())[row.name]
        assert int((weight != 0).sum()) <= row.kept
        assert torch.all(weight[~mask] == 0)
    assert layers["kept"].sum() == clf.rounds_["n_weights"].iloc[-1]


@pytest.mark.parametrize("select", ["last", "best", "ticket"])
def test_fitted_attributes_describe_selected_round(fitted, data, select):
    X, y = data
    clf = fitted[select]
    rounds = clf.rounds_
    k = clf.selected_round_
    assert rounds["selected"].tolist() == [r == k for r in range(N_ROUNDS + 1)]
    row = rounds.iloc[k]
    assert sum(int(m.sum()) for m in clf.masks_.values()) == row["n_weights"]
    assert clf.layers_["kept"].sum() == row["n_weights"]
    assert clf.sparsity_ == pytest.approx(1 - row["weights_remaining"])
    assert len(clf.net_.history) == row["epochs"]
    # predictions come from the selected round's weights
    assert _valid_accuracy(clf, X, y) == pytest.approx(row["score"])


def test_selected_rounds(fitted):
    scores = fitted["best"].rounds_["score"].to_numpy()
    assert fitted["last"].selected_round_ == N_ROUNDS
    best = fitted["best"].selected_round_
    assert scores[best] == scores.max()
    assert best == np.flatnonzero(scores == scores.max()).max()
    ok = np.flatnonzero(scores >= scores[0] - 0.02)
    assert fitted["ticket"].selected_round_ == ok.max()


def test_selected_round_equals_a_shorter_fit(fitted, data):
    """Choosing round k gives exactly the model of a fit that stops at round k."""
    X, y = data
    for select in ("best", "ticket"):
        k = fitted[select].selected_round_
        short = _clf(n_rounds=k).fit(X, y)
        np.testing.assert_array_equal(
            short.predict_proba(X), fitted[select].predict_proba(X)
        )
        for name, mask in short.masks_.items():
            assert torch.equal(fitted[select].masks_[name], mask)


def test_ticket_tolerance_extremes(data):
    X, y = data
    assert _clf(n_rounds=2, select="ticket", tol=1.0).fit(X, y).selected_round_ == 2
    net = tiny_net(max_epochs=3, train_split=ValidSplit(4, stratified=True))
    # pruning 99% per round destroys the net: only the dense round matches it
    clf = LotteryTicketClassifier(
        net, n_rounds=2, prune_rate=0.99, output_rate_factor=None, select="ticket",
        tol=0.0, random_state=0,
    ).fit(X, y)
    assert clf.selected_round_ == 0
    assert clf.sparsity_ == 0.0
    assert all(bool(m.all()) for m in clf.masks_.values())


class _Net:
    def __init__(self):
        self.module_ = torch.nn.Linear(3, 2)
        self.history_ = [{"epoch": 1}]


class _Pruner:
    """The part of Pruner the selector uses; rounds start from the rewind point."""

    def __init__(self):
        self.masks = {"weight": torch.ones(2, 3, dtype=torch.bool)}
        self.rewind_point = {}
        self.reference = None

    def stored_reference(self):
        return None


def test_selector_keeps_one_copy(monkeypatch):
    import sklottery.selection as selection

    copies = []
    real = selection.snapshot
    monkeypatch.setattr(selection, "snapshot", lambda m: copies.append(1) or real(m))
    sel = RoundSelector("best", 0.0, final_round=4)
    net, pruner = _Net(), _Pruner()
    for r, score in enumerate([0.5, 0.7, 0.6, 0.9, 0.8]):
        with torch.no_grad():
            net.module_.weight.fill_(r)
        sel.update({"round": r, "score": score}, net, pruner)
        # one candidate copy at most, whatever the number of rounds
        assert sel._state is None or isinstance(sel._state, dict)
    assert sel.round == 3
    assert len(copies) == 3  # rounds 0, 1 and 3 were candidates; 2 and 4 were not
    sel.restore(net, pruner)
    assert torch.all(net.module_.weight == 3)
    assert sel._state is None


def test_selector_final_round_is_not_copied():
    sel = RoundSelector("ticket", 0.1, final_round=1)
    net, pruner = _Net(), _Pruner()
    sel.update({"round": 0, "score": 0.9}, net, pruner)
    assert sel._state is not None
    sel.update({"round": 1, "score": 0.85}, net, pruner)
    assert sel.round == 1 and sel._state is None


@pytest.mark.parametrize(
    "params, match",
    [
        ({"select": "first"}, r"select='first' is not valid; valid values are \["),
        ({"select": None}, "select=None is not valid"),
        ({"tol": -0.1}, "tol must be a float >= 0"),
        ({"tol": "big"}, "tol must be a float >= 0"),
    ],
)
def test_bad_selection_parameters(data, params, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        _clf(**params).fit(X, y)


def test_verbose_progress_bar(data, capsys):
    X, y = data
    _clf(n_rounds=1, verbose=1).fit(X, y)
    err = capsys.readouterr().err
    assert "lottery rounds" in err
    assert "2/2" in err
    assert "sparsity=" in err and "score=" in err


def test_quiet_by_default(data, capsys):
    X, y = data
    _clf(n_rounds=1).fit(X, y)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_verbose_without_tqdm(data, monkeypatch):
    X, y = data
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with pytest.raises(ImportError, match=r"sklottery\[progress\]"):
        _clf(n_rounds=1, verbose=1).fit(X, y)
    with pytest.raises(TypeError, match="verbose must be an int"):
        _clf(n_rounds=1, verbose="yes").fit(X, y)


def test_transform_set_output_pandas(fitted, data):
    X, y = data
    clf = _clf(n_rounds=1).set_output(transform="pandas").fit(X, y)
    out = clf.transform(X[:5])
    assert isinstance(out, pd.DataFrame)
    assert out.shape == (5, 16)
    name = type(clf).__name__.lower()
    assert out.columns.tolist() == [f"{name}{i}" for i in range(16)]
    np.testing.assert_array_equal(
        out.to_numpy(), clf.set_output(transform="default").transform(X[:5])
    )


def test_verbose_warm_start_continues_the_bar(data, capsys):
    X, y = data
    clf = _clf(n_rounds=1, verbose=1, warm_start=True).fit(X, y)
    capsys.readouterr()
    clf.set_params(n_rounds=3).fit(X, y)
    err = capsys.readouterr().err
    assert "4/4" in err and "sparsity=" in err
    assert clf.rounds_["round"].tolist() == [0, 1, 2, 3]
