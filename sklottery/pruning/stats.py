"""Per-tensor counts of a set of masks: :func:`layer_stats` (torch only) and
:func:`layer_table`, the same rows as a pandas DataFrame for display.

:func:`layer_table` is the one place :mod:`sklottery.pruning` touches pandas:
it is imported there, when the table is asked for, so pruning itself needs
torch only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from .targets import PrunableTensor

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["LAYER_COLUMNS", "layer_stats", "layer_table"]

#: The keys of :func:`layer_stats`' rows, the columns of :func:`layer_table`.
LAYER_COLUMNS = ("name", "kind", "shape", "kept", "total", "sparsity")


def layer_stats(
    targets: Sequence[PrunableTensor], masks: dict[str, torch.Tensor], units=None
) -> list[dict]:
    """One dict per prunable tensor, in ``targets``' order: ``name``,
    ``kind``, ``shape`` (tuple), ``kept`` and ``total`` (ints) and
    ``sparsity`` (``1 - kept / total``), ``kept`` counted in ``masks``.

    ``units`` (``{tensor name: (units kept, units)}``, a structured
    pruner's) adds ``units_kept`` and ``units`` (NaN for a tensor whose own
    units are not pruned, such as the output layer's)."""
    rows = []
    for t in targets:
        kept = int(torch.count_nonzero(masks[t.name]))
        row = {
            "name": t.name,
            "kind": t.kind,
            "shape": t.shape,
            "kept": kept,
            "total": t.numel,
            "sparsity": 1.0 - kept / t.numel,
        }
        if units is not None:
            row["units_kept"], row["units"] = units.get(t.name, (math.nan, math.nan))
        rows.append(row)
    return rows


def layer_table(
    targets: Sequence[PrunableTensor], masks: dict[str, torch.Tensor], units=None
) -> pd.DataFrame:
    """:func:`layer_stats` as a DataFrame with the columns
    :data:`LAYER_COLUMNS` (and the unit columns with ``units``; pandas is
    imported here, for display only)."""
    import pandas as pd

    columns = list(LAYER_COLUMNS) + ([] if units is None else ["units_kept", "units"])
    return pd.DataFrame(layer_stats(targets, masks, units), columns=columns)
