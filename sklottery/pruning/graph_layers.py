"""The layer rules of the unit graph: what a call of each leaf layer does to
the units of its input and which new units it makes
(:func:`module_rule`, used by :mod:`~sklottery.pruning.graph_rules`).

* ``Linear``, ``Bilinear``, convolutions (``groups=1``; depthwise ones carry
  their input's channels): the input's units are *consumed* (columns), the
  output rows are a new space (*producer*: weight rows and bias).
* BatchNorm and InstanceNorm: per-channel *followers* (weight, bias, running
  statistics); LayerNorm over the units fixes them.
* RNN/GRU/LSTM: the input is consumed by ``weight_ih_l0``; the hidden units
  are one space across gates, layers and directions (rows ``g*H + j`` of
  every ``weight_ih``/``weight_hh``/bias, columns ``j`` of ``weight_hh`` and
  of the next layer's ``weight_ih``).
* ``MultiheadAttention``: the heads are a space (rows of q, k and v of each
  head in ``in_proj_weight``, its columns of ``out_proj.weight``); its
  embedding dimension is fixed.
* ``Embedding``: its columns are a space.
* Activations, dropout and pooling pass the units through; any other layer
  fixes them.
"""

from __future__ import annotations

import torch
from torch import nn

from .graph_rules import _ELEMENTWISE_MODULES, _POOL_MODULES
from .graph_values import (
    FIXED,
    OTHER,
    Feat,
    _shape,
    gate_positions,
    head_positions,
    positions,
)

__all__ = ["module_rule"]

_BASES = (
    nn.Linear,
    nn.Bilinear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.RNN,
    nn.GRU,
    nn.LSTM,
    nn.MultiheadAttention,
    nn.Embedding,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LayerNorm,
    nn.Flatten,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.SyncBatchNorm,
)


def _own_forward(module) -> bool:
    """True if ``module`` overrides the forward of the torch layer it extends
    (the rules would not know what it computes)."""
    for base in _BASES:
        if isinstance(module, base):
            return type(module).forward is not base.forward
    return False


def module_rule(rules, node, name: str, module: nn.Module):
    x = rules.val(node.args[0]) if node.args else OTHER
    if _own_forward(module):
        return rules.unknown(
            node, f"{type(module).__name__} {name!r} (its own forward)"
        )
    if isinstance(module, _ELEMENTWISE_MODULES):
        return x
    if isinstance(module, _POOL_MODULES):
        if isinstance(x, Feat) and x.dim != 1:
            return rules.unknown(node, f"pooling over the units ({name!r})")
        return x
    if isinstance(module, nn.Flatten):
        return rules.reshape(node, x)
    if isinstance(module, (nn.Softmax, nn.LogSoftmax)):
        d = module.dim if module.dim is not None else -1
        if isinstance(x, Feat) and d % len(_shape(node)) == x.dim:
            return rules.unknown(node, f"a softmax over the units ({name!r})")
        return x
    for kind, rule in _RULES:
        if isinstance(module, kind):
            return rule(rules, node, name, module, x)
    return rules.unknown(node, f"the layer {type(module).__name__} {name!r}")


def _linear(rules, node, name, m, x):
    x = _last(rules, node, x, name)
    rules.consume(x, name, m, "weight", 1, m.in_features)
    rows = positions(m.out_features, 1, 0)
    space = rules.produce(
        name, m, m.out_features, "neuron", [("weight", 0, rows), ("bias", 0, rows)]
    )
    return Feat(len(_shape(node)) - 1, [(space, m.out_features, 1)])


def _bilinear(rules, node, name, m, x):
    x, x2 = _last(rules, node, x, name), rules.val(node.args[1])
    rules.consume(x, name, m, "weight", 1, m.in1_features)
    rules.consume(x2, name, m, "weight", 2, m.in2_features)
    rows = positions(m.out_features, 1, 0)
    space = rules.produce(
        name, m, m.out_features, "neuron", [("weight", 0, rows), ("bias", 0, rows)]
    )
    return Feat(len(_shape(node)) - 1, [(space, m.out_features, 1)])


def _last(rules, node, x, name):
    """``x`` if its units are in the last dimension (where ``name`` reads
    features); else its spaces are fixed and FIXED is returned."""
    if isinstance(x, Feat) and x.dim != len(_shape(node.args[0])) - 1:
        rules.fix_value(x, f"{name!r} reads them from another dimension")
        return FIXED
    return x


def _conv(rules, node, name, m, x):
    transposed = m.transposed
    if isinstance(x, Feat) and (x.dim != 1 or any(i != 1 for _, _, i in x.segs)):
        rules.fix_value(x, f"{name!r} reads them from another dimension")
        x = FIXED
    if m.groups == 1:
        rules.consume(x, name, m, "weight", 0 if transposed else 1, m.in_channels)
        rows = positions(m.out_channels, 1, 0)
        space = rules.produce(
            name,
            m,
            m.out_channels,
            "channel",
            [("weight", 1 if transposed else 0, rows), ("bias", 0, rows)],
        )
        return Feat(1, [(space, m.out_channels, 1)])
    depthwise = m.groups == m.in_channels == m.out_channels and not transposed
    if depthwise and isinstance(x, Feat):
        rules.consume(x, name, m, "weight", 0, m.in_channels, role="follower")
        if m.bias is not None:
            rules.consume(x, name, m, "bias", 0, m.in_channels, role="follower")
        return x
    if depthwise:
        return FIXED
    return rules.unknown(node, f"the grouped convolution {name!r}")


def _norm(rules, node, name, m, x):
    if not isinstance(x, Feat):
        return x
    if x.dim != 1:
        return rules.unknown(node, f"{type(m).__name__} {name!r} over other features")
    for local in ("weight", "bias", "running_mean", "running_var"):
        if getattr(m, local, None) is not None:
            rules.consume(x, name, m, local, 0, m.num_features, role="follower")
    if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
        for space, _, _ in x.segs:
            if space is not None:
                space.root().norms.append(name)
    return x


def _layer_norm(rules, node, name, m, x):
    if isinstance(x, Feat):
        ndim = len(_shape(node.args[0]))
        if x.dim >= ndim - len(m.normalized_shape):
            return rules.unknown(node, f"the LayerNorm {name!r} over them")
    return x


def _rnn(rules, node, name, m, x):
    if m.proj_size or len(node.args) > 1 or node.kwargs:
        return rules.unknown(
            node, f"the {type(m).__name__} {name!r} (projections or an initial state)"
        )
    x = _last(rules, node, x, name)
    gates = {"LSTM": 4, "GRU": 3}.get(m.mode, 1)
    size, dirs = m.hidden_size, 2 if m.bidirectional else 1
    rows = gate_positions(size, gates)
    entries = []
    for layer in range(m.num_layers):
        for sfx in ("", "_reverse")[:dirs]:
            for local in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                entries.append((f"{local}_l{layer}{sfx}", 0, rows))
    space = rules.produce(name, m, size, "hidden", entries)
    rules.consume(x, name, m, "weight_ih_l0", 1, m.input_size)
    if dirs == 2:
        rules.consume(x, name, m, "weight_ih_l0_reverse", 1, m.input_size)
    own = Feat(0, [(space, size, 1)])
    for layer in range(m.num_layers):
        for sfx in ("", "_reverse")[:dirs]:
            rules.consume(own, name, m, f"weight_hh_l{layer}{sfx}", 1, size)
            if layer:
                rules.consume(
                    Feat(0, [(space, size, 1)] * dirs),
                    name,
                    m,
                    f"weight_ih_l{layer}{sfx}",
                    1,
                    size * dirs,
                )
    ndim = len(_shape(node.args[0]))
    out = Feat(ndim - 1, [(space, size, 1)] * dirs)
    state = Feat(ndim - 1, [(space, size, 1)])
    return (
        (out, (state, Feat(ndim - 1, [(space, size, 1)])))
        if gates == 4
        else (out, state)
    )


def _attention(rules, node, name, m, x):
    inputs = [rules.val(a) for a in node.args[:3]] + [
        rules.val(node.kwargs[k]) for k in ("query", "key", "value") if k in node.kwargs
    ]
    rules.fix_value(inputs, f"the embedding dimension of the attention {name!r}")
    if m._qkv_same_embed_dim and m.bias_k is None and m.in_proj_weight is not None:
        width, e = m.head_dim, m.embed_dim
        rows = head_positions(m.num_heads, width, 3, e)
        space = rules.produce(
            name,
            m,
            m.num_heads,
            "head",
            [("in_proj_weight", 0, rows), ("in_proj_bias", 0, rows)],
        )
        rules.consume(
            Feat(0, [(space, m.num_heads, width)]), name, m, "out_proj.weight", 1, e
        )
    return (FIXED, OTHER)


def _embedding(rules, node, name, m, x):
    cols = positions(m.embedding_dim, 1, 0)
    space = rules.produce(name, m, m.embedding_dim, "embedding", [("weight", 1, cols)])
    return Feat(len(_shape(node)) - 1, [(space, m.embedding_dim, 1)])


_RULES = (
    (nn.Linear, _linear),
    (nn.Bilinear, _bilinear),
    (nn.modules.conv._ConvNd, _conv),
    (nn.modules.batchnorm._BatchNorm, _norm),
    (nn.modules.instancenorm._InstanceNorm, _norm),
    (nn.LayerNorm, _layer_norm),
    (nn.RNNBase, _rnn),
    (nn.MultiheadAttention, _attention),
    (nn.Embedding, _embedding),
)

_ = torch
