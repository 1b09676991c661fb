"""Pruning machinery usable in any PyTorch loop: criteria, scopes, masks, Pruner."""

from .criteria import ALIASES, CRITERIA, compute_scores, resolve_criterion
from .masks import ApplyMasks, apply_masks, load_values, snapshot
from .pruner import Pruner, layer_table
from .scope import make_plan, masks_from_scores, n_to_prune
from .targets import PrunableTensor, find_prunable

__all__ = [
    "ALIASES",
    "CRITERIA",
    "ApplyMasks",
    "PrunableTensor",
    "Pruner",
    "apply_masks",
    "compute_scores",
    "find_prunable",
    "layer_table",
    "load_values",
    "make_plan",
    "masks_from_scores",
    "n_to_prune",
    "resolve_criterion",
    "snapshot",
]
