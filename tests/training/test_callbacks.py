"""The skorch callbacks in a plain skorch net, without the estimator."""

import pytest
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.history import History
from torch import nn

from sklottery import Pruner
from sklottery.pruning.masks import FLOAT_MASK_MAX_NUMEL
from sklottery.training import ApplyMasks, EarlyBird, RewindCheckpoint, StopRound


class EpochStates(Callback):
    def __init__(self, log):
        self.log = log

    def on_epoch_end(self, net, **kwargs):
        self.log.append({n: p.detach().clone()
                         for n, p in net.module_.named_parameters()})


@pytest.fixture(scope="module")
def plain_net(tiny_net):
    """An initialized tiny net for ``blobs`` (10 inputs, 3 classes)."""

    def make(callbacks, max_epochs=4, lr=0.05, **kw):
        net = tiny_net(
            max_epochs=max_epochs, lr=lr, batch_size=50, module__input_units=10,
            module__output_units=3, callbacks=callbacks, **kw,
        )
        return net.initialize()

    return make


def test_apply_masks_keeps_pruned_weights_zero_with_momentum(blobs, plain_net):
    X, y = blobs
    net = plain_net([], optimizer=torch.optim.SGD, optimizer__momentum=0.9, lr=0.5)
    pruner = Pruner(net.module_, prune_rate=0.5)
    pruner.prune()  # prune at init, then train the sparse net
    net.callbacks = [("masks", ApplyMasks(pruner))]
    net.initialize_callbacks()
    net.partial_fit(X, y)  # keeps the module's weights
    for name, p in net.module_.named_parameters():
        if name in pruner.masks:
            assert (p[~pruner.masks[name]] == 0.0).all()
            # the survivors trained (momentum would revive the pruned ones)
            assert int((p != 0).sum()) == pruner.n_kept()[name]


def test_apply_masks_takes_a_dict_and_refuses_anything_else(blobs, plain_net):
    X, y = blobs
    net = plain_net([], max_epochs=1)
    masks = {n: torch.rand(p.shape) < 0.5 for n, p in net.module_.named_parameters()
             if n.endswith("weight")}
    net.callbacks = [("masks", ApplyMasks(masks))]
    net.initialize_callbacks()
    net.partial_fit(X, y)
    params = dict(net.module_.named_parameters())
    for name, mask in masks.items():
        assert (params[name][~mask] == 0.0).all()
    net.callbacks = [("masks", ApplyMasks([1, 2]))]
    net.initialize_callbacks()
    with pytest.raises(TypeError, match="ApplyMasks needs a dict of masks or a Pruner"):
        net.partial_fit(X, y)


def test_large_tensors_masked_during_training_stay_exactly_zero():
    """Tensors above FLOAT_MASK_MAX_NUMEL are masked with their bool mask during
    training with Adam; pruned weights must still be exactly 0.0."""
    module = nn.Sequential(nn.Linear(1040, 1024), nn.Linear(1024, 2))
    assert module[0].weight.numel() > FLOAT_MASK_MAX_NUMEL
    g = torch.Generator().manual_seed(0)
    masks = {
        "0.weight": torch.rand(1024, 1040, generator=g) < 0.3,
        "1.weight": torch.rand(2, 1024, generator=g) < 0.3,
    }
    net = NeuralNet(
        module, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=0.01,
        max_epochs=2, batch_size=16, train_split=None,
        callbacks=[ApplyMasks(masks)], verbose=0,
    )
    net.fit(torch.randn(64, 1040), torch.randint(0, 2, (64,)))
    for name, p in net.module_.named_parameters():
        if name in masks:
            assert int((p[~masks[name]] != 0).sum()) == 0
            assert int((p[masks[name]] != 0).sum()) == int(masks[name].sum())


def test_rewind_checkpoint_and_masks_in_a_plain_skorch_net(blobs, plain_net):
    X, y = blobs
    log = []
    net = plain_net([("states", EpochStates(log))])
    pruner = Pruner(net.module_, prune_rate=0.5, random_state=0)
    pruner.prune()  # prune at init, then train the sparse net
    net.callbacks = [("states", EpochStates(log)), ("masks", ApplyMasks(pruner)),
                     ("late", RewindCheckpoint(pruner, 2))]
    net.initialize_callbacks()
    net.partial_fit(X, y)
    assert len(log) == 4
    assert dict(net.callbacks_)["late"].done_
    for name, mask in pruner.masks.items():
        assert torch.equal(pruner.rewind_point[name], log[1][name])  # epoch 2
        assert torch.equal(pruner.round_start[name], log[1][name])
        trained = dict(net.module_.named_parameters())[name].detach()
        assert torch.equal(trained != 0, mask)
    pruner.prune_and_rewind()
    for name, param in net.module_.named_parameters():
        expected = log[1][name]
        if name in pruner.masks:
            expected = expected * pruner.masks[name]
        assert torch.equal(param.detach(), expected)


def test_rewind_checkpoint_at_epoch_zero_keeps_the_initialization(blobs, plain_net):
    X, y = blobs
    net = plain_net([], max_epochs=2)
    init = {n: p.detach().clone() for n, p in net.module_.named_parameters()}
    pruner = Pruner(net.module_, prune_rate=0.5)
    checkpoint = RewindCheckpoint(pruner, 0)
    net.callbacks = [("late", checkpoint)]
    net.initialize_callbacks()
    net.partial_fit(X, y)
    assert checkpoint.done_
    for name, value in init.items():
        assert torch.equal(pruner.rewind_point[name], value)


def test_early_bird_stops_a_plain_skorch_fit(blobs, plain_net):
    X, y = blobs
    net = plain_net([], max_epochs=40, lr=0.01)
    pruner = Pruner(net.module_, prune_rate=0.5)
    bird = EarlyBird(pruner, threshold=0.02, patience=3)
    net.callbacks = [("bird", bird)]
    net.initialize_callbacks()
    net.partial_fit(X, y)  # skorch ends fit on the StopRound (a KeyboardInterrupt)
    assert bird.epoch_ is not None and bird.epoch_ < 40
    assert len(net.history) == bird.epoch_
    distances = net.history[1:, "mask_distance"]
    assert all(d < 0.02 for d in distances[-3:])
    # drawing the ticket never prunes: the pruner's masks are untouched
    assert all(bool(m.all()) for m in pruner.masks.values())


def test_early_bird_counts_settled_epochs():
    torch.manual_seed(0)
    pruner = Pruner(nn.Linear(3, 2), prune_rate=0.5)

    class FakeNet:
        history = History()

    fake = FakeNet()
    bird = EarlyBird(pruner, threshold=0.5, patience=2).initialize()
    fake.history.new_epoch()
    bird.on_epoch_end(fake)  # first masks: nothing to compare yet
    fake.history.new_epoch()
    bird.on_epoch_end(fake)
    assert fake.history[-1, "mask_distance"] == 0.0
    fake.history.new_epoch()
    with pytest.raises(StopRound, match="early-bird ticket drawn at epoch 3"):
        bird.on_epoch_end(fake)
    assert bird.epoch_ == 3
    assert issubclass(StopRound, KeyboardInterrupt)  # how skorch lets it stop fit
