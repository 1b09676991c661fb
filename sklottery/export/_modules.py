"""The CSR layer of an export: :class:`SparseLinear`, an ``nn.Linear`` for
inference with its weight in torch's compressed-sparse-row storage.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..pruning.swap import copy_forward_hooks

__all__ = ["SparseLinear"]


def _csr(dense: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return dense.detach().to_sparse_csr()


class SparseLinear(nn.Module):
    """``nn.Linear`` for inference with its weight in CSR storage.

    ``y = x W^T + b`` is computed as ``(W x^T + b)^T`` with
    :func:`torch.addmm` on the CSR matrix ``W`` and a row-major ``x^T``; the
    result is returned as a transposed view, which the next
    :class:`SparseLinear` consumes without a copy.

    Parameters
    ----------
    weight : torch.Tensor
        Dense weight of shape ``(out_features, in_features)``; its zeros are
        dropped.
    bias : torch.Tensor or None
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        super().__init__()
        if weight.dim() != 2:
            raise ValueError(f"weight must be 2-D; got shape {tuple(weight.shape)}")
        self.out_features, self.in_features = (int(s) for s in weight.shape)
        csr = _csr(weight)
        # the CSR parts are kept as plain buffers: state_dict, .to(device),
        # deepcopy and pickle all work on them (not on a CSR tensor itself)
        self.register_buffer("crow_indices", csr.crow_indices().clone())
        self.register_buffer("col_indices", csr.col_indices().clone())
        self.register_buffer("values", csr.values().clone())
        self.register_buffer(
            "bias", None if bias is None else bias.detach().clone().reshape(-1, 1)
        )

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> SparseLinear:
        """The CSR twin of ``linear`` (its zero weights are dropped).

        Forward hooks and pre-hooks registered on ``linear`` (e.g. the
        ``rescale=True`` scaling of :func:`~sklottery.pruning.masks.set_rescale`)
        are carried over, so the twin computes the same outputs.
        """
        twin = cls(linear.weight, linear.bias)
        copy_forward_hooks(linear, twin)
        return twin

    @property
    def weight(self) -> torch.Tensor:
        """The weight as a CSR tensor (a view of the buffers, no copy)."""
        return torch.sparse_csr_tensor(
            self.crow_indices,
            self.col_indices,
            self.values,
            (self.out_features, self.in_features),
            check_invariants=False,
        )

    @property
    def nnz(self) -> int:
        return int(self.values.numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        xt = x.reshape(-1, self.in_features).t()
        # CSR @ dense is about twice as fast with a row-major dense operand;
        # the output of a previous SparseLinear already is one (no copy)
        xt = xt.contiguous()
        if self.bias is None:
            out = torch.mm(self.weight, xt)
        else:
            out = torch.addmm(self.bias, self.weight, xt)
        return out.t().reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        density = self.nnz / max(1, self.in_features * self.out_features)
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, layout=csr, density={density:.4f}"
        )
