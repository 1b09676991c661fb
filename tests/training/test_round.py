"""One round of skorch training (sklottery.training._round)."""

import math

import pytest
import torch
from skorch.callbacks import Callback, Checkpoint, LRScheduler

from sklottery.training import (
    StopRound,
    install_round_callbacks,
    last_value,
    rebuild_optimizer,
    release_optimizer,
    round_checkpoints,
    train_round,
)

SIZES = {"module__input_units": 64, "module__output_units": 10}


class Raise(Callback):
    def __init__(self, exc, at_batch=2):
        self.exc, self.at_batch = exc, at_batch

    def initialize(self):
        self.seen_ = 0
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.seen_ += 1
            if self.seen_ == self.at_batch:
                raise self.exc("stop")


def test_train_round_starts_fresh_every_round(net, data):
    X, y = map(torch.as_tensor, data)
    assert train_round(net, X, y) is False
    first_optimizer = net.optimizer_
    assert len(net.history) == 2
    assert train_round(net, X, y) is False
    assert len(net.history) == 2  # a new history, not a continued one
    assert net.optimizer_ is not first_optimizer


def test_train_round_max_epochs_overrides_the_nets_own(net, data):
    X, y = map(torch.as_tensor, data)
    epochs = []

    class Count(Callback):
        def on_epoch_end(self, net, **kwargs):
            epochs.append(len(net.history))

    assert train_round(net, X, y, max_epochs=3, callbacks=[("n", Count())]) is False
    assert len(net.history) == 3 and epochs == [1, 2, 3]
    assert net.max_epochs == 2  # nothing to restore: the net was not changed
    assert train_round(net, X, y, max_epochs=1) is False
    assert len(net.history) == 1
    train_round(net, X, y)
    assert len(net.history) == 2


def test_train_round_callbacks_are_for_this_round_only(net, data):
    X, y = map(torch.as_tensor, data)
    seen = []

    class Seen(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append(len(net.history))

    train_round(net, X, y, callbacks=[("seen", Seen())])
    assert seen == [1, 2]
    train_round(net, X, y)
    assert seen == [1, 2]


def test_train_round_at_frozen_learning_rates(tiny_net, data):
    X, y = map(torch.as_tensor, data)
    schedule = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    net = tiny_net(
        max_epochs=2, lr=0.1, callbacks=[("sched", schedule)],
        module__input_units=64, module__output_units=10,
    ).initialize()
    train_round(net, X, y)
    assert net.optimizer_.param_groups[0]["lr"] == pytest.approx(0.025)
    train_round(net, X, y, lrs=[0.003])
    # the scheduler is left out: the round trains at the given rate throughout
    assert net.optimizer_.param_groups[0]["lr"] == 0.003
    train_round(net, X, y)
    assert net.optimizer_.param_groups[0]["lr"] == pytest.approx(0.025)


@pytest.mark.parametrize(
    "exc, interrupted", [(KeyboardInterrupt, True), (StopRound, False)]
)
def test_train_round_tells_ctrl_c_from_a_deliberate_stop(net, data, exc, interrupted):
    X, y = map(torch.as_tensor, data)
    assert train_round(net, X, y, callbacks=[("raise", Raise(exc))]) is interrupted
    assert len(net.history) == 1  # ended in the first epoch


def test_install_round_callbacks_can_leave_out_lr_schedulers(tiny_net):
    schedule = LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1)
    net = tiny_net(callbacks=[("sched", schedule)], **SIZES).initialize()
    extra = ("extra", Raise(KeyboardInterrupt))
    install_round_callbacks(net, [extra])
    names = [n for n, _ in net.callbacks_]
    assert "sched" in names and names[-1] == "extra"
    install_round_callbacks(net, [extra], drop_lr_schedulers=True)
    names = [n for n, _ in net.callbacks_]
    assert "sched" not in names and names[-1] == "extra"


def test_round_checkpoints_name_files_per_round_and_restore(tiny_net, tmp_path):
    cp = Checkpoint(dirname=str(tmp_path), fn_prefix="mine_")
    net = tiny_net(callbacks=[("cp", cp)], **SIZES).initialize()
    restore = round_checkpoints(net, 3)
    (initialized,) = [cb for n, cb in net.callbacks_ if n == "cp"]
    assert initialized.fn_prefix == "mine_round3_"
    restore()
    assert initialized.fn_prefix == "mine_"


def test_release_optimizer_keeps_only_the_learning_rates(net, data):
    X, y = map(torch.as_tensor, data)
    train_round(net, X, y)
    assert net.optimizer_.state
    release_optimizer(net)
    assert not net.optimizer_.state
    assert all(p.grad is None for p in net.module_.parameters())
    assert net.optimizer_.param_groups[0]["lr"] == 0.02


def test_rebuild_optimizer_keeps_the_learning_rates(net, data):
    X, y = map(torch.as_tensor, data)
    train_round(net, X, y)
    old = net.optimizer_
    old.param_groups[0]["lr"] = 0.0042
    rebuild_optimizer(net)
    assert net.optimizer_ is not old and not net.optimizer_.state
    assert net.optimizer_.param_groups[0]["lr"] == 0.0042


def test_last_value(net, data):
    X, y = map(torch.as_tensor, data)
    train_round(net, X, y)
    assert last_value(net.history, "train_loss") == net.history[-1, "train_loss"]
    assert math.isnan(last_value(net.history, "valid_loss"))
    net.initialize_history()
    assert math.isnan(last_value(net.history, "train_loss"))
