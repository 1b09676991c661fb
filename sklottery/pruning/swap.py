"""What swapping a module's layers for twins needs to know, below everything
that swaps: which layers a swap must leave alone (:func:`attention_layers`),
the hooks a twin carries over (:func:`copy_forward_hooks`) and which layers
are swapped in for sparse training (:class:`TrainingTwin`,
:func:`sparse_training_layers`).

Used by sparse training (:mod:`sklottery.pruning.sparse_linear`), by
:mod:`sklottery.pruning.masks` (whose masks skip the swapped layers) and by
the CSR export (:mod:`sklottery.export`). The swaps themselves are writes
into a module: :func:`sklottery.pruning.masks.set_member`. This module
imports torch only.
"""

from __future__ import annotations

from torch import nn

__all__ = [
    "TrainingTwin",
    "attention_layers",
    "copy_forward_hooks",
    "sparse_training_layers",
]

#: torch.nn.Module's forward-hook registries, carried over to a layer's twin.
_HOOK_DICTS = (
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
)


def copy_forward_hooks(source: nn.Module, twin: nn.Module) -> None:
    """Give ``twin`` the forward hooks and pre-hooks registered on ``source``
    (e.g. the ``rescale=True`` scaling), so it computes the same outputs."""
    for attr in _HOOK_DICTS:
        if hasattr(source, attr) and hasattr(twin, attr):
            getattr(twin, attr).update(getattr(source, attr))


def attention_layers(module: nn.Module) -> set[int]:
    """``id`` of every submodule inside a ``MultiheadAttention`` of
    ``module``: its forward reads their weights directly, so they cannot be
    swapped for another layer."""
    return {
        id(child)
        for m in module.modules()
        if isinstance(m, nn.MultiheadAttention)
        for child in m.modules()
        if child is not m
    }


class TrainingTwin(nn.Module):
    """Base of the layers that stand in for a dense layer while a round
    trains sparse (:class:`~sklottery.pruning.sparse_linear.SparseTrainingLinear`
    and its Bilinear subclass) or shrunk
    (:class:`~sklottery.pruning.shrink.ShrunkLayer`): they hold the
    survivors only, and no mask. :meth:`restore` gives the layer back."""

    def restore(self) -> nn.Module:
        """The original layer, holding the trained survivors."""
        return self.to_linear()


def sparse_training_layers(module: nn.Module) -> list[str]:
    """Names of the submodules currently swapped for sparse training."""
    return [
        name for name, m in module.named_modules() if isinstance(m, TrainingTwin)
    ]
