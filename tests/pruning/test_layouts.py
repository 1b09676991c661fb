"""The shared layout machinery: the rule's reading of its calibration, the
timing protocol and the margin."""

import pytest
import torch

from sklottery.pruning import layouts
from sklottery.pruning.layouts import (
    MARGIN,
    check_int,
    faster_layout,
    interleaved_minimum,
    rule_layout_for,
)

CPU = torch.device("cpu")


def test_rule_reads_min_batch_and_tiers():
    tiers = ((1 << 22, 0.1), (1 << 20, 0.02))
    assert rule_layout_for(1 << 22, 0.1, 32, min_batch=32, tiers=tiers) == "sparse"
    assert rule_layout_for(1 << 22, 0.1, 31, min_batch=32, tiers=tiers) == "dense"
    assert rule_layout_for(1 << 21, 0.05, 64, min_batch=32, tiers=tiers) == "dense"
    assert rule_layout_for(1 << 21, 0.02, 64, min_batch=32, tiers=tiers) == "sparse"
    assert rule_layout_for(1 << 19, 0.0, 64, min_batch=32, tiers=tiers) == "dense"


def test_rule_counts_the_weight_a_pruning_count_rounds_up():
    # a 90% prune of 4096x4096 keeps 1,677,722 weights: 0.10000002 > 0.1
    numel = 4096 * 4096
    density = 1_677_722 / numel
    tiers = ((1 << 22, 0.1),)
    assert rule_layout_for(numel, density, 256, min_batch=32, tiers=tiers) == "sparse"
    over = (1_677_722 + 1) / numel  # two weights over: dense
    assert rule_layout_for(numel, over, 256, min_batch=32, tiers=tiers) == "dense"


def test_faster_layout_needs_the_margin():
    assert MARGIN == 0.9
    assert faster_layout(1.0, 0.9) == "sparse"
    assert faster_layout(1.0, 0.91) == "dense"
    assert faster_layout(1.0, 0.95, margin=1.0) == "sparse"


@pytest.mark.parametrize("value", [0, 1.5, True, "2"])
def test_check_int(value):
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        check_int(value, "repeats")


def _fake_clock(monkeypatch, costs):
    """Each call of ``fns[i]`` advances the clock by ``costs[i]``; returns the
    callables and the list of the indices called, in order."""
    now = [0.0]
    called = []
    monkeypatch.setattr(layouts.time, "perf_counter", lambda: now[0])

    def make(i):
        def fn():
            called.append(i)
            now[0] += costs[i]

        return fn

    return [make(i) for i in range(len(costs))], called


def test_interleaved_one_call_per_sample(monkeypatch):
    fns, called = _fake_clock(monkeypatch, [1.0, 1.25])
    assert interleaved_minimum(fns, CPU, 3, clear_factor=1.5) == (1.0, 1.25)
    # warm-up, then dense and sparse alternate, one call a sample
    assert called == [0, 1] + [0, 1] * 3


def test_interleaved_stops_when_one_form_is_clearly_slower(monkeypatch):
    fns, called = _fake_clock(monkeypatch, [1.0, 2.0])
    assert interleaved_minimum(fns, CPU, 3, clear_factor=1.5) == (1.0, 2.0)
    assert called == [0, 1]
    # without clear_factor the samples are taken anyway
    fns, called = _fake_clock(monkeypatch, [1.0, 2.0])
    interleaved_minimum(fns, CPU, 2)
    assert called == [0, 1, 0, 1, 0, 1]


def test_interleaved_samples_last_sample_s(monkeypatch):
    fns, called = _fake_clock(monkeypatch, [0.001, 0.002])
    dense_s, sparse_s = interleaved_minimum(fns, CPU, 2, sample_s=0.005)
    assert dense_s == pytest.approx(0.001) and sparse_s == pytest.approx(0.002)
    # warm-up, one call of the dense form to count the calls a sample (5),
    # then 2 samples of 5 calls each, interleaved
    assert called == [0, 1, 0] + ([0] * 5 + [1] * 5) * 2
