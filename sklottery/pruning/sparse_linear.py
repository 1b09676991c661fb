"""Sparse training layers: ``nn.Linear`` and ``nn.Bilinear`` that train with
their survivors only, and their swap into and out of a module.

:class:`SparseTrainingLinear` (:mod:`~sklottery.pruning.sparse_twin`) holds
only a layer's surviving weights, in compressed-sparse-row (CSR) order, as
one trainable ``nn.Parameter`` (``values``); its products -- forward, input
gradient, weight gradient -- are sparse and the weight gradient is computed
only at the surviving positions. Pruned weights do not exist while
training, so they are exactly zero by construction, and an optimizer built
on the swapped module holds state (momentum, Adam's moments) for the
survivors only. :class:`SparseTrainingBilinear`
(:mod:`~sklottery.pruning.sparse_bilinear`) does the same for an
``nn.Bilinear``, whose weight is a matrix over the outer products of its
two inputs.

:func:`swap_in` replaces chosen layers in place; :func:`to_dense` puts the
very same ``nn.Linear``/``nn.Bilinear`` objects back, their ``weight``
holding the trained survivors and exactly 0.0 elsewhere (both write through
:func:`sklottery.pruning.masks.set_member`). Which layers to swap is decided
in :mod:`sklottery.pruning.sparse_training`. This module imports torch only.
"""

from __future__ import annotations

import torch
from torch import nn

from .masks import set_member
from .sparse_bilinear import SparseTrainingBilinear
from .sparse_twin import DTYPES, SparseTrainingLinear
from .swap import attention_layers, copy_forward_hooks, sparse_training_layers

__all__ = [
    "DTYPES",
    "TWINS",
    "SparseTrainingBilinear",
    "SparseTrainingLinear",
    "attention_layers",
    "copy_forward_hooks",
    "sparse_training_layers",
    "swap_in",
    "swappable_layers",
    "to_dense",
]

#: The sparse-training twin of each dense layer type.
TWINS = {nn.Linear: SparseTrainingLinear, nn.Bilinear: SparseTrainingBilinear}


def swappable_layers(module: nn.Module) -> dict[str, nn.Module]:
    """``nn.Linear`` and ``nn.Bilinear`` layers that may be swapped for their
    sparse-training twins (:data:`TWINS`), by module name.

    Excluded: subclasses overriding ``forward`` (the swap would change what
    they compute), Linear layers inside ``MultiheadAttention`` (its forward
    reads ``out_proj.weight`` directly), layers whose weight is shared with
    another module (tied weights), and the root module itself (it cannot be
    replaced in place).
    """
    attention_children = attention_layers(module)
    uses: dict[int, int] = {}
    for _, p in module.named_parameters(remove_duplicate=False):
        uses[id(p)] = uses.get(id(p), 0) + 1
    return {
        name: m
        for name, m in module.named_modules()
        if name
        and any(
            isinstance(m, kind) and type(m).forward is kind.forward for kind in TWINS
        )
        and id(m) not in attention_children
        and uses.get(id(m.weight), 0) == 1
    }


def swap_in(module: nn.Module, masks: dict, names) -> list[str]:
    """Replace the ``nn.Linear``/``nn.Bilinear`` layers ``names`` (module
    names) of ``module`` by their twins (:data:`TWINS`), in place; ``masks`` holds
    each layer's weight mask under ``"<name>.weight"``. Returns ``names``."""
    names = list(names)
    for name in names:
        layer = module.get_submodule(name)
        mask = torch.as_tensor(masks[f"{name}.weight"]).to(layer.weight.device)
        twin = next(t for kind, t in TWINS.items() if isinstance(layer, kind))
        set_member(module, name, twin(layer, mask))
    return names


def to_dense(module: nn.Module) -> list[str]:
    """Put every swapped layer's ``nn.Linear`` back, in place.

    Each layer gets back the very ``nn.Linear`` object (and ``weight``
    parameter object) it had before :func:`to_sparse_training`, its weight
    holding the trained survivors and exactly 0.0 at pruned positions.

    Returns
    -------
    list of str
        Names of the layers put back.
    """
    names = sparse_training_layers(module)
    for name in names:
        set_member(module, name, module.get_submodule(name).restore())
    return names

