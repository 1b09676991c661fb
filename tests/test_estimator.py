"""LotteryTicketClassifier.fit: counts, exact zeros, rewinding, fresh optimizers_."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, LRScheduler

from sklottery import MLP, LotteryTicketClassifier

N_FEATURES = 6
N_CLASSES = 3


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=120, n_features=N_FEATURES, n_informative=4, n_redundant=0,
        n_classes=N_CLASSES, random_state=0,
    )
    return X.astype(np.float32), y


def make_net(hidden=(8,), optimizer=torch.optim.Adam, lr=0.01, max_epochs=2, **kw):
    kw = {"train_split": None, "iterator_train__shuffle": True, **kw}
    return NeuralNetClassifier(
        MLP,
        module__hidden_units=hidden,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=optimizer,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=32,
        verbose=0,
        **kw,
    )


def weight_names(module):
    return [n for n, p in module.named_parameters() if p.ndim >= 2]


def expected_kept(sizes, prune_rate, n_rounds, output_rate_factor=0.5):
    """Kept counts per layer for rounds 0..n_rounds from the documented rule."""
    rates = [prune_rate] * len(sizes)
    rates[-1] = prune_rate * output_rate_factor
    kept, out = list(sizes), [list(sizes)]
    for _ in range(n_rounds):
        kept = [k - min(math.floor(r * k + 0.5), k - 1) for k, r in zip(kept, rates)]
        out.append(list(kept))
    return out


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
def recorded_fit(data):
    X, y = data
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


def test_kept_counts_per_layer_each_round(recorded_fit):
    clf, rec, _ = recorded_fit
    names = weight_names(clf.net_.module_)
    assert names == ["hidden.0.weight", "hidden.2.weight", "output.weight"]
    sizes = [16 * N_FEATURES, 8 * 16, N_CLASSES * 8]
    expected = expected_kept(sizes, 0.4, 3)
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
def test_exact_zeros_after_fit_for_each_optimizer(data, name):
    X, y = data
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
def test_exact_zeros_with_lr_scheduler(data, scheduler):
    X, y = data
    log = Log()
    net = make_net(
        optimizer=torch.optim.SGD, lr=0.05, optimizer__momentum=0.9,
        callbacks=[("sched", scheduler), ("rec", RecordRounds(log))],
    )
    clf = LotteryTicketClassifier(net, n_rounds=2, prune_rate=0.5, random_state=0)
    clf.fit(X, y)  # OneCycleLR raises if it is stepped past total_steps
    check_exact_zeros(clf)
    assert log.revived == 0 and log.batches_checked > 0


def test_fitted_net_keeps_the_ticket_when_trained_further(data):
    X, y = data
    clf = LotteryTicketClassifier(
        make_net(), n_rounds=1, prune_rate=0.5, random_state=0
    )
    clf.fit(X, y)
    clf.net_.partial_fit(X, y)
    check_exact_zeros(clf)


def test_zero_rounds_is_the_dense_network(data):
    X, y = data
    clf = LotteryTicketClassifier(make_net(), n_rounds=0, random_state=0).fit(X, y)
    assert len(clf.rounds_) == 1
    assert clf.sparsity_ == 0.0
    assert all(bool(m.all()) for m in clf.masks_.values())


def test_fitted_attributes_and_transform(data):
    X, y = data
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


def test_validation_split_scores_on_the_validation_set(data):
    from skorch.dataset import ValidSplit

    X, y = data
    net = make_net(train_split=ValidSplit(4, stratified=True))
    clf = LotteryTicketClassifier(net, n_rounds=1, random_state=0).fit(X, y)
    assert (clf.rounds_["score_on"] == "valid").all()
    assert np.isfinite(clf.rounds_["valid_loss"]).all()
    # the user's split is back on the fitted net
    assert isinstance(clf.net_.train_split, ValidSplit)


def test_round_score_is_the_accuracy_of_predict(recorded_fit, data):
    # rounds are scored in large forward passes; the score is what predict gives
    X, y = data
    clf, _, _ = recorded_fit
    assert clf.rounds_["score"].iloc[-1] == np.mean(clf.predict(X) == y)
