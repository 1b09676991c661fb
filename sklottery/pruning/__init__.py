"""Pruning machinery for any PyTorch loop: strategies, scopes, masks, Pruner.

Imports torch only (and numpy); the skorch callbacks that drive it during
training live in :mod:`sklottery.training`. The one place it touches pandas is
:func:`layer_table` (and :meth:`Pruner.layer_table`), which imports it when
called, for display; :func:`layer_stats` gives the same rows as dicts.
"""

from .masks import (
    RESCALE_KINDS,
    DeviceMasks,
    apply_masks,
    load_values,
    set_rescale,
    snapshot,
)
from .pruner import Pruner, layer_stats, layer_table, loss_gradients
from .rewind import REWIND_MODES, check_rewind, rewind_values
from .scope import (
    SCHEDULES,
    compound_rate,
    make_plan,
    mask_distance,
    masks_from_scores,
    n_to_prune,
    per_round_rate,
    resolve_rate,
)
from .strategies import (
    ALIASES,
    STRATEGIES,
    compute_scores,
    needs_grad,
    resolve_strategy,
)
from .targets import PrunableTensor, find_prunable, unwrap_compiled

__all__ = [
    "ALIASES",
    "STRATEGIES",
    "RESCALE_KINDS",
    "REWIND_MODES",
    "SCHEDULES",
    "DeviceMasks",
    "PrunableTensor",
    "Pruner",
    "apply_masks",
    "check_rewind",
    "compound_rate",
    "compute_scores",
    "find_prunable",
    "layer_stats",
    "layer_table",
    "load_values",
    "loss_gradients",
    "make_plan",
    "mask_distance",
    "masks_from_scores",
    "n_to_prune",
    "needs_grad",
    "per_round_rate",
    "resolve_strategy",
    "resolve_rate",
    "rewind_values",
    "set_rescale",
    "snapshot",
    "unwrap_compiled",
]
