"""Analyses of fitted tickets: sanity checks (Frankle et al. 2021) and
stability to SGD noise (Frankle et al. 2020).
"""

from ._sanity import (
    CONTROLS,
    inverted_masks,
    plot_sanity_checks,
    random_masks,
    sanity_checks,
    shuffled_masks,
)
from ._stability import (
    interpolate,
    stability_analysis,
    suggest_rewind_epoch,
)

__all__ = [
    "CONTROLS",
    "interpolate",
    "inverted_masks",
    "plot_sanity_checks",
    "random_masks",
    "sanity_checks",
    "shuffled_masks",
    "stability_analysis",
    "suggest_rewind_epoch",
]
