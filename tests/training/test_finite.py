"""A diverged training is an error naming its round (sklottery.training._finite)."""

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback

from sklottery import MLP, LotteryTicketClassifier
from sklottery.training import FiniteLoss, train_round


class PoisonRound(Callback):
    """Sets a weight to NaN on the first batch of the ``at``-th training of a
    fit (0: round 0). The count is a class attribute: the net's callbacks are
    cloned with the net."""

    trainings = 0
    at = 0

    def on_train_begin(self, net, **kwargs):
        type(self).trainings += 1

    def on_batch_begin(self, net, training=False, **kwargs):
        if training and type(self).trainings == self.at + 1:
            with torch.no_grad():
                next(net.module_.parameters()).fill_(float("nan"))


@pytest.fixture
def poison():
    PoisonRound.trainings = 0
    yield PoisonRound
    PoisonRound.trainings = 0


def test_train_round_names_the_round_epoch_and_batch(net, data, poison):
    X, y = map(torch.as_tensor, data)
    poison.at = 0
    with pytest.raises(ValueError,
                       match=r"training loss is nan in round 3, epoch 1, batch 1"):
        train_round(net, X, y, round_=3, callbacks=[("poison", poison())])
    # a training outside the lottery's numbering says so
    poison.trainings = 0
    with pytest.raises(ValueError, match="outside the lottery's rounds"):
        train_round(net, X, y, callbacks=[("poison", poison())])


def test_a_learning_rate_too_high_fails_in_round_0(tiny_net, data):
    net = tiny_net(optimizer=torch.optim.SGD, lr=1e30)
    clf = LotteryTicketClassifier(net, n_rounds=1, random_state=0)
    with pytest.raises(ValueError,
                       match=r"round 0, epoch 1, batch \d+ \(NaN or inf: "
                       r"training diverged\).*"
                       r"learning rate too high .*lr=1e\+30"):
        clf.fit(*data)


def test_divergence_in_a_later_round_names_it(tiny_net, data, poison):
    poison.at = 2
    net = tiny_net(max_epochs=1, callbacks=[("poison", poison())])
    clf = LotteryTicketClassifier(net, n_rounds=3, prune_rate=0.5, random_state=0)
    with pytest.raises(ValueError, match=r"in round 2, epoch 1, batch 1"):
        clf.fit(*data)
    assert poison.trainings == 3  # rounds 0 and 1 trained to the end


def test_nll_loss_on_logits_is_refused_at_the_first_batch(data):
    # skorch's default criterion (NLLLoss) on a module returning logits: the
    # classifier takes their log, NaN; the fit would "train" to chance level
    net = NeuralNetClassifier(MLP, module__hidden_units=(16,), max_epochs=2,
                              train_split=None, verbose=0)
    clf = LotteryTicketClassifier(net, n_rounds=1, random_state=0)
    match = (r"NLLLoss.*not probabilities \(values from -.* in round 0, epoch 1, "
             r"batch 1\).*criterion=torch.nn.CrossEntropyLoss")
    with pytest.raises(ValueError, match=match):
        clf.fit(*data)
    # the sample-weighted loss takes the same log: the same check
    with pytest.raises(ValueError, match=match):
        clf.fit(*data, sample_weight=np.ones(len(data[1])))


class SoftmaxMLP(MLP):
    def forward(self, X):
        return torch.softmax(super().forward(X), dim=-1)


def test_nll_loss_on_probabilities_trains(data):
    net = NeuralNetClassifier(SoftmaxMLP, module__hidden_units=(16,), lr=0.5,
                              max_epochs=2, train_split=None, verbose=0)
    clf = LotteryTicketClassifier(net, n_rounds=1, random_state=0).fit(*data)
    assert np.isfinite(clf.rounds_["train_loss"]).all()
    proba = clf.predict_proba(data[0])
    assert (proba >= 0).all() and np.allclose(proba.sum(axis=1), 1, atol=1e-5)


def test_finite_loss_checks_probabilities_only_when_asked(net, data):
    check = FiniteLoss(round_=0).initialize()
    assert check.outputs_checked_  # logits with CrossEntropyLoss are fine
    X, y = map(torch.as_tensor, data)
    assert train_round(net, X, y, round_=0) is False
