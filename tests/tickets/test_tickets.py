"""Ticket files: bit-exact round trip, size, the path rule, every crafted file."""

import copy
import io
import json
import math
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from tests.tickets import ticket_helpers as th
import torch
from torch import nn

from sklottery import MLP, Pruner
from sklottery.tickets import (
    DEFAULT_SUFFIX,
    FORMAT_VERSION,
    apply_ticket,
    check_compatible,
    load_ticket,
    save_ticket,
    ticket_path,
)

ROUNDS = [
    {"round": 0, "weights_remaining": 1.0, "score": 0.5, "valid_loss": float("nan")},
    {"round": 1, "weights_remaining": 0.1, "score": 0.75, "valid_loss": 0.25},
]


class Net(nn.Module):
    """Linear, conv, batch norm (float and int buffers) and an LSTM."""

    def __init__(self, hidden=16):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3)
        self.norm = nn.BatchNorm1d(3)
        self.rnn = nn.LSTM(3, 5, batch_first=True)
        self.fc = nn.Linear(5 * 6, hidden)
        self.out = nn.Linear(hidden, 2)

    def forward(self, x):
        h = self.norm(self.conv(x)).transpose(1, 2)
        h, _ = self.rnn(h)
        return self.out(torch.relu(self.fc(h.reshape(len(h), -1))))


def _ticket_net(seed=0, rate=0.9, **kwargs):
    torch.manual_seed(seed)
    net = Net(**kwargs)
    net.train()
    net(torch.randn(4, 2, 8))  # moves the batch-norm statistics
    pruner = Pruner(net, prune_rate=rate, output_rate_factor=None)
    init = pruner.rewind_point
    with torch.no_grad():  # "training": move every weight
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    pruner.prune()
    return net, pruner.masks, init


def _state(module):
    state = dict(module.named_parameters())
    state.update(module.named_buffers())
    return {n: t.detach().clone() for n, t in state.items()}


@pytest.fixture
def saved(tmp_path):
    net, masks, init = _ticket_net()
    path = save_ticket(
        tmp_path / "ticket",
        net,
        masks,
        rounds=ROUNDS,
        rewind_point=init,
        info={"who": "test", "n": 3},
        arrays={"classes": np.array(["a", "b"]), "w": np.arange(3.0)},
    )
    return path, net, masks, init


def _fc_index(data):
    return th.spec_index(th.split(data)[1], "fc.weight")


class TestRoundTrip:
    def test_bit_exact_survivors_masks_and_history(self, saved):
        path, net, masks, init = saved
        assert path.name == "ticket" + DEFAULT_SUFFIX
        ticket = load_ticket(path)
        assert set(ticket.masks) == set(masks)
        for name, mask in masks.items():
            assert torch.equal(ticket.masks[name], mask)
        for name, value in _state(net).items():
            assert ticket.values[name].dtype == value.dtype
            assert torch.equal(ticket.values[name], value), name
            # rewind point: the survivors, bit for bit; pruned entries zero
            mask = masks.get(name)
            expected = init[name] if mask is None else init[name] * mask
            assert torch.equal(ticket.rewind_point[name], expected), name
        assert ticket.rounds[1] == ROUNDS[1]
        assert math.isnan(ticket.rounds[0]["valid_loss"])
        assert ticket.info == {"who": "test", "n": 3}
        assert ticket.arrays["classes"].tolist() == ["a", "b"]
        assert ticket.arrays["w"].tolist() == [0.0, 1.0, 2.0]
        assert ticket.estimator is None and ticket.state == {}

    def test_apply_to_a_fresh_network(self, saved):
        path, net, masks, _ = saved
        torch.manual_seed(1)
        fresh = Net()
        got = apply_ticket(load_ticket(path, fresh), fresh)
        for name, value in _state(net).items():
            assert torch.equal(_state(fresh)[name], value)
        assert all(torch.equal(got[n], masks[n]) for n in masks)
        x = torch.randn(3, 2, 8)
        net.eval(), fresh.eval()
        with torch.no_grad():
            assert torch.equal(fresh(x), net(x))

    def test_file_object_and_no_rewind_point(self):
        net, masks, _ = _ticket_net()
        buf = io.BytesIO()
        assert save_ticket(buf, net, masks) is None
        buf.seek(0)
        ticket = load_ticket(buf)
        assert ticket.rewind_point is None and ticket.rounds == []

    def test_is_a_safetensors_file(self, saved):
        safetensors = pytest.importorskip("safetensors.numpy")
        path, net, masks, _ = saved
        tensors = safetensors.load_file(path)
        i = _fc_index(path.read_bytes())
        kept = tensors[f"t{i}.values"]
        assert kept.dtype == np.float32 and len(kept) == int(masks["fc.weight"].sum())

    def test_bfloat16_round_trip(self, tmp_path):
        net = nn.Linear(3, 2).to(torch.bfloat16)
        masks = {"weight": torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.bool)}
        ticket = load_ticket(save_ticket(tmp_path / "b", net, masks))
        assert ticket.values["weight"].dtype == torch.bfloat16
        expected = net.weight.detach() * masks["weight"]
        assert torch.equal(ticket.values["weight"], expected)

    def test_size_at_90_percent_is_at_most_15_percent_of_dense(self, tmp_path):
        torch.manual_seed(0)
        net = MLP(784, 10, hidden_units=(300, 100))
        pruner = Pruner(net, prune_rate=0.9, output_rate_factor=None)
        pruner.prune()
        assert pruner.sparsity() == pytest.approx(0.9, abs=1e-3)
        path = save_ticket(tmp_path / "lenet", net, pruner.masks)
        dense_bytes = 4 * sum(p.numel() for p in net.parameters())
        assert path.stat().st_size <= 0.15 * dense_bytes

    def test_refused_on_save(self, tmp_path):
        masks = {"weight": torch.ones(2, 3, dtype=torch.bool)}
        tensors = {"weight": torch.zeros(2, 3, dtype=torch.complex128)}
        with pytest.raises(ValueError, match="dtype torch.complex128 is not supported"):
            save_ticket(tmp_path / "t", tensors, masks)
        net = nn.Linear(3, 2)
        with pytest.raises(ValueError, match="only numeric, bool and str"):
            save_ticket(tmp_path / "t", net, masks, arrays={"x": np.array([{}])})
        with pytest.raises(ValueError, match="bool tensor of shape"):
            save_ticket(tmp_path / "t", net, {"weight": torch.ones(2, 3)})
        with torch.no_grad():
            net.bias[0] = float("nan")
        with pytest.raises(ValueError, match="NaN or infinite"):
            save_ticket(tmp_path / "t", net, masks)
        assert not list(tmp_path.iterdir())


class TestPathRule:
    def test_save_and_load_agree_on_the_suffix(self, tmp_path, monkeypatch):
        net, masks, _ = _ticket_net()
        monkeypatch.chdir(tmp_path)
        assert save_ticket("t", net, masks) == ticket_path("t")
        assert (tmp_path / "t.safetensors").is_file()
        assert set(load_ticket("t").masks) == set(masks)
        # any suffix is used as given; the format comes from the content
        save_ticket("u.bin", net, masks)
        assert set(load_ticket("u.bin").masks) == set(masks)
        assert ticket_path("dir/t.ticket") == ticket_path("dir/t.ticket")

    def test_missing_file_and_directory(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            load_ticket(tmp_path / "nope")
        net, masks, _ = _ticket_net()
        with pytest.raises(IsADirectoryError):
            save_ticket(tmp_path, net, masks)


def _outer(**fields):
    """Set fields of the safetensors entry of 'conv.bias' (dense)."""
    return lambda d: th.craft(d, outer=lambda o: o["t1.dense"].update(fields))


def _inner(**fields):
    return lambda d: th.craft(d, inner=lambda h: h.update(fields))


def _raw_inner(data, text):
    outer, _, body = th.split(data)
    return th.join(outer, None, body, raw_inner=text)


def _load_bytes(data, module=None):
    return load_ticket(io.BytesIO(data), module)


def _nan_first(values):
    values = values.copy()
    values[0] = np.nan
    return values


class TestCraftedFiles:
    def test_truncated_and_garbage(self, saved):
        data = saved[0].read_bytes()
        for cut in (0, 7, 8, 30, len(data) // 2, len(data) - 1):
            with pytest.raises(ValueError, match="not a valid sklottery ticket file"):
                _load_bytes(data[:cut])
        with pytest.raises(ValueError, match="header length"):
            _load_bytes(b"definitely not a ticket file" * 10)
        with pytest.raises(ValueError, match="not a valid sklottery ticket file"):
            _load_bytes(data + b"\0")

    @pytest.mark.parametrize(
        "edit, match",
        [
            # header length and JSON
            (lambda d: struct.pack("<Q", 2**62) + d[8:], "header length"),
            (lambda d: _raw_inner(d, th.nested(100_000)),
             "nested"),
            (lambda d: _raw_inner(d, "{"), "not valid JSON"),
            (_inner(version=FORMAT_VERSION + 1),
             "format version 3 is not supported"),
            (lambda d: th.craft(d, inner=lambda h: h.update(version=1)),
             "'version' is 1, but the file is a safetensors file"),
            (lambda d: th.craft(d, inner=lambda h: h.update(format="other")),
             "does not name the format"),
            (lambda d: th.craft(d, inner=lambda h: h.update(rounds={"a": 1})),
             "'rounds' must be a list"),
            (lambda d: th.craft(d, inner=lambda h: h.update(extra=1)),
             "unknown header fields"),
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
            # the sklottery header against the tensors
            (lambda d: th.craft(d, inner=lambda h: h["tensors"][0].update(
                dtype="object")), "'dtype' of 'conv.weight'"),
            (lambda d: th.craft(d, inner=lambda h: h["tensors"][0].update(
                shape=[10**6, 10**6])), "header implies|needs"),
            (lambda d: th.craft(d, inner=lambda h: h["tensors"].append(
                h["tensors"][0])), "appears twice"),
            (lambda d: th.craft(d, inner=lambda h: h["tensors"][
                th.spec_index(h, "fc.weight")].update(n_kept=10**9)), "'n_kept'"),
        ],
    )
    def test_bad_header(self, saved, edit, match):
        with pytest.raises(ValueError, match=match):
            _load_bytes(edit(saved[0].read_bytes()))

    def test_values_and_bits(self, saved):
        data = saved[0].read_bytes()
        i = _fc_index(data)
        values = th.tensor(data, f"t{i}.values", np.float32)
        for bad in (_nan_first(values), np.full_like(values, np.inf)):
            with pytest.raises(ValueError, match="'fc.weight' holds NaN or infinite"):
                _load_bytes(th.set_tensor(data, f"t{i}.values", bad))
        bits = th.tensor(data, f"t{i}.bits", np.uint8)
        with pytest.raises(ValueError, match="keeps .* 'n_kept' says"):
            _load_bytes(th.set_tensor(data, f"t{i}.bits", bits | 1))
        rewind = th.tensor(data, f"r{i}.values", np.float32)
        with pytest.raises(ValueError, match="rewind point of 'fc.weight'"):
            _load_bytes(th.set_tensor(data, f"r{i}.values", _nan_first(rewind)))

    def test_padding_bits(self, tmp_path):
        net = nn.Linear(3, 3)  # 9 weights: 7 padding bits in the second byte
        masks = {"weight": torch.ones(3, 3, dtype=torch.bool)}
        data = save_ticket(tmp_path / "t", net, masks).read_bytes()
        bits = th.tensor(data, "t0.bits", np.uint8) | np.array([0, 1], np.uint8)
        with pytest.raises(ValueError, match="padding bits"):
            _load_bytes(th.set_tensor(data, "t0.bits", bits))

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
                    _load_bytes(bad)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 50 * len(data) + 2**20


class TestMismatchedNetwork:
    @pytest.mark.parametrize(
        "make, match",
        [
            (lambda: Net(hidden=17), r"'fc.weight': ticket shape \(16, 30\), network"),
            (
                lambda: Net().double(),
                "ticket dtype torch.float32, network torch.float64",
            ),
            (lambda: MLP(30, 2, hidden_units=(16,)), "tensors missing from the ticket"),
        ],
    )
    def test_clear_error_and_nothing_applied(self, saved, make, match):
        torch.manual_seed(3)
        other = make()
        before = _state(other)
        # checked against the network before any tensor is read
        with pytest.raises(ValueError, match=match):
            load_ticket(saved[0], other)
        with pytest.raises(ValueError, match=match):
            apply_ticket(load_ticket(saved[0]), other)
        for name, value in _state(other).items():
            assert torch.equal(value, before[name])

    def test_pruned_tensors_must_be_the_prunable_ones(self, tmp_path):
        net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
        masks = {"0.weight": torch.ones(3, 4, dtype=torch.bool)}  # "1.weight" missing
        ticket = load_ticket(save_ticket(tmp_path / "t", net, masks))
        with pytest.raises(ValueError, match="prunable tensors are"):
            check_compatible(ticket, copy.deepcopy(net))


# -- sklottery 0.1.0's .npz tickets ---------------------------------------------
LEGACY = "tests/data/v010_classifier.npz"


def _legacy_bytes():
    with open(LEGACY, "rb") as fh:
        return fh.read()


def _zip_entries(data, signature, flag_offset):
    """Offsets of every zip header with ``signature`` (local or central)."""
    out, start = [], 0
    while (i := data.find(signature, start)) >= 0:
        out.append(i + flag_offset)
        start = i + 4
    return out


def _patch_central(data, offset, fmt, value):
    """Set a field of every central-directory entry (and local header)."""
    data = bytearray(data)
    local = {8: 6, 10: 8}[offset]  # the same field in the local headers
    for sig, off in ((b"PK\x01\x02", offset), (b"PK\x03\x04", local)):
        for i in _zip_entries(bytes(data), sig, off):
            struct.pack_into(fmt, data, i, value)
    return bytes(data)


class TestLegacyNpz:
    def test_loads_through_the_same_checks(self, tmp_path):
        ticket = load_ticket(LEGACY)
        assert ticket.info["estimator"] == "LotteryTicketClassifier"
        # the path rule: "t" finds 0.1.0's t.npz when there is no t.safetensors
        (tmp_path / "old.npz").write_bytes(_legacy_bytes())
        assert set(load_ticket(tmp_path / "old").masks) == set(ticket.masks)

    def test_zip_bomb_is_refused_before_decompressing(self, tmp_path):
        # a 100 MB member of zeros compresses to ~100 KB
        header = {"format": "sklottery-ticket", "version": 1, "tensors": [
            {"name": "w", "shape": [25_000_000], "dtype": "float32", "masked": False}],
            "rewind_point": False, "rounds": [], "info": {}, "arrays": []}
        path = tmp_path / "bomb.npz"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            raw = io.BytesIO()
            np.save(raw, np.frombuffer(json.dumps(header).encode(), np.uint8))
            zf.writestr("header.npy", raw.getvalue())
            with zf.open("t0.dense.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array_header_1_0(
                    fh, {"descr": "<f4", "fortran_order": False,
                         "shape": (25_000_000,)})
                chunk = bytes(2**20)
                for _ in range(95):
                    fh.write(chunk)
                fh.write(bytes(100_000_000 - 95 * 2**20))
        assert path.stat().st_size < 2**20
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match="over 64 times the file"):
                load_ticket(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2**23
        # with a network, the member is checked against it instead
        with pytest.raises(ValueError, match="tensors missing|does not fit"):
            load_ticket(path, nn.Linear(3, 2))

    def test_encrypted_and_unknown_compression(self):
        data = _legacy_bytes()
        with pytest.raises(ValueError, match="is encrypted"):
            _load_bytes(_patch_central(data, 8, "<H", 1))
        with pytest.raises(ValueError, match="compression method 99"):
            _load_bytes(_patch_central(data, 10, "<H", 99))

    def test_pickled_object_array_is_never_loaded(self, tmp_path):
        class Boom:
            def __reduce__(self):
                return (exec, ("raise SystemExit('code ran')",))

        with np.load(LEGACY, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["t1.dense"] = np.array([Boom()], dtype=object)
        np.savez(tmp_path / "pickle.npz", **arrays)
        with pytest.raises(ValueError, match="object arrays are never loaded"):
            load_ticket(tmp_path / "pickle.npz")

    def test_truncated(self):
        data = _legacy_bytes()
        for cut in (10, len(data) // 2, len(data) - 5):
            with pytest.raises(ValueError, match="not a valid sklottery ticket file"):
                _load_bytes(data[:cut])


# -- estimator tickets ------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted(digits, tiny_net):
    from sklottery import LotteryTicketClassifier

    X, y = digits[0][:200], digits[1][:200]
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven",
             "eight", "nine"]
    labels = np.array(names, dtype=object)[y]
    clf = LotteryTicketClassifier(
        tiny_net(), n_rounds=2, prune_rate=0.5, random_state=0
    ).fit(X, labels)
    return clf, X, labels


def _fresh(**kwargs):
    from conftest import make_tiny_net

    from sklottery import LotteryTicketClassifier

    return LotteryTicketClassifier(make_tiny_net(**kwargs), n_rounds=2, prune_rate=0.5)


def _snapshot(est, X):
    return (sorted(est.__dict__), est.predict_proba(X), est.rounds_.copy(),
            est.classes_.copy(), est.selected_round_)


def _assert_same(before, after):
    assert before[0] == after[0]
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2].equals(after[2])
    assert before[3].tolist() == after[3].tolist() and before[4] == after[4]


def _classes(h):
    return next(a for a in h["arrays"] if a["name"] == "classes_")


def _set_classes(values, shape=None):
    def edit(h):
        entry = _classes(h)
        entry["values"] = values(entry["values"])
        entry["shape"] = shape or [len(entry["values"])]

    return edit


def _weights_nan(data):
    i = th.spec_index(th.split(data)[1], "hidden.0.weight")
    return th.set_tensor(data, f"t{i}.values",
                         _nan_first(th.tensor(data, f"t{i}.values", np.float32)))


def _no_round(h):
    del h["rounds"][0]["round"]


ESTIMATOR_CASES = [
    (lambda d: th.craft(d, inner=_set_classes(lambda v: v[:-1])),
     "'classes_' has 9 entries; estimator state field 'n_outputs' is 10"),
    (lambda d: th.craft(d, inner=_set_classes(lambda v: v, [2, 5])),
     "'classes_' must be 1-d"),
    (lambda d: th.craft(d, inner=_set_classes(lambda v: [v[0]] + v[:-1])),
     "'classes_' holds duplicated entries"),
    (_weights_nan, "'hidden.0.weight' holds NaN or infinite"),
    (lambda d: th.craft(d, inner=th.edit_state(selected_round=99)),
     "'selected_round' is 99, which is not among the rounds"),
    (lambda d: th.craft(d, inner=th.edit_state(output_layer="hidden.0")),
     "'output_layer' is 'hidden.0'; the last pruned layer is 'output'"),
    (lambda d: th.craft(d, inner=th.edit_state(n_features_out=-5)),
     "'n_features_out' must be >= 1; got -5"),
    (lambda d: th.craft(d, inner=th.edit_state(n_features_out=8)),
     "'n_features_out' is 8; the output layer 'output' takes 16"),
    (lambda d: th.craft(d, inner=th.edit_state(n_features_in=-1)),
     "'n_features_in' must be >= 1; got -1"),
    (lambda d: th.craft(d, inner=th.edit_state(n_features_in=10**12)),
     "'n_features_in' is 1000000000000, more than the"),
    (lambda d: th.craft(d, inner=th.edit_state(n_outputs=True)),
     "'n_outputs' must be a int"),
    (lambda d: th.craft(d, inner=th.edit_state(extra=1)),
     "unknown estimator state fields"),
    (lambda d: th.craft(d, inner=_no_round), "round record 0 has no field 'round'"),
    (lambda d: th.craft(d, inner=lambda h: h["rounds"].reverse()),
     "rounds must increase"),
    (lambda d: th.craft(d, inner=lambda h: h["rounds"][0].update(score=[1])),
     "'score' must be a number"),
    (lambda d: th.craft(d, inner=lambda h: h.update(rounds=[])),
     "the round history is empty"),
    (lambda d: th.craft(d, inner=lambda h: h["estimator"].update(
        {"class": "LotteryTicketRegressor"})), "saved from a LotteryTicketRegressor"),
    (lambda d: th.craft(d, inner=lambda h: h.update(estimator=None)),
     "not saved from a sklottery estimator"),
    (lambda d: th.craft(d, inner=lambda h: h["estimator"].update(state=[])),
     "header field 'estimator' must be"),
    (lambda d: d[: len(d) // 2], "truncated or corrupt|truncated"),
]


class TestEstimatorTickets:
    def test_round_trip(self, fitted, tmp_path):
        clf, X, y = fitted
        clf.save_ticket(tmp_path / "t")
        loaded = _fresh().load_ticket(tmp_path / "t")
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
        assert loaded.predict(X[:5]).tolist() == clf.predict(X[:5]).tolist()
        assert loaded.classes_.dtype == object
        assert loaded.classes_.tolist() == clf.classes_.tolist()
        assert loaded.rounds_.equals(clf.rounds_)
        assert loaded.layers_.equals(clf.layers_)
        assert loaded.sparsity_ == clf.sparsity_
        assert loaded.selected_round_ == clf.selected_round_ == 2
        assert loaded.n_features_in_ == 64 and loaded.interrupted_ is False
        np.testing.assert_array_equal(loaded.transform(X), clf.transform(X))
        for name, mask in clf.masks_.items():
            assert torch.equal(loaded.masks_[name], mask)
        assert loaded.rewind_point_ is None

    def test_with_rewind_point_warm_start_continues(self, fitted, tmp_path):
        clf, X, y = fitted
        clf.save_ticket(tmp_path / "t", rewind_point=True)
        loaded = _fresh().load_ticket(tmp_path / "t")
        for name, value in clf.rewind_point_.items():
            mask = clf.masks_.get(name)
            expected = value if mask is None else value * mask
            assert torch.equal(loaded.rewind_point_[name], expected)
        loaded.set_params(warm_start=True, n_rounds=3).fit(X, y)
        assert loaded.rounds_["round"].tolist() == [0, 1, 2, 3]

    def test_v010_ticket_predicts_as_before(self, digits):
        proba = np.load("tests/data/v010_classifier_proba.npy")
        loaded = _fresh(module__hidden_units=(8,)).load_ticket(LEGACY)
        X = digits[0][: len(proba)]
        np.testing.assert_allclose(loaded.predict_proba(X), proba, rtol=1e-6)
        assert loaded.classes_.dtype == object

    @pytest.mark.parametrize("edit, match", ESTIMATOR_CASES)
    def test_crafted_file_is_refused_and_estimator_unchanged(
        self, fitted, tmp_path, edit, match
    ):
        clf, X, y = fitted
        buf = io.BytesIO()
        clf.save_ticket(buf)
        target = copy.deepcopy(clf)
        before = _snapshot(target, X)
        with pytest.raises(ValueError, match=match):
            target.load_ticket(io.BytesIO(edit(buf.getvalue())))
        _assert_same(before, _snapshot(target, X))

    def test_mismatched_network_leaves_estimator_unchanged(self, fitted, tmp_path):
        clf, X, y = fitted
        clf.save_ticket(tmp_path / "t")
        other = _fresh(module__hidden_units=(8,)).fit(X[:50], y[:50])
        before = _snapshot(other, X)
        with pytest.raises(ValueError, match="does not fit this MLP"):
            other.load_ticket(tmp_path / "t")
        _assert_same(before, _snapshot(other, X))

    def test_plain_ticket_is_not_an_estimator_ticket(self, tmp_path):
        net, masks, _ = _ticket_net()
        save_ticket(tmp_path / "t", net, masks)
        with pytest.raises(ValueError, match="not saved from a sklottery estimator"):
            _fresh().load_ticket(tmp_path / "t")

    def test_rescale_must_match(self, fitted, tiny_net, tmp_path):
        from sklottery import LotteryTicketClassifier

        clf, X, y = fitted
        clf.save_ticket(tmp_path / "t")
        other = LotteryTicketClassifier(tiny_net(), rescale=True)
        with pytest.raises(ValueError, match="rescale=False, which changes the fo"):
            other.load_ticket(tmp_path / "t")
