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

import torch
from torch import nn

from .graph import Entry, GraphError, _Space, fix
from .graph_ops import OpRules
from .graph_values import FIXED, OTHER, Feat, _flat, _op_name, _shape, positions

__all__ = ["KNOWN_LAYERS", "propagate"]

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


class _Rules(OpRules):
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


def propagate(gm, prunable: set[str]):
    """Walk the traced ``gm``: the spaces made and the layers that own or read
    them."""
    return _Rules(gm, prunable).run()
