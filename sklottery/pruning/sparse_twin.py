"""The sparse-training twin of an ``nn.Linear``: its survivors only, in CSR
order, trained with sparse products.

:class:`SparseTrainingLinear` holds only a layer's surviving weights, in
compressed-sparse-row (CSR) order, as one trainable ``nn.Parameter``
(``values``). Its forward product uses the sparse weight, the input gradient
the sparse transpose (COO products on the CPU, CSR elsewhere), and the
weight gradient
:func:`torch.sparse.sampled_addmm` -- computed only at the surviving
positions. Pruned weights do not exist while training, so they are exactly
zero by construction, and an optimizer built on the swapped module holds
state (momentum, Adam's moments) for the survivors only.

Its public path is :mod:`sklottery.pruning.sparse_linear`, with the
Bilinear twin and the swap in and out of a module. The writes into the
replaced layer (its weight's storage released, the trained weights put
back) go through :mod:`sklottery.pruning.masks`. This module imports torch
only.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .masks import set_member, set_storage
from .swap import TrainingTwin, copy_forward_hooks
from .tensors import masked_values

__all__ = ["DTYPES", "SparseTrainingLinear"]

#: Dtypes torch's CSR kernels support for all three products on CPU and CUDA.
DTYPES = (torch.float32, torch.float64)


def _csr(crow, col, values, shape):
    with warnings.catch_warnings():
        # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            crow, col, values, shape, check_invariants=False
        )


def _spmm(layer, values, dense, *, transpose):
    """``W @ dense`` (``W.T @ dense`` with ``transpose``; ``values`` then in
    the transpose's order). On the CPU torch's COO kernel is about twice as
    fast as its CSR kernel (measured with torch 2.13, one thread, 2% of a
    4096x4096 weight at batch 256: 0.077 s against 0.153 s); elsewhere CSR
    (cuSPARSE)."""
    shape = layer.shape[::-1] if transpose else layer.shape
    if dense.device.type == "cpu":
        indices = layer.t_coo_indices if transpose else layer.coo_indices
        weight = torch.sparse_coo_tensor(
            indices, values, shape, is_coalesced=True, check_invariants=False
        )
        return torch.sparse.mm(weight, dense)
    if transpose:
        weight = _csr(layer.t_crow_indices, layer.t_col_indices, values, shape)
    else:
        weight = _csr(layer.crow_indices, layer.col_indices, values, shape)
    return torch.mm(weight, dense)


class _CSRLinearFunction(torch.autograd.Function):
    """``y^T = W x^T + b`` with ``W`` in CSR; gradients at survivors only.

    Works on transposed activations (``xt`` is ``in x batch``): CSR @ dense
    is about twice as fast with a row-major dense operand, and the
    transposed output of one sparse layer is the row-major input of the
    next, with no copy.
    """

    @staticmethod
    def forward(ctx, xt, values, bias, layer):
        xt = xt.contiguous()
        out = _spmm(layer, values, xt, transpose=False)
        if bias is not None:
            out.add_(bias.unsqueeze(1))
        ctx.layer = layer
        ctx.has_bias = bias is not None
        ctx.save_for_backward(xt, values)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        xt, values = ctx.saved_tensors
        layer = ctx.layer
        grad_xt = grad_values = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_xt = _spmm(
                layer, values[layer.t_perm], grad_out.contiguous(), transpose=True
            )
        if ctx.needs_input_grad[1]:
            pattern = _csr(layer.crow_indices, layer.col_indices, values, layer.shape)
            # the gradient at the surviving positions only, in CSR order
            grad_values = torch.sparse.sampled_addmm(
                pattern, grad_out, xt.t(), beta=0.0
            ).values()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum(dim=1)
        return grad_xt, grad_values, grad_bias, None


class SparseTrainingLinear(TrainingTwin):
    """An ``nn.Linear`` that trains with its surviving weights only.

    Made by :func:`to_sparse_training` (or :meth:`from_linear`), which keeps
    the dense layer it replaces so that :func:`to_dense` can put it back.

    Parameters
    ----------
    linear : torch.nn.Linear
        The layer replaced. Its ``bias`` parameter is shared (the same
        object); its weight storage is released while the twin exists (the
        ``weight`` parameter object is kept and refilled by
        :meth:`to_linear`) unless ``release=False``.
    mask : bool tensor, optional
        Shape of the weight; True = kept. Default: the weight's nonzeros.
    release : bool, default=True
        Free the dense weight's storage while training sparse.

    Attributes
    ----------
    values : torch.nn.Parameter
        The surviving weights, row by row (CSR order): the only weights the
        optimizer sees.
    crow_indices, col_indices : torch.Tensor
        CSR structure of the weight (buffers, not in ``state_dict``).
    t_crow_indices, t_col_indices, t_perm : torch.Tensor
        CSR structure of the transposed weight; its values are
        ``values[t_perm]``.
    coo_indices, t_coo_indices : torch.Tensor
        The same two structures as (sorted) COO indices, for the CPU.

    Notes
    -----
    ``state_dict`` has the keys of an ``nn.Linear`` (``weight``, dense, with
    the pruned entries exactly 0.0, and ``bias``); loading a state dict
    takes the weight's surviving entries and rejects one with nonzeros at
    pruned positions. Deep copies and pickles keep the swapped form.
    """

    #: The dense layer type this twin replaces.
    layer_type = nn.Linear

    def __init__(
        self, linear: nn.Linear, mask: torch.Tensor | None = None, release=True
    ):
        super().__init__()
        kind = self.layer_type.__name__
        if not isinstance(linear, self.layer_type):
            raise TypeError(f"linear must be a torch.nn.{kind}; got {type(linear)}")
        weight = linear.weight.detach()
        if mask is None:
            mask = weight != 0
        mask = torch.as_tensor(mask).to(device=weight.device, dtype=torch.bool)
        if mask.shape != weight.shape:
            raise ValueError(
                f"mask has shape {tuple(mask.shape)}; the weight has shape "
                f"{tuple(weight.shape)}"
            )
        if weight.dtype not in DTYPES:
            raise TypeError(
                f"sparse training supports float32 and float64 weights; got "
                f"{weight.dtype}"
            )
        self._set_features(linear)
        # the weight as a matrix: (out_features, everything one output reads)
        self.weight_shape = tuple(int(s) for s in weight.shape)
        self.shape = (self.weight_shape[0], weight[0].numel())
        fan_in = self.shape[1]
        # The structures are built so that the largest transient is a few
        # int64 arrays of the survivors' length (never the 2-column index
        # array of ``nonzero()`` plus copies of it). The CSR column indices
        # are rows of the COO index arrays (views, no copies).
        flat = mask.reshape(-1).nonzero().squeeze(1)
        coo = torch.stack([flat // fan_in, flat % fan_in])
        del flat
        rows, cols = coo[0], coo[1]
        counts = torch.bincount(rows, minlength=self.shape[0])
        self.register_buffer("crow_indices", _offsets(counts), persistent=False)
        # the same structure as COO indices (sorted, so coalesced), for the
        # CPU's faster COO product
        self.register_buffer("coo_indices", coo, persistent=False)
        self.register_buffer("col_indices", coo[1], persistent=False)
        # the transpose: sort the survivors column by column (stable: row order
        # within a column, as CSR of the transposed matrix wants)
        perm = torch.argsort(cols * self.shape[0] + rows, stable=True)
        t_counts = torch.bincount(cols, minlength=fan_in)
        self.register_buffer("t_crow_indices", _offsets(t_counts), persistent=False)
        self.register_buffer("t_perm", perm, persistent=False)
        t_coo = torch.stack([cols[perm], rows[perm]])
        self.register_buffer("t_coo_indices", t_coo, persistent=False)
        self.register_buffer("t_col_indices", t_coo[1], persistent=False)
        self.values = nn.Parameter(
            masked_values(weight, mask), requires_grad=linear.weight.requires_grad
        )
        self.bias = linear.bias
        # the replaced layer: outside the module tree (not a submodule), so its
        # parameters are not the twin's; deepcopy and pickle carry it along
        object.__setattr__(self, "_linear", linear)
        copy_forward_hooks(linear, self)
        if release:
            set_storage(linear.weight, weight.new_empty(0))

    def _set_features(self, linear) -> None:
        self.out_features = int(linear.out_features)
        self.in_features = int(linear.in_features)

    @classmethod
    def from_linear(cls, linear: nn.Linear, mask=None, release=True):
        """The sparse-training twin of ``linear`` (see the class docstring)."""
        return cls(linear, mask, release=release)

    @property
    def nnz(self) -> int:
        """Number of surviving weights."""
        return int(self.values.numel())

    @property
    def density(self) -> float:
        """Fraction of the weights that survive."""
        return self.nnz / max(1, self.shape[0] * self.shape[1])

    @property
    def mask(self) -> torch.Tensor:
        """The surviving positions as a dense bool tensor (True = kept)."""
        ones = torch.ones_like(self.col_indices, dtype=torch.bool)
        dense = _csr(self.crow_indices, self.col_indices, ones, self.shape).to_dense()
        return dense.reshape(self.weight_shape)

    @property
    def weight(self) -> torch.Tensor:
        """The weight as a new dense tensor (a detached copy, zeros pruned)."""
        return self.dense_weight()

    @torch.no_grad()
    def dense_weight(self) -> torch.Tensor:
        """The weight as a new dense tensor, the pruned entries exactly 0.0."""
        return (
            _csr(self.crow_indices, self.col_indices, self.values.detach(), self.shape)
            .to_dense()
            .reshape(self.weight_shape)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise RuntimeError(
                f"input has {x.shape[-1]} features; the layer expects "
                f"{self.in_features}"
            )
        lead = x.shape[:-1]
        xt = x.reshape(-1, self.in_features).t()
        out = _CSRLinearFunction.apply(xt, self.values, self.bias, self)
        # the transposed view is taken outside the autograd function, so
        # in-place operations on the output (ReLU(inplace=True)) are allowed
        return out.t().reshape(*lead, self.out_features)

    @torch.no_grad()
    def to_linear(self) -> nn.Linear:
        """The replaced ``nn.Linear`` with the trained weights (zeros pruned).

        The very same layer object and ``weight`` parameter object as before
        the swap; its weight now holds the values trained here.
        """
        linear = self._linear
        dense = self.dense_weight()
        set_storage(linear.weight, dense, self.values.requires_grad)
        if self.bias is not None and linear.bias is not self.bias:
            set_member(linear, "bias", self.bias)
        return linear

    # state_dict with nn.Linear's keys -----------------------------------
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        destination[prefix + "weight"] = self.dense_weight()
        if self.bias is not None:
            destination[prefix + "bias"] = (
                self.bias if keep_vars else self.bias.detach()
            )

    def _load_from_state_dict(
        self,
        state_dict,
        prefix,
        local_metadata,
        strict,
        missing_keys,
        unexpected_keys,
        error_msgs,
    ):
        expected = ["weight"] + (["bias"] if self.bias is not None else [])
        for key in state_dict:
            if key.startswith(prefix):
                name = key[len(prefix) :]
                if "." not in name and name not in expected:
                    unexpected_keys.append(key)
        key = prefix + "weight"
        if key not in state_dict:
            missing_keys.append(key)
        else:
            weight = torch.as_tensor(state_dict[key])
            if tuple(weight.shape) != self.weight_shape:
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape "
                    f"{tuple(weight.shape)}, the shape in the current model is "
                    f"{self.weight_shape}."
                )
            else:
                weight = weight.to(self.values.device)
                mask = self.mask
                if bool((weight[~mask] != 0).any()):
                    error_msgs.append(
                        f"{key} has nonzero values at pruned positions; the "
                        "layer trains sparse and cannot hold them (load it into "
                        "the dense module, after to_dense)"
                    )
                else:
                    with torch.no_grad():
                        self.values.copy_(masked_values(weight, mask))
        if self.bias is not None:
            key = prefix + "bias"
            if key not in state_dict:
                missing_keys.append(key)
            else:
                with torch.no_grad():
                    self.bias.copy_(state_dict[key])

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, layout=csr, density={self.density:.4f}"
        )


def _offsets(counts: torch.Tensor) -> torch.Tensor:
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])

