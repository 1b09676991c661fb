"""Selection without memory transients: the same values as torch's own."""

import pytest
import torch

import sklottery.pruning.tensors as tensors
from sklottery.pruning.tensors import kth_smallest, masked_values


@pytest.fixture
def small_chunks(monkeypatch):
    # slices of 7 elements: every path of the slicing runs on small tensors
    monkeypatch.setattr(tensors, "SELECT_CHUNK", 7)


@pytest.mark.parametrize("shape", [(1,), (5,), (6, 9), (3, 4, 5)])
def test_masked_values_equals_boolean_indexing(small_chunks, shape):
    g = torch.Generator().manual_seed(0)
    t = torch.randn(shape, generator=g)
    for mask in (torch.rand(shape, generator=g) < 0.4, torch.ones(shape, dtype=bool),
                 torch.zeros(shape, dtype=bool)):
        got = masked_values(t, mask)
        assert torch.equal(got, t[mask])
        assert got.data_ptr() != t.data_ptr()  # a copy


def _values(kind, n, dtype, g):
    v = torch.randn(n, generator=g, dtype=dtype)
    if kind == "ties":
        v = torch.round(v * 2)
    elif kind == "signed zeros":
        v = torch.zeros(n, dtype=dtype)
        v[::2] = -0.0
        v[::5] = 1.5
    elif kind == "inf":
        v[::4] = float("inf")
        v[1::4] = -float("inf")
    elif kind == "tiny":
        v = v * 1e-40 if dtype == torch.float32 else v * 1e-310  # subnormals
    return v


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["normal", "ties", "signed zeros", "inf", "tiny"])
def test_kth_smallest_equals_kthvalue(small_chunks, dtype, kind):
    g = torch.Generator().manual_seed(1)
    v = _values(kind, 53, dtype, g)
    mask = torch.rand(53, generator=g) < 0.6
    for m in (None, mask):
        alive = v if m is None else v[m]
        for k in range(1, alive.numel() + 1):
            got = kth_smallest(v, k, m)
            want = torch.kthvalue(alive, k).values
            assert got.dtype == dtype
            assert got == want or (torch.isnan(got) and torch.isnan(want)), k


def test_kth_smallest_rejects_what_it_cannot_rank():
    with pytest.raises(ValueError, match="1-d float32 or float64"):
        kth_smallest(torch.arange(5), 1)
    with pytest.raises(ValueError, match="1-d float32 or float64"):
        kth_smallest(torch.zeros(2, 2), 1)
