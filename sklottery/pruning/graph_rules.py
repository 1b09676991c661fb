"""How each traced operation moves a tensor's units: the rules of
:func:`~sklottery.pruning.graph.trace_units`.

Each value of the traced graph is one of:

* a :class:`Feat`: a tensor whose dimension ``dim`` holds units, as a list of
  segments ``(space, n, inner)`` -- ``n`` units of ``space``, each ``inner``
  consecutive features wide (``inner > 1`` after a flatten); a segment of
  ``space=None`` is ``n`` features that are nobody's units (an input
  concatenated to a layer's output);
* :data:`FIXED`: a tensor that carries no prunable units (an input, a
  constant, what a fixed space became);
* a tuple of values (an RNN's ``(output, h_n)``), or :data:`OTHER` (sizes,
  Python numbers).

Layers read a :class:`Feat` (their input columns become *consumer* entries
of its spaces) and make a new space (their rows, *producer* entries).
Elementwise ops tie the spaces of their operands; concatenation and
flatten change the segments; reductions, softmax, LayerNorm and unknown
operations over the unit dimension *fix* the spaces (they are never pruned,
with the reason kept). Imports torch only.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch
from torch import nn

from .graph import Entry, GraphError, _Space, fix, union

__all__ = ["FIXED", "OTHER", "Feat", "propagate"]

FIXED = "fixed"
OTHER = "other"


@dataclass
class Feat:
    dim: int
    segs: list  # [(space or None, n, inner)]


_ELEMENTWISE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Softsign,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Tanhshrink,
    nn.LogSigmoid,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
)
_POOL_MODULES = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
#: Layers whose forward the rules know (subclasses must keep it).
KNOWN_LAYERS = (
    nn.Linear,
    nn.Bilinear,
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.RNNBase,
    nn.MultiheadAttention,
    nn.Embedding,
    nn.LayerNorm,
    nn.Flatten,
)
_UNARY = {
    "relu",
    "relu_",
    "relu6",
    "gelu",
    "silu",
    "mish",
    "sigmoid",
    "tanh",
    "elu",
    "selu",
    "celu",
    "leaky_relu",
    "softplus",
    "hardtanh",
    "hardswish",
    "hardsigmoid",
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "alpha_dropout",
    "abs",
    "neg",
    "exp",
    "log",
    "sqrt",
    "square",
    "clamp",
    "clip",
    "contiguous",
    "clone",
    "detach",
    "float",
    "double",
    "half",
    "to",
    "type",
    "type_as",
    "sign",
    "sin",
    "cos",
    "erf",
    "logsigmoid",
    "tanhshrink",
    "softsign",
    "nan_to_num",
    "pow",
    "rsqrt",
}
_BINARY = {
    "add",
    "sub",
    "mul",
    "truediv",
    "div",
    "iadd",
    "isub",
    "imul",
    "itruediv",
    "maximum",
    "minimum",
    "add_",
    "sub_",
    "mul_",
    "div_",
    "rsub",
}
_REDUCE = {
    "mean",
    "sum",
    "amax",
    "amin",
    "prod",
    "std",
    "var",
    "logsumexp",
    "max",
    "min",
    "norm",
}
_POOL_FUNCS = {
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
}
_SIZES = {"size", "dim", "numel", "getattr", "len"}


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


class _Rules:
    def __init__(self, gm, prunable: set[str]):
        self.gm, self.prunable = gm, prunable
        self.spaces: list[_Space] = []
        self.layers: dict[str, nn.Module] = {}
        self.env: dict = {}

    # -- spaces --------------------------------------------------------------------
    def produce(self, name, module, size, kind, entries) -> _Space:
        space = _Space(size, kind, name)
        self.spaces.append(space)
        self.layers[name] = module
        for local, dim, pos in entries:
            if getattr(module, local.split(".")[0], None) is not None:
                space.entries.append(Entry(f"{name}.{local}", dim, pos, "producer"))
        return space

    def consume(self, value, name, module, local, dim, width, role="consumer"):
        """Columns ``dim`` of ``name.local`` read ``value`` (a Feat of
        ``width`` features)."""
        if not isinstance(value, Feat):
            return
        total = sum(n * inner for _, n, inner in value.segs)
        if total != width:
            raise GraphError(f"{name!r} reads {total} features, expects {width}")
        self.layers[name] = module
        offset = 0
        for space, n, inner in value.segs:
            if space is not None:
                space.root().entries.append(
                    Entry(f"{name}.{local}", dim, positions(n, inner, offset), role)
                )
            offset += n * inner

    def fix_value(self, value, why: str) -> None:
        if isinstance(value, Feat):
            for space, _, _ in value.segs:
                if space is not None:
                    fix(space, why)
        elif isinstance(value, (tuple, list)):
            for v in value:
                self.fix_value(v, why)
        elif isinstance(value, dict):
            for v in value.values():
                self.fix_value(v, why)

    def val(self, arg):
        if isinstance(arg, torch.fx.Node):
            return self.env[arg]
        if isinstance(arg, (tuple, list)):
            return type(arg)(self.val(a) for a in arg)
        if isinstance(arg, dict):
            return {k: self.val(v) for k, v in arg.items()}
        return OTHER

    def tensor_inputs(self, node):
        return [self.val(a) for a in (*node.args, *node.kwargs.values())]

    def unknown(self, node, what: str):
        """An op the rules do not know: the spaces reaching it are fixed."""
        self.fix_value(self.tensor_inputs(node), what)
        return FIXED if _shape(node) is not None else OTHER

    # -- the walk ------------------------------------------------------------------
    def run(self):
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.env[node] = FIXED
            elif node.op == "get_attr":
                self.env[node] = self.get_attr(node)
            elif node.op == "call_module":
                self.env[node] = self.call_module(node)
            elif node.op in ("call_function", "call_method"):
                self.env[node] = self.call_op(node)
            elif node.op == "output":
                self.fix_value(self.val(node.args[0]), "the network's output")
        return self.spaces, self.layers

    def get_attr(self, node):
        owner, _, local = node.target.rpartition(".")
        if node.target in self.prunable:
            raise GraphError(
                f"the forward reads the weight {node.target!r} directly (not by "
                f"calling its layer {owner!r}): which units it feeds cannot be "
                "traced; call the layer, or exclude it"
            )
        return FIXED

    def call_module(self, node):
        from .graph_layers import module_rule  # the per-layer rules

        module = self.gm.get_submodule(node.target)
        return module_rule(self, node, node.target, module)

    def call_op(self, node):
        op = _op_name(node)
        first = self.val(node.args[0]) if node.args else OTHER
        if op in _SIZES:
            return OTHER
        if op == "getitem":
            return self.getitem(node, first)
        if op in _UNARY or op in _POOL_FUNCS:
            if op in _POOL_FUNCS and isinstance(first, Feat) and first.dim != 1:
                return self.unknown(node, f"{op} over the unit dimension")
            return first if isinstance(first, Feat) else FIXED
        if op in _BINARY:
            return self.elementwise(node)
        if op in ("cat", "concat", "concatenate"):
            return self.cat(node)
        if op in ("flatten", "view", "reshape"):
            return self.reshape(node, first)
        if op in _REDUCE or op in ("softmax", "log_softmax"):
            return self.reduce(node, op, first)
        if op in ("permute", "transpose", "unsqueeze", "squeeze", "t"):
            return self.move(node, op, first)
        if not any(isinstance(v, Feat) for v in _flat(self.tensor_inputs(node))):
            return FIXED if _shape(node) is not None else OTHER
        return self.unknown(node, f"the operation {op!r} (node {node.name!r})")

    # -- operations ----------------------------------------------------------------
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


def _flat(values):
    for v in values:
        if isinstance(v, (tuple, list)):
            yield from _flat(v)
        elif isinstance(v, dict):
            yield from _flat(v.values())
        else:
            yield v


def propagate(gm, prunable: set[str]):
    """Walk the traced ``gm``: the spaces made and the layers that own or read
    them."""
    return _Rules(gm, prunable).run()


# operator.* names are stripped of underscores by _op_name; keep the import used
_ = operator
