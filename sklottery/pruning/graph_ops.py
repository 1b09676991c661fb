"""The rules of the traced graph's tensor operations: indexing, elementwise
ops (which tie spaces), concatenation, reshapes and flattens, reductions and
softmax (which fix the spaces they reduce), permutes and squeezes -- as a
mixin of :class:`~sklottery.pruning.graph_rules._Rules`. Imports torch only.
"""

from __future__ import annotations

import math

import torch

from .graph import union
from .graph_values import FIXED, OTHER, Feat, _op_name, _shape

__all__ = ["OpRules"]


class OpRules:
    """Mixin of the graph walk; needs ``val``, ``unknown`` and ``fix_value``."""

    def getitem(self, node, first):
        index = node.args[1]
        if isinstance(first, (tuple, list)):
            return first[index] if isinstance(index, int) else OTHER
        if not isinstance(first, Feat):
            return first if first is FIXED else OTHER
        in_shape, out_shape = _shape(node.args[0]), _shape(node)
        index = index if isinstance(index, tuple) else (index,)
        if any(i is Ellipsis for i in index):
            k = index.index(Ellipsis)
            fill = len(in_shape) - (len(index) - 1)
            index = index[:k] + (slice(None),) * fill + index[k + 1 :]
        dim = first.dim
        for i, item in enumerate(index):
            if i == first.dim:
                if item != slice(None):
                    return self.unknown(node, "indexing the unit dimension")
            elif i < first.dim and isinstance(item, int):
                dim -= 1
            elif not isinstance(item, (int, slice)):
                return self.unknown(node, "indexing with tensors or None")
        if out_shape is None or len(out_shape) <= dim:
            return self.unknown(node, "indexing")
        return Feat(dim, first.segs)

    def elementwise(self, node):
        out = _shape(node)
        feats, fixed_full = [], False
        for arg in node.args:
            v = self.val(arg)
            shape = _shape(arg) if isinstance(arg, torch.fx.Node) else None
            if isinstance(v, Feat):
                feats.append((v, v.dim + len(out) - len(shape)))
            elif v is FIXED and shape is not None:
                fixed_full = fixed_full or shape
        if not feats:
            return FIXED if out is not None else OTHER
        first, dim = feats[0]
        for v, d in feats[1:]:
            if d != dim or len(v.segs) != len(first.segs):
                return self.unknown(
                    node, f"{_op_name(node)!r} of differently laid out units"
                )
            for (a, n, i), (b, m, j) in zip(first.segs, v.segs):
                if (n, i) != (m, j) or (a is None) != (b is None):
                    return self.unknown(
                        node, f"{_op_name(node)!r} of differently laid out units"
                    )
                if a is not None:
                    union(a, b, f"{_op_name(node)!r} (node {node.name!r})")
        if fixed_full:
            k = dim - (len(out) - len(fixed_full))
            if 0 <= k < len(fixed_full) and fixed_full[k] != 1:
                self.fix_value(
                    first,
                    f"{_op_name(node)!r} with an input or constant "
                    f"(node {node.name!r})",
                )
                return FIXED
        return Feat(dim, first.segs)

    def cat(self, node):
        tensors = node.args[0]
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        out = _shape(node)
        dim = dim % len(out)
        values = [self.val(t) for t in tensors]
        feats = [v for v in values if isinstance(v, Feat)]
        if not feats:
            return FIXED
        if any(f.dim != feats[0].dim for f in feats):
            return self.unknown(node, "a concatenation of differently laid out units")
        if dim != feats[0].dim:
            return self.unknown(node, "a concatenation along another dimension")
        segs = []
        for t, v in zip(tensors, values):
            segs += v.segs if isinstance(v, Feat) else [(None, _shape(t)[dim], 1)]
        return Feat(dim, segs)

    def reshape(self, node, first):
        if not isinstance(first, Feat):
            return first if first is FIXED else OTHER
        src, dst = _shape(node.args[0]), _shape(node)
        d = first.dim
        before = math.prod(src[:d])
        k, acc = 0, 1
        while k < len(dst) and acc < before:
            acc *= dst[k]
            k += 1
        if acc != before or k >= len(dst):
            return self.unknown(node, "a reshape of the unit dimension")
        m, width = 0, src[d]
        while width < dst[k] and d + 1 + m < len(src):
            width *= src[d + 1 + m]
            m += 1
        while (
            d + 1 + m < len(src)
            and src[d + 1 + m] == 1
            and tuple(src[d + 1 + m :]) != tuple(dst[k + 1 :])
        ):
            m += 1  # trailing size-1 dimensions flattened away
        if width != dst[k] or tuple(src[d + 1 + m :]) != tuple(dst[k + 1 :]):
            return self.unknown(node, "a reshape of the unit dimension")
        factor = math.prod(src[d + 1 : d + 1 + m])
        return Feat(k, [(s, n, inner * factor) for s, n, inner in first.segs])

    def reduce(self, node, op, first):
        if not isinstance(first, Feat):
            return first if first is FIXED else OTHER
        src, out = _shape(node.args[0]), _shape(node)
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        if dims is None:
            return self.unknown(node, f"{op!r} over every dimension")
        dims = [
            x % len(src) for x in (dims if isinstance(dims, (tuple, list)) else [dims])
        ]
        if first.dim in dims:
            return self.unknown(
                node, f"{op!r} over the unit dimension (node {node.name!r})"
            )
        if op in ("softmax", "log_softmax"):
            return first
        keep = node.kwargs.get("keepdim", len(node.args) > 2 and node.args[2] is True)
        dim = first.dim if keep else first.dim - sum(x < first.dim for x in dims)
        result = Feat(dim, first.segs)
        return (result, FIXED) if out is None else result

    def move(self, node, op, first):
        if not isinstance(first, Feat):
            return first if first is FIXED else OTHER
        src, out = _shape(node.args[0]), _shape(node)
        d = first.dim
        args = node.args[1:]
        if op == "permute":
            order = list(args[0]) if len(args) == 1 else list(args)
            d = [x % len(src) for x in order].index(d)
        elif op in ("transpose", "t"):
            a, b = (0, 1) if op == "t" else (args[0] % len(src), args[1] % len(src))
            d = b if d == a else a if d == b else d
        elif op == "unsqueeze":
            d = d + 1 if args[0] % len(out) <= d else d
        else:  # squeeze
            gone = (
                [i for i in range(len(src)) if src[i] == 1]
                if not args
                else [
                    a % len(src)
                    for a in (
                        args[0] if isinstance(args[0], (tuple, list)) else [args[0]]
                    )
                    if src[a % len(src)] == 1
                ]
            )
            if d in gone:
                return self.unknown(node, "squeezing the unit dimension")
            d -= sum(g < d for g in gone)
        return Feat(d, first.segs)
