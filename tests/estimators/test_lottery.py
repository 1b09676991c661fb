"""LotteryTicketClassifier: counts, exact zeros, rewinding, fresh optimizers,
every pruning option in a fit, input checks and pickling."""

import copy
import pickle

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback, LRScheduler
from torch import nn

from sklottery import MLP, LotteryTicketClassifier

# the shape of conftest's blobs_120x6, the data of these tests
N_FEATURES = 6
N_CLASSES = 3


@pytest.fixture(scope="module")
def make_net(tiny_net):
    """The tiny net with 8 hidden units, batches of 32 and 2 epochs by default."""

    def make(hidden=(8,), lr=0.01, max_epochs=2, batch_size=32, **kw):
        return tiny_net(
            max_epochs=max_epochs, module__hidden_units=hidden, lr=lr,
            batch_size=batch_size, **kw,
        )

    return make


def weight_names(module):
    return [n for n, p in module.named_parameters() if p.ndim >= 2]


class Log:
    """Where a callback records what it sees. Copies of the callback (a clone
    of the net) share it, so every round is recorded whichever copy of the
    net trains it."""

    def __init__(self):
        self.start_weights = []
        self.optimizers = []
        self.state_at_begin = []
        self.state_at_end = []
        self.batches_checked = 0
        self.revived = 0

    def __deepcopy__(self, memo):
        return self


class RecordRounds(Callback):
    """Records, at each round's start, the weights, the optimizer and its state;
    and, before every training batch, whether any weight that was zero at the
    round's start is non-zero (i.e. the previous step revived a pruned one)."""

    def __init__(self, log):
        self.log = log

    def on_train_begin(self, net, **kwargs):
        log = self.log
        log.start_weights.append(
            {n: p.detach().clone() for n, p in net.module_.named_parameters()}
        )
        log.optimizers.append(net.optimizer_)
        log.state_at_begin.append(len(net.optimizer_.state))
        self.zero_at_start_ = {
            n: (w == 0) for n, w in log.start_weights[-1].items() if w.ndim >= 2
        }

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training:
            return
        params = dict(net.module_.named_parameters())
        for n, zero in self.zero_at_start_.items():
            self.log.revived += int((params[n].detach()[zero] != 0).sum())
        self.log.batches_checked += 1

    def on_train_end(self, net, **kwargs):
        self.log.state_at_end.append(len(net.optimizer_.state))


class RecordInit(MLP):
    """An MLP that remembers its weights right after construction."""

    created = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        RecordInit.created.append(
            {n: p.detach().clone() for n, p in self.named_parameters()}
        )


@pytest.fixture(scope="module")
def recorded_fit(blobs_120x6, make_net):
    X, y = blobs_120x6
    RecordInit.created.clear()
    log = Log()
    net = make_net(hidden=(16, 8), max_epochs=3, callbacks=[RecordRounds(log)])
    net.set_params(module=RecordInit)
    clf = LotteryTicketClassifier(net, n_rounds=3, prune_rate=0.4, random_state=0)
    clf.fit(X, y)
    return clf, log, list(RecordInit.created)


def test_rounds_table(recorded_fit):
    clf, _, _ = recorded_fit
    r = clf.rounds_
    assert len(r) == 4
    assert r["round"].tolist() == [0, 1, 2, 3]
    assert r["epochs"].tolist() == [3, 3, 3, 3]
    for col in ("weights_remaining", "train_loss", "score", "n_weights", "wall_time"):
        assert col in r.columns
    assert r["weights_remaining"].iloc[0] == 1.0
    assert r["weights_remaining"].is_monotonic_decreasing
    assert (r["score_on"] == "train").all()
    assert np.isfinite(r["train_loss"]).all()


def test_kept_counts_per_layer_each_round(recorded_fit, expected_kept):
    clf, rec, _ = recorded_fit
    names = weight_names(clf.net_.module_)
    assert names == ["hidden.0.weight", "hidden.2.weight", "output.weight"]
    sizes = [16 * N_FEATURES, 8 * 16, N_CLASSES * 8]
    expected = expected_kept(sizes, [0.4, 0.4, 0.2], 3)
    # survivors are rewound to their (non-zero) initial values: the number of
    # non-zero weights at each round's start is the kept count of that round
    seen = [[int((w[n] != 0).sum()) for n in names] for w in rec.start_weights]
    assert seen == expected
    assert clf.rounds_["n_weights"].tolist() == [sum(e) for e in expected]
    assert clf.rounds_["weights_remaining"].tolist() == pytest.approx(
        [sum(e) / sum(sizes) for e in expected]
    )
    assert list(clf.masks_) == names
    assert [int(clf.masks_[n].sum()) for n in names] == expected[-1]
    assert clf.sparsity_ == pytest.approx(1 - sum(expected[-1]) / sum(sizes))
    for n in names:
        assert clf.masks_[n].dtype == torch.bool
        assert clf.masks_[n].shape == dict(clf.net_.module_.named_parameters())[n].shape
    assert clf.layers_["kept"].tolist() == expected[-1]


def test_survivors_start_each_round_at_their_initial_values(recorded_fit):
    clf, rec, created = recorded_fit
    # every construction of the module in a fit draws the same initial values
    assert all(all(torch.equal(c[n], created[0][n]) for n in c) for c in created)
    init = created[0]
    masks = clf.masks_
    for r, start in enumerate(rec.start_weights):
        for name, value in init.items():
            w = start[name]
            if name in masks:
                kept = w != 0
                assert torch.equal(w[kept], value[kept]), (r, name)
            else:  # biases are rewound, never pruned
                assert torch.equal(w, value), (r, name)
    # round 0 is the dense initialization itself; the final survivors were
    # also the survivors of every earlier round's start
    assert all(torch.equal(rec.start_weights[0][n], init[n]) for n in init)
    for n, m in masks.items():
        assert torch.equal(rec.start_weights[-1][n], init[n] * m)


def test_each_round_has_a_fresh_optimizer(recorded_fit):
    _, rec, _ = recorded_fit
    assert len(rec.optimizers) == 4
    for i in range(4):
        for j in range(i + 1, 4):
            assert rec.optimizers[i] is not rec.optimizers[j]
    assert rec.state_at_begin == [0, 0, 0, 0]  # no Adam moments carried over
    assert all(n > 0 for n in rec.state_at_end)


def test_pruned_weights_never_revive_between_steps(recorded_fit):
    _, rec, _ = recorded_fit
    assert rec.batches_checked == 4 * 3 * 4  # rounds * epochs * batches of 32
    assert rec.revived == 0


def check_exact_zeros(clf):
    params = dict(clf.net_.module_.named_parameters())
    assert clf.sparsity_ > 0
    for name, mask in clf.masks_.items():
        p = params[name].detach()
        assert (p[~mask] == 0.0).all(), name
        # training moved the survivors: the zeros are not a trivially dead net
        assert (p[mask] != 0.0).all(), name
    n_zero = sum(int((params[n] == 0).sum()) for n in clf.masks_)
    total = sum(m.numel() for m in clf.masks_.values())
    assert n_zero / total == pytest.approx(clf.sparsity_)


OPTIMIZERS = {
    "sgd_momentum": (torch.optim.SGD, {"optimizer__momentum": 0.9}),
    "sgd_nesterov": (
        torch.optim.SGD,
        {"optimizer__momentum": 0.9, "optimizer__nesterov": True,
         "optimizer__weight_decay": 1e-3},
    ),
    "adam": (torch.optim.Adam, {}),
    "adamw_wd": (torch.optim.AdamW, {"optimizer__weight_decay": 0.1}),
    "rmsprop": (torch.optim.RMSprop, {"optimizer__momentum": 0.5}),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_exact_zeros_after_fit_for_each_optimizer(blobs_120x6, make_net, name):
    X, y = blobs_120x6
    optimizer, kw = OPTIMIZERS[name]
    log = Log()
    net = make_net(optimizer=optimizer, lr=0.05, callbacks=[RecordRounds(log)], **kw)
    clf = LotteryTicketClassifier(net, n_rounds=2, prune_rate=0.5, random_state=0)
    clf.fit(X, y)
    check_exact_zeros(clf)
    assert log.revived == 0 and log.batches_checked > 0


@pytest.mark.parametrize(
    "scheduler",
    [
        LRScheduler("StepLR", step_size=1, gamma=0.5, step_every="epoch"),
        LRScheduler(
            torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1, total_steps=8,
            step_every="batch",
        ),
        LRScheduler("CyclicLR", base_lr=0.01, max_lr=0.2, step_size_up=2,
                    step_every="batch"),
    ],
    ids=["step_epoch", "onecycle_batch", "cyclic_batch"],
)
def test_exact_zeros_with_lr_scheduler(blobs_120x6, make_net, scheduler):
    X, y = blobs_120x6
    log = Log()
    net = make_net(
        optimizer=torch.optim.SGD, lr=0.05, optimizer__momentum=0.9,
        callbacks=[("sched", scheduler), ("rec", RecordRounds(log))],
    )
    clf = LotteryTicketClassifier(net, n_rounds=2, prune_rate=0.5, random_state=0)
    clf.fit(X, y)  # OneCycleLR raises if it is stepped past total_steps
    check_exact_zeros(clf)
    assert log.revived == 0 and log.batches_checked > 0


def test_fitted_net_keeps_the_ticket_when_trained_further(blobs_120x6, make_net):
    X, y = blobs_120x6
    clf = LotteryTicketClassifier(
        make_net(), n_rounds=1, prune_rate=0.5, random_state=0
    )
    clf.fit(X, y)
    before = {n: p.detach().clone() for n, p in clf.net_.module_.named_parameters()}
    clf.net_.partial_fit(X, y)
    check_exact_zeros(clf)
    # it did train further: the kept weights moved
    for name, mask in clf.masks_.items():
        now = dict(clf.net_.module_.named_parameters())[name].detach()
        assert not torch.equal(now[mask], before[name][mask]), name


def test_zero_rounds_is_the_dense_network(blobs_120x6, make_net):
    X, y = blobs_120x6
    clf = LotteryTicketClassifier(make_net(), n_rounds=0, random_state=0).fit(X, y)
    assert len(clf.rounds_) == 1
    assert clf.sparsity_ == 0.0
    assert all(bool(m.all()) for m in clf.masks_.values())


def test_fitted_attributes_and_transform(blobs_120x6, make_net):
    X, y = blobs_120x6
    net = make_net(hidden=(16, 8))
    clf = LotteryTicketClassifier(net, n_rounds=1, random_state=0).fit(X, y)
    assert clf.n_features_in_ == N_FEATURES
    assert clf.classes_.tolist() == [0, 1, 2]
    assert not hasattr(clf, "feature_names_in_")
    Xt = clf.transform(X[:7])
    assert Xt.shape == (7, 8)
    assert Xt.dtype == np.float32
    assert (Xt >= 0).all()  # the output layer's input comes after a ReLU
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), N_CLASSES)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert clf.predict(X).tolist() == clf.classes_[proba.argmax(1)].tolist()
    assert 0.0 <= clf.score(X, y) <= 1.0


def test_validation_split_scores_on_the_validation_set(blobs_120x6, make_net):
    from skorch.dataset import ValidSplit

    X, y = blobs_120x6
    net = make_net(train_split=ValidSplit(4, stratified=True))
    clf = LotteryTicketClassifier(net, n_rounds=1, random_state=0).fit(X, y)
    assert (clf.rounds_["score_on"] == "valid").all()
    assert np.isfinite(clf.rounds_["valid_loss"]).all()
    # the user's split is back on the fitted net
    assert isinstance(clf.net_.train_split, ValidSplit)


def test_round_score_is_the_accuracy_of_predict(recorded_fit, blobs_120x6):
    # rounds are scored in large forward passes; the score is what predict gives
    X, y = blobs_120x6
    clf, _, _ = recorded_fit
    assert clf.rounds_["score"].iloc[-1] == np.mean(clf.predict(X) == y)


# -- each rewind mode in a fit ------------------------------------------------------
class Events(list):
    """A list that clone() (deepcopy) leaves shared."""

    def __deepcopy__(self, memo):
        return self


class Recorder(Callback):
    """Records the module state at the start of each round and after each epoch."""

    def __init__(self, events):
        self.events = events

    def _state(self, net):
        return {n: p.detach().clone() for n, p in net.module_.named_parameters()}

    def on_train_begin(self, net, **kwargs):
        self.events.append(("begin", self._state(net), None))

    def on_epoch_end(self, net, **kwargs):
        lr = net.optimizer_.param_groups[0]["lr"]
        self.events.append(("epoch", self._state(net), lr))

    def rounds(self):
        """[(begin_state, [(epoch_state, lr), ...]), ...] per round."""
        out = []
        for kind, state, lr in self.events:
            if kind == "begin":
                out.append((state, []))
            else:
                out[-1][1].append((state, lr))
        return out


class InitRecorder:
    """A strategy recording the w_init it is given (large_final otherwise)."""

    def __init__(self):
        self.calls = []

    def __call__(self, w_init, w_final):
        self.calls.append(w_init.clone())
        return w_final.abs()

    def __deepcopy__(self, memo):  # clone() must keep the same recorder
        return self


MAX_EPOCHS = 4
WEIGHTS = ("hidden.0.weight", "output.weight")


@pytest.fixture(scope="module")
def fit_rewind(tiny_net, blobs):
    """``fit_rewind(rewind, strategy) -> (clf, per-round states)``: SGD with a
    learning rate halved every epoch, 2 pruning rounds."""

    def fit(rewind, strategy="large_final", **kw):
        recorder = Recorder(Events())
        schedule = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
        net = tiny_net(
            max_epochs=MAX_EPOCHS, optimizer=torch.optim.SGD, lr=0.2, batch_size=50,
            callbacks=[("recorder", recorder), ("sched", schedule)],
        )
        clf = LotteryTicketClassifier(
            net, n_rounds=2, prune_rate=0.5, rewind=rewind, strategy=strategy,
            random_state=0, **kw,
        ).fit(*blobs)
        return clf, recorder.rounds()

    return fit


def masked(state, masks):
    return {n: (t * masks[n] if n in masks else t) for n, t in state.items()}


def assert_state_equal(a, b):
    assert a.keys() == b.keys()
    for n in a:
        assert torch.equal(a[n], b[n]), n


def round_masks(rounds, r):
    """Masks in force during round r, read off the zeros of its end state."""
    end = rounds[r][1][-1][0]
    return {n: end[n] != 0 for n in WEIGHTS}


@pytest.mark.parametrize("rewind", ["init", 2, np.int64(2), "none", "lr"])
def test_rewind_values_exact(fit_rewind, rewind):
    clf, rounds = fit_rewind(rewind)
    init = rounds[0][0]
    end0 = rounds[0][1][-1][0]
    for r in (1, 2):
        masks = round_masks(rounds, r)
        begin = rounds[r][0]
        if rewind == "init":
            expected = masked(init, masks)
        elif rewind == 2:
            expected = masked(rounds[0][1][1][0], masks)  # after epoch 2 of round 0
        else:
            expected = masked(rounds[r - 1][1][-1][0], masks)
        assert_state_equal(begin, expected)
    assert not torch.equal(end0["hidden.0.weight"], init["hidden.0.weight"])


def test_rewind_none_freezes_lr_and_lr_replays_schedule(fit_rewind):
    _, rounds_none = fit_rewind("none")
    _, rounds_lr = fit_rewind("lr")
    lrs0 = [lr for _, lr in rounds_none[0][1]]
    # the recorder runs before the scheduler steps: StepLR halves after each epoch
    assert lrs0 == [0.2, 0.1, 0.05, 0.025]
    final = 0.0125  # the learning rate round 0 ended with
    for r in (1, 2):
        # fine-tuning: the optimizer stays at the final learning rate
        assert [lr for _, lr in rounds_none[r][1]] == [final] * MAX_EPOCHS
        # learning-rate rewinding: the schedule is replayed from its start
        assert [lr for _, lr in rounds_lr[r][1]] == lrs0


def test_reinit_gives_fresh_values_of_the_same_distribution(fit_rewind):
    _, rounds = fit_rewind("reinit")
    init = rounds[0][0]
    for r in (1, 2):
        begin = rounds[r][0]
        masks = round_masks(rounds, r)
        for n in WEIGHTS:
            kept = masks[n]
            assert torch.equal(begin[n][~kept], torch.zeros(int((~kept).sum())))
            assert not torch.equal(begin[n][kept], init[n][kept])
            bound = 1 / np.sqrt(init[n].shape[1])  # torch's Linear init bound
            assert float(begin[n].abs().max()) <= bound
        # biases are re-drawn too
        assert not torch.equal(begin["hidden.0.bias"], init["hidden.0.bias"])
    assert not torch.equal(rounds[1][0]["hidden.0.bias"], rounds[2][0]["hidden.0.bias"])


def test_reshuffle_permutes_kept_initial_values_within_each_layer(fit_rewind):
    _, rounds = fit_rewind("reshuffle")
    init = rounds[0][0]
    for r in (1, 2):
        begin = rounds[r][0]
        masks = round_masks(rounds, r)
        for n in WEIGHTS:
            kept = masks[n]
            assert torch.equal(begin[n][~kept], torch.zeros(int((~kept).sum())))
            values = begin[n][kept].sort().values
            assert torch.equal(values, init[n][kept].sort().values)
            assert not torch.equal(begin[n][kept], init[n][kept])
        assert torch.equal(begin["hidden.0.bias"], init["hidden.0.bias"])


def test_signed_constant_is_sign_times_init_std(fit_rewind):
    _, rounds = fit_rewind("signed_constant")
    init = rounds[0][0]
    begin = rounds[1][0]
    masks = round_masks(rounds, 1)
    for n in WEIGHTS:
        std = init[n].double().std(unbiased=False).float()
        expected = torch.where(init[n] < 0, -std, std) * masks[n]
        assert torch.equal(begin[n], expected)
        assert len(begin[n][masks[n]].abs().unique()) == 1


@pytest.mark.parametrize(
    "rewind", ["init", 2, "reinit", "reshuffle", "signed_constant", "none", "lr"]
)
def test_strategy_w_init_is_the_rounds_start(fit_rewind, rewind):
    strategy = InitRecorder()
    _, rounds = fit_rewind(rewind, strategy=strategy)
    calls = strategy.calls  # one per tensor and prune, in order
    assert len(calls) == 2 * len(WEIGHTS)
    for prune in (0, 1):  # the prunes after round 0 and round 1
        if prune == 0 and rewind == 2:
            start = rounds[0][1][1][0]  # late rewinding: the epoch-2 state
        else:
            start = rounds[prune][0]
        for i, n in enumerate(WEIGHTS):
            assert torch.equal(calls[2 * prune + i], start[n]), (prune, n)


def test_late_rewinding_past_max_epochs_is_an_error(fit_rewind):
    with pytest.raises(ValueError, match="exceeds the net's max_epochs=4"):
        fit_rewind(5)


# -- pruning options in a fit ---------------------------------------------------------
@pytest.fixture(scope="module")
def options_net(tiny_net):
    """The tiny net (10 inputs -> 16 -> 3 on ``blobs``), lr 0.05, batches of 60."""

    def make(max_epochs=3, lr=0.05, **kw):
        return tiny_net(max_epochs=max_epochs, lr=lr, batch_size=60, **kw)

    return make


def test_snip_in_the_estimator(options_net, blobs):
    snip = LotteryTicketClassifier(options_net(), n_rounds=1, prune_rate=0.5,
                                   strategy="snip", random_state=0).fit(*blobs)
    mag = LotteryTicketClassifier(options_net(), n_rounds=1, prune_rate=0.5,
                                  random_state=0).fit(*blobs)
    assert snip.layers_["kept"].tolist() == mag.layers_["kept"].tolist()
    name = "hidden.0.weight"
    assert not torch.equal(snip.masks_[name], mag.masks_[name])


def test_target_sparsity_and_oneshot_in_the_estimator(options_net, blobs):
    clf = LotteryTicketClassifier(options_net(max_epochs=1), n_rounds=3,
                                  target_sparsity=0.488, output_rate_factor=None,
                                  random_state=0).fit(*blobs)
    # 160 + 48 weights, 20% a round: 160 -> 128 -> 102 -> 82, 48 -> 38 -> 30 -> 24
    assert clf.rounds_["n_weights"].tolist() == [208, 166, 132, 106]
    one = LotteryTicketClassifier(options_net(max_epochs=1), n_rounds=3,
                                  target_sparsity=0.488, output_rate_factor=None,
                                  schedule="oneshot", random_state=0).fit(*blobs)
    assert one.rounds_["round"].tolist() == [0, 1]
    # one prune of 48.8%: 160 -> 82, 48 -> 25 (counts rounded once, not thrice)
    assert one.rounds_["n_weights"].tolist() == [208, 107]


def test_rescale_in_the_estimator_and_pickle(options_net, blobs):
    X, Y = blobs
    clf = LotteryTicketClassifier(options_net(), n_rounds=2, prune_rate=0.5,
                                  rescale=True, random_state=0).fit(X, Y)
    layer = clf.net_.module_.hidden[0]
    kept = int(clf.masks_["hidden.0.weight"].sum())
    x = torch.from_numpy(X[:5])
    with torch.no_grad():
        manual = nn.functional.linear(x, layer.weight * (160 / kept), layer.bias)
        assert torch.allclose(layer(x), manual, atol=1e-6)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    # and the selected round's hooks follow the restored masks
    best = LotteryTicketClassifier(options_net(), n_rounds=2, prune_rate=0.5,
                                   rescale=True, select="best", random_state=0)
    with pytest.warns(UserWarning, match="without a validation split") as record:
        best.fit(X, Y)
    assert record[0].filename == __file__  # the warning points at the caller
    hook = next(iter(best.net_.module_.hidden[0]._forward_hooks.values()), None)
    kept = int(best.masks_["hidden.0.weight"].sum())
    assert (hook is None) == (kept == 160)
    if hook is not None:
        assert hook.scale == 160 / kept


def test_early_bird_stops_the_dense_round_when_masks_settle(options_net, blobs):
    clf = LotteryTicketClassifier(
        options_net(max_epochs=40, lr=0.01), n_rounds=1, prune_rate=0.5,
        early_bird={"threshold": 0.02, "patience": 3}, random_state=0,
    ).fit(*blobs)
    epochs0 = int(clf.rounds_["epochs"].iloc[0])
    # masks moved early on (no stop at the first possible epoch, 4), then settled
    assert 4 < epochs0 < 40
    assert clf.rounds_["ticket_epoch"].iloc[0] == epochs0
    assert np.isnan(clf.rounds_["ticket_epoch"].iloc[1])
    assert clf.rounds_["epochs"].iloc[1] == 40  # later rounds train fully
    # the same run without early-bird trains round 0 to the end
    full = LotteryTicketClassifier(options_net(max_epochs=40, lr=0.01), n_rounds=1,
                                   prune_rate=0.5, random_state=0).fit(*blobs)
    assert full.rounds_["epochs"].iloc[0] == 40


def test_grid_search_reaches_the_options(options_net, blobs):
    grid = [
        {"strategy": ["movement", "snip", "large_final_same_sign"],
         "rewind": [1, "reshuffle"]},
        {"schedule": ["oneshot"], "target_sparsity": [0.7], "rescale": [True, False]},
        {"early_bird": [0.2], "rewind": ["lr", "reinit"]},
    ]
    clf = LotteryTicketClassifier(options_net(max_epochs=2), n_rounds=2,
                                  random_state=0)
    search = GridSearchCV(clf, grid, cv=2, error_score="raise").fit(*blobs)
    res = search.cv_results_
    assert len(res["params"]) == 6 + 2 + 2
    assert np.isfinite(res["mean_test_score"]).all()
    for key, value in search.best_params_.items():
        assert search.best_estimator_.get_params()[key] == value


# -- kept counts and exact zeros over random nets and optimizers -----------------
PROPERTY_OPTIMIZERS = [
    (torch.optim.SGD, {"optimizer__momentum": 0.9}),
    (torch.optim.SGD, {"optimizer__momentum": 0.9, "optimizer__nesterov": True}),
    (torch.optim.Adam, {}),
    (torch.optim.AdamW, {"optimizer__weight_decay": 0.5}),
    (torch.optim.RMSprop, {"optimizer__momentum": 0.3}),
]


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples on every run: a reproducible suite
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    n_features=st.integers(2, 6),
    n_classes=st.integers(2, 3),
    hidden=st.lists(st.integers(1, 10), min_size=1, max_size=2).map(tuple),
    prune_rate=st.floats(0.01, 0.99, allow_nan=False),
    n_rounds=st.integers(0, 3),
    optimizer=st.sampled_from(range(len(PROPERTY_OPTIMIZERS))),
    batch_size=st.integers(4, 32),
    seed=st.integers(0, 1000),
)
def test_fit_keeps_exact_counts_and_exact_zeros(
    tiny_net, expected_kept, n_features, n_classes, hidden, prune_rate, n_rounds,
    optimizer, batch_size, seed,
):
    rng = np.random.RandomState(seed)
    X = rng.randn(40, n_features).astype(np.float32)
    y = np.arange(40) % n_classes
    opt, kw = PROPERTY_OPTIMIZERS[optimizer]
    net = tiny_net(max_epochs=1, module__hidden_units=hidden, optimizer=opt, lr=0.1,
                   batch_size=batch_size, **kw)
    clf = LotteryTicketClassifier(
        net, n_rounds=n_rounds, prune_rate=prune_rate, random_state=seed
    ).fit(X, y)

    widths = [n_features, *hidden, n_classes]
    sizes = [a * b for a, b in zip(widths[:-1], widths[1:])]
    rates = [prune_rate] * (len(sizes) - 1) + [prune_rate * 0.5]
    expected = expected_kept(sizes, rates, n_rounds)
    names = list(clf.masks_)
    assert [int(clf.masks_[n].sum()) for n in names] == expected[-1]
    assert clf.rounds_["n_weights"].tolist() == [sum(e) for e in expected]
    params = dict(clf.net_.module_.named_parameters())
    for n in names:
        assert (params[n].detach()[~clf.masks_[n]] == 0.0).all(), n
    zeros = sum(int((params[n] == 0).sum()) for n in names)
    assert zeros >= sum(sizes) - sum(expected[-1])


# -- X and y -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def small(make_net):
    """40 samples of 4 features, 2 classes, and an estimator fitted on them."""
    rng = np.random.RandomState(0)
    X = rng.randn(40, 4).astype(np.float32)
    y = np.arange(40) % 2
    clf = LotteryTicketClassifier(make_net(max_epochs=1), n_rounds=1, random_state=0)
    return X, y, clf.fit(X, y)


@pytest.mark.parametrize(
    "bad, match",
    [(np.nan, "Input X contains NaN"), (np.inf, "Input X contains infinity")],
)
def test_non_finite_X(small, bad, match):
    X, y, fitted = small
    Xb = X.copy()
    Xb[3, 1] = bad
    with pytest.raises(ValueError, match=match):
        clone(fitted).fit(Xb, y)
    Xb[3, 1] = 0.0
    Xb[0, 0] = bad
    for method in ("predict", "predict_proba", "transform"):
        with pytest.raises(ValueError, match=match):
            getattr(fitted, method)(Xb)


@pytest.mark.parametrize(
    "make_X_y, match",
    [
        (lambda X, y: (np.empty((0, 4), dtype=np.float32), np.array([])),
         r"0 sample\(s\)"),
        (lambda X, y: (X[:, 0], y), "Expected 2D array, got 1D array"),
        (lambda X, y: (X, np.zeros(len(X))), "at least 2 classes"),
        (lambda X, y: (X, np.linspace(0, 1, len(X))), "Unknown label type: continuous"),
        (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
    ],
    ids=["empty", "1d", "one_class", "continuous_y", "lengths"],
)
def test_bad_X_or_y_at_fit(small, make_X_y, match):
    X, y, fitted = small
    with pytest.raises(ValueError, match=match):
        clone(fitted).fit(*make_X_y(X, y))


def test_wrong_number_of_features_at_predict(small):
    X, y, fitted = small
    for method in ("predict", "predict_proba", "transform", "score"):
        args = (X[:, :3], y) if method == "score" else (X[:, :3],)
        with pytest.raises(ValueError, match="X has 3 features, but .* expecting 4"):
            getattr(fitted, method)(*args)


# -- pickling -------------------------------------------------------------------------
@pytest.mark.parametrize("inference", ["dense", "sparse"])
def test_pickle_round_trip_identical_predictions_and_warm_start(
    make_net, blobs_120x6, inference
):
    X, y = blobs_120x6
    clf = LotteryTicketClassifier(
        make_net(), n_rounds=2, prune_rate=0.5, inference=inference, random_state=0
    ).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))
    # and the pickled estimator can still continue pruning
    again.set_params(warm_start=True, n_rounds=3).fit(X, y)
    assert again.rounds_["round"].tolist() == [0, 1, 2, 3]
    assert copy.deepcopy(again).rounds_.equals(again.rounds_)
