"""Selecting a tensor's surviving values without a memory transient.

torch's boolean indexing (``t[mask]``) first builds int64 indices of every
selected element -- 8 bytes per element and dimension, four times a
float32 copy per dimension -- which on the largest layer of a net is the
biggest transient of a fit. :func:`masked_values` gives the same result
slice by slice. This module imports torch only.
"""

from __future__ import annotations

import torch

__all__ = ["SELECT_CHUNK", "masked_values"]

#: Elements per slice of :func:`masked_values` (8 MiB of int64 indices).
SELECT_CHUNK = 1 << 20


@torch.no_grad()
def masked_values(tensor: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``tensor[mask]`` (1-d, row-major order) without its memory transient.

    Boolean indexing builds int64 indices of every selected element (four
    times a float32 copy per dimension); this selects slice by slice into
    the result, so the transient is one slice's indices whatever the size.
    """
    flat = tensor.detach().reshape(-1)
    keep = mask.to(flat.device).reshape(-1)
    if flat.numel() <= SELECT_CHUNK:
        return flat[keep]
    out = flat.new_empty(int(torch.count_nonzero(keep)))
    pos = 0
    for start in range(0, flat.numel(), SELECT_CHUNK):
        piece = flat[start : start + SELECT_CHUNK][keep[start : start + SELECT_CHUNK]]
        out[pos : pos + piece.numel()] = piece
        pos += piece.numel()
    return out


#: Bits of the order key resolved per pass of :func:`kth_smallest`.
_RADIX_BITS = 16


def _flip_negatives(ints: torch.Tensor, int_dtype) -> torch.Tensor:
    """IEEE bits (as ``int_dtype`` integers) <-> order keys: the negative
    half's value bits flipped. Its own inverse."""
    return torch.where(ints < 0, ints ^ torch.iinfo(int_dtype).max, ints)


def _order_keys(values: torch.Tensor) -> torch.Tensor:
    """Integers in the order of the float ``values``; -0.0 sorts just before
    +0.0."""
    int_dtype = torch.int32 if values.element_size() == 4 else torch.int64
    return _flip_negatives(values.view(int_dtype), int_dtype).long()


@torch.no_grad()
def kth_smallest(values: torch.Tensor, k: int, mask: torch.Tensor | None = None):
    """The ``k``-th smallest (1-based) of the 1-d float ``values`` where
    ``mask`` is True: the value ``torch.kthvalue(values[mask], k)`` gives.

    ``torch.kthvalue`` copies its input and builds an int64 index array
    beside it (three float32 copies in all); this finds the value by radix
    selection on its bits, 16 bits per pass over slices of
    :data:`SELECT_CHUNK` elements (two passes for float32, four for
    float64), so it needs no copy of ``values`` at all.
    """
    if values.dtype not in (torch.float32, torch.float64) or values.dim() != 1:
        raise ValueError("values must be a 1-d float32 or float64 tensor")
    bits = 8 * values.element_size()
    n_buckets = 1 << _RADIX_BITS
    prefix = None  # the order key's bits resolved so far
    rank = k
    for shift in range(bits - _RADIX_BITS, -1, -_RADIX_BITS):
        counts = torch.zeros(n_buckets, dtype=torch.long)
        for start in range(0, values.numel(), SELECT_CHUNK):
            keys = _order_keys(values[start : start + SELECT_CHUNK].contiguous())
            keep = None if mask is None else mask[start : start + SELECT_CHUNK]
            if prefix is not None:
                same = (keys >> (shift + _RADIX_BITS)) == prefix
                keep = same if keep is None else keep & same
            if keep is not None:
                keys = keys[keep]
            # the next 16 bits as 0..65535; the top ones are signed, so
            # they are offset to keep their order
            if prefix is None:
                digits = (keys >> shift) + n_buckets // 2
            else:
                digits = (keys >> shift) & (n_buckets - 1)
            counts += torch.bincount(digits, minlength=n_buckets)
        below = torch.cumsum(counts, 0)
        digit = int(torch.searchsorted(below, rank))
        rank -= int(below[digit - 1]) if digit else 0
        if prefix is None:
            prefix = digit - n_buckets // 2
        else:
            prefix = (prefix << _RADIX_BITS) | digit
    int_dtype = torch.int32 if bits == 32 else torch.int64
    ints = _flip_negatives(torch.tensor([prefix], dtype=int_dtype), int_dtype)
    return ints.view(values.dtype)[0]
