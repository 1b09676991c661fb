"""Export of a fitted ticket for inference: CSR layouts and dead-unit removal.
"""

from ._dead_units import (
    remove_dead_units,
    structured_chains,
)
from ._sparse import (
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
    "remove_dead_units",
    "rule_layout",
    "structured_chains",
    "to_sparse",
]
