"""sklottery.analysis._stability: error barriers between copies, the rewind epoch."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError
from skorch.dataset import ValidSplit

from sklottery import (
    LotteryTicketClassifier,
    stability_analysis,
    suggest_rewind_epoch,
)
from sklottery.analysis._stability import COLUMNS, interpolate


@pytest.fixture
def unfitted(tiny_net):
    net = tiny_net(max_epochs=2, train_split=ValidSplit(0.25))
    return LotteryTicketClassifier(net, n_rounds=1, prune_rate=0.5, random_state=0)


def test_identical_copies_have_no_barrier(unfitted, data):
    table = stability_analysis(unfitted, *data, rewind_epochs=[0, 1], n_points=5,
                               copy_seeds=(7, 7))
    assert list(table["rewind_epoch"]) == [0, 1]
    assert (table["barrier"] == 0.0).all()
    for errors in table["errors"]:
        assert len(set(errors)) == 1
    assert not hasattr(unfitted, "n_features_in_")  # the estimator is unchanged


def test_identical_masked_copies_have_no_barrier(fitted_ticket, data):
    table = stability_analysis(fitted_ticket, *data, rewind_epochs=[0], n_points=4,
                               use_masks=True, copy_seeds=(2, 2))
    assert table["barrier"].tolist() == [0.0]


def test_table_structure(unfitted, data):
    table = stability_analysis(unfitted, *data, rewind_epochs=[2, 0], n_points=6,
                               n_repeats=2, random_state=0)
    assert list(table.columns) == list(COLUMNS)
    assert list(table["rewind_epoch"]) == [0, 0, 2, 2]
    assert list(table["repeat"]) == [0, 1, 0, 1]
    for _, row in table.iterrows():
        errors = np.asarray(row["errors"])
        assert len(errors) == 6
        assert row["error_start"] == errors[0] and row["error_end"] == errors[-1]
        assert row["max_error"] == errors.max()
        ends = (errors[0] + errors[-1]) / 2
        assert row["barrier"] == pytest.approx(errors.max() - ends)
        assert row["barrier"] >= 0
        assert ((errors >= 0) & (errors <= 1)).all()
    again = stability_analysis(unfitted, *data, rewind_epochs=[2, 0], n_points=6,
                               n_repeats=2, random_state=0)
    pd.testing.assert_frame_equal(table, again)


def test_interpolation_is_exact_at_the_ends_and_keeps_zeros():
    a = {"w": torch.tensor([0.0, 1.5, -2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([0.0, -0.5, 4.0]), "n": torch.tensor(9)}
    assert torch.equal(interpolate(a, b, 0.0)["w"], a["w"])
    assert torch.equal(interpolate(a, b, 1.0)["w"], b["w"])
    mid = interpolate(a, b, 0.5)
    assert mid["w"].tolist() == [0.0, 0.5, 1.0]
    assert int(mid["n"]) == 3  # counters come from the first end
    same = interpolate(a, a, 0.3)
    assert torch.equal(same["w"], a["w"])


def test_masked_path_keeps_the_masks(fitted_ticket, data, monkeypatch):
    import sklottery.analysis._stability as stability

    seen = []
    real = stability.evaluate

    def spy(setup, values, masks):
        score = real(setup, values, masks)
        params = dict(setup.net.module_.named_parameters())
        seen.append(all(
            bool((params[n][~m.to(params[n].device)] == 0).all())
            for n, m in masks.items()
        ))
        return score

    monkeypatch.setattr(stability, "evaluate", spy)
    stability_analysis(fitted_ticket, *data, rewind_epochs=[1], n_points=3,
                       use_masks=True, random_state=0)
    assert seen == [True, True, True]


def test_suggest_rewind_epoch_picks_the_earliest_stable():
    table = pd.DataFrame({
        "rewind_epoch": [0, 0, 1, 1, 2, 2, 3, 3],
        "barrier": [0.2, 0.1, 0.05, 0.0, 0.01, 0.02, 0.0, 0.0],
    })
    # epoch 1 has mean 0.025; epoch 2 mean 0.015
    assert suggest_rewind_epoch(table) == 2
    assert suggest_rewind_epoch(table, tol=0.025) == 1
    assert suggest_rewind_epoch(table, tol=0.0) == 3
    with pytest.warns(UserWarning, match="no rewind epoch has an error barrier"):
        assert suggest_rewind_epoch(table[table["rewind_epoch"] < 2], tol=0.01) is None


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_points": 1}, ValueError, "n_points must be an int >= 2"),
    ({"n_repeats": 0}, ValueError, "n_repeats must be an int >= 1"),
    ({"rewind_epochs": [-1]}, ValueError, "rewind_epochs must be a non-empty"),
    ({"rewind_epochs": []}, ValueError, "rewind_epochs must be a non-empty"),
    ({"rewind_epochs": [1.5]}, ValueError, "rewind_epochs must be a non-empty"),
    ({"rewind_epochs": [0, 3]}, ValueError, "beyond the net's max_epochs=2"),
    ({"copy_seeds": (1,)}, ValueError, "copy_seeds must be None or a pair"),
    ({"use_masks": "yes"}, TypeError, "use_masks must be True or False"),
])
def test_bad_options(unfitted, data, kwargs, error, match):
    with pytest.raises(error, match=match):
        stability_analysis(unfitted, *data, **kwargs)


def test_masks_need_a_fitted_estimator(unfitted, data):
    with pytest.raises(NotFittedError, match="not fitted"):
        stability_analysis(unfitted, *data, use_masks=True)
    with pytest.raises(TypeError, match="must be a LotteryTicketClassifier"):
        stability_analysis("net", *data)


def test_suggest_bad_inputs():
    with pytest.raises(TypeError, match="DataFrame of stability_analysis"):
        suggest_rewind_epoch({"barrier": [0]})
    table = pd.DataFrame({"rewind_epoch": [0], "barrier": [0.0]})
    with pytest.raises(ValueError, match="tol must be a number >= 0"):
        suggest_rewind_epoch(table, tol=-0.1)
    with pytest.raises(ValueError, match="no rows"):
        suggest_rewind_epoch(table.iloc[:0])


# -- the copies' data orders differ even when the net does not shuffle ------------
def _no_shuffle_net(tiny_net, **params):
    # skorch's default and the README's: no shuffling, no dropout
    return tiny_net(max_epochs=2, iterator_train__shuffle=False, **params)


def test_copies_of_a_net_that_does_not_shuffle_still_differ(tiny_net, data,
                                                             monkeypatch):
    import sklottery.analysis._stability as stability

    net = _no_shuffle_net(tiny_net)
    clf = LotteryTicketClassifier(net, n_rounds=1, random_state=0)
    shuffles = []
    real = stability.train_from

    def spy(setup, *args, **kwargs):
        shuffles.append(setup.net.get_params_for("iterator_train").get("shuffle"))
        return real(setup, *args, **kwargs)

    monkeypatch.setattr(stability, "train_from", spy)
    table = stability_analysis(clf, *data, rewind_epochs=[0, 1], n_points=5,
                               random_state=0)
    assert (table["barrier"] > 0).all()
    for errors in table["errors"]:
        assert len(set(errors)) > 1  # two different networks at the ends
    assert shuffles == [True] * 4
    assert net.get_params_for("iterator_train")["shuffle"] is False  # unchanged


def test_the_nets_own_order_is_back_after_the_copies(tiny_net, data):
    from sklottery.analysis._stability import _shuffled

    sizes = {"module__input_units": 64, "module__output_units": 10}
    net = _no_shuffle_net(tiny_net, **sizes).initialize()
    with _shuffled(net):
        assert net.get_params_for("iterator_train")["shuffle"] is True
    assert net.get_params_for("iterator_train")["shuffle"] is False
    plain = tiny_net(**sizes).initialize()
    del plain.iterator_train__shuffle
    with _shuffled(plain):
        assert plain.get_params_for("iterator_train")["shuffle"] is True
    assert "shuffle" not in plain.get_params_for("iterator_train")


class FixedOrder(torch.utils.data.DataLoader):
    """A training iterator that takes no ``shuffle``: its order is fixed."""

    def __init__(self, dataset, batch_size=1):
        super().__init__(dataset, batch_size=batch_size)


def test_copies_that_cannot_differ_are_refused(tiny_net, data):
    net = tiny_net(max_epochs=1, iterator_train=FixedOrder)
    del net.iterator_train__shuffle
    clf = LotteryTicketClassifier(net, n_rounds=1, random_state=0)
    with pytest.raises(ValueError, match=r"copies trained from rewind epoch 0 with "
                       r"different seeds \(1, 2\) have identical weights.*"
                       "iterator_train__shuffle"):
        stability_analysis(clf, *data, rewind_epochs=[0], n_points=3,
                           copy_seeds=(1, 2))
