"""0.1 import path of the CSR export: :func:`sklottery.export.to_sparse`."""

from .export import LAYOUTS, SparseLinear, to_sparse

__all__ = ["LAYOUTS", "SparseLinear", "to_sparse"]
