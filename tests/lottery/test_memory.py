"""What a fit does to keep its memory down changes no result: copies spilled
to temporary files, the rewind point parked while a round trains, freed
memory given back, and the dense round's net holding no second copy."""

import pytest
import torch
from skorch.callbacks import Callback

import sklottery.lottery as rounds
import sklottery.lottery._memory as spill_module
from sklottery import LotteryTicketClassifier
from sklottery.lottery._memory import Spilled, spill, unspill
from sklottery.pruning.masks import load_values


def test_spill_round_trips_exactly(monkeypatch):
    tensors = {"w": torch.randn(4, 3), "n": torch.tensor(7)}
    assert spill(tensors) is tensors  # small: kept as they are
    monkeypatch.setattr(spill_module, "SPILL_BYTES", 0)
    stored = spill(tensors)
    assert isinstance(stored, Spilled)
    back = unspill(stored)
    assert back.keys() == tensors.keys()
    for n in tensors:
        assert torch.equal(back[n], tensors[n]) and back[n].dtype == tensors[n].dtype
    assert unspill(stored)["w"].data_ptr() != back["w"].data_ptr()


def test_spill_keeps_tensors_in_memory_when_no_file_can_be_written(monkeypatch):
    def no_file():
        raise OSError("read-only file system")

    monkeypatch.setattr(spill_module, "SPILL_BYTES", 0)
    monkeypatch.setattr(spill_module.tempfile, "TemporaryFile", no_file)
    tensors = {"w": torch.ones(3)}
    assert spill(tensors) is tensors


def test_load_values_share_makes_parameters_hold_the_tensors():
    layer = torch.nn.Linear(3, 2)
    weight = layer.weight
    values = {"weight": torch.randn(2, 3), "bias": torch.randn(2)}
    load_values(layer, values, share=True)
    assert layer.weight is weight  # the same Parameter object
    assert layer.weight.data_ptr() == values["weight"].data_ptr()


class Interrupt(Callback):
    """Ctrl-C at the end of training batch ``at`` (counted over the fit)."""

    count = 0  # class level: the fit deep-copies its callbacks every round

    def __init__(self, at):
        self.at = at

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            Interrupt.count += 1
            if Interrupt.count == self.at:
                raise KeyboardInterrupt


@pytest.fixture
def no_thresholds(monkeypatch):
    """Everything a large fit does, on a tiny one: spill every copy, park the
    rewind point while training, trim after every round."""
    monkeypatch.setattr(spill_module, "SPILL_BYTES", 0)
    monkeypatch.setattr(rounds, "TRIM_BYTES", 0)


def _assert_same_ticket(a, b):
    """Same masks, weights and rewind point, bit for bit."""
    for n, m in a.masks_.items():
        assert torch.equal(m, b.masks_[n])
    for p, q in zip(a.net_.module_.parameters(), b.net_.module_.parameters()):
        assert torch.equal(p, q)
    for n, t in a.rewind_point_.items():
        assert torch.equal(t, b.rewind_point_[n])


def _fit(tiny_net, data, **kw):
    X, y = data
    params = {"n_rounds": 3, "prune_rate": 0.5, "random_state": 0, **kw}
    return LotteryTicketClassifier(tiny_net(max_epochs=2), **params).fit(X, y)


@pytest.mark.parametrize(
    "params",
    [
        {},
        pytest.param(
            {"select": "best"},
            marks=pytest.mark.filterwarnings("ignore:select='best' without"),
        ),
        {"rewind": "reinit"},
        {"rewind": "lr"},
        {"sparse_training": True},
    ],
)
def test_large_fit_measures_change_no_result(tiny_net, data, monkeypatch, params):
    plain = _fit(tiny_net, data, **params)
    monkeypatch.setattr(spill_module, "SPILL_BYTES", 0)
    monkeypatch.setattr(rounds, "TRIM_BYTES", 0)
    spilled = _fit(tiny_net, data, **params)
    assert plain.selected_round_ == spilled.selected_round_
    assert plain.rounds_["score"].tolist() == spilled.rounds_["score"].tolist()
    _assert_same_ticket(plain, spilled)


def test_interrupt_falls_back_to_a_spilled_round(tiny_net, data, no_thresholds):
    X, y = data
    full = _fit(tiny_net, data, n_rounds=1)  # rounds 0 and 1 only
    Interrupt.count = 0
    # tiny_net trains 2 epochs of ceil(len(X) / 64) batches a round; stop in round 2
    per_round = 2 * -(-len(X) // 64)
    net = tiny_net(max_epochs=2, callbacks=[("stop", Interrupt(2 * per_round + 1))])
    with pytest.warns(RuntimeWarning, match="round 1"):
        clf = LotteryTicketClassifier(
            net, n_rounds=3, prune_rate=0.5, random_state=0
        ).fit(X, y)
    assert clf.interrupted_ and clf.selected_round_ == 1
    # the round and the rewind point came back from their files, whole
    _assert_same_ticket(full, clf)


def test_return_freed_memory_skips_small_nets():
    assert rounds.return_freed_memory(1024) is False


def test_return_freed_memory_runs_for_large_nets_where_glibc_has_malloc_trim():
    has_trim = spill_module._malloc_trim() is not None
    assert rounds.return_freed_memory(1 << 30) is has_trim
