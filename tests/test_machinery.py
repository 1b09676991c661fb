"""The public machinery in a plain skorch net, without the estimator."""

import numpy as np
import torch
from sklearn.datasets import make_classification
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from sklottery import MLP, EarlyBird, Pruner, RewindCheckpoint

X, Y = make_classification(200, 10, n_informative=6, n_classes=3, random_state=2)
X = X.astype(np.float32)


class EpochStates(Callback):
    def __init__(self, log):
        self.log = log

    def on_epoch_end(self, net, **kwargs):
        self.log.append({n: p.detach().clone()
                         for n, p in net.module_.named_parameters()})


def plain_net(callbacks, max_epochs=4, lr=0.05):
    net = NeuralNetClassifier(
        MLP, module__input_units=10, module__output_units=3,
        module__hidden_units=(16,), criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam, lr=lr, max_epochs=max_epochs, batch_size=50,
        train_split=None, verbose=0, callbacks=callbacks,
    )
    return net.initialize()


def test_rewind_checkpoint_and_masks_in_a_plain_skorch_net():
    log = []
    net = plain_net([("states", EpochStates(log))])
    pruner = Pruner(net.module_, prune_rate=0.5, random_state=0)
    pruner.prune()  # prune at init, then train the sparse net
    net.callbacks = [("states", EpochStates(log)), ("masks", pruner.callback()),
                     ("late", RewindCheckpoint(pruner, 2))]
    net.initialize_callbacks()
    net.partial_fit(X, Y)
    assert len(log) == 4
    for name, mask in pruner.masks.items():
        assert torch.equal(pruner.rewind_point[name], log[1][name])  # epoch 2
        assert torch.equal(pruner.reference[name], log[1][name])
        trained = dict(net.module_.named_parameters())[name].detach()
        assert torch.equal(trained != 0, mask)
    pruner.prune_and_rewind()
    for name, param in net.module_.named_parameters():
        expected = log[1][name]
        if name in pruner.masks:
            expected = expected * pruner.masks[name]
        assert torch.equal(param.detach(), expected)


def test_early_bird_stops_a_plain_skorch_fit():
    net = plain_net([], max_epochs=40, lr=0.01)
    pruner = Pruner(net.module_, prune_rate=0.5)
    bird = EarlyBird(pruner, threshold=0.02, patience=3)
    net.callbacks = [("bird", bird)]
    net.initialize_callbacks()
    net.partial_fit(X, Y)  # skorch ends fit on the StopRound (a KeyboardInterrupt)
    assert bird.epoch_ is not None and bird.epoch_ < 40
    assert len(net.history) == bird.epoch_
    distances = net.history[1:, "mask_distance"]
    assert all(d < 0.02 for d in distances[-3:])
