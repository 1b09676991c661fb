"""Long jobs: Ctrl-C keeps the last completed round, warm_start adds rounds,
pickling keeps everything."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from lottery_helpers import small_digits, tiny_net
from skorch.callbacks import Callback, EarlyStopping

from sklottery import LotteryTicketClassifier
from sklottery.callbacks import StopRound

# Epochs seen by the Interrupt callback in this process (module level, so
# that sklearn's clone of the net keeps counting in the same place).
SEEN = {"epochs": 0, "at": None, "exc": KeyboardInterrupt}


class Interrupt(Callback):
    """Raises SEEN["exc"] (the user's Ctrl-C by default) at epoch SEEN["at"]."""

    def on_epoch_end(self, net, **kwargs):
        SEEN["epochs"] += 1
        if SEEN["epochs"] == SEEN["at"]:
            raise SEEN["exc"]()


@pytest.fixture
def interrupt_at():
    def arm(epoch, exc=KeyboardInterrupt):
        SEEN.update(epochs=0, at=epoch, exc=exc)

    yield arm
    SEEN.update(epochs=0, at=None, exc=KeyboardInterrupt)


@pytest.fixture(scope="module")
def data():
    return small_digits(240)


def _clf(n_rounds=3, callbacks=(), **kwargs):
    net = tiny_net(max_epochs=3, callbacks=[("interrupt", Interrupt()), *callbacks])
    return LotteryTicketClassifier(
        net, n_rounds=n_rounds, prune_rate=0.5, random_state=0, **kwargs
    )


def _same_ticket(a, b, X):
    assert set(a.masks_) == set(b.masks_)
    for name, mask in a.masks_.items():
        assert torch.equal(mask, b.masks_[name])
    for (na, pa), (nb, pb) in zip(
        a.net_.module_.named_parameters(), b.net_.module_.named_parameters()
    ):
        assert na == nb and torch.equal(pa, pb), na
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


class TestInterrupt:
    def test_ctrl_c_mid_round_keeps_last_completed_round(self, data, interrupt_at):
        X, y = data
        reference = _clf(n_rounds=1).fit(X, y)  # rounds 0 and 1 only
        interrupt_at(3 + 3 + 2)  # round 0: 3 epochs, round 1: 3, then mid round 2
        with pytest.warns(RuntimeWarning, match="interrupted .* during round 2"):
            clf = _clf(n_rounds=3).fit(X, y)
        assert SEEN["epochs"] == 8  # no further round started after the interrupt
        assert clf.interrupted_ is True and reference.interrupted_ is False
        assert clf.rounds_["round"].tolist() == [0, 1]
        assert clf.selected_round_ == 1
        assert (
            clf.rounds_["n_weights"].tolist() == reference.rounds_["n_weights"].tolist()
        )
        # weights, masks and predictions are exactly round 1's
        _same_ticket(clf, reference, X)
        assert clf.sparsity_ == reference.sparsity_
        assert len(clf.net_.history) == 3  # round 1's history, not the broken one

    def test_pruned_weights_are_zero_after_an_interrupt(self, data, interrupt_at):
        X, y = data
        interrupt_at(3 + 3 + 3 + 1)
        with pytest.warns(RuntimeWarning, match="keeps round 2"):
            clf = _clf(n_rounds=3).fit(X, y)
        params = dict(clf.net_.module_.named_parameters())
        for name, mask in clf.masks_.items():
            assert int((params[name][~mask] != 0).sum()) == 0
        assert clf.rounds_["round"].tolist() == [0, 1, 2]

    def test_ctrl_c_in_round_zero_reraises(self, data, interrupt_at):
        X, y = data
        interrupt_at(2)
        clf = _clf()
        with pytest.raises(KeyboardInterrupt, match="no round completed"):
            clf.fit(X, y)
        assert not hasattr(clf, "rounds_")

    @pytest.mark.parametrize("exc", [StopRound])
    def test_deliberate_stop_only_ends_the_round(self, data, interrupt_at, exc):
        X, y = data
        interrupt_at(3 + 1, exc)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            clf = _clf().fit(X, y)
        assert clf.interrupted_ is False
        assert clf.rounds_["epochs"].tolist() == [3, 1, 3, 3]

    def test_early_stopping_is_not_an_interrupt(self, data):
        X, y = data
        stopper = (
            "stop",
            EarlyStopping(monitor="train_loss", patience=1, threshold=10.0),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            clf = _clf(callbacks=[stopper]).fit(X, y)
        assert clf.interrupted_ is False
        assert clf.rounds_["round"].tolist() == [0, 1, 2, 3]
        assert clf.rounds_["epochs"].tolist() == [2, 2, 2, 2]

    def test_resume_after_interrupt_with_warm_start(self, data, interrupt_at):
        X, y = data
        interrupt_at(3 + 3 + 2)
        with pytest.warns(RuntimeWarning):
            clf = _clf(n_rounds=3).fit(X, y)
        clf.set_params(warm_start=True).fit(X, y)
        assert clf.interrupted_ is False
        assert clf.rounds_["round"].tolist() == [0, 1, 2, 3]
        assert clf.rounds_["selected"].tolist() == [False, False, False, True]


class TestWarmStart:
    def test_adds_rounds_and_masks_only_shrink(self, data):
        X, y = data
        clf = _clf(n_rounds=2).fit(X, y)
        first = clf.rounds_.copy()
        masks = {n: m.clone() for n, m in clf.masks_.items()}
        clf.set_params(warm_start=True, n_rounds=4).fit(X, y)
        assert clf.rounds_["round"].tolist() == [0, 1, 2, 3, 4]
        assert (
            clf.rounds_.iloc[:3]
            .drop(columns="selected")
            .equals(first.drop(columns="selected"))
        )
        n_weights = clf.rounds_["n_weights"].tolist()
        assert (
            n_weights == sorted(n_weights, reverse=True) and n_weights[4] < n_weights[2]
        )
        assert n_weights[4] == sum(int(m.sum()) for m in clf.masks_.values())
        for name, mask in clf.masks_.items():
            assert not bool((mask & ~masks[name]).any())  # nothing comes back
        assert clf.selected_round_ == 4
        # survivors were rewound to the same initial values as a cold fit's
        assert set(clf._rewind_point) == {
            n for n, _ in clf.net_.module_.named_parameters()
        }

    def test_continues_from_rewind_point_not_from_scratch(self, data):
        X, y = data
        clf = _clf(n_rounds=1).fit(X, y)
        rewind = {n: t.clone() for n, t in clf._rewind_point.items()}
        clf.set_params(warm_start=True, n_rounds=2).fit(X, y)
        for name, value in clf._rewind_point.items():
            assert torch.equal(value, rewind[name])

    def test_equal_n_rounds_warns_and_lower_raises(self, data):
        X, y = data
        clf = _clf(n_rounds=2, warm_start=True).fit(X, y)  # not fitted yet: cold
        assert len(clf.rounds_) == 3
        before = clf.predict_proba(X)
        with pytest.warns(UserWarning, match="nothing to fit"):
            clf.fit(X, y)
        np.testing.assert_array_equal(clf.predict_proba(X), before)
        with pytest.raises(ValueError, match="n_rounds=1 must be >= the 2 pruning"):
            clf.set_params(n_rounds=1).fit(X, y)

    def test_other_classes_or_features_refused(self, data):
        X, y = data
        clf = _clf(n_rounds=1).fit(X, y)
        clf.set_params(warm_start=True, n_rounds=2)
        with pytest.raises(ValueError, match="same classes"):
            clf.fit(X, np.where(y == 9, 10, y))
        assert clf.classes_.tolist() == list(range(10))
        with pytest.raises(ValueError, match="features"):
            clf.fit(X[:, :10], y)

    def test_warm_start_false_starts_over(self, data):
        X, y = data
        clf = _clf(n_rounds=1).fit(X, y)
        clf.fit(X, y)
        assert clf.rounds_["round"].tolist() == [0, 1]

    def test_bad_parameters(self, data):
        X, y = data
        with pytest.raises(TypeError, match="warm_start must be a bool"):
            _clf(warm_start="yes").fit(X, y)
        with pytest.raises(ValueError, match=r"inference='csr' is not valid.*'dense'"):
            _clf(inference="csr").fit(X, y)


# What each round started from, and the w_init each prune was given (module
# level: the estimator clones the net and its callbacks).
STARTS: list = []
W_INITS: list = []


class RecordStart(Callback):
    def on_train_begin(self, net, **kwargs):
        STARTS.append(
            {n: p.detach().clone() for n, p in net.module_.named_parameters()}
        )


def recording_movement(w_init, w_final):
    """``movement`` (Zhou et al. 2019) that records the w_init it was given."""
    W_INITS.append(w_init.clone())
    return (w_final - w_init).abs()


@pytest.mark.parametrize("rewind", ["reshuffle", "signed_constant", "lr"])
@pytest.mark.parametrize("select", ["last", "best"])
def test_warm_start_prunes_against_the_round_start(data, rewind, select):
    """After warm_start (and after a round is put back by select), the next
    prune compares the trained weights with the weights that round really
    started from -- for these rewind modes, not the rewind point."""
    X, y = data
    STARTS.clear()
    W_INITS.clear()
    net = tiny_net(max_epochs=2, callbacks=[("start", RecordStart())])
    clf = LotteryTicketClassifier(
        net, n_rounds=2, prune_rate=0.5, strategy=recording_movement,
        rewind=rewind, select=select, random_state=0,
    ).fit(X, y)
    chosen_start = STARTS[clf.selected_round_]
    W_INITS.clear()
    clf.set_params(warm_start=True, n_rounds=3).fit(X, y)
    names = list(clf.masks_)
    # the first prune of the warm start: one w_init per pruned tensor
    for name, w_init in zip(names, W_INITS[: len(names)]):
        assert torch.equal(w_init, chosen_start[name]), name


def test_warm_start_from_a_ticket_file_needs_the_round_start(data, tmp_path):
    X, y = data
    clf = _clf(n_rounds=1, rewind="reshuffle").fit(X, y)
    path = tmp_path / "t.npz"
    clf.save_ticket(path, rewind_point=True)
    loaded = _clf(n_rounds=1, rewind="reshuffle").load_ticket(path)
    with pytest.raises(ValueError, match="rewind='reshuffle' needs the weights"):
        loaded.set_params(warm_start=True, n_rounds=2).fit(X, y)


class TestPickle:
    @pytest.mark.parametrize("inference", ["dense", "sparse"])
    def test_round_trip_identical_predictions(self, data, inference):
        X, y = data
        clf = _clf(n_rounds=2, inference=inference).fit(X, y)
        clone = pickle.loads(pickle.dumps(clf))
        np.testing.assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))
        np.testing.assert_array_equal(clone.predict(X), clf.predict(X))
        # and the pickled estimator can still continue pruning
        clone.set_params(warm_start=True, n_rounds=3).fit(X, y)
        assert clone.rounds_["round"].tolist() == [0, 1, 2, 3]


def _masks_by_stable_sort(scores, masks, plan):
    """The reference ranking: a stable ascending sort of the survivors."""
    from sklottery.pruning.scope import n_to_prune

    new = {n: m.clone() for n, m in masks.items()}
    for names, rate in plan:
        flat_masks = torch.cat([masks[n].reshape(-1) for n in names])
        alive = flat_masks.nonzero().squeeze(1)
        n_prune = n_to_prune(int(alive.numel()), rate)
        flat_scores = torch.cat([scores[n].reshape(-1) for n in names])
        order = torch.sort(flat_scores[alive], stable=True).indices
        flat_masks[alive[order[:n_prune]]] = False
        start = 0
        for n in names:
            new[n] = flat_masks[start : start + masks[n].numel()].reshape(
                masks[n].shape
            )
            start += masks[n].numel()
    return new


@pytest.mark.parametrize("seed", range(25))
def test_low_memory_ranking_equals_stable_sort(seed):
    """masks_from_scores selects instead of sorting (a fit's peak memory);
    the masks must be exactly those of the stable sort, ties included."""
    from sklottery.pruning.scope import masks_from_scores

    g = torch.Generator().manual_seed(seed)
    shapes = {"a": (7, 5), "b": (3, 4, 2), "c": (11,)}
    # few distinct values: many ties, also across tensors of a group
    scores = {
        n: torch.randint(-3, 4, s, generator=g).double() for n, s in shapes.items()
    }
    masks = {n: torch.rand(s, generator=g) < 0.8 for n, s in shapes.items()}
    rate = float(torch.rand((), generator=g)) * 0.95
    for plan in (
        [(["a"], rate), (["b"], rate / 2), (["c"], rate)],
        [(["a", "b", "c"], rate)],
    ):
        got = masks_from_scores(scores, masks, plan)
        expected = _masks_by_stable_sort(scores, masks, plan)
        for name in shapes:
            assert torch.equal(got[name], expected[name]), (seed, plan, name)


def test_large_tensors_masked_with_bool_masks_stay_exactly_zero():
    """Tensors above FLOAT_MASK_MAX_NUMEL are masked with their bool mask (no
    float copy: peak memory); pruned weights must still be exactly 0.0."""
    from skorch import NeuralNet

    from sklottery import ApplyMasks
    from sklottery.pruning.masks import FLOAT_MASK_MAX_NUMEL

    module = torch.nn.Sequential(torch.nn.Linear(1040, 1024), torch.nn.Linear(1024, 2))
    assert module[0].weight.numel() > FLOAT_MASK_MAX_NUMEL
    g = torch.Generator().manual_seed(0)
    masks = {
        "0.weight": torch.rand(1024, 1040, generator=g) < 0.3,
        "1.weight": torch.rand(2, 1024, generator=g) < 0.3,
    }
    net = NeuralNet(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=0.01,
        max_epochs=2,
        batch_size=16,
        train_split=None,
        callbacks=[ApplyMasks(masks)],
        verbose=0,
    )
    X = torch.randn(64, 1040)
    y = torch.randint(0, 2, (64,))
    net.fit(X, y)
    for name, p in net.module_.named_parameters():
        if name in masks:
            assert int((p[~masks[name]] != 0).sum()) == 0
            assert int((p[masks[name]] != 0).sum()) == int(masks[name].sum())
