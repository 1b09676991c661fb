"""The lottery loop (sklottery.lottery._loop): round 0 and its cache, the pruning
rounds, warm starts resumed from the fitted state, Ctrl-C in every phase after
round 0, and seeds that make a fit repeatable."""

import dataclasses
import math
import types
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback, EarlyStopping
from skorch.dataset import ValidSplit

import sklottery.lottery as rounds
import sklottery.lottery._loop as loop_module
import sklottery.lottery._round as round_module
from sklottery import LotteryTicketClassifier, Pruner
from sklottery.config import make_config
from sklottery.lottery._progress import RoundProgress
from sklottery.training import RoundData, accuracy
from sklottery.training._callbacks import StopRound

# What callbacks saw in this process. Module level: the estimator clones the
# net (and deep-copies its callbacks) for every fit and for round 0.
SEEN = {"batches": 0, "epochs": 0, "raise_at_batch": None, "exc": KeyboardInterrupt}
STARTS: list = []


class Interrupt(Callback):
    """Raises SEEN["exc"] (the user's Ctrl-C by default) at the end of training
    batch SEEN["raise_at_batch"], counted across rounds."""

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            SEEN["batches"] += 1
            if SEEN["batches"] == SEEN["raise_at_batch"]:
                raise SEEN["exc"]()

    def on_epoch_end(self, net, **kwargs):
        SEEN["epochs"] += 1


class RecordStart(Callback):
    """Records the weights every round starts training from."""

    def on_train_begin(self, net, **kwargs):
        STARTS.append(
            {n: p.detach().clone() for n, p in net.module_.named_parameters()}
        )


@pytest.fixture(autouse=True)
def _reset_seen():
    SEEN.update(batches=0, epochs=0, raise_at_batch=None, exc=KeyboardInterrupt)
    STARTS.clear()
    yield
    SEEN.update(batches=0, epochs=0, raise_at_batch=None, exc=KeyboardInterrupt)
    STARTS.clear()


# make_clf: 3 rounds at rate 0.5 on a 2-epoch net (4 batches an epoch on 240
# rows) that records through these callbacks (each net gets copies).
LOOP_CALLBACKS = (("interrupt", Interrupt()), ("start", RecordStart()))
pytestmark = pytest.mark.lottery(n_rounds=3, callbacks=LOOP_CALLBACKS)


def same_ticket(a, b, X):
    """Same masks, weights and predictions."""
    assert set(a.masks_) == set(b.masks_)
    for name, mask in a.masks_.items():
        assert torch.equal(mask, b.masks_[name]), name
    for (na, pa), (nb, pb) in zip(
        a.net_.module_.named_parameters(), b.net_.module_.named_parameters()
    ):
        assert na == nb and torch.equal(pa, pb), na
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def without_time(frame):
    return frame.drop(columns=["wall_time"])


# -- Ctrl-C after round 0 keeps the last completed round --------------------------
BATCHES_PER_ROUND = 8  # 2 epochs x 4 batches


def _raise_on_call(monkeypatch, owner, name, call, *, after=False, wrap=None):
    """Make ``owner.name`` raise KeyboardInterrupt on its ``call``-th call
    (after doing its work when ``after``), once."""
    real = getattr(owner, name)
    calls = {"n": 0}

    def patched(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call and not after:
            raise KeyboardInterrupt
        out = real(*args, **kwargs)
        if calls["n"] == call:
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(owner, name, wrap(patched) if wrap else patched)
    return calls


def _raise_on_score(monkeypatch, call):
    """Make the classifier's round score (its task's) raise KeyboardInterrupt
    on its ``call``-th call."""
    task = LotteryTicketClassifier._task
    holder = types.SimpleNamespace(score=task.score)
    calls = _raise_on_call(monkeypatch, holder, "score", call)
    monkeypatch.setattr(
        LotteryTicketClassifier, "_task", dataclasses.replace(task, score=holder.score)
    )
    return calls


def interrupt_training(monkeypatch):
    SEEN["raise_at_batch"] = 2 * BATCHES_PER_ROUND + 3  # mid round 2
    return {}


# Training batches run before the fit stopped: no round starts after Ctrl-C.
BATCHES_RUN = {
    "training": 2 * BATCHES_PER_ROUND + 3,
    "scoring": 3 * BATCHES_PER_ROUND,  # round 2 trained, then its score
    "pruning": 2 * BATCHES_PER_ROUND,
    "rewinding": 2 * BATCHES_PER_ROUND,
    "round_setup": 2 * BATCHES_PER_ROUND,
    "progress_bar": 2 * BATCHES_PER_ROUND,
}


def interrupt_scoring(monkeypatch):
    # score calls (score_untrained=False): rounds 0, 1, 2 -> the 3rd is the
    # trained score of round 2
    _raise_on_score(monkeypatch, 3)
    return {}


def interrupt_pruning(monkeypatch):
    # the prune before round 2, after the masks were changed
    _raise_on_call(monkeypatch, Pruner, "prune", 2, after=True)
    return {}


def interrupt_rewinding(monkeypatch):
    _raise_on_call(monkeypatch, Pruner, "rewind", 2, after=True)
    return {}


def interrupt_round_setup(monkeypatch):
    # freeing the finished round's optimizer, at the start of round 2
    _raise_on_call(monkeypatch, round_module, "release_optimizer", 2, after=True)
    return {}


def interrupt_progress(monkeypatch):
    pytest.importorskip("tqdm")
    # updates: round 0, round 1 -> Ctrl-C while round 1 is displayed
    _raise_on_call(monkeypatch, RoundProgress, "update", 2, after=True)
    return {"verbose": 1}


PHASES = {
    "training": interrupt_training,
    "scoring": interrupt_scoring,
    "pruning": interrupt_pruning,
    "rewinding": interrupt_rewinding,
    "round_setup": interrupt_round_setup,
    "progress_bar": interrupt_progress,
}


@pytest.fixture(scope="module")
def two_rounds(make_clf, data):
    """The reference: a fit that stops after round 1 on its own."""
    return make_clf(n_rounds=1).fit(*data)


@pytest.mark.parametrize("phase", list(PHASES))
def test_ctrl_c_after_round_zero_keeps_the_last_completed_round(
    phase, make_clf, data, two_rounds, monkeypatch
):
    X, y = data
    extra = PHASES[phase](monkeypatch)
    clf = make_clf(n_rounds=3, **extra)
    with pytest.warns(
        RuntimeWarning, match=r"after round 1 completed.*keeps round 1"
    ) as record:
        fitted = clf.fit(X, y)
    assert record[0].filename == __file__  # the warning points at the caller
    assert fitted is clf
    assert SEEN["batches"] == BATCHES_RUN[phase]
    assert clf.interrupted_ is True
    assert clf.rounds_["round"].tolist() == [0, 1]
    assert clf.selected_round_ == 1
    assert clf.rounds_["selected"].tolist() == [False, True]
    reference = two_rounds.rounds_.drop(columns=["wall_time", "selected"])
    assert clf.rounds_.drop(columns=["wall_time", "selected"]).equals(reference)
    # masks, weights and predictions are exactly round 1's
    same_ticket(clf, two_rounds, X)
    params = dict(clf.net_.module_.named_parameters())
    for name, mask in clf.masks_.items():
        assert int((params[name][~mask] != 0).sum()) == 0
    assert clf.sparsity_ == two_rounds.sparsity_
    assert len(clf.net_.history) == 2  # round 1's history, not the broken one
    assert clf.predict(X).shape == y.shape
    # the interrupt is gone: a warm start resumes up to n_rounds
    monkeypatch.undo()
    clf.set_params(warm_start=True, verbose=0).fit(X, y)
    assert clf.interrupted_ is False
    assert clf.rounds_["round"].tolist() == [0, 1, 2, 3]
    assert clf.selected_round_ == 3


def test_ctrl_c_while_setting_up_gradients_keeps_round_zero(
    make_clf, data, monkeypatch
):
    X, y = data
    _raise_on_call(monkeypatch, loop_module, "gradient_function", 1)
    with pytest.warns(RuntimeWarning, match=r"after round 0 completed.*keeps round 0"):
        clf = make_clf(n_rounds=2, strategy="snip").fit(X, y)
    assert clf.interrupted_ and clf.rounds_["round"].tolist() == [0]
    assert clf.sparsity_ == 0.0 and all(bool(m.all()) for m in clf.masks_.values())
    monkeypatch.undo()
    clf.set_params(warm_start=True).fit(X, y)
    assert clf.rounds_["round"].tolist() == [0, 1, 2]


@pytest.mark.parametrize("where", ["training", "scoring"])
def test_ctrl_c_in_round_zero_propagates_and_fits_nothing(
    where, make_clf, data, monkeypatch
):
    X, y = data
    if where == "training":
        SEEN["raise_at_batch"] = 3
    else:  # the score of the initialization
        _raise_on_score(monkeypatch, 1)
    clf = make_clf()
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    assert not [k for k in vars(clf) if k.endswith("_") and not k.startswith("__")]
    assert not hasattr(clf, "rounds_")


def test_ctrl_c_in_round_zero_of_a_refit_keeps_the_previous_fit(make_clf, data):
    """A refit on other data that is interrupted before any round completes
    leaves the estimator exactly as the previous fit left it."""
    X, y = data
    clf = make_clf(n_rounds=1).fit(X, y)
    before = clf.predict_proba(X)
    SEEN.update(batches=0, raise_at_batch=2)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X[:, :10], y % 3)
    assert clf.n_features_in_ == 64 and clf.classes_.tolist() == list(range(10))
    np.testing.assert_array_equal(clf.predict_proba(X), before)


def test_ctrl_c_during_a_warm_start_keeps_the_earlier_rounds(make_clf, data):
    X, y = data
    clf = make_clf(n_rounds=1).fit(X, y)
    before = clf.rounds_.copy()
    SEEN.update(batches=0, raise_at_batch=BATCHES_PER_ROUND + 2)  # mid round 3
    with pytest.warns(RuntimeWarning, match="after round 2 completed"):
        clf.set_params(warm_start=True, n_rounds=3).fit(X, y)
    assert clf.interrupted_ and clf.rounds_["round"].tolist() == [0, 1, 2]
    assert without_time(clf.rounds_.iloc[:2]).drop(columns="selected").equals(
        without_time(before).drop(columns="selected")
    )


def test_deliberate_stop_only_ends_the_round(make_clf, data):
    X, y = data
    SEEN.update(raise_at_batch=BATCHES_PER_ROUND + 4, exc=StopRound)  # round 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        clf = make_clf().fit(X, y)
    assert clf.interrupted_ is False
    assert clf.rounds_["epochs"].tolist() == [2, 1, 2, 2]


def test_early_stopping_is_not_an_interrupt(make_clf, data):
    X, y = data
    stopper = ("stop", EarlyStopping(monitor="train_loss", patience=1, threshold=10.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        clf = make_clf(max_epochs=3, callbacks=[*LOOP_CALLBACKS, stopper]).fit(X, y)
    assert clf.interrupted_ is False
    assert clf.rounds_["round"].tolist() == [0, 1, 2, 3]
    assert clf.rounds_["epochs"].tolist() == [2, 2, 2, 2]


def test_deferred_interrupt_holds_ctrl_c():
    import os
    import signal

    # Python's own handler (a background job may start with SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with rounds.deferred_interrupt() as caught:
            os.kill(os.getpid(), signal.SIGINT)
            assert caught == [1]  # held, not raised
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the usual handler is back
    finally:
        signal.signal(signal.SIGINT, previous)


# -- warm start continues the fitted lottery ---------------------------------------
def test_warm_start_adds_rounds_and_masks_only_shrink(make_clf, data):
    X, y = data
    clf = make_clf(n_rounds=2).fit(X, y)
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
    assert n_weights == sorted(n_weights, reverse=True) and n_weights[4] < n_weights[2]
    assert n_weights[4] == sum(int(m.sum()) for m in clf.masks_.values())
    for name, mask in clf.masks_.items():
        assert not bool((mask & ~masks[name]).any())  # nothing comes back
    assert clf.selected_round_ == 4
    # survivors rewind to the first fit's rewind point: every tensor of the net
    names = {n for n, _ in clf.net_.module_.named_parameters()}
    assert set(clf.rewind_point_) == names


def test_warm_start_continues_from_the_fitted_state_not_from_scratch(make_clf, data):
    """The first warm-start round prunes the fitted round's trained weights
    (its masks are those of one more prune of the fitted ticket) and starts
    from the first fit's rewind point under those masks; no dense round is
    trained again."""
    X, y = data
    clf = make_clf(n_rounds=1).fit(X, y)
    old_masks = {n: m.clone() for n, m in clf.masks_.items()}
    rewind_point = {n: t.clone() for n, t in clf.rewind_point_.items()}
    trained = {n: p.detach().clone() for n, p in clf.net_.module_.named_parameters()}
    # what one more prune of the fitted ticket gives
    module = clf.net_.module_
    expected = Pruner(module, prune_rate=0.5, masks=old_masks)
    expected.round_start = {n: rewind_point[n] * old_masks[n] for n in old_masks}
    expected_masks = expected.compute_masks()
    for name, p in module.named_parameters():
        assert torch.equal(p.detach(), trained[name])  # compute_masks changed nothing

    STARTS.clear()
    SEEN["epochs"] = 0
    clf.set_params(warm_start=True, n_rounds=2).fit(X, y)
    assert SEEN["epochs"] == 2  # round 2 only: nothing before it was retrained
    assert len(STARTS) == 1
    for name, mask in clf.masks_.items():
        assert torch.equal(mask, expected_masks[name]), name
        assert not bool((mask & ~old_masks[name]).any())
        assert int(mask.sum()) < int(old_masks[name].sum())
    for name, value in STARTS[0].items():
        point = rewind_point[name]
        if name in clf.masks_:
            point = point * clf.masks_[name]
        assert torch.equal(value, point), name
    for name, value in clf.rewind_point_.items():
        assert torch.equal(value, rewind_point[name])


def test_warm_start_false_starts_over(make_clf, data):
    """warm_start=False refits from scratch: exactly a fresh clone's fit, and
    not the continuation a warm start gives."""
    X, y = data
    clf = make_clf(n_rounds=1).fit(X, y)
    clf.set_params(n_rounds=2).fit(X, y)
    fresh = clone(clf).fit(X, y)
    assert clf.rounds_["round"].tolist() == [0, 1, 2]
    assert without_time(clf.rounds_).equals(without_time(fresh.rounds_))
    same_ticket(clf, fresh, X)
    warm = make_clf(n_rounds=1).fit(X, y)
    warm.set_params(warm_start=True, n_rounds=2).fit(X, y)
    assert warm.rounds_["round"].tolist() == [0, 1, 2]
    assert not without_time(warm.rounds_).equals(without_time(clf.rounds_))


def test_warm_start_with_nothing_to_add_warns_and_fewer_rounds_raise(make_clf, data):
    X, y = data
    clf = make_clf(n_rounds=2, warm_start=True).fit(X, y)  # not fitted yet: cold
    assert len(clf.rounds_) == 3
    before = clf.predict_proba(X)
    with pytest.warns(UserWarning, match="nothing to fit"):
        clf.fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), before)
    with pytest.raises(ValueError, match="n_rounds=1 must be >= the 2 pruning"):
        clf.set_params(n_rounds=1).fit(X, y)


def test_warm_start_refuses_other_classes_features_or_schedule(make_clf, data):
    X, y = data
    clf = make_clf(n_rounds=1).fit(X, y)
    clf.set_params(warm_start=True, n_rounds=2)
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X, np.where(y == 9, 10, y))
    assert clf.classes_.tolist() == list(range(10))
    with pytest.raises(ValueError, match="features"):
        clf.fit(X[:, :10], y)
    with pytest.raises(ValueError, match="cannot be used with schedule='oneshot'"):
        clf.set_params(schedule="oneshot").fit(X, y)


def test_warm_start_refuses_another_module(make_clf, data):
    X, y = data
    clf = make_clf(n_rounds=1).fit(X, y)
    clf.set_params(warm_start=True, n_rounds=2, net__module__hidden_units=(8,))
    with pytest.raises(ValueError, match="other tensors or shapes"):
        clf.fit(X, y)


@pytest.mark.parametrize("rewind", ["reshuffle", "signed_constant", "lr"])
@pytest.mark.parametrize("select", ["last", "best"])
def test_warm_start_prunes_against_the_round_start(
    make_clf, data, rewind, select, monkeypatch
):
    """After warm_start (and after a round is put back by select), the next
    prune compares the trained weights with the weights that round really
    started from -- for these rewind modes, not the rewind point."""
    X, y = data
    w_inits = []

    def recording_movement(w_init, w_final):
        w_inits.append(w_init.clone())
        return (w_final - w_init).abs()

    clf = make_clf(
        n_rounds=2, strategy=recording_movement, rewind=rewind, select=select,
        train_split=ValidSplit(4, stratified=True),
    ).fit(X, y)
    chosen_start = STARTS[clf.selected_round_]
    w_inits.clear()
    clf.set_params(warm_start=True, n_rounds=3).fit(X, y)
    names = list(clf.masks_)
    # the first prune of the warm start: one w_init per pruned tensor
    assert len(w_inits) >= len(names)
    for name, w_init in zip(names, w_inits[: len(names)]):
        assert torch.equal(w_init, chosen_start[name]), name


def test_warm_start_from_a_ticket_file_needs_the_round_start(make_clf, data, tmp_path):
    X, y = data
    clf = make_clf(n_rounds=1, rewind="reshuffle").fit(X, y)
    path = tmp_path / "t.npz"
    clf.save_ticket(path, rewind_point=True)
    loaded = make_clf(n_rounds=1, rewind="reshuffle").load_ticket(path)
    with pytest.raises(ValueError, match="rewind='reshuffle' needs the weights"):
        loaded.set_params(warm_start=True, n_rounds=2).fit(X, y)


# -- what each round records ------------------------------------------------------
@pytest.mark.parametrize("rewind", ["init", "signed_constant", "none"])
def test_untrained_score_is_the_score_before_each_round_trains(
    make_clf, data, rewind
):
    X, y = data
    clf = make_clf(
        n_rounds=2, rewind=rewind, strategy="large_final_same_sign",
        score_untrained=True,
    )
    clf.fit(X, y)
    assert len(STARTS) == 3
    module = clf.net_.module_
    expected = []
    for state in STARTS:
        with torch.no_grad():
            saved = {n: p.clone() for n, p in module.named_parameters()}
            for n, p in module.named_parameters():
                p.copy_(state[n])
            expected.append(float(np.mean(clf.predict(X) == y)))
            for n, p in module.named_parameters():
                p.copy_(saved[n])
    assert clf.rounds_["untrained_score"].tolist() == pytest.approx(expected)
    assert clf.rounds_["ticket_epoch"].isna().all()


def test_run_lottery_needs_no_estimator(tiny_net, data):
    """The loop runs on a plain skorch net, a Pruner and the split data."""
    X, y = data
    params = LotteryTicketClassifier(n_rounds=2, prune_rate=0.5).get_params(deep=False)
    config = make_config(params, seed=3, max_epochs=2)
    net = tiny_net(max_epochs=2, module__input_units=64, module__output_units=10)
    torch.manual_seed(config.seed)
    net.initialize()
    pruner = Pruner(net.module_, **config.pruner)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    data = RoundData(X_t[:200], y_t[:200], X_t[200:], y_t[200:], "valid")
    result = rounds.run_lottery(net, pruner, data, config, score=accuracy)
    assert [r.round for r in result.records] == [0, 1, 2]
    assert all(isinstance(r, rounds.RoundRecord) for r in result.records)
    assert result.selected_round == 2 and not result.interrupted
    kept = sum(int(m.sum()) for m in result.masks.values())
    assert result.records[-1].n_weights == kept
    assert result.records[-1].score == accuracy(net, data.X_eval, data.y_eval)
    params = dict(net.module_.named_parameters())
    for name, mask in result.masks.items():
        assert torch.equal(params[name].detach() != 0, mask)


# -- round 0 and its cache ------------------------------------------------------------
def _round_data(X_train, y_train, X_eval, y_eval, eval_on):
    """A fit's split as the lottery holds it (tensors, converted once)."""
    from sklottery.training import RoundData

    t = torch.from_numpy
    return RoundData(t(X_train), t(y_train), t(X_eval), t(y_eval), eval_on)


def test_dense_round_is_a_pure_function_of_its_inputs(tiny_net, data):
    X, y = data
    net = tiny_net(max_epochs=2, module__input_units=64, module__output_units=10)
    args = (net, _round_data(X[:200], y[:200], X[200:], y[200:], "valid"))
    a = rounds.dense_round(*args, seed=5)
    b = rounds.dense_round(*args, seed=5)
    c = rounds.dense_round(*args, seed=6)
    assert not net.initialized_  # the net is a specification, never fitted
    for name, value in a.trained.items():
        assert torch.equal(value, b.trained[name])
    assert not torch.equal(a.trained["hidden.0.weight"], c.trained["hidden.0.weight"])
    assert torch.equal(a.rng_state, b.rng_state)
    assert a.epochs == 2 and len(a.history) == 2 and not np.isnan(a.valid_loss)
    assert a.rewind_point is None and math.isnan(a.ticket_epoch)
    late = rounds.dense_round(*args, seed=5, rewind_epoch=1)
    for name, value in late.trained.items():
        assert torch.equal(value, a.trained[name])  # late rewinding changes no training
    assert not torch.equal(
        late.rewind_point["hidden.0.weight"], a.trained["hidden.0.weight"]
    )


def test_dense_round_interrupted_raises(tiny_net, data):
    X, y = data
    net = tiny_net(max_epochs=2, module__input_units=64, module__output_units=10,
                   callbacks=[("interrupt", Interrupt())])
    SEEN["raise_at_batch"] = 2
    with pytest.raises(KeyboardInterrupt, match="no round completed"):
        rounds.dense_round(net, _round_data(X, y, X, y, "train"), seed=0)


def test_module_code_follows_the_class_source():
    class A(torch.nn.Linear):
        pass

    class B(torch.nn.Linear):
        def extra_repr(self):
            return "b"

    assert rounds.module_code(A) == rounds.module_code(A(2, 3))
    assert rounds.module_code(A) != rounds.module_code(B)


def test_cached_fit_identical_to_uncached(make_clf, data, tmp_path):
    X, y = data
    split = ValidSplit(4, stratified=True)
    ref = make_clf(n_rounds=2, train_split=split).fit(X, y)
    first = make_clf(n_rounds=2, train_split=split, memory=str(tmp_path)).fit(X, y)
    SEEN["epochs"] = 0
    second = make_clf(n_rounds=2, train_split=split, memory=str(tmp_path)).fit(X, y)
    assert SEEN["epochs"] == 2 * 2  # rounds 1 and 2 only: round 0 came from the cache
    for fitted in (first, second):
        assert without_time(fitted.rounds_).equals(without_time(ref.rounds_))
        same_ticket(fitted, ref, X)
    # round 0's row is the cached one, wall time included
    assert second.rounds_["wall_time"].iloc[0] == first.rounds_["wall_time"].iloc[0]


def test_cache_key_ignores_pruning_parameters(make_clf, data, tmp_path):
    X, y = data
    memory = joblib.Memory(tmp_path, verbose=0)
    make_clf(n_rounds=2, memory=memory).fit(X, y)
    SEEN["epochs"] = 0
    make_clf(n_rounds=1, memory=memory, prune_rate=0.3, strategy="random").fit(X, y)
    assert SEEN["epochs"] == 2  # round 1 only
    # net parameters, data and seed are part of the key
    for clf, data_ in [
        (make_clf(n_rounds=1, memory=memory).set_params(net__lr=0.05), (X, y)),
        (make_clf(n_rounds=1, memory=memory, random_state=1), (X, y)),
        (make_clf(n_rounds=1, memory=memory), (X[:200], y[:200])),
    ]:
        SEEN["epochs"] = 0
        clf.fit(*data_)
        assert SEEN["epochs"] == 2 * 2


def test_search_pays_round_zero_once_per_fold(make_clf, data, tmp_path):
    from sklearn.model_selection import GridSearchCV, KFold

    X, y = data
    grid = {"prune_rate": [0.2, 0.5, 0.7]}
    cv = KFold(2, shuffle=True, random_state=0)
    SEEN["epochs"] = 0
    naive = GridSearchCV(make_clf(n_rounds=2), grid, cv=cv, refit=False).fit(X, y)
    assert SEEN["epochs"] == 3 * 2 * 3 * 2  # candidates x folds x rounds x epochs
    SEEN["epochs"] = 0
    cached_clf = make_clf(n_rounds=2, memory=str(tmp_path))
    cached = GridSearchCV(cached_clf, grid, cv=cv, refit=False).fit(X, y)
    assert SEEN["epochs"] == 2 * 2 + 3 * 2 * 2 * 2  # round 0 once per fold
    np.testing.assert_array_equal(
        naive.cv_results_["mean_test_score"], cached.cv_results_["mean_test_score"]
    )


# -- random_state governs the whole fit ------------------------------------------
def test_same_random_state_same_fit_with_an_unseeded_validation_split(make_clf, data):
    """skorch's ValidSplit(0.2) brings no seed: the fit's random_state draws
    the split, so two fits are identical (times aside) and another seed
    gives another split."""
    X, y = data
    split = ValidSplit(0.2)
    a = make_clf(n_rounds=2, train_split=split).fit(X, y)
    b = make_clf(n_rounds=2, train_split=split).fit(X, y)
    assert (a.rounds_["score_on"] == "valid").all()
    assert without_time(a.rounds_).equals(without_time(b.rounds_))
    same_ticket(a, b, X)
    c = make_clf(n_rounds=2, train_split=split, random_state=1).fit(X, y)
    assert not without_time(a.rounds_).equals(without_time(c.rounds_))
    # the user's split is left as given; the fitted net carries the drawn seed
    assert a.net.train_split is split and split.random_state is None
    assert a.net_.train_split.cv == 0.2
    assert a.net_.train_split.random_state == b.net_.train_split.random_state


def test_memory_cache_hits_with_an_unseeded_validation_split(make_clf, data, tmp_path):
    X, y = data
    split = ValidSplit(0.2)
    first = make_clf(n_rounds=1, train_split=split, memory=str(tmp_path)).fit(X, y)
    SEEN["epochs"] = 0
    second = make_clf(n_rounds=1, train_split=split, memory=str(tmp_path)).fit(X, y)
    assert SEEN["epochs"] == 2  # round 1 only
    assert second.rounds_["wall_time"].iloc[0] == first.rounds_["wall_time"].iloc[0]
    assert without_time(second.rounds_).equals(without_time(first.rounds_))


def test_ctrl_c_after_the_last_round_interrupts_nothing(make_clf, data, monkeypatch):
    pytest.importorskip("tqdm")
    # updates: rounds 0, 1, 2 -> Ctrl-C once the last round is displayed
    calls = _raise_on_call(monkeypatch, RoundProgress, "update", 3, after=True)
    clf = make_clf(n_rounds=2, verbose=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "interrupted" warning
        clf.fit(*data)
    assert calls["n"] == 3
    assert clf.rounds_["round"].tolist() == [0, 1, 2]
    assert clf.interrupted_ is False
