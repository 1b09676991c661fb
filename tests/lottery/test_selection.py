"""Reporting (rounds_, layers_), round selection (RoundSelector) and set_output."""


import numpy as np
import pandas as pd
import pytest
import torch
from skorch.dataset import ValidSplit

from sklottery import LotteryTicketClassifier, Pruner
from sklottery.lottery import RoundRecord
from sklottery.lottery._selection import RoundSelector

N_ROUNDS = 4
pytestmark = pytest.mark.lottery(
    n_rounds=N_ROUNDS, prune_rate=0.6, max_epochs=3,
    train_split=ValidSplit(4, stratified=True),
)


@pytest.fixture(scope="module")
def fitted(data, make_clf):
    X, y = data
    modes = ("last", "best", "ticket")
    return {s: make_clf(select=s, tol=0.02).fit(X, y) for s in modes}


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


def test_selected_round_equals_a_shorter_fit(fitted, data, make_clf):
    """Choosing round k gives exactly the model of a fit that stops at round k."""
    X, y = data
    for select in ("best", "ticket"):
        k = fitted[select].selected_round_
        short = make_clf(n_rounds=k).fit(X, y)
        np.testing.assert_array_equal(
            short.predict_proba(X), fitted[select].predict_proba(X)
        )
        for name, mask in short.masks_.items():
            assert torch.equal(fitted[select].masks_[name], mask)


def test_ticket_tolerance_extremes(data, make_clf, tiny_net):
    X, y = data
    clf = make_clf(n_rounds=2, select="ticket", tol=1.0).fit(X, y)
    assert clf.selected_round_ == 2
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
    """The part of a skorch net the selector uses."""

    def __init__(self, module):
        self.module_ = module
        self.history = [{"epoch": 1}]


def _record(round_, score):
    return RoundRecord(
        round=round_, weights_remaining=1.0, n_weights=6, epochs=1,
        train_loss=0.0, valid_loss=0.0, score=score, score_on="valid", wall_time=0.0,
    )


def test_selector_keeps_one_copy(monkeypatch):
    import sklottery.lottery._selection as selection

    copies = []
    real = selection.survivors
    monkeypatch.setattr(
        selection, "survivors", lambda m, masks: copies.append(1) or real(m, masks)
    )
    sel = RoundSelector("best", 0.0, final_round=4)
    pruner = Pruner(torch.nn.Linear(3, 2), prune_rate=0.5)
    net = _Net(pruner.module)
    for r, score in enumerate([0.5, 0.7, 0.6, 0.9, 0.8]):
        with torch.no_grad():
            net.module_.weight.fill_(r)
        net.history = [{"epoch": r}]
        sel.update(_record(r, score), net, pruner)
    assert sel.round == 3
    assert len(copies) == 3  # rounds 0, 1 and 3 were candidates; 2 and 4 were not
    sel.restore(net, pruner)
    assert torch.all(net.module_.weight == 3)
    assert net.history == [{"epoch": 3}]
    assert sel._kept.state is None  # the copy is given back, not kept twice


def test_selector_restores_masks_and_round_start():
    torch.manual_seed(0)
    pruner = Pruner(torch.nn.Linear(4, 3), prune_rate=0.5, rewind="reinit",
                    output_rate_factor=None, random_state=0)
    net = _Net(pruner.module)
    sel = RoundSelector("best", 0.0, final_round=3)
    sel.update(_record(0, 0.5), net, pruner)
    pruner.prune_and_rewind()  # round 1 starts from fresh values
    kept_masks = {n: m.clone() for n, m in pruner.masks.items()}
    kept_start = {n: t.clone() for n, t in pruner.round_start.items()}
    sel.update(_record(1, 0.9), net, pruner)
    pruner.prune_and_rewind()  # round 2: worse, not kept
    sel.update(_record(2, 0.1), net, pruner)
    sel.restore(net, pruner)
    assert sel.round == 1
    assert torch.equal(pruner.masks["weight"], kept_masks["weight"])
    assert torch.equal(pruner.round_start["weight"], kept_start["weight"])
    assert torch.equal(net.module_.weight != 0, kept_masks["weight"])


def test_selector_final_round_is_not_copied():
    sel = RoundSelector("ticket", 0.1, final_round=1)
    pruner = Pruner(torch.nn.Linear(3, 2), prune_rate=0.5)
    net = _Net(pruner.module)
    sel.update(_record(0, 0.9), net, pruner)
    assert sel._kept.state is not None
    sel.update(_record(1, 0.85), net, pruner)
    assert sel.round == 1 and sel._kept.state is None


@pytest.mark.parametrize(
    "select, scores, expected",
    [
        ("last", [0.9, 0.2, 0.1], 2),
        ("best", [0.5, 0.9, 0.9], 2),  # ties go to the later, sparser round
        ("best", [0.5, float("nan"), 0.4], 0),  # NaN never wins
        ("ticket", [0.8, 0.79, 0.7], 1),  # within tol=0.05 of the dense score
    ],
)
def test_selector_rules(select, scores, expected):
    sel = RoundSelector(select, 0.05, final_round=len(scores) - 1)
    pruner = Pruner(torch.nn.Linear(3, 2), prune_rate=0.5)
    net = _Net(pruner.module)
    for r, score in enumerate(scores):
        sel.update(_record(r, score), net, pruner)
    assert sel.round == expected


def test_transform_set_output_pandas(fitted, data, make_clf):
    X, y = data
    clf = make_clf(n_rounds=1).set_output(transform="pandas").fit(X, y)
    out = clf.transform(X[:5])
    assert isinstance(out, pd.DataFrame)
    assert out.shape == (5, 16)
    name = type(clf).__name__.lower()
    assert out.columns.tolist() == [f"{name}{i}" for i in range(16)]
    np.testing.assert_array_equal(
        out.to_numpy(), clf.set_output(transform="default").transform(X[:5])
    )
