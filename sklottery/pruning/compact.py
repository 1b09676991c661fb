"""Physically smaller layers: the units kept, as a dense network of their own.

:func:`kept_slices` turns the units kept (per group of a
:class:`~sklottery.pruning.graph.UnitGraph`) into the indices each tensor
keeps along each dimension; :func:`shrink_layer` builds one smaller copy of a
layer (``in_features``/``out_features``, channels, ``hidden_size``,
``num_features`` updated; a ``MultiheadAttention`` that lost heads becomes a
:class:`~sklottery.pruning.compact_attention.PrunedMultiheadAttention`);
:func:`compact_module` a smaller copy of a whole module, whose outputs are
those of the masked module (its forward is the module's own: it calls the
same layers, now smaller). The module given is never changed.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .compact_attention import PrunedMultiheadAttention
from .graph import UnitGraph
from .masks import set_member, set_tensor, sliced
from .targets import unwrap_compiled

__all__ = ["compact_module", "kept_slices", "shrink_layer"]


def _tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    out = dict(module.named_parameters(remove_duplicate=False))
    out.update(module.named_buffers())
    return out


def kept_slices(module: nn.Module, graph: UnitGraph, units) -> dict:
    """``{layer: {local tensor name: {dim: kept indices}}}`` for the layers
    that lose slices when the units that ``units`` marks False go."""
    tensors = _tensors(unwrap_compiled(module))
    removed: dict[str, dict[int, set]] = {}
    for g in graph.groups:
        keep = units.get(g.name)
        if keep is None or bool(keep.all()):
            continue
        gone = (~keep.cpu()).nonzero().squeeze(1)
        for e in g.entries:
            idx = e.positions[gone].reshape(-1).tolist()
            removed.setdefault(e.name, {}).setdefault(e.dim, set()).update(idx)
    out: dict[str, dict] = {}
    for name, dims in removed.items():
        layer = _layer_of(name, graph.layers)
        local = name[len(layer) + 1 :]
        size = tensors[name].shape
        out.setdefault(layer, {})[local] = {
            d: torch.tensor(sorted(set(range(size[d])) - gone), dtype=torch.long)
            for d, gone in dims.items()
        }
    return out


def _layer_of(name: str, layers) -> str:
    return max((n for n in layers if name.startswith(f"{n}.")), key=len)


def shrink_layer(layer: nn.Module, keep: dict) -> nn.Module:
    """A copy of ``layer`` holding only the slices ``keep`` (``{local tensor
    name: {dim: indices}}``), its size attributes updated."""
    if isinstance(layer, nn.MultiheadAttention):
        e, d = layer.embed_dim, layer.head_dim
        rows = keep.get("in_proj_weight", {}).get(0)
        heads = (
            torch.arange(layer.num_heads)
            if rows is None
            else rows[rows < e].reshape(-1, d)[:, 0] // d
        )
        return PrunedMultiheadAttention(layer, heads)
    small = copy.deepcopy(layer)
    for local, dims in keep.items():
        set_tensor(small, local, sliced(_tensors(layer)[local], dims))
    _resize(small)
    return small


def _resize(m: nn.Module) -> None:
    """Set a shrunk layer's size attributes from its tensors."""
    if isinstance(m, nn.Bilinear):
        m.out_features, m.in1_features, m.in2_features = m.weight.shape
    elif isinstance(m, nn.Linear):
        m.out_features, m.in_features = m.weight.shape
    elif isinstance(m, nn.modules.conv._ConvNd):
        a, b = m.weight.shape[:2]
        if m.groups > 1:  # depthwise: one filter per channel
            m.groups = m.in_channels = m.out_channels = a
        elif m.transposed:
            m.in_channels, m.out_channels = a, b
        else:
            m.out_channels, m.in_channels = a, b
    elif isinstance(m, (nn.modules.batchnorm._NormBase,)):
        ref = m.weight if m.weight is not None else m.running_mean
        m.num_features = ref.shape[0]
    elif isinstance(m, nn.RNNBase):
        m.hidden_size = m.weight_hh_l0.shape[1]
        m.input_size = m.weight_ih_l0.shape[1]
        m._init_flat_weights()
    elif isinstance(m, nn.Embedding):
        m.embedding_dim = m.weight.shape[1]


def compact_module(module: nn.Module, graph: UnitGraph, units) -> nn.Module:
    """A copy of ``module`` with the units ``units`` marks False removed
    (``units``: bool per group name, True = kept; see
    :func:`~sklottery.pruning.units.unit_keep`).

    The copy's forward is the module's own over smaller layers, so its
    outputs equal the masked module's (up to float rounding) when the
    removed units' producer rows and consumer columns are zero -- what
    structured masks (:func:`~sklottery.pruning.units.expand_masks`) hold.
    """
    module = unwrap_compiled(module)
    small = copy.deepcopy(module)
    for layer, keep in kept_slices(module, graph, units).items():
        if not layer:
            raise ValueError("cannot compact a module that is a single layer")
        set_member(small, layer, shrink_layer(module.get_submodule(layer), keep))
    return small
