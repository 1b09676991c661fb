"""0.1 import path of the CSR export: :func:`sklottery.export.to_sparse` and
the rest of 0.1's ``sklottery.sparse`` public names."""

from .export import (
    LAYOUTS,
    SparseLinear,
    bake_reparametrizations,
    choose_layouts,
    rule_layout,
    to_sparse,
)

__all__ = [
    "LAYOUTS",
    "SparseLinear",
    "bake_reparametrizations",
    "choose_layouts",
    "rule_layout",
    "to_sparse",
]
