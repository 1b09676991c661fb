"""Fuzzing the ticket loader: random byte flips, truncations and insertions of a
real ticket (safetensors and 0.1.0's .npz) are either a valid ticket or a
``ValueError``, and a failed load leaves the estimator unchanged."""

import io

import numpy as np
import pytest

from sklottery.tickets import read_estimator_ticket

N_CASES = 2000


def _mutations(data: bytes, rng: np.random.Generator, n: int):
    """``n`` broken copies of ``data``: byte flips (often in the header),
    truncations, insertions and deletions."""
    header_end = min(len(data), 8 + int.from_bytes(data[:8], "little"))
    for _ in range(n):
        kind = rng.integers(5)
        buf = bytearray(data)
        if kind == 0:  # a few random flips anywhere
            for i in rng.integers(0, len(buf), rng.integers(1, 5)):
                buf[i] ^= 1 << int(rng.integers(8))
        elif kind == 1:  # flips in the header (JSON), where the checks are
            for i in rng.integers(0, header_end, rng.integers(1, 4)):
                buf[i] = int(rng.integers(256))
        elif kind == 2:
            buf = buf[: rng.integers(0, len(buf))]
        elif kind == 3:
            i = int(rng.integers(0, len(buf)))
            buf[i:i] = rng.bytes(int(rng.integers(1, 9)))
        else:
            i = int(rng.integers(0, len(buf)))
            del buf[i : i + int(rng.integers(1, 9))]
        yield bytes(buf)


@pytest.fixture(scope="module")
def fitted(digits, tiny_net):
    from sklottery import LotteryTicketClassifier

    X, y = digits[0][:120], digits[1][:120]
    labels = np.array(list("abcdefghij"), dtype=object)[y]
    clf = LotteryTicketClassifier(
        tiny_net(max_epochs=1, module__hidden_units=(8,)), n_rounds=1,
        prune_rate=0.5, random_state=0,
    ).fit(X, labels)
    buf = io.BytesIO()
    clf.save_ticket(buf, rewind_point=True)
    return clf, X, buf.getvalue()


def _outcomes(data, module, n, seed):
    outcomes = {"valid": 0, "ValueError": 0}
    for bad in _mutations(data, np.random.default_rng(seed), n):
        try:
            read_estimator_ticket(io.BytesIO(bad), "LotteryTicketClassifier", module)
        except ValueError:
            outcomes["ValueError"] += 1
        else:
            outcomes["valid"] += 1
    return outcomes


def test_random_corruptions_are_value_errors(fitted):
    clf, _, data = fitted
    # only ValueError escapes (anything else fails the test); most are refused
    outcomes = _outcomes(data, clf.net_.module_, N_CASES, seed=0)
    assert outcomes["ValueError"] > N_CASES // 2


def test_random_corruptions_of_a_v010_npz_are_value_errors():
    import torch

    from sklottery import MLP

    with open("tests/data/v010_classifier.npz", "rb") as fh:
        data = fh.read()
    torch.manual_seed(0)
    module = MLP(64, 10, hidden_units=(8,))
    outcomes = _outcomes(data, module, N_CASES // 4, seed=1)
    assert outcomes["ValueError"] > N_CASES // 8
    # without a network, too
    outcomes = _outcomes(data, None, N_CASES // 4, seed=2)
    assert outcomes["ValueError"] > N_CASES // 8


def test_failed_loads_leave_the_estimator_unchanged(fitted):
    clf, X, data = fitted
    import copy

    target = copy.deepcopy(clf)
    keys, proba = sorted(target.__dict__), target.predict_proba(X)
    refused = 0
    for bad in _mutations(data, np.random.default_rng(3), 150):
        try:
            target.load_ticket(io.BytesIO(bad))
        except ValueError:
            refused += 1
            assert sorted(target.__dict__) == keys
            np.testing.assert_array_equal(target.predict_proba(X), proba)
        else:  # a flip in a weight's value: a valid ticket; restore
            target.load_ticket(io.BytesIO(data))
            np.testing.assert_array_equal(target.predict_proba(X), proba)
    assert refused > 0
