"""Sparse export: a winning ticket as a plain torch module for fast inference.

A pruned ``nn.Linear`` becomes a :class:`SparseLinear` whose weight is stored
in torch's compressed-sparse-row (CSR) layout, but only where that is faster
than the dense matrix product for the layer's shape and density. Sparse
kernels beat dense BLAS only for large, very sparse matrices: measured on a
2-core CPU with batch 256, a 4096x4096 layer is about 1.2x faster at 90%
sparsity and 5x faster at 98%, while a 784x300 layer at 90% is *slower* than
dense. So, per layer, :func:`choose_layouts` keeps whichever of dense or CSR
is faster -- by a short interleaved timing at export time (``measure=True``)
or by a calibrated rule (:func:`rule_layout`) -- and the export is never
slower than the dense network by more than timing noise.

Before that, dead hidden units and conv channels -- all outgoing weights
pruned, or all incoming weights pruned with a constant output that folds
exactly into the next layer's bias -- are removed where the module's dataflow
is known (a ``Sequential`` or :class:`~sklottery.MLP`; see
:mod:`sklottery.export._dead_units`), giving physically smaller layers. Weights behind
a reparametrization (``spectral_norm``, ``weight_norm``,
``torch.nn.utils.prune``) are baked into plain weights first.

Every other layer (convolutions, RNNs, embeddings, attention, bilinear, and
Linear layers whose ``forward`` is overridden or that belong to an attention
block) stays dense, with its pruned weights exactly zero. COO storage is
never used: it is 10-50x slower than dense on CPU.

References
----------
S. Han, J. Pool, J. Tran and W. Dally, "Learning both Weights and Connections
for Efficient Neural Networks", NeurIPS 2015 (pruned networks stored in CSR).
T. Gale, M. Zaharia, C. Young and E. Elsen, "Sparse GPU Kernels for Deep
Learning", SC 2020 (sparse kernels pay off only at high sparsity).
"""

from __future__ import annotations

import copy
import time
import warnings

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..pruning.masks import apply_masks
from ..pruning.sparse_linear import attention_layers, copy_forward_hooks
from ._dead_units import remove_dead_units

__all__ = [
    "LAYOUTS",
    "SparseLinear",
    "bake_reparametrizations",
    "choose_layouts",
    "rule_layout",
    "to_sparse",
]

LAYOUTS = ("auto", "sparse", "dense")

#: Below this many weights a layer is never worth timing: CSR cannot win.
MIN_SPARSE_NUMEL = 1 << 16
#: Above this density (fraction of weights kept) CSR cannot win.
MAX_SPARSE_DENSITY = 0.25
#: A measured CSR layer is kept only if it takes at most this fraction of the
#: dense time, so that timing noise cannot make the export slower.
MARGIN = 0.9


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


def rule_layout(shape, density: float, batch_size: int = 256) -> str:
    """Calibrated rule: ``"sparse"`` where CSR is reliably faster, else ``"dense"``.

    Calibrated with torch's CSR ``addmm`` on a shared 2-core CPU at batch 256
    (see ``benchmarks/bench_sparse.py``): CSR wins clearly only for large
    layers at high sparsity. The rule is deliberately conservative -- when in
    doubt it answers dense, which is never slower than dense.

    Parameters
    ----------
    shape : tuple of int
        ``(out_features, in_features)``.
    density : float
        Fraction of the weights kept (1 - sparsity).
    batch_size : int, default=256
        Rows per forward call. Below 32 rows CSR overheads dominate.

    Returns
    -------
    {"sparse", "dense"}

    Examples
    --------
    >>> rule_layout((300, 784), 0.1)
    'dense'
    >>> rule_layout((4096, 4096), 0.02)
    'sparse'
    """
    numel = 1
    for s in shape:
        numel *= int(s)
    if batch_size < 32:
        return "dense"
    if numel >= 1 << 22 and density <= 0.1:
        return "sparse"
    if numel >= 1 << 20 and density <= 0.02:
        return "sparse"
    return "dense"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def measure_layer(
    linear: nn.Linear, sparse: SparseLinear, batch_size: int, repeats: int = 5
) -> tuple[float, float]:
    """Seconds per forward of ``linear`` (dense) and ``sparse``.

    Both run on the same random batch, interleaved (dense, sparse, dense, ...)
    so that load from other processes hits both alike; each sample repeats the
    call enough times to last about 5 ms. The fastest sample of each is
    returned: load from other processes only ever adds time, so the minimum
    is the most stable estimate of what the layer itself costs.
    """
    w = linear.weight
    x = torch.randn(batch_size, linear.in_features, dtype=w.dtype, device=w.device)
    fns = (lambda: linear(x), lambda: sparse(x))
    for fn in fns:  # warm-up
        fn()
    _sync(w.device)
    start = time.perf_counter()
    fns[0]()
    _sync(w.device)
    inner = max(1, int(0.005 / max(time.perf_counter() - start, 1e-7)))
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in zip(fns, samples):
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            _sync(w.device)
            out.append((time.perf_counter() - start) / inner)
    return min(samples[0]), min(samples[1])


def _convertible(module: nn.Module) -> dict[str, nn.Linear]:
    """Linear layers that may be swapped for :class:`SparseLinear`, by name.

    Excluded: Linear subclasses overriding ``forward`` (the swap would change
    what they compute) and Linear layers inside ``MultiheadAttention``, whose
    forward reads ``out_proj.weight`` directly.
    """
    attention_children = attention_layers(module)
    return {
        name: m
        for name, m in module.named_modules()
        if isinstance(m, nn.Linear)
        and type(m).forward is nn.Linear.forward
        and id(m) not in attention_children
    }


def _check_args(layout, batch_size, repeats):
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise ValueError(
            f"layout={layout!r} is not valid; valid layouts are {list(LAYOUTS)}"
        )
    for value, name, minimum in (
        (batch_size, "batch_size", 1),
        (repeats, "repeats", 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")


@torch.no_grad()
def choose_layouts(
    module: nn.Module,
    *,
    layout: str = "auto",
    batch_size: int = 256,
    measure: bool = True,
    repeats: int = 5,
    measure_fn=None,
) -> list[dict]:
    """Decide, per convertible Linear layer, whether it is exported dense or CSR.

    Parameters
    ----------
    module : torch.nn.Module
        The network with its pruned weights already exactly zero.
    layout : {"auto", "sparse", "dense"}, default="auto"
        ``"sparse"``/``"dense"`` force every layer with at least one zero
        weight; ``"auto"`` keeps the faster one per layer.
    batch_size : int, default=256
        Rows per forward call at inference; CSR pays off for large batches.
    measure : bool, default=True
        With ``layout="auto"``: time both forms on a random batch (layers
        too small or too dense to win are answered dense without timing);
        ``False`` uses :func:`rule_layout` alone (deterministic).
    repeats : int, default=5
        Interleaved timing samples per form; the fastest of each are compared.
    measure_fn : callable, optional
        ``f(linear, sparse_linear, batch_size, repeats) -> (dense_s,
        sparse_s)``; defaults to :func:`measure_layer`. For testing.

    Returns
    -------
    list of dict
        One per convertible layer: ``name``, ``shape``, ``density``,
        ``dense_s``, ``sparse_s`` (NaN where not timed), ``layout``.
    """
    _check_args(layout, batch_size, repeats)
    measure_fn = measure_layer if measure_fn is None else measure_fn
    rows = []
    for name, lin in _convertible(module).items():
        shape = tuple(int(s) for s in lin.weight.shape)
        numel = lin.weight.numel()
        density = float(torch.count_nonzero(lin.weight)) / max(1, numel)
        dense_s = sparse_s = float("nan")
        if density >= 1.0 or layout == "dense":
            choice = "dense"
        elif layout == "sparse":
            choice = "sparse"
        elif not measure:
            choice = rule_layout(shape, density, batch_size)
        elif numel < MIN_SPARSE_NUMEL or density > MAX_SPARSE_DENSITY:
            choice = "dense"
        else:
            dense_s, sparse_s = measure_fn(
                lin, SparseLinear.from_linear(lin), batch_size, repeats
            )
            choice = "sparse" if sparse_s <= MARGIN * dense_s else "dense"
        rows.append(
            {
                "name": name,
                "shape": shape,
                "density": density,
                "dense_s": float(dense_s),
                "sparse_s": float(sparse_s),
                "layout": choice,
            }
        )
    return rows


def _deepcopy(module: nn.Module) -> nn.Module:
    """``copy.deepcopy`` that also copies modules holding computed tensors.

    The old-style ``torch.nn.utils.weight_norm``/``spectral_norm`` and
    ``torch.nn.utils.prune`` keep the weight they compute as a plain attribute
    with a grad history, which ``deepcopy`` refuses; those are copied
    detached (each forward recomputes them anyway).
    """
    memo: dict = {}
    for sub in module.modules():
        for value in vars(sub).values():
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return copy.deepcopy(module, memo)


@torch.no_grad()
def bake_reparametrizations(module: nn.Module) -> list[str]:
    """Replace every reparametrized tensor of ``module`` by its current value.

    Parametrizations (``torch.nn.utils.parametrize``, e.g. ``spectral_norm``,
    ``weight_norm``) and the old-style hooks of ``torch.nn.utils.weight_norm``,
    ``torch.nn.utils.spectral_norm`` and ``torch.nn.utils.prune`` are removed,
    leaving plain parameters equal to what the layer computed with -- in eval
    mode, the mode of an export, the outputs are unchanged. In place.

    Returns
    -------
    list of str
        The tensors baked, as ``"layer.tensor"``.
    """
    from torch.nn.utils import prune
    from torch.nn.utils.spectral_norm import SpectralNorm, remove_spectral_norm
    from torch.nn.utils.weight_norm import WeightNorm, remove_weight_norm

    baked = []
    for name, sub in list(module.named_modules()):
        prefix = f"{name}." if name else ""
        if parametrize.is_parametrized(sub):
            # not parametrize.remove_parametrizations: it edits the injected
            # class, which a deep copy shares with the original module
            plists = dict(sub.parametrizations.items())
            values = {t: getattr(sub, t).detach().clone() for t in plists}
            sub.__class__ = type(sub).__bases__[0]
            del sub._modules["parametrizations"]
            for tensor, value in values.items():
                if isinstance(getattr(plists[tensor], "original", None), torch.Tensor) \
                        and not isinstance(plists[tensor].original, nn.Parameter):
                    sub.register_buffer(tensor, value)
                else:
                    sub.register_parameter(tensor, nn.Parameter(value))
                baked.append(prefix + tensor)
        for hook in list(sub._forward_pre_hooks.values()):
            if isinstance(hook, WeightNorm):
                remove_weight_norm(sub, hook.name)
                baked.append(prefix + hook.name)
            elif isinstance(hook, SpectralNorm):
                remove_spectral_norm(sub, hook.name)
                baked.append(prefix + hook.name)
            elif isinstance(hook, prune.BasePruningMethod):
                prune.remove(sub, hook._tensor_name)
                baked.append(prefix + hook._tensor_name)
    return baked


@torch.no_grad()
def to_sparse(
    module: nn.Module,
    masks: dict[str, torch.Tensor] | None = None,
    *,
    layout: str = "auto",
    batch_size: int = 256,
    measure: bool = True,
    repeats: int = 5,
    measure_fn=None,
    structured: bool = True,
) -> nn.Module:
    """Export a pruned network as a plain torch module for inference.

    The module is deep-copied (the original is not changed), ``masks`` (if
    given) are applied to the copy, which is put in eval mode with gradients
    off and its reparametrized weights baked
    (:func:`bake_reparametrizations`). With ``structured=True`` its dead
    hidden units are removed (:func:`~sklottery.export._dead_units.remove_dead_units`),
    then each Linear layer chosen by :func:`choose_layouts` is replaced by a
    :class:`SparseLinear`. Its outputs equal the masked dense network's (in
    eval mode) up to float rounding (``torch.allclose``).

    The decisions are kept on the returned module as ``sparse_layouts``
    (a list of dicts, see :func:`choose_layouts`, each with two more keys:
    ``original_shape``, the weight's shape before dead units were removed, and
    ``removed_units``, how many of the layer's output units were removed), and
    the removed units of every analysed layer (Linear and conv) as
    ``removed_units`` (dict of layer name to count; empty when the module's
    dataflow is not known or ``structured=False``).

    Parameters
    ----------
    module : torch.nn.Module
    masks : dict of str to bool tensor, optional
        Keyed like ``module.named_parameters()``; True = kept.
    layout, batch_size, measure, repeats, measure_fn
        See :func:`choose_layouts`.
    structured : bool, default=True
        Remove dead hidden units and conv channels first (exact; only where
        the module's dataflow is known).

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from sklottery.export._sparse import to_sparse
    >>> net = torch.nn.Sequential(torch.nn.Linear(8, 4))
    >>> with torch.no_grad():
    ...     net[0].weight[:, :6] = 0.0
    >>> sparse = to_sparse(net, layout="sparse")
    >>> type(sparse[0]).__name__, sparse[0].nnz
    ('SparseLinear', 8)
    >>> x = torch.randn(3, 8)
    >>> torch.allclose(sparse(x), net(x), atol=1e-6)
    True
    """
    _check_args(layout, batch_size, repeats)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"module must be a torch.nn.Module; got {type(module).__name__}"
        )
    if not isinstance(structured, bool):
        raise TypeError(f"structured must be True or False; got {structured!r}")
    out = _deepcopy(module)
    if masks is not None:
        apply_masks(out, masks)
    out.eval()
    bake_reparametrizations(out)
    out.requires_grad_(False)
    shapes = {
        name: tuple(int(s) for s in lin.weight.shape)
        for name, lin in _convertible(out).items()
    }
    removed = remove_dead_units(out) if structured else {}
    decisions = choose_layouts(
        out,
        layout=layout,
        batch_size=batch_size,
        measure=measure,
        repeats=repeats,
        measure_fn=measure_fn,
    )
    for row in decisions:
        row["original_shape"] = shapes[row["name"]]
        row["removed_units"] = removed.get(row["name"], 0)
    for row in decisions:
        if row["layout"] != "sparse":
            continue
        if row["name"] == "":  # the module is itself a Linear layer
            out = SparseLinear.from_linear(out)
            continue
        parent_name, _, child = row["name"].rpartition(".")
        parent = out.get_submodule(parent_name)
        setattr(parent, child, SparseLinear.from_linear(getattr(parent, child)))
    out.sparse_layouts = decisions
    out.removed_units = removed
    return out
