"""Rounds that shrink: a structured round trains a physically smaller copy.

While a round trains, every layer that lost units is swapped for a
:class:`ShrunkLayer` holding a smaller copy of it (fewer rows, columns,
channels, hidden units or heads: :func:`~sklottery.pruning.compact.shrink_layer`);
the optimizer built next holds the small tensors, so its state matches them.
At the round's end :meth:`ShrunkLayer.restore` writes the trained slices back
into the original layer (the same objects), whose pruned rows and columns
are still exact zeros, and puts it back. Between rounds and after a fit the
module has its original shapes, so everything that reads masks works as for
unstructured tickets.

A masked round and a shrunk round from the same weights agree up to float
rounding after steps of an element-wise optimizer (SGD, momentum, Adam,
AdamW, ...): the pruned entries meet only zeros. What differs: gradient-norm
clipping sees the kept entries only; dropout draws fewer random numbers (so
another mask); weight decay does not reach the pruned units' biases, and
their BatchNorm running statistics do not drift (they feed only zero columns
either way); and Adam turns the rounding noise of a gradient that is zero in
exact arithmetic (a conv bias right before a BatchNorm) into steps of the
learning rate's size, differently in the two forms.
Imports torch only.
"""

from __future__ import annotations

from torch import nn

from .compact import kept_slices, shrink_layer
from .masks import load_slices, set_member
from .swap import TrainingTwin, copy_forward_hooks

__all__ = ["ShrunkLayer", "to_shrunk_training"]


class ShrunkLayer(TrainingTwin):
    """A smaller copy (``inner``) of a layer standing in for it while a
    round trains; ``keep`` says which slices of each tensor it holds."""

    def __init__(self, original: nn.Module, keep: dict):
        super().__init__()
        self.inner = shrink_layer(original, keep)
        self.keep = keep
        self._original = [original]  # a list: not a submodule of the twin
        copy_forward_hooks(original, self)

    def forward(self, *args, **kwargs):
        return self.inner(*args, **kwargs)

    def restore(self) -> nn.Module:
        """The original layer, its kept slices holding the trained values."""
        original = self._original[0]
        full = dict(original.named_parameters())
        full.update(original.named_buffers())
        small = dict(self.inner.named_parameters())
        small.update(self.inner.named_buffers())
        for name, value in small.items():
            if name in full:
                load_slices(full[name], value, self.keep.get(name, {}))
        return original.train(self.training)


def _tied(module: nn.Module) -> set[int]:
    seen: dict[int, int] = {}
    for _, p in module.named_parameters(remove_duplicate=False):
        seen[id(p)] = seen.get(id(p), 0) + 1
    return {i for i, n in seen.items() if n > 1}


def to_shrunk_training(module: nn.Module, graph, units) -> list[dict]:
    """Swap the layers that lost units for :class:`ShrunkLayer` twins, in
    place. Returns one row per layer (``name``, ``layout="shrunk"``,
    ``fraction``: the share of its weights kept, by which its training
    multiply-adds shrink); nothing is swapped (``[]``) when a weight is
    shared between layers (tied weights train masked)."""
    slices = kept_slices(module, graph, units)
    tied = _tied(module)
    layers = {name: module.get_submodule(name) for name in slices}
    if "" in layers or any(
        id(p) in tied for m in layers.values() for p in m.parameters()
    ):
        return []
    rows = []
    for name, layer in layers.items():
        twin = ShrunkLayer(layer, slices[name])
        weight = getattr(layer, "weight", None)
        small = getattr(twin.inner, "weight", None)
        if isinstance(weight, nn.Parameter) and isinstance(small, nn.Parameter):
            before, after = weight.numel(), small.numel()
        else:
            before = sum(p.numel() for p in layer.parameters())
            after = sum(p.numel() for p in twin.inner.parameters())
        set_member(module, name, twin)
        rows.append({
            "name": name, "layout": "shrunk", "fraction": after / max(before, 1),
            "nnz": after, "reason": "structured",
        })
    return rows
