"""Each rewind mode leaves exactly the weights it promises, and the
criterion's ``w_init`` is always the round's start."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, LRScheduler

from sklottery import MLP, LotteryTicketClassifier, Pruner
from sklottery.pruning import REWIND_MODES, check_rewind, rewind_values
from sklottery.pruning.rewind import fresh_values

X, Y = make_classification(200, 8, n_informative=5, n_classes=3, random_state=0)
X = X.astype(np.float32)
MAX_EPOCHS = 4


class Log(list):
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
    """A criterion recording the w_init it is given (large_final otherwise)."""

    def __init__(self):
        self.calls = []

    def __call__(self, w_init, w_final):
        self.calls.append(w_init.clone())
        return w_final.abs()

    def __deepcopy__(self, memo):  # clone() must keep the same recorder
        return self


def fit(rewind, strategy="large_final", **kw):
    recorder = Recorder(Log())
    net = NeuralNetClassifier(
        MLP,
        module__hidden_units=(16,),
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=0.2,
        max_epochs=MAX_EPOCHS,
        batch_size=50,
        train_split=None,
        callbacks=[
            ("recorder", recorder),
            ("sched", LRScheduler(torch.optim.lr_scheduler.StepLR, step_size=1,
                                  gamma=0.5)),
        ],
        verbose=0,
    )
    clf = LotteryTicketClassifier(
        net, n_rounds=2, prune_rate=0.5, rewind=rewind, strategy=strategy,
        random_state=0, **kw,
    ).fit(X, Y)
    return clf, recorder.rounds()


WEIGHTS = ("hidden.0.weight", "output.weight")


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


@pytest.mark.parametrize("rewind", ["init", 2, "none", "lr"])
def test_rewind_values_exact(rewind):
    clf, rounds = fit(rewind)
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


def test_rewind_none_freezes_lr_and_lr_replays_schedule():
    _, rounds_none = fit("none")
    _, rounds_lr = fit("lr")
    lrs0 = [lr for _, lr in rounds_none[0][1]]
    # the recorder runs before the scheduler steps: StepLR halves after each epoch
    assert lrs0 == [0.2, 0.1, 0.05, 0.025]
    final = 0.0125  # the learning rate round 0 ended with
    for r in (1, 2):
        # fine-tuning: the optimizer stays at the final learning rate
        assert [lr for _, lr in rounds_none[r][1]] == [final] * MAX_EPOCHS
        # learning-rate rewinding: the schedule is replayed from its start
        assert [lr for _, lr in rounds_lr[r][1]] == lrs0


def test_reinit_gives_fresh_values_of_the_same_distribution():
    _, rounds = fit("reinit")
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


def test_reshuffle_permutes_kept_initial_values_within_each_layer():
    _, rounds = fit("reshuffle")
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


def test_signed_constant_is_sign_times_init_std():
    _, rounds = fit("signed_constant")
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
def test_criterion_w_init_is_the_rounds_start(rewind):
    crit = InitRecorder()
    _, rounds = fit(rewind, strategy=crit)
    calls = crit.calls  # one per tensor and prune, in order
    assert len(calls) == 2 * len(WEIGHTS)
    for prune in (0, 1):  # the prunes after round 0 and round 1
        if prune == 0 and rewind == 2:
            start = rounds[0][1][1][0]  # late rewinding: the epoch-2 state
        else:
            start = rounds[prune][0]
        for i, n in enumerate(WEIGHTS):
            assert torch.equal(calls[2 * prune + i], start[n]), (prune, n)


def test_late_rewinding_past_max_epochs_is_an_error():
    with pytest.raises(ValueError, match="exceeds the net's max_epochs=4"):
        fit(5)


def test_unknown_rewind_lists_valid_modes():
    for bad in ("initial", -1, True, 1.5):
        with pytest.raises(ValueError, match="valid rewind modes are"):
            check_rewind(bad)
    assert set(REWIND_MODES) == {
        "init", "reinit", "reshuffle", "signed_constant", "none", "lr"
    }
    with pytest.raises(ValueError, match="valid rewind modes"):
        LotteryTicketClassifier(rewind="later").fit(X, Y)


def test_pruner_rewind_modes_and_reference():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Linear(5, 3))
    init = {n: p.detach().clone() for n, p in net.named_parameters()}
    pruner = Pruner(net, prune_rate=0.4, rewind="reinit", random_state=1)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)  # "training"
    pruner.prune()
    pruner.rewind()
    after = dict(net.named_parameters())
    for n, m in pruner.masks.items():
        assert torch.equal(after[n].detach()[~m], torch.zeros(int((~m).sum())))
        assert torch.equal(pruner.reference[n], after[n].detach())
        assert not torch.equal(after[n].detach()[m], init[n][m])


def test_fresh_values_deterministic_and_module_untouched():
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.BatchNorm1d(5),
                              torch.nn.LSTM(5, 4), )
    before = {n: t.clone() for n, t in net.state_dict().items()}
    a, b = fresh_values(net, 7), fresh_values(net, 7)
    assert a.keys() == set(before) | {n for n, _ in net.named_parameters()}
    for n in a:
        assert torch.equal(a[n], b[n])
    for n, t in net.state_dict().items():
        assert torch.equal(t, before[n])
    assert not torch.equal(a["0.weight"], fresh_values(net, 8)["0.weight"])


def test_rewind_values_pure():
    point = {"w": torch.tensor([[1.0, -2.0], [3.0, -4.0]]), "b": torch.tensor([9.0])}
    current = {"w": torch.full((2, 2), 5.0), "b": torch.tensor([1.0])}
    masks = {"w": torch.tensor([[True, False], [True, True]])}
    g = torch.Generator().manual_seed(0)
    kw = {"point": point, "current": current, "masks": masks, "generator": g}
    assert rewind_values("init", **kw) == point
    assert rewind_values(3, **kw) == point
    assert rewind_values("none", **kw) == current
    assert rewind_values("lr", **kw) == current
    sc = rewind_values("signed_constant", **kw)
    std = float(point["w"].std(unbiased=False))
    assert torch.allclose(sc["w"], torch.tensor([[std, -std], [std, -std]]))
    assert sc["b"] is point["b"]
    rs = rewind_values("reshuffle", **kw)
    assert rs["w"][0, 1] == -2.0  # pruned position untouched (zeroed on load)
    assert sorted(rs["w"][masks["w"]].tolist()) == [-4.0, 1.0, 3.0]
    with pytest.raises(ValueError, match="fresh values"):
        rewind_values("reinit", **kw)


def test_fresh_values_leave_the_global_generator_alone():
    net = torch.nn.Linear(4, 3)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    fresh_values(net, 11)
    assert torch.equal(torch.rand(3), expected)


def test_numpy_integer_rewind_epoch():
    assert check_rewind(np.int64(2)) == 2 and type(check_rewind(np.int64(2))) is int
    clf, rounds = fit(np.int64(2))
    masks = round_masks(rounds, 1)
    assert_state_equal(rounds[1][0], masked(rounds[0][1][1][0], masks))
