"""Ticket files: bit-exact round trip, size, and every corrupt-file case."""

import copy
import io
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from sklottery import MLP, Pruner
from sklottery.tickets import (
    FORMAT_VERSION,
    apply_ticket,
    check_compatible,
    load_ticket,
    save_ticket,
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
    path = tmp_path / "ticket.npz"
    save_ticket(
        path,
        net,
        masks,
        rounds=ROUNDS,
        rewind_point=init,
        info={"who": "test", "n": 3},
        arrays={"classes": np.array(["a", "b"])},
    )
    return path, net, masks, init


def _rewrite(src, dst, edit):
    """Copy the ticket ``src`` to ``dst`` with ``edit(arrays)`` applied."""
    with np.load(src, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    edit(arrays)
    np.savez(dst, **arrays)
    return dst


def _set(arrays, suffix, fn):
    """Apply ``fn`` to the ``bits``/``values`` array of the masked "fc.weight"."""
    header = json.loads(arrays["header"].tobytes())
    i = [t["name"] for t in header["tensors"]].index("fc.weight")
    arrays[f"t{i}.{suffix}"] = fn(arrays[f"t{i}.{suffix}"])


def _edit_header(arrays, fn):
    header = json.loads(arrays["header"].tobytes())
    fn(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)


class TestRoundTrip:
    def test_bit_exact_survivors_masks_and_history(self, saved):
        path, net, masks, init = saved
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

    def test_apply_to_a_fresh_network(self, saved):
        path, net, masks, _ = saved
        torch.manual_seed(1)
        fresh = Net()
        got = apply_ticket(load_ticket(path), fresh)
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
        save_ticket(buf, net, masks)
        buf.seek(0)
        ticket = load_ticket(buf)
        assert ticket.rewind_point is None and ticket.rounds == []

    def test_size_at_90_percent_is_at_most_15_percent_of_dense(self, tmp_path):
        torch.manual_seed(0)
        net = MLP(784, 10, hidden_units=(300, 100))
        pruner = Pruner(net, prune_rate=0.9, output_rate_factor=None)
        pruner.prune()
        assert pruner.sparsity() == pytest.approx(0.9, abs=1e-3)
        path = tmp_path / "lenet.npz"
        save_ticket(path, net, pruner.masks)
        dense_bytes = 4 * sum(p.numel() for p in net.parameters())
        assert path.stat().st_size <= 0.15 * dense_bytes

    def test_unsupported_dtype_and_object_arrays_refused_on_save(self, tmp_path):
        net = nn.Linear(3, 2).to(torch.bfloat16)
        masks = {"weight": torch.ones(2, 3, dtype=torch.bool)}
        with pytest.raises(ValueError, match="dtype torch.bfloat16 is not supported"):
            save_ticket(tmp_path / "t.npz", net, masks)
        net = nn.Linear(3, 2)
        with pytest.raises(ValueError, match="only numeric, bool and str"):
            save_ticket(tmp_path / "t.npz", net, masks, arrays={"x": np.array([{}])})
        with pytest.raises(ValueError, match="bool tensor of shape"):
            save_ticket(tmp_path / "t.npz", net, {"weight": torch.ones(2, 3)})


class TestCorruptFiles:
    def test_truncated(self, saved, tmp_path):
        path = saved[0]
        data = path.read_bytes()
        for cut in (len(data) // 2, len(data) - 10, 30):
            bad = tmp_path / f"cut{cut}.npz"
            bad.write_bytes(data[:cut])
            with pytest.raises(ValueError, match="not a valid sklottery ticket file"):
                load_ticket(bad)

    def test_garbage_and_plain_npy(self, tmp_path):
        bad = tmp_path / "garbage.npz"
        bad.write_bytes(b"definitely not a zip file" * 10)
        with pytest.raises(ValueError, match="not a valid sklottery ticket file"):
            load_ticket(bad)
        npy = tmp_path / "plain.npy"
        np.save(npy, np.arange(3))
        with pytest.raises(ValueError, match="single .npy array"):
            load_ticket(npy)

    def test_missing_file_is_file_not_found(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            load_ticket(tmp_path / "nope.npz")

    def test_pickled_object_array_is_never_loaded(self, saved, tmp_path):
        class Boom:
            def __reduce__(self):
                return (exec, ("raise SystemExit('code ran')",))

        bad = _rewrite(
            saved[0],
            tmp_path / "pickle.npz",
            lambda a: a.__setitem__("t0.dense", np.array([Boom()], dtype=object)),
        )
        with pytest.raises(ValueError, match="could not be read"):
            load_ticket(bad)

    @pytest.mark.parametrize(
        "edit, match",
        [
            # wrong dtypes
            (
                lambda a: _set(a, "values", lambda v: v.astype(np.float64)),
                "has dtype float64; expected float32",
            ),
            (
                lambda a: _set(a, "bits", lambda v: v.astype(np.int16)),
                "has dtype int16; expected uint8",
            ),
            (
                lambda a: a.__setitem__("header", a["header"].astype(np.int32)),
                "not uint8 bytes",
            ),
            # sizes and counts
            (
                lambda a: _set(a, "values", lambda v: v[:-1]),
                r"has shape \(\d+,\); expected",
            ),
            (lambda a: _set(a, "bits", lambda v: v | 1), "keeps .* the header says"),
            (lambda a: a.pop("r1.dense"), "'r1.dense' .* is missing"),
            (lambda a: a.__setitem__("stray", np.zeros(2)), "does not describe"),
            # header
            (lambda a: a.__setitem__("header", a["header"][:-3]), "not valid JSON"),
            (
                lambda a: _edit_header(
                    a, lambda h: h.update(version=FORMAT_VERSION + 1)
                ),
                "format version 2 is not supported",
            ),
            (
                lambda a: _edit_header(a, lambda h: h.update(format="other")),
                "does not name the format",
            ),
            (
                lambda a: _edit_header(
                    a, lambda h: h["tensors"][0].update(dtype="object")
                ),
                "tensor entry 0 of the header is malformed",
            ),
            (
                lambda a: _edit_header(a, lambda h: h.update(rounds={"a": 1})),
                "'rounds' must be a list",
            ),
        ],
    )
    def test_bad_content(self, saved, tmp_path, edit, match):
        bad = _rewrite(saved[0], tmp_path / "bad.npz", edit)
        with pytest.raises(ValueError, match=match):
            load_ticket(bad)

    def test_padding_bits(self, tmp_path):
        net = nn.Linear(3, 3)  # 9 weights: 7 padding bits in the second byte
        masks = {"weight": torch.ones(3, 3, dtype=torch.bool)}
        save_ticket(tmp_path / "t.npz", net, masks)

        def set_padding(a):
            assert json.loads(a["header"].tobytes())["tensors"][0]["name"] == "weight"
            a["t0.bits"] = a["t0.bits"] | np.array([0, 1], dtype=np.uint8)

        bad = _rewrite(tmp_path / "t.npz", tmp_path / "bad.npz", set_padding)
        with pytest.raises(ValueError, match="padding bits"):
            load_ticket(bad)


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
        ticket = load_ticket(saved[0])
        torch.manual_seed(3)
        other = make()
        before = _state(other)
        with pytest.raises(ValueError, match=match):
            apply_ticket(ticket, other)
        for name, value in _state(other).items():
            assert torch.equal(value, before[name])

    def test_pruned_tensors_must_be_the_prunable_ones(self, tmp_path):
        net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
        masks = {"0.weight": torch.ones(3, 4, dtype=torch.bool)}  # "1.weight" missing
        save_ticket(tmp_path / "t.npz", net, masks)
        ticket = load_ticket(tmp_path / "t.npz")
        with pytest.raises(ValueError, match="prunable tensors are"):
            check_compatible(ticket, copy.deepcopy(net))


@pytest.fixture(scope="module")
def fitted(digits, tiny_net):
    from sklottery import LotteryTicketClassifier

    X, y = digits[0][:200], digits[1][:200]
    labels = np.array(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
        ],
        dtype=object,
    )[y]
    clf = LotteryTicketClassifier(
        tiny_net(), n_rounds=2, prune_rate=0.5, random_state=0
    ).fit(X, labels)
    return clf, X, labels


class TestEstimatorTickets:
    @pytest.fixture(autouse=True)
    def _net_factory(self, tiny_net):
        self.tiny_net = tiny_net

    def _fresh(self, **kwargs):
        from sklottery import LotteryTicketClassifier

        return LotteryTicketClassifier(
            self.tiny_net(**kwargs), n_rounds=2, prune_rate=0.5
        )

    def test_round_trip(self, fitted, tmp_path):
        clf, X, y = fitted
        clf.save_ticket(tmp_path / "t.npz")
        loaded = self._fresh().load_ticket(tmp_path / "t.npz")
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
        with pytest.raises(ValueError, match="needs the rewind point"):
            loaded.set_params(warm_start=True, n_rounds=3).fit(X, y)

    def test_with_rewind_point_warm_start_continues(self, fitted, tmp_path):
        clf, X, y = fitted
        clf.save_ticket(tmp_path / "t.npz", rewind_point=True)
        loaded = self._fresh().load_ticket(tmp_path / "t.npz")
        for name, value in clf.rewind_point_.items():
            mask = clf.masks_.get(name)
            expected = value if mask is None else value * mask
            assert torch.equal(loaded.rewind_point_[name], expected)
        loaded.set_params(warm_start=True, n_rounds=3).fit(X, y)
        assert loaded.rounds_["round"].tolist() == [0, 1, 2, 3]

    def test_mismatched_network_leaves_estimator_unchanged(self, fitted, tmp_path):
        clf, X, y = fitted
        clf.save_ticket(tmp_path / "t.npz")
        other = self._fresh(module__hidden_units=(8,))
        other.fit(X[:50], y[:50])
        before = other.predict_proba(X)
        with pytest.raises(ValueError, match="does not fit this MLP"):
            other.load_ticket(tmp_path / "t.npz")
        np.testing.assert_array_equal(other.predict_proba(X), before)
        assert len(other.rounds_) == 3

    def test_corrupt_file_leaves_estimator_unchanged(self, fitted, tmp_path):
        clf, X, y = fitted
        clf.save_ticket(tmp_path / "t.npz")
        data = (tmp_path / "t.npz").read_bytes()
        (tmp_path / "bad.npz").write_bytes(data[: len(data) // 2])
        fresh = self._fresh()
        with pytest.raises(ValueError, match="truncated or corrupt"):
            fresh.load_ticket(tmp_path / "bad.npz")
        assert not hasattr(fresh, "net_")

    def test_plain_ticket_is_not_an_estimator_ticket(self, tmp_path):
        net, masks, _ = _ticket_net()
        save_ticket(tmp_path / "t.npz", net, masks)
        with pytest.raises(ValueError, match="not saved from a sklottery estimator"):
            self._fresh().load_ticket(tmp_path / "t.npz")


def test_rescale_must_match(fitted, tiny_net, tmp_path):
    from sklottery import LotteryTicketClassifier

    clf, X, y = fitted
    clf.save_ticket(tmp_path / "t.npz")
    other = LotteryTicketClassifier(tiny_net(), rescale=True)
    with pytest.raises(ValueError, match="rescale=False, which changes the forward"):
        other.load_ticket(tmp_path / "t.npz")
