"""sklottery.analysis._sanity: the ticket beside controls at its per-layer sparsity."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.dataset import ValidSplit

from sklottery import LotteryTicketClassifier, LotteryTicketRegressor, sanity_checks
from sklottery.analysis._sanity import (
    COLUMNS,
    CONTROLS,
    _warn_if_not_winning,
    inverted_masks,
    plot_sanity_checks,
    random_masks,
    shuffled_masks,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(scope="module")
def checked(fitted_ticket, data):
    """sanity_checks of the fitted ticket, two repeats, with the masks."""
    X, y = data
    return sanity_checks(
        fitted_ticket, X, y, n_repeats=2, random_state=0, return_masks=True
    )


def _counts(masks):
    return {n: int(m.sum()) for n, m in masks.items()}


# -- the masks ------------------------------------------------------------------
def test_every_variant_keeps_the_tickets_count_in_every_layer(fitted_ticket, checked):
    frame, masks = checked
    ticket = _counts(fitted_ticket.masks_)
    assert set(masks) == {(v, r) for v in ("ticket", *CONTROLS) for r in (0, 1)}
    for key, variant_masks in masks.items():
        assert _counts(variant_masks) == ticket, key
        for name, m in variant_masks.items():
            assert m.dtype == torch.bool
            assert m.shape == fitted_ticket.masks_[name].shape
    total = sum(m.numel() for m in fitted_ticket.masks_.values())
    assert np.allclose(frame["weights_remaining"], sum(ticket.values()) / total)
    assert (frame["n_weights"] == sum(ticket.values())).all()
    assert fitted_ticket.sparsity_ == pytest.approx(1 - sum(ticket.values()) / total)


def test_ticket_rows_use_the_tickets_masks(fitted_ticket, checked):
    _, masks = checked
    for r in (0, 1):
        for name, m in masks[("ticket", r)].items():
            assert torch.equal(m, fitted_ticket.masks_[name].cpu())
            assert torch.equal(masks[("reinit", r)][name], m)


def test_shuffled_and_random_masks_differ_from_the_ticket(fitted_ticket, checked):
    _, masks = checked
    for variant in ("shuffle", "random", "inverted"):
        differs = [
            not torch.equal(masks[(variant, 0)][n], fitted_ticket.masks_[n].cpu())
            for n in fitted_ticket.masks_
        ]
        assert all(differs), variant
    # each repeat draws its own permutation; the inversion is deterministic
    first = masks[("shuffle", 0)]
    assert any(not torch.equal(first[n], masks[("shuffle", 1)][n]) for n in first)
    for n in first:
        assert torch.equal(masks[("inverted", 0)][n], masks[("inverted", 1)][n])


def test_inverted_keeps_the_lowest_scored():
    masks = {"w": torch.tensor([[True, False, True], [False, True, False]])}
    scores = {"w": torch.tensor([[5.0, 0.5, 3.0], [1.0, 9.0, 0.1]])}
    out = inverted_masks(masks, scores)
    # three kept: the scores 0.1, 0.5 and 1.0
    assert out["w"].tolist() == [[False, True, False], [True, False, True]]
    # ties: the lower positions first
    tied = inverted_masks({"w": torch.tensor([True, True, False, False])},
                          {"w": torch.zeros(4)})
    assert tied["w"].tolist() == [True, True, False, False]


def test_pure_control_masks_keep_counts_and_are_seeded():
    masks = {"a": torch.rand(7, 5) > 0.6, "b": torch.rand(11) > 0.3}
    for make in (shuffled_masks, random_masks):
        one = make(masks, torch.Generator().manual_seed(1))
        two = make(masks, torch.Generator().manual_seed(1))
        assert _counts(one) == _counts(masks)
        assert all(torch.equal(one[n], two[n]) for n in masks)
        assert all(one[n].shape == masks[n].shape for n in masks)


# -- the frame --------------------------------------------------------------------
def test_frame_has_one_row_per_variant_and_repeat(checked):
    frame, _ = checked
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == 2 * (1 + len(CONTROLS))
    for r in (0, 1):
        rows = frame[frame["repeat"] == r]
        assert list(rows["variant"]) == ["ticket", *CONTROLS]
        ticket = rows.iloc[0]
        assert ticket["ticket_beats"] is None
        assert (rows["ticket_score"] == ticket["score"]).all()
        controls = rows.iloc[1:]
        assert list(controls["ticket_beats"]) == list(
            ticket["score"] > controls["score"]
        )
    assert set(frame["score_on"]) == {"valid"}
    assert frame["score"].between(0, 1).all()
    assert list(frame.loc[frame["repeat"] == 0, "init"]) == [
        "ticket", "fresh", "ticket", "ticket", "fresh"
    ]


def test_estimator_is_unchanged(data, tiny_net):
    X, y = data
    est = LotteryTicketClassifier(tiny_net(max_epochs=1), n_rounds=1,
                                  prune_rate=0.5, random_state=1).fit(X, y)
    weights = {n: p.detach().clone() for n, p in est.net_.module_.named_parameters()}
    masks = {n: m.clone() for n, m in est.masks_.items()}
    rounds, predictions = est.rounds_.copy(), est.predict(X)
    with pytest.warns(UserWarning, match="without a validation split"):
        frame = sanity_checks(est, X, y, variants=["shuffle"], random_state=0)
    assert list(frame["variant"]) == ["ticket", "shuffle"]
    assert set(frame["score_on"]) == {"train"}
    for n, p in est.net_.module_.named_parameters():
        assert torch.equal(p, weights[n])
    pd.testing.assert_frame_equal(est.rounds_, rounds)
    assert all(torch.equal(est.masks_[n], m) for n, m in masks.items())
    np.testing.assert_array_equal(est.predict(X), predictions)


def test_same_random_state_same_frame(fitted_ticket, data):
    X, y = data
    one = sanity_checks(fitted_ticket, X, y, variants=["random"], random_state=3)
    two = sanity_checks(fitted_ticket, X, y, variants=["random"], random_state=3)
    pd.testing.assert_frame_equal(one, two)


def test_regressor(tiny_regressor_net):
    rng = np.random.RandomState(0)
    X = rng.rand(120, 5).astype(np.float32)
    y = (X @ rng.rand(5)).astype(np.float32)
    net = tiny_regressor_net(max_epochs=3, train_split=ValidSplit(0.25))
    est = LotteryTicketRegressor(net, n_rounds=1,
                                 prune_rate=0.5, random_state=0).fit(X, y)
    frame = sanity_checks(est, X, y, variants=["inverted", "reinit"], random_state=0)
    assert list(frame["variant"]) == ["ticket", "reinit", "inverted"]
    assert np.isfinite(frame["score"]).all()


def test_a_losing_ticket_is_flagged():
    frame = pd.DataFrame({
        "variant": ["ticket", "reinit", "shuffle"], "score": [0.5, 0.7, 0.4],
    })
    with pytest.warns(UserWarning, match=r"does not beat its control\(s\) reinit 0.7"):
        _warn_if_not_winning(frame)


def test_plot_returns_axes(checked):
    frame, _ = checked
    ax = plot_sanity_checks(frame)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert len(ax.patches) == 1 + len(CONTROLS)
    plt.close("all")
    with pytest.raises(TypeError, match="DataFrame returned by sanity_checks"):
        plot_sanity_checks({"score": [1]})


# -- errors ---------------------------------------------------------------------------
def test_unfitted_estimator(data, tiny_net):
    X, y = data
    with pytest.raises(NotFittedError, match="not fitted"):
        sanity_checks(LotteryTicketClassifier(tiny_net()), X, y)
    with pytest.raises(TypeError, match="must be a LotteryTicketClassifier"):
        sanity_checks(object(), X, y)
    pipe = make_pipeline(StandardScaler(), LotteryTicketClassifier(tiny_net()))
    with pytest.raises(TypeError, match="estimator is a Pipeline; pass its last"):
        sanity_checks(pipe, X, y)


@pytest.mark.parametrize("variants, match", [
    (["shuffle", "mystery"], r"unknown variant\(s\) \['mystery'\]"),
    (["shuffle", "shuffle"], "must not repeat"),
    ([3], r"unknown variant\(s\) \[3\]"),
])
def test_bad_variants(fitted_ticket, data, variants, match):
    with pytest.raises(ValueError, match=match):
        sanity_checks(fitted_ticket, *data, variants=variants)


@pytest.mark.parametrize("n_repeats", [0, -1, 1.5, True, "2"])
def test_bad_n_repeats(fitted_ticket, data, n_repeats):
    with pytest.raises(ValueError, match="n_repeats must be an int >= 1"):
        sanity_checks(fitted_ticket, *data, n_repeats=n_repeats)


def test_other_classes_than_the_fit(fitted_ticket, data):
    X, y = data
    expected = r"y must have the classes \[0, 1, .*\] of the estimator's fit; got"
    with pytest.raises(ValueError, match=expected + r" classes \[0, 1\]"):
        sanity_checks(fitted_ticket, X, np.where(y > 4, 1, 0))


@pytest.mark.parametrize("strategy", ["synflow", "grasp", "snip"])
def test_inverted_at_init_ticket_ranks_its_initialization(data, tiny_net, strategy):
    """A ticket pruned at initialization is inverted by its own method's
    scores of the initialization (grasp/synflow cannot score trained
    weights at all)."""
    import copy

    from sklottery.pruning.at_init import synflow_scores
    from sklottery.pruning.masks import load_values

    X, y = data
    net = tiny_net(max_epochs=1, train_split=ValidSplit(0.25))
    est = LotteryTicketClassifier(net, schedule="at_init", strategy=strategy,
                                  n_rounds=2, prune_rate=0.5, random_state=0).fit(X, y)
    frame, masks = sanity_checks(est, X, y, variants=["inverted"],
                                 random_state=0, return_masks=True)
    inverted = masks[("inverted", 0)]
    assert _counts(inverted) == _counts(est.masks_)
    assert all(not torch.equal(inverted[n], est.masks_[n]) for n in inverted)
    if strategy == "synflow":  # data-free: recomputed here independently
        module = copy.deepcopy(est.net_.module_)
        load_values(module, dict(est.rewind_point_))
        ones = {n: torch.ones_like(m) for n, m in est.masks_.items()}
        scores = synflow_scores(module, list(ones), ones, input_shape=X.shape[1:])
        expected = inverted_masks(est.masks_, scores)
        for n in inverted:
            assert torch.equal(inverted[n], expected[n])


def test_a_supermask_estimator_is_refused(data):
    from sklottery import SupermaskClassifier, stability_analysis

    X, y = data
    est = SupermaskClassifier(density=0.5, random_state=0)
    for check in (sanity_checks, stability_analysis):
        with pytest.raises(TypeError, match="not a lottery-ticket estimator"):
            check(est, X, y)
