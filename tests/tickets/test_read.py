"""Reading tickets: truncated and crafted safetensors files, the values and
mask bits, bounded memory, and a ticket against the wrong network."""

import copy
import os
import struct
import tracemalloc

import numpy as np
import pytest
import torch
from torch import nn

from sklottery import MLP
from sklottery.tickets import apply_ticket, check_compatible, load_ticket, save_ticket
from tests.tickets import ticket_helpers as th


def _outer(**fields):
    """Set fields of the safetensors entry of 'conv.bias' (dense)."""
    return lambda d: th.craft(d, outer=lambda o: o["t1.dense"].update(fields))


class TestCraftedFiles:
    def test_truncated_and_garbage(self, saved):
        data = saved[0].read_bytes()
        for cut in (0, 7, 8, 30, len(data) // 2, len(data) - 1):
            with pytest.raises(ValueError, match="not a valid sklottery ticket file"):
                th.load_bytes(data[:cut])
        with pytest.raises(ValueError, match="header length"):
            th.load_bytes(b"definitely not a ticket file" * 10)
        with pytest.raises(ValueError, match="not a valid sklottery ticket file"):
            th.load_bytes(data + b"\0")

    @pytest.mark.parametrize(
        "edit, match",
        [
            # the header length
            (lambda d: struct.pack("<Q", 2**62) + d[8:], "header length"),
            # safetensors entries: huge shapes, byte ranges, dtypes
            (_outer(shape=[10**12]),
             r"needs 4000000000000 bytes"),
            (_outer(shape=[-1]),
             "non-negative ints"),
            (lambda d: th.craft(d, outer=lambda o: o["t1.dense"].update(
                shape=[1] * 40)), "at most 32"),
            (lambda d: th.craft(d, outer=lambda o: o["t1.dense"].update(
                data_offsets=[0, 10**15])), "truncated or corrupt"),
            (_outer(data_offsets=[5, 2]), "within the"),
            (_outer(dtype="F8_E4M3"),
             "unsupported dtype"),
            (_outer(dtype="I32"),
             "the header implies float32"),
            (lambda d: th.craft(d, outer=lambda o: o.update(
                stray={"dtype": "U8", "shape": [0], "data_offsets": [0, 0]})),
             "does not describe"),
            (lambda d: th.craft(d, outer=lambda o: o.pop("r1.dense"), body=lambda b: b),
             "byte ranges|missing"),
        ],
    )
    def test_bad_layout(self, saved, edit, match):
        with pytest.raises(ValueError, match=match):
            th.load_bytes(edit(saved[0].read_bytes()))

    def test_values_and_bits(self, saved):
        data = saved[0].read_bytes()
        i = th.fc_index(data)
        values = th.tensor(data, f"t{i}.values", np.float32)
        for bad in (th.nan_first(values), np.full_like(values, np.inf)):
            with pytest.raises(ValueError, match="'fc.weight' holds NaN or infinite"):
                th.load_bytes(th.set_tensor(data, f"t{i}.values", bad))
        bits = th.tensor(data, f"t{i}.bits", np.uint8)
        with pytest.raises(ValueError, match="keeps .* 'n_kept' says"):
            th.load_bytes(th.set_tensor(data, f"t{i}.bits", bits | 1))
        rewind = th.tensor(data, f"r{i}.values", np.float32)
        with pytest.raises(ValueError, match="rewind point of 'fc.weight'"):
            th.load_bytes(th.set_tensor(data, f"r{i}.values", th.nan_first(rewind)))

    def test_padding_bits(self, tmp_path):
        net = nn.Linear(3, 3)  # 9 weights: 7 padding bits in the second byte
        masks = {"weight": torch.ones(3, 3, dtype=torch.bool)}
        data = save_ticket(tmp_path / "t", net, masks).read_bytes()
        bits = th.tensor(data, "t0.bits", np.uint8) | np.array([0, 1], np.uint8)
        with pytest.raises(ValueError, match="padding bits"):
            th.load_bytes(th.set_tensor(data, "t0.bits", bits))

    def test_huge_declared_shapes_allocate_little(self, saved):
        data = saved[0].read_bytes()
        crafted = [
            th.craft(data, outer=lambda o: o["t1.dense"].update(shape=[10**12])),
            th.craft(data, inner=lambda h: h["tensors"][0].update(shape=[2**40])),
            struct.pack("<Q", 2**40) + data[8:],
        ]
        tracemalloc.start()
        try:
            for bad in crafted:
                with pytest.raises(ValueError):
                    th.load_bytes(bad)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 50 * len(data) + 2**20


class TestMismatchedNetwork:
    @pytest.mark.parametrize(
        "make, match",
        [
            (
                lambda: th.Net(hidden=17),
                r"'fc.weight': ticket shape \(16, 30\), network",
            ),
            (
                lambda: th.Net().double(),
                "ticket dtype torch.float32, network torch.float64",
            ),
            (lambda: MLP(30, 2, hidden_units=(16,)), "tensors missing from the ticket"),
        ],
    )
    def test_clear_error_and_nothing_applied(self, saved, make, match):
        torch.manual_seed(3)
        other = make()
        before = th.state(other)
        # checked against the network before any tensor is read
        with pytest.raises(ValueError, match=match):
            load_ticket(saved[0], other)
        with pytest.raises(ValueError, match=match):
            apply_ticket(load_ticket(saved[0]), other)
        for name, value in th.state(other).items():
            assert torch.equal(value, before[name])

    def test_pruned_tensors_must_be_the_prunable_ones(self, tmp_path):
        net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
        masks = {"0.weight": torch.ones(3, 4, dtype=torch.bool)}  # "1.weight" missing
        ticket = load_ticket(save_ticket(tmp_path / "t", net, masks))
        with pytest.raises(ValueError, match="prunable tensors are"):
            check_compatible(ticket, copy.deepcopy(net))


# -- what a ticket is read from ------------------------------------------------
def _in_thread(fn, timeout=20):
    """``fn()``'s exception (None if it returned) or "hung" after ``timeout``."""
    import threading

    out = []

    def run():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)
        else:
            out.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return out[0] if out else "hung"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    from sklottery import LotteryTicketClassifier

    fifo = tmp_path / "x.safetensors"
    os.mkfifo(fifo)
    try:
        for load in (lambda: load_ticket(fifo), lambda: load_ticket(tmp_path / "x"),
                     lambda: LotteryTicketClassifier().load_ticket(fifo)):
            got = _in_thread(load)
            assert isinstance(got, ValueError), got
            assert "is not a regular file" in str(got)
    finally:  # unblock a reader that did block, so no thread is left waiting
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # no reader waiting: nothing to unblock
            pass


@pytest.mark.parametrize("bad", [None, 123, 4.5, b"t.safetensors"])
def test_file_must_be_a_path_or_a_file_object(bad, saved):
    from sklottery import LotteryTicketClassifier

    net, masks = saved[1], saved[2]
    for call in (lambda: load_ticket(bad),
                 lambda: LotteryTicketClassifier().load_ticket(bad),
                 lambda: save_ticket(bad, net, masks)):
        with pytest.raises(TypeError, match="file must be a path .* got "
                                            + type(bad).__name__):
            call()


def test_a_text_file_object_is_a_type_error(saved):
    import io

    with pytest.raises(TypeError, match="binary mode"):
        load_ticket(io.StringIO("not bytes"))
