"""The pretrained-ticket protocol (Chen et al. 2020) through the estimators:
rewind to loaded weights, a head kept trained, learning-rate schedules that
restart every round, the of-original schedule and tied weights in tickets."""

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, LRScheduler
from torch import nn

from sklottery import LotteryTicketClassifier

#: The "pretrained checkpoint" every Pretrained module loads in __init__.
_gen = torch.Generator().manual_seed(123)
PRETRAINED = {
    "body.weight": torch.randn(16, 6, generator=_gen),
    "body.bias": torch.randn(16, generator=_gen),
    "hidden.weight": torch.randn(16, 16, generator=_gen),
    "hidden.bias": torch.randn(16, generator=_gen),
    "classifier.weight": torch.randn(3, 16, generator=_gen),
    "classifier.bias": torch.randn(3, generator=_gen),
}


class Pretrained(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 16)
        self.hidden = nn.Linear(16, 16)
        self.classifier = nn.Linear(16, 3)
        self.load_state_dict(PRETRAINED)

    def forward(self, X):
        return self.classifier(torch.relu(self.hidden(torch.relu(self.body(X)))))


class Record(Callback):
    """Module states at each round's start and end; learning rates per batch.
    A class attribute: the estimator clones the net and its callbacks."""

    starts: list = []
    ends: list = []
    lrs: list = []

    def on_train_begin(self, net, **kwargs):
        Record.starts.append(_state(net.module_))
        Record.lrs.append([])

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            Record.lrs[-1].append(net.optimizer_.param_groups[0]["lr"])

    def on_train_end(self, net, **kwargs):
        Record.ends.append(_state(net.module_))


def _state(module):
    return {n: t.detach().clone() for n, t in module.state_dict().items()}


@pytest.fixture(autouse=True)
def _clear():
    Record.starts, Record.ends, Record.lrs = [], [], []


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.randn(120, 6).astype(np.float32)
    return X, (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)


def _net(callbacks=(), **kwargs):
    return NeuralNetClassifier(
        Pretrained, max_epochs=2, lr=0.05, batch_size=32, train_split=None,
        optimizer=torch.optim.SGD, criterion=nn.CrossEntropyLoss,
        callbacks=[Record(), *callbacks], verbose=0,
        **kwargs,
    )


def test_rewind_restores_the_pretrained_weights_bit_for_bit(data):
    clf = LotteryTicketClassifier(_net(), n_rounds=2, prune_rate=0.5,
                                  sparse_training=False, random_state=0).fit(*data)
    for name, value in PRETRAINED.items():
        assert torch.equal(clf.rewind_point_[name], value)
    assert len(Record.starts) == 3
    for start in Record.starts[1:]:  # rounds 1 and 2, after the rewind
        for name, value in PRETRAINED.items():
            mask = clf.masks_.get(name)
            # masks only shrink: the round's mask zeroes a superset of nothing
            # the final mask keeps, and every other value is the checkpoint's
            kept = start[name] != 0
            assert torch.equal(start[name][kept], value[kept])
            if mask is None:  # biases: the checkpoint exactly
                assert torch.equal(start[name], value)
    # round 2's start is exactly the checkpoint under round 2's mask
    for name, mask in clf.masks_.items():
        assert torch.equal(Record.starts[2][name], PRETRAINED[name] * mask)


def test_the_head_is_kept_trained_and_the_body_rewound(data):
    clf = LotteryTicketClassifier(
        _net(), n_rounds=2, prune_rate=0.5, keep_trained="classifier",
        sparse_training=False, random_state=0,
    ).fit(*data)
    for k in (1, 2):
        start, previous_end = Record.starts[k], Record.ends[k - 1]
        assert torch.equal(start["classifier.bias"], previous_end["classifier.bias"])
        head = start["classifier.weight"]
        trained = previous_end["classifier.weight"]
        assert torch.equal(head[head != 0], trained[head != 0])
        assert not torch.equal(start["classifier.bias"], PRETRAINED["classifier.bias"])
        assert torch.equal(start["body.bias"], PRETRAINED["body.bias"])
    assert torch.equal(
        Record.starts[2]["classifier.weight"],
        Record.ends[1]["classifier.weight"] * clf.masks_["classifier.weight"],
    )
    body = clf.masks_["body.weight"]
    rewound = PRETRAINED["body.weight"] * body
    assert torch.equal(Record.starts[2]["body.weight"], rewound)


@pytest.mark.parametrize("rewind", ["init", "lr"])
def test_lr_schedule_with_batch_steps_restarts_every_round(data, rewind):
    warmup = LRScheduler(policy=torch.optim.lr_scheduler.LinearLR,
                         start_factor=0.1, total_iters=5, step_every="batch")
    clf = LotteryTicketClassifier(_net([warmup]), n_rounds=2, prune_rate=0.5,
                                  rewind=rewind, random_state=0).fit(*data)
    assert len(clf.rounds_) == 3
    first = Record.lrs[0]
    assert len(first) == 8  # 2 epochs of 4 batches
    assert first[0] == pytest.approx(0.005) and first[-1] == pytest.approx(0.05)
    assert first[:6] == sorted(first[:6]) and first[0] < first[5]  # warm-up
    assert Record.lrs[1] == first and Record.lrs[2] == first


def test_of_original_schedule_through_the_estimator(data):
    clf = LotteryTicketClassifier(
        _net(), n_rounds=4, target_sparsity=0.8, schedule="linear",
        output_rate_factor=None, random_state=0,
    ).fit(*data)
    # 96 + 256 + 48 weights; 20% of each tensor's original per round: round k
    # keeps n - round(0.2 k n) of each (halves up), e.g. the body's 96 keep
    # 77, 58, 38, 19 (19.2, 38.4, 57.6, 76.8 pruned)
    body, hidden, head = [77, 58, 38, 19], [205, 154, 102, 51], [38, 29, 19, 10]
    expected = [400] + [sum(ks) for ks in zip(body, hidden, head)]
    assert clf.rounds_["n_weights"].tolist() == expected == [400, 320, 241, 159, 80]
    assert int(clf.masks_["body.weight"].sum()) == 19
    assert clf.get_params()["schedule"] == "linear"


class TiedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 6)
        self.b = nn.Linear(6, 6)
        self.b.weight = self.a.weight  # tied, like an embedding and its decoder
        self.out = nn.Linear(6, 3)

    def forward(self, X):
        return self.out(torch.relu(self.b(torch.relu(self.a(X)))))


def test_tied_weights_are_pruned_once_and_saved_once(data, tmp_path):
    net = NeuralNetClassifier(TiedNet, max_epochs=2, lr=0.05, train_split=None,
                              criterion=nn.CrossEntropyLoss, verbose=0)
    clf = LotteryTicketClassifier(net, n_rounds=2, prune_rate=0.5,
                                  random_state=0).fit(*data)
    assert list(clf.masks_) == ["a.weight", "out.weight"]
    assert clf.net_.module_.b.weight is clf.net_.module_.a.weight
    clf.save_ticket(tmp_path / "t")
    fresh = LotteryTicketClassifier(
        NeuralNetClassifier(TiedNet, max_epochs=2, lr=0.05, train_split=None,
                            criterion=nn.CrossEntropyLoss, verbose=0),
        n_rounds=2, prune_rate=0.5,
    )
    loaded = fresh.load_ticket(tmp_path / "t")
    module = loaded.net_.module_
    assert module.b.weight is module.a.weight
    assert torch.equal(module.a.weight, clf.net_.module_.a.weight)
    assert list(loaded.masks_) == ["a.weight", "out.weight"]
    for name, mask in clf.masks_.items():
        assert torch.equal(loaded.masks_[name], mask)
    np.testing.assert_array_equal(loaded.predict_proba(data[0]),
                                  clf.predict_proba(data[0]))
