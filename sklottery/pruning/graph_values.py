"""The values of a traced graph, as the unit rules see them
(:mod:`sklottery.pruning.graph_rules`): a :class:`Feat` (a tensor whose
dimension ``dim`` holds units, as segments ``(space, n, inner)``),
:data:`FIXED` (a tensor without prunable units) or :data:`OTHER` (sizes,
numbers); and the position tables of the slices a unit owns. Imports torch
only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["FIXED", "OTHER", "Feat", "gate_positions", "head_positions", "positions"]

FIXED = "fixed"
OTHER = "other"


@dataclass
class Feat:
    dim: int
    segs: list  # [(space or None, n, inner)]


def _op_name(node) -> str:
    if node.op == "call_method":
        return node.target
    name = getattr(node.target, "__name__", str(node.target))
    return name.strip("_") if node.target.__module__ == "_operator" else name


def _shape(node):
    meta = node.meta.get("tensor_meta") if hasattr(node, "meta") else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def positions(n: int, inner: int, offset: int) -> torch.Tensor:
    """``(n, inner)`` indices: unit ``j`` owns ``offset + j*inner + [0, inner)``."""
    return offset + torch.arange(n)[:, None] * inner + torch.arange(inner)[None, :]


def gate_positions(size: int, gates: int) -> torch.Tensor:
    """``(size, gates)``: unit ``j`` owns row ``g*size + j`` of every gate."""
    return torch.arange(size)[:, None] + size * torch.arange(gates)[None, :]


def head_positions(heads: int, width: int, blocks: int, block: int) -> torch.Tensor:
    """``(heads, blocks*width)``: head ``h`` owns ``s*block + h*width + [0,
    width)`` of each of ``blocks`` stacked blocks (q, k, v)."""
    one = positions(heads, width, 0)
    return torch.cat([one + s * block for s in range(blocks)], dim=1)


def _flat(values):
    for v in values:
        if isinstance(v, (tuple, list)):
            yield from _flat(v)
        elif isinstance(v, dict):
            yield from _flat(v.values())
        else:
            yield v
