"""Sparse export: a winning ticket as a plain torch module for fast inference.

A pruned ``nn.Linear`` becomes a :class:`~sklottery.export.SparseLinear`
whose weight is stored in torch's compressed-sparse-row (CSR) layout, but
only where that is faster than the dense matrix product for the layer's
shape and density. Sparse kernels beat dense BLAS only for large, very
sparse matrices: measured on a 2-core CPU with batch 256, a 4096x4096 layer
is about 1.2x faster at 90% sparsity and 5x faster at 98%, while a 784x300
layer at 90% is *slower* than dense. So, per layer,
:func:`~sklottery.export.choose_layouts` keeps whichever of dense or CSR is
faster -- by a calibrated rule (:func:`~sklottery.export.rule_layout`, the
default: deterministic, so that the same fit gives bit-identical
predictions) or on request by a short interleaved timing at export time
(``measure=True``) -- and the export is never slower than the dense network
by more than timing noise.

Before that, dead hidden units and conv channels -- all outgoing weights
pruned, or all incoming weights pruned with a constant output that folds
exactly into the next layer's bias -- are removed where the module's dataflow
is known (a ``Sequential`` or :class:`~sklottery.MLP`; see
:mod:`sklottery.export._dead_units`), giving physically smaller layers.
Weights behind a reparametrization (``spectral_norm``, ``weight_norm``,
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

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..pruning import unwrap_compiled
from ..pruning.masks import apply_masks, set_member
from ._dead_units import remove_dead_units
from ._layouts import _check_args, _convertible, choose_layouts
from ._modules import SparseLinear

__all__ = ["bake_reparametrizations", "to_sparse"]


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
def _compact_traced(module, masks, example_inputs):
    """``module`` without the units whose consumer columns are all pruned
    (its graph traced on ``example_inputs``), and the units removed per
    layer; ``module`` itself when it cannot be traced."""
    from ..pruning.compact import compact_module
    from ..pruning.graph import GraphError, trace_units
    from ..pruning.units import unit_keep

    try:
        graph = trace_units(module, example_inputs)
    except GraphError:
        return module, {}
    if masks is None:
        masks = {t.name: p != 0 for t, p in _weights(module)}
    keep = unit_keep(graph, masks)
    removed = {g: int((~k).sum()) for g, k in keep.items()}
    if not any(removed.values()):
        return module, removed
    return compact_module(module, graph, keep).eval().requires_grad_(False), removed


def _weights(module):
    from ..pruning import find_prunable

    params = dict(module.named_parameters())
    return [(t, params[t.name].detach()) for t in find_prunable(module)]


def to_sparse(
    module: nn.Module,
    masks: dict[str, torch.Tensor] | None = None,
    *,
    layout: str = "auto",
    batch_size: int = 256,
    measure: bool = False,
    repeats: int = 5,
    measure_fn=None,
    structured: bool = True,
    example_inputs=None,
) -> nn.Module:
    """Export a pruned network as a plain torch module for inference.

    The module is deep-copied (the original is not changed), ``masks`` (if
    given) are applied to the copy, which is put in eval mode with gradients
    off and its reparametrized weights baked
    (:func:`bake_reparametrizations`). With ``structured=True`` its dead
    hidden units are removed (:func:`~sklottery.export.remove_dead_units`),
    then each Linear layer chosen by :func:`~sklottery.export.choose_layouts`
    is replaced by a :class:`~sklottery.export.SparseLinear`. Its outputs
    equal the masked dense network's (in eval mode) up to float rounding
    (``torch.allclose``).

    The decisions are kept on the returned module as ``sparse_layouts``
    (a list of dicts, see :func:`~sklottery.export.choose_layouts`, each with
    two more keys: ``original_shape``, the weight's shape before dead units
    were removed, and ``removed_units``, how many of the layer's output units
    were removed), and
    the removed units of every analysed layer (Linear and conv) as
    ``removed_units`` (dict of layer name to count; empty when the module's
    dataflow is not known or ``structured=False``).

    Parameters
    ----------
    module : torch.nn.Module
    masks : dict of str to bool tensor, optional
        Keyed like ``module.named_parameters()``; True = kept.
    layout, batch_size, measure, repeats, measure_fn
        See :func:`~sklottery.export.choose_layouts`.
    structured : bool, default=True
        Remove dead hidden units and conv channels first (exact): where the
        dataflow is known (``Sequential``, :class:`~sklottery.modules.MLP`)
        by it, in any other ``torch.fx``-traceable module by tracing it on
        ``example_inputs`` (:mod:`sklottery.pruning.graph`): a unit goes
        when every column reading it is pruned.
    example_inputs : tensor, tuple or dict, optional
        One batch as the module takes it, for the tracing.

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from sklottery.export import to_sparse
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
    out = _deepcopy(unwrap_compiled(module))  # a torch.compile wrapper's module
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
    if structured and not removed and example_inputs is not None:
        out, removed = _compact_traced(out, masks, example_inputs)
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
        linear = out.get_submodule(row["name"])
        set_member(out, row["name"], SparseLinear.from_linear(linear))
    out.sparse_layouts = decisions
    out.removed_units = removed
    return out
