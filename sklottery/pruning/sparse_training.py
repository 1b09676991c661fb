"""Sparse training: pruned ``nn.Linear`` layers train with their survivors only.

While a pruning round trains, each chosen ``nn.Linear`` is swapped for a
:class:`SparseTrainingLinear` holding only its surviving weights, in
compressed-sparse-row (CSR) order, as one trainable ``nn.Parameter``
(``values``). Its forward product uses the CSR weight, the input gradient the
CSR of the transpose, and the weight gradient
:func:`torch.sparse.sampled_addmm` -- computed only at the surviving
positions. Pruned weights do not exist while training, so they are exactly
zero by construction, and an optimizer built on the swapped module holds
state (momentum, Adam's moments) for the survivors only.

:func:`to_sparse_training` swaps the layers in place at the start of a round
and :func:`to_dense` puts the very same ``nn.Linear`` objects back at its
end, their ``weight`` holding the trained survivors and exactly 0.0
elsewhere: between rounds and after training a user sees ordinary dense
layers.

Which layers train sparse (``mode="auto"``) is decided per layer by a short
interleaved timing of one forward and backward pass of both forms at the
round's batch size (or, with ``measure=False``, by the calibrated rule
:func:`rule_training_layout`); a layer trains sparse only when that is
clearly faster, so training is never slower than dense training with masks
by more than timing noise. Measured on a shared 2-core CPU with torch 2.13
(``benchmarks/bench_sparse_training.py``), one forward and backward pass of
a 4096x4096 layer at batch 256 takes 0.08x the dense time at 2% density,
0.37x at 10%, and 2.5x (slower) at 50%; small layers (fewer than ~100k
weights, or an output of 10) never pay.

Differences from dense training with masks: results agree up to float
rounding (the sums run in another order); gradient-norm clipping sees the
survivors' gradients only (with masks the pruned positions' gradients, which
masks discard after the step, count in the norm too). Every element-wise
optimizer (SGD with momentum or Nesterov, Adam, AdamW, RMSprop, Adagrad, ...)
with or without weight decay updates the survivors exactly as it would with
masks.

This module imports torch only.
"""

from __future__ import annotations

import math
import time
import warnings

import torch
from torch import nn

__all__ = [
    "MODES",
    "SparseTrainingLinear",
    "choose_training_layouts",
    "layer_train_macs",
    "measure_training_step",
    "rule_training_layout",
    "sparse_training_layers",
    "to_dense",
    "to_sparse_training",
    "train_macs",
]

#: Values of ``mode`` (``sparse_training`` of the estimators).
MODES = ("auto", True, False)

#: Layers with fewer weights never train sparse with ``mode="auto"``: the
#: kernels' fixed costs dominate (measured: a 100x300 layer at batch 60 is
#: 0.8x dense at 2% density but 1.2x at 20%).
MIN_SPARSE_NUMEL = 1 << 17
#: ... nor layers with a side shorter than this (an output layer of 10 units
#: is slower in CSR at every density).
MIN_SPARSE_SIDE = 64
#: ... nor batches smaller than this.
MIN_SPARSE_BATCH = 16
#: The rule answers sparse at or below this density (every measured layer
#: above the size limits took <= 0.55x the dense time there).
RULE_DENSITY = 0.1
#: Without timing, at or below this density (the measured ratio is <= 0.3).
SURE_DENSITY = 0.05
#: Above this density CSR training is never timed (measured: 0.5-0.85x dense
#: at 20%, 2.5x at 50%).
MAX_SPARSE_DENSITY = 0.3
#: A timed layer trains sparse only if it takes at most this fraction of the
#: dense time, so that timing noise cannot make training slower.
MARGIN = 0.9
#: Dtypes torch's CSR kernels support for all three products on CPU and CUDA.
_DTYPES = (torch.float32, torch.float64)

#: torch.nn.Module's hook registries, shared with the swapped layer.
_HOOK_DICTS = (
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
)


def _csr(crow, col, values, shape):
    with warnings.catch_warnings():
        # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            crow, col, values, shape, check_invariants=False
        )


class _CSRLinearFunction(torch.autograd.Function):
    """``y^T = W x^T + b`` with ``W`` in CSR; gradients at survivors only.

    Works on transposed activations (``xt`` is ``in x batch``): CSR @ dense
    is about twice as fast with a row-major dense operand, and the
    transposed output of one sparse layer is the row-major input of the
    next, with no copy.
    """

    @staticmethod
    def forward(ctx, xt, values, bias, layer):
        weight = _csr(layer.crow_indices, layer.col_indices, values, layer.shape)
        xt = xt.contiguous()
        if bias is None:
            out = torch.mm(weight, xt)
        else:
            out = torch.addmm(bias.unsqueeze(1), weight, xt)
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
            weight_t = _csr(
                layer.t_crow_indices,
                layer.t_col_indices,
                values[layer.t_perm],
                layer.shape[::-1],
            )
            grad_xt = torch.mm(weight_t, grad_out.contiguous())
        if ctx.needs_input_grad[1]:
            pattern = _csr(layer.crow_indices, layer.col_indices, values, layer.shape)
            # the gradient at the surviving positions only, in CSR order
            grad_values = torch.sparse.sampled_addmm(
                pattern, grad_out, xt.t(), beta=0.0
            ).values()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum(dim=1)
        return grad_xt, grad_values, grad_bias, None


class SparseTrainingLinear(nn.Module):
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

    Notes
    -----
    ``state_dict`` has the keys of an ``nn.Linear`` (``weight``, dense, with
    the pruned entries exactly 0.0, and ``bias``); loading a state dict
    takes the weight's surviving entries and rejects one with nonzeros at
    pruned positions. Deep copies and pickles keep the swapped form.
    """

    def __init__(
        self, linear: nn.Linear, mask: torch.Tensor | None = None, release=True
    ):
        super().__init__()
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be a torch.nn.Linear; got {type(linear)}")
        weight = linear.weight.detach()
        if mask is None:
            mask = weight != 0
        mask = torch.as_tensor(mask).to(device=weight.device, dtype=torch.bool)
        if mask.shape != weight.shape:
            raise ValueError(
                f"mask has shape {tuple(mask.shape)}; the weight has shape "
                f"{tuple(weight.shape)}"
            )
        if weight.dtype not in _DTYPES:
            raise TypeError(
                f"sparse training supports float32 and float64 weights; got "
                f"{weight.dtype}"
            )
        self.out_features = int(linear.out_features)
        self.in_features = int(linear.in_features)
        self.shape = (self.out_features, self.in_features)
        rows, cols = mask.nonzero(as_tuple=True)
        counts = torch.bincount(rows, minlength=self.out_features)
        self.register_buffer("crow_indices", _offsets(counts), persistent=False)
        self.register_buffer("col_indices", cols.clone(), persistent=False)
        # the transpose: sort the survivors column by column (stable: row order
        # within a column, as CSR of the transposed matrix wants)
        perm = torch.argsort(cols * self.out_features + rows, stable=True)
        t_counts = torch.bincount(cols, minlength=self.in_features)
        self.register_buffer("t_crow_indices", _offsets(t_counts), persistent=False)
        self.register_buffer("t_col_indices", rows[perm].clone(), persistent=False)
        self.register_buffer("t_perm", perm, persistent=False)
        self.values = nn.Parameter(
            weight[mask].clone(), requires_grad=linear.weight.requires_grad
        )
        self.bias = linear.bias
        # the replaced layer: outside the module tree (not a submodule), so its
        # parameters are not the twin's; deepcopy and pickle carry it along
        object.__setattr__(self, "_linear", linear)
        for attr in _HOOK_DICTS:
            if hasattr(linear, attr) and hasattr(self, attr):
                getattr(self, attr).update(getattr(linear, attr))
        if release:
            linear.weight.data = weight.new_empty(0)

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
        return self.nnz / max(1, self.out_features * self.in_features)

    @property
    def mask(self) -> torch.Tensor:
        """The surviving positions as a dense bool tensor (True = kept)."""
        ones = torch.ones_like(self.col_indices, dtype=torch.bool)
        return _csr(self.crow_indices, self.col_indices, ones, self.shape).to_dense()

    @property
    def weight(self) -> torch.Tensor:
        """The weight as a new dense tensor (a detached copy, zeros pruned)."""
        return self.dense_weight()

    @torch.no_grad()
    def dense_weight(self) -> torch.Tensor:
        """The weight as a new dense tensor, the pruned entries exactly 0.0."""
        return _csr(
            self.crow_indices, self.col_indices, self.values.detach(), self.shape
        ).to_dense()

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
        linear.weight.data = dense
        linear.weight.requires_grad_(self.values.requires_grad)
        if self.bias is not None and linear.bias is not self.bias:
            linear.bias = self.bias
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
            if tuple(weight.shape) != self.shape:
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape "
                    f"{tuple(weight.shape)}, the shape in the current model is "
                    f"{self.shape}."
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
                        self.values.copy_(weight[mask])
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


# deciding the layout ------------------------------------------------------


def rule_training_layout(
    shape, density: float, batch_size: int, device="cpu"
) -> str:
    """Calibrated rule: ``"sparse"`` where sparse training is reliably faster.

    Calibrated on a shared 2-core CPU with torch 2.13 (one forward and
    backward pass, see ``benchmarks/bench_sparse_training.py``): at 10%
    density every layer of at least ``2**17`` weights with both sides of at
    least 64 took at most 0.55x the dense time, at batch 60 to 256. Off the
    CPU the rule answers dense (GPU dense kernels win down to far lower
    densities; measure instead).

    Parameters
    ----------
    shape : tuple of int
        ``(out_features, in_features)``.
    density : float
        Fraction of the weights kept.
    batch_size : int
        Rows per training batch.
    device : str or torch.device, default="cpu"

    Returns
    -------
    {"sparse", "dense"}

    Examples
    --------
    >>> rule_training_layout((4096, 4096), 0.05, 256)
    'sparse'
    >>> rule_training_layout((10, 4096), 0.05, 256)
    'dense'
    """
    out_features, in_features = (int(s) for s in shape)
    if torch.device(device).type != "cpu":
        return "dense"
    if (
        out_features * in_features < MIN_SPARSE_NUMEL
        or min(out_features, in_features) < MIN_SPARSE_SIDE
        or batch_size < MIN_SPARSE_BATCH
    ):
        return "dense"
    return "sparse" if density <= RULE_DENSITY else "dense"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_training_step(
    linear: nn.Linear, mask: torch.Tensor, batch_size: int, repeats: int = 3
) -> tuple[float, float]:
    """Seconds of one forward and backward pass, dense and sparse.

    Both forms run on copies of the layer (its own parameters and gradients
    are not touched) and on the same random batch, interleaved (dense,
    sparse, dense, ...) so that load from other processes hits both alike;
    the fastest sample of each is returned (load only ever adds time).

    Parameters
    ----------
    linear : torch.nn.Linear
    mask : bool tensor
        The weight's surviving positions.
    batch_size : int
    repeats : int, default=3

    Returns
    -------
    (dense_s, sparse_s) : tuple of float
    """
    weight = linear.weight.detach()
    dense = nn.Linear(
        linear.in_features,
        linear.out_features,
        bias=linear.bias is not None,
        device=weight.device,
        dtype=weight.dtype,
    )
    with torch.no_grad():
        dense.weight.copy_(weight * mask)
    sparse = SparseTrainingLinear(dense, mask, release=False)
    x = torch.randn(
        batch_size, linear.in_features, dtype=weight.dtype, device=weight.device
    ).requires_grad_()
    grad = torch.randn(
        batch_size, linear.out_features, dtype=weight.dtype, device=weight.device
    )

    def step(layer):
        def run():
            layer(x).backward(grad)

        return run

    fns = (step(dense), step(sparse))
    for fn in fns:  # warm-up
        fn()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in zip(fns, samples):
            _sync(weight.device)
            start = time.perf_counter()
            fn()
            _sync(weight.device)
            out.append(time.perf_counter() - start)
    return min(samples[0]), min(samples[1])


def _candidates(module: nn.Module) -> dict[str, nn.Linear]:
    """Linear layers that may be swapped, by module name.

    Excluded: Linear subclasses overriding ``forward`` (the swap would change
    what they compute), Linear layers inside ``MultiheadAttention`` (its
    forward reads ``out_proj.weight`` directly), layers whose weight is
    shared with another module (tied weights), and the root module itself
    (it cannot be replaced in place).
    """
    attention_children = {
        id(child)
        for m in module.modules()
        if isinstance(m, nn.MultiheadAttention)
        for child in m.modules()
        if child is not m
    }
    uses: dict[int, int] = {}
    for _, p in module.named_parameters(remove_duplicate=False):
        uses[id(p)] = uses.get(id(p), 0) + 1
    return {
        name: m
        for name, m in module.named_modules()
        if name
        and isinstance(m, nn.Linear)
        and type(m).forward is nn.Linear.forward
        and id(m) not in attention_children
        and uses.get(id(m.weight), 0) == 1
    }


def _check_mode(mode):
    if not any(mode is m or (isinstance(m, str) and mode == m) for m in MODES):
        raise ValueError(
            f"sparse_training={mode!r} is not valid; use 'auto', True or False"
        )


def _check_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")


def choose_training_layouts(
    module: nn.Module,
    masks: dict[str, torch.Tensor],
    *,
    mode="auto",
    batch_size: int,
    measure: bool = True,
    repeats: int = 3,
    measure_fn=None,
) -> list[dict]:
    """Decide, per masked Linear layer, whether it trains sparse or dense.

    Parameters
    ----------
    module : torch.nn.Module
        The network (dense: ordinary ``nn.Linear`` layers).
    masks : dict of str to bool tensor
        Keyed like ``module.named_parameters()`` (``"0.weight"``); True =
        kept. Linear layers whose weight has no mask stay dense.
    mode : {"auto", True, False}, default="auto"
        ``True`` trains every eligible masked Linear sparse (every layer but
        those with nothing pruned, tied weights, overridden ``forward`` or
        an unsupported dtype), ``False`` none, ``"auto"`` the faster form.
    batch_size : int
        Rows per training batch.
    measure : bool, default=True
        With ``mode="auto"``: time both forms where the calibrated rule is
        not sure (density between :data:`SURE_DENSITY` and
        :data:`MAX_SPARSE_DENSITY` on a layer large enough); ``False``
        applies :func:`rule_training_layout` alone (deterministic).
    repeats : int, default=3
        Interleaved timing samples per form.
    measure_fn : callable, optional
        ``f(linear, mask, batch_size, repeats) -> (dense_s, sparse_s)``;
        defaults to :func:`measure_training_step`.

    Returns
    -------
    list of dict
        One per masked Linear layer: ``name`` (module name), ``param``
        (the mask's key), ``shape``, ``nnz``, ``density``, ``dense_s`` and
        ``sparse_s`` (NaN where not timed), ``layout`` ("sparse"/"dense")
        and ``reason``.
    """
    _check_mode(mode)
    _check_int(batch_size, "batch_size")
    _check_int(repeats, "repeats")
    if not isinstance(masks, dict):
        raise TypeError(f"masks must be a dict; got {type(masks).__name__}")
    measure_fn = measure_training_step if measure_fn is None else measure_fn
    candidates = _candidates(module)
    linears = {
        name: m for name, m in module.named_modules() if isinstance(m, nn.Linear)
    }
    rows = []
    for name, lin in linears.items():
        param = f"{name}.weight" if name else "weight"
        if param not in masks:
            continue
        mask = torch.as_tensor(masks[param])
        if tuple(mask.shape) != tuple(lin.weight.shape):
            raise ValueError(
                f"masks[{param!r}] has shape {tuple(mask.shape)}; the weight has "
                f"shape {tuple(lin.weight.shape)}"
            )
        numel = mask.numel()
        nnz = int(mask.sum())
        density = nnz / max(1, numel)
        shape = tuple(int(s) for s in lin.weight.shape)
        dense_s = sparse_s = math.nan
        device = lin.weight.device
        if mode is False:
            layout, reason = "dense", "sparse_training=False"
        elif name not in candidates:
            layout, reason = "dense", "not swappable"
        elif lin.weight.dtype not in _DTYPES:
            layout, reason = "dense", f"dtype {lin.weight.dtype}"
        elif nnz == numel:
            layout, reason = "dense", "nothing pruned"
        elif mode is True:
            layout, reason = "sparse", "sparse_training=True"
        elif not measure:
            layout = rule_training_layout(shape, density, batch_size, device)
            reason = "rule"
        elif (
            rule_training_layout(shape, 0.0, batch_size, device) == "dense"
            and device.type == "cpu"
        ) or density > MAX_SPARSE_DENSITY:
            layout, reason = "dense", "rule"
        elif device.type == "cpu" and density <= SURE_DENSITY:
            layout, reason = "sparse", "rule"
        else:
            dense_s, sparse_s = measure_fn(lin, mask.to(device), batch_size, repeats)
            layout = "sparse" if sparse_s <= MARGIN * dense_s else "dense"
            reason = "measured"
        rows.append(
            {
                "name": name,
                "param": param,
                "shape": shape,
                "nnz": nnz,
                "density": density,
                "dense_s": float(dense_s),
                "sparse_s": float(sparse_s),
                "layout": layout,
                "reason": reason,
            }
        )
    return rows


def to_sparse_training(
    module: nn.Module,
    masks: dict[str, torch.Tensor],
    *,
    mode="auto",
    batch_size: int,
    measure: bool = True,
    repeats: int = 3,
    measure_fn=None,
) -> list[dict]:
    """Swap masked ``nn.Linear`` layers for :class:`SparseTrainingLinear`, in place.

    Call it before building the optimizer of a round (the optimizer must see
    the swapped parameters) and :func:`to_dense` after the round. The
    surviving weights keep their current values; pruned ones are dropped
    (whatever their value). Layers already swapped are left as they are.

    Parameters
    ----------
    module : torch.nn.Module
    masks : dict of str to bool tensor
        Keyed like ``module.named_parameters()``; True = kept.
    mode, batch_size, measure, repeats, measure_fn
        See :func:`choose_training_layouts`.

    Returns
    -------
    list of dict
        The decisions (:func:`choose_training_layouts`); the layers with
        ``layout == "sparse"`` are swapped.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklottery.pruning.sparse_training import to_dense, to_sparse_training
    >>> net = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> masks = {"0.weight": torch.rand(4, 8) < 0.5}
    >>> rows = to_sparse_training(net, masks, mode=True, batch_size=32)
    >>> type(net[0]).__name__, rows[0]["layout"]
    ('SparseTrainingLinear', 'sparse')
    >>> to_dense(net)
    ['0']
    >>> type(net[0]).__name__
    'Linear'
    """
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module; got {type(module).__name__}"
        )
    rows = choose_training_layouts(
        module,
        masks,
        mode=mode,
        batch_size=batch_size,
        measure=measure,
        repeats=repeats,
        measure_fn=measure_fn,
    )
    for row in rows:
        if row["layout"] != "sparse":
            continue
        parent_name, _, child = row["name"].rpartition(".")
        parent = module.get_submodule(parent_name)
        linear = getattr(parent, child)
        mask = torch.as_tensor(masks[row["param"]]).to(linear.weight.device)
        setattr(parent, child, SparseTrainingLinear(linear, mask))
    return rows


def sparse_training_layers(module: nn.Module) -> list[str]:
    """Names of the submodules currently swapped for sparse training."""
    return [
        name
        for name, m in module.named_modules()
        if isinstance(m, SparseTrainingLinear)
    ]


def to_dense(module: nn.Module) -> list[str]:
    """Put every swapped layer's ``nn.Linear`` back, in place.

    Each layer gets back the very ``nn.Linear`` object (and ``weight``
    parameter object) it had before :func:`to_sparse_training`, its weight
    holding the trained survivors and exactly 0.0 at pruned positions.

    Returns
    -------
    list of str
        Names of the layers put back.
    """
    names = sparse_training_layers(module)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name)
        setattr(parent, child, getattr(parent, child).to_linear())
    return names


# cost ---------------------------------------------------------------------


def layer_train_macs(shape, nnz: int | None, layout: str, n_samples: int) -> int:
    """Multiply-adds of training a Linear layer on ``n_samples`` rows.

    Forward, input gradient and weight gradient are one product each:
    ``3 * n_samples * in * out`` dense, ``3 * n_samples * nnz`` sparse (bias
    additions and the optimizer step are not counted).

    Examples
    --------
    >>> layer_train_macs((300, 784), None, "dense", 60)
    42336000
    >>> layer_train_macs((300, 784), 4704, "sparse", 60)
    846720
    """
    out_features, in_features = (int(s) for s in shape)
    if layout == "dense":
        return 3 * int(n_samples) * out_features * in_features
    if layout == "sparse":
        if nnz is None:
            raise ValueError("nnz is required for a sparse layer")
        return 3 * int(n_samples) * int(nnz)
    raise ValueError(f"layout must be 'dense' or 'sparse'; got {layout!r}")


def train_macs(layers, n_samples: int) -> int:
    """Multiply-adds of training ``layers`` on ``n_samples`` rows in total.

    Parameters
    ----------
    layers : iterable of dict
        Each with ``shape``, ``layout`` and (for sparse layers) ``nnz`` --
        the rows of :func:`choose_training_layouts`, plus any dense layers
        (``{"shape": ..., "layout": "dense"}``).
    n_samples : int
        Rows trained on: samples per epoch times epochs.

    Returns
    -------
    int
    """
    return sum(
        layer_train_macs(row["shape"], row.get("nnz"), row["layout"], n_samples)
        for row in layers
    )

