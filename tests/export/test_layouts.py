"""Layout choice of the export: the calibrated rule, the timing, the forced
layouts and the argument checks."""

import pytest
import torch
from torch import nn

from sklottery.export import (
    MARGIN,
    SparseLinear,
    choose_layouts,
    measure_layer,
    rule_layout,
    to_sparse,
)


class TestLayoutChoice:
    def test_rule(self):
        assert rule_layout((300, 784), 0.8) == "dense"
        assert rule_layout((300, 784), 0.1) == "dense"
        assert rule_layout((4096, 4096), 0.02) == "sparse"
        assert rule_layout((4096, 4096), 0.1) == "sparse"
        assert rule_layout((4096, 4096), 0.5) == "dense"
        assert rule_layout((4096, 4096), 0.02, batch_size=1) == "dense"

    @staticmethod
    def _two_layers():
        small = nn.Linear(20, 10)
        large = nn.Linear(2048, 2048)
        module = nn.Sequential(small, nn.ReLU(), nn.Linear(10, 2048), nn.ReLU(), large)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            small.weight.mul_(torch.rand(small.weight.shape, generator=g) >= 0.2)
            module[2].weight.mul_(
                torch.rand(module[2].weight.shape, generator=g) >= 0.5
            )
            large.weight.mul_(torch.rand(large.weight.shape, generator=g) >= 0.98)
        return module

    def test_rule_picks_dense_for_small_and_sparse_for_large(self):
        rows = choose_layouts(self._two_layers(), measure=False)
        assert [(r["name"], r["layout"]) for r in rows] == [
            ("0", "dense"),
            ("2", "dense"),
            ("4", "sparse"),
        ]
        assert rows[0]["density"] == pytest.approx(0.8, abs=0.08)
        assert rows[2]["density"] == pytest.approx(0.02, abs=0.005)

    @pytest.mark.parametrize(
        "timings, expected",
        [
            ((1.0, 0.2), "sparse"),
            ((1.0, MARGIN * 1.01), "dense"),
            ((0.2, 1.0), "dense"),
        ],
    )
    def test_measured_choice(self, timings, expected):
        calls = []

        def fake_measure(linear, sparse, batch_size, repeats):
            calls.append((tuple(linear.weight.shape), batch_size, repeats))
            assert isinstance(sparse, SparseLinear)
            return timings

        module = self._two_layers()
        rows = choose_layouts(
            module, batch_size=128, repeats=3, measure=True, measure_fn=fake_measure
        )
        # the small, barely pruned layers are answered dense without timing
        assert calls == [((2048, 2048), 128, 3)]
        assert [r["layout"] for r in rows] == ["dense", "dense", expected]
        assert rows[2]["dense_s"] == timings[0] and rows[2]["sparse_s"] == timings[1]
        exported = to_sparse(
            module, batch_size=128, repeats=3, measure=True, measure_fn=fake_measure
        )
        assert isinstance(exported[4], SparseLinear) == (expected == "sparse")
        assert type(exported[0]) is nn.Linear

    def test_real_measurement_returns_positive_times(self):
        lin = nn.Linear(64, 32)
        with torch.no_grad():
            lin.weight[:, 8:] = 0.0
        dense_s, sparse_s = measure_layer(
            lin, SparseLinear.from_linear(lin), batch_size=8, repeats=2
        )
        assert dense_s > 0 and sparse_s > 0

    def test_unpruned_layers_stay_dense_even_when_forced(self):
        module = nn.Sequential(nn.Linear(5, 5))
        exported = to_sparse(module, layout="sparse")
        assert type(exported[0]) is nn.Linear
        assert to_sparse(module, layout="dense").sparse_layouts[0]["layout"] == "dense"

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            ({"layout": "coo"}, "layout='coo' is not valid"),
            ({"batch_size": 0}, "batch_size must be an int >= 1"),
            ({"repeats": 1.5}, "repeats must be an int >= 1"),
        ],
    )
    def test_bad_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            to_sparse(nn.Linear(3, 2), **kwargs)
        with pytest.raises(TypeError, match="torch.nn.Module"):
            to_sparse("not a module")
