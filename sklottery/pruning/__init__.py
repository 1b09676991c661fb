"""Pruning machinery usable in any PyTorch loop: criteria, scopes, masks, Pruner."""

from .criteria import ALIASES, CRITERIA, compute_scores, needs_grad, resolve_criterion
from .masks import (
    RESCALE_KINDS,
    ApplyMasks,
    apply_masks,
    load_values,
    set_rescale,
    snapshot,
)
from .pruner import Pruner, RewindCheckpoint, layer_table, loss_gradients
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
from .targets import PrunableTensor, find_prunable

__all__ = [
    "ALIASES",
    "CRITERIA",
    "RESCALE_KINDS",
    "REWIND_MODES",
    "SCHEDULES",
    "ApplyMasks",
    "PrunableTensor",
    "Pruner",
    "RewindCheckpoint",
    "apply_masks",
    "check_rewind",
    "compound_rate",
    "compute_scores",
    "find_prunable",
    "layer_table",
    "load_values",
    "loss_gradients",
    "make_plan",
    "mask_distance",
    "masks_from_scores",
    "n_to_prune",
    "needs_grad",
    "per_round_rate",
    "resolve_criterion",
    "resolve_rate",
    "rewind_values",
    "set_rescale",
    "snapshot",
]
