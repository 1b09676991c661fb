"""Export of a fitted ticket for inference: CSR layouts and dead-unit removal.

:func:`to_sparse` deep-copies a pruned network, removes its dead hidden
units (:func:`remove_dead_units`) and stores each Linear layer dense or as a
:class:`SparseLinear` (CSR), whichever :func:`choose_layouts` finds faster
for inference. Sparse *training* is another thing:
:mod:`sklottery.pruning.sparse_training`.
"""

from ._dead_units import (
    remove_dead_units,
    structured_chains,
)
from ._layouts import (
    LAYOUTS,
    MARGIN,
    choose_layouts,
    measure_layer,
    rule_layout,
)
from ._modules import SparseLinear
from ._sparse import (
    bake_reparametrizations,
    to_sparse,
)

__all__ = [
    "LAYOUTS",
    "MARGIN",
    "SparseLinear",
    "bake_reparametrizations",
    "choose_layouts",
    "measure_layer",
    "remove_dead_units",
    "rule_layout",
    "structured_chains",
    "to_sparse",
]
