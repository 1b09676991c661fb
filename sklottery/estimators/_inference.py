"""What a fitted ticket does: ``transform``, the CSR export and sparse
inference (mixed into the estimators)."""

from __future__ import annotations

import copy
import weakref

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .. import inputs
from ..export import to_sparse
from ..pruning import unwrap_compiled
from ..training import as_rows, batch_to, call_module, predict_nonlinearity

__all__ = ["SPARSE_BATCH", "InferenceMixin"]

#: Rows per forward call of the sparse export (its layouts are chosen for it).
SPARSE_BATCH = 256

#: Per ``sparse_module_``: what it was exported from, as weak references
#: (``net_``, its module, the tensors of ``masks_``): nothing is kept alive,
#: and the estimator pickles as before (a copy or an unpickled estimator
#: exports again on its first sparse prediction).
_SOURCES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class InferenceMixin(TransformerMixin):
    """``transform``, :meth:`to_sparse` and ``inference="sparse"`` of a fitted
    estimator (``net_``, ``masks_``, ``_output_layer``); a scikit-learn
    transformer, so that ``set_output`` wraps ``transform``.

    ``sparse_module_`` (the export ``inference="sparse"`` predicts with) is
    built once -- by ``fit``, or by the first prediction after
    ``set_params(inference="sparse")`` -- and kept until ``net_``, its
    module or ``masks_`` (or one of its tensors) is replaced."""

    @property
    def sparse_module_(self):
        """The export ``inference="sparse"`` predicts with (see the class)."""
        try:
            return self.__dict__["sparse_module_"]
        except KeyError:
            raise AttributeError("sparse_module_") from None

    @sparse_module_.setter
    def sparse_module_(self, module):
        self.__dict__["sparse_module_"] = module
        try:
            _SOURCES[module] = self._export_source()
        except (AttributeError, TypeError):  # not fitted, or not a module
            pass

    @sparse_module_.deleter
    def sparse_module_(self):
        self.__dict__.pop("sparse_module_", None)

    def _export_source(self):
        """Weak references to ``net_``, its module and the tensors of
        ``masks_``, by key."""
        refs = [weakref.ref(self.net_), weakref.ref(self.net_.module_)]
        return refs, {k: weakref.ref(t) for k, t in self.masks_.items()}

    def _sparse_export(self):
        """``sparse_module_``, exported again only when what it was exported
        from was replaced (or never exported)."""
        module = self.__dict__.get("sparse_module_")
        source = _SOURCES.get(module) if module is not None else None
        if source is not None:
            refs, masks = source
            current = (self.net_, self.net_.module_)
            if (
                all(r() is obj for r, obj in zip(refs, current))
                and masks.keys() == self.masks_.keys()
                and all(masks[k]() is t for k, t in self.masks_.items())
            ):
                return module
        self.sparse_module_ = self.to_sparse(batch_size=SPARSE_BATCH)
        return self.sparse_module_

    def to_sparse(self, *, layout="auto", batch_size=SPARSE_BATCH, measure=False,
                  structured=True):
        """The fitted ticket as a plain torch module for fast inference.

        Dead hidden units (all incoming or all outgoing weights pruned) are
        removed first where the network's dataflow is known, giving smaller
        layers (see :mod:`sklottery.export._dead_units`); then pruned ``Linear``
        layers are stored in torch's CSR layout where that is faster than
        dense for the layer's shape and density; every other layer stays
        dense with its pruned weights exactly zero (see
        :func:`sklottery.export._sparse.to_sparse`). The module's outputs are the
        logits of ``net_.module_`` (allclose); ``predict`` uses it when
        ``inference="sparse"``.

        Parameters
        ----------
        layout : {"auto", "sparse", "dense"}, default="auto"
            ``"auto"`` keeps, per layer, whichever of dense and CSR is faster.
        batch_size : int, default=256
            Rows per forward call the choice is made for.
        measure : bool, default=False
            ``False``: decide by a calibrated rule (deterministic: the same
            fit gives bit-identical predictions); ``True``: by a short
            timing at export (faster on some shapes, see the user guide's
            "Sparse export" page, but the choice varies with the load).
        structured : bool, default=True
            Remove dead hidden units and conv channels first.

        Returns
        -------
        torch.nn.Module
            In eval mode, on the device of ``net_.module_``; the per-layer
            decisions are in its ``sparse_layouts`` attribute and the number
            of units removed per layer in its ``removed_units`` attribute.
        """
        check_is_fitted(self)
        return to_sparse(
            self.net_.module_,
            self.masks_,
            layout=layout,
            batch_size=batch_size,
            measure=measure,
            structured=structured,
            example_inputs=self._example_batch(),
        )

    def to_compact(self, X=None):
        """The fitted ticket as a physically smaller dense torch module: every
        unit whose input columns are all pruned is removed (with
        ``granularity="neuron"``, every pruned unit), in any module
        ``torch.fx`` can trace (:mod:`sklottery.pruning.graph`). Its outputs
        are the logits of ``net_.module_`` (allclose); nothing is stored in
        CSR (:meth:`to_sparse` does both).

        Parameters
        ----------
        X : array-like, optional
            Rows to trace the module on; by default two rows of the training
            data kept by ``fit`` (two rows of zeros of the input's shape for
            a ticket loaded with :meth:`load_ticket`).

        Returns
        -------
        torch.nn.Module
            A copy in eval mode, on the device of ``net_.module_``, with the
            units removed per layer in its ``removed_units`` attribute.
        """
        check_is_fitted(self)
        example = self._example_batch(X)
        if example is None:
            raise ValueError(
                "to_compact traces the network on a couple of rows: this "
                "estimator keeps none; call to_compact(X)"
            )
        from ..pruning import apply_masks
        from ..pruning.compact import compact_module
        from ..pruning.graph import trace_units
        from ..pruning.targets import unwrap_compiled
        from ..pruning.units import unit_keep

        module = copy.deepcopy(unwrap_compiled(self.net_.module_)).eval()
        apply_masks(module, self.masks_)
        graph = trace_units(module, example)
        keep = unit_keep(graph, self.masks_)
        small = compact_module(module, graph, keep).eval().requires_grad_(False)
        small.removed_units = {g: int((~k).sum()) for g, k in keep.items()}
        return small

    def _example_batch(self, X=None):
        """Two rows of ``X`` or of the training data, on the module's device
        (None for a ticket loaded without data): what the unit graph is
        traced on."""
        rows = getattr(self, "_example_rows", None)
        if X is not None:
            rows = self._check_X(X)[:2]
        if rows is None:
            return None
        device = next(iter(self.net_.module_.parameters())).device
        return batch_to(rows, device)

    def _forward_sparse(self, X):
        """Outputs of the exported module after the net's predict nonlinearity."""
        module = self._sparse_export()
        device = next(iter(self.net_.module_.parameters())).device
        nonlin = predict_nonlinearity(self.net_)
        outs = []
        with torch.no_grad():
            for start in range(0, len(X), SPARSE_BATCH):
                batch = batch_to(X[start : start + SPARSE_BATCH], device)
                out = call_module(module, batch)
                out = out[0] if isinstance(out, tuple) else out
                outs.append(nonlin(out).cpu())
        return torch.cat(outs).numpy()

    # -- inference -----------------------------------------------------------
    def _check_X(self, X):
        check_is_fitted(self)
        X, _ = inputs.check_X(self, X, reset=False, module=self.net_.module_)
        return as_rows(X)

    def _features(self, X):
        """Inputs of the output layer: the features the ticket's head sees."""
        net = self.net_
        compiled = net.module_
        # a compiled graph would not run the hook: the forward runs eager
        net.module_ = unwrap_compiled(compiled)
        module = net.module_.get_submodule(self._output_layer)
        captured = []

        def hook(mod, args):
            captured.append(args[0].detach().reshape(len(args[0]), -1).cpu())

        handle = module.register_forward_pre_hook(hook)
        try:
            for _ in net.forward_iter(as_rows(X), training=False):
                pass
        finally:
            handle.remove()
            net.module_ = compiled
        return torch.cat(captured).numpy().astype(np.float32, copy=False)

    def transform(self, X):
        """Features of the pruned network: the input of its output layer.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out), float32
        """
        return self._features(self._check_X(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        tags.input_tags.sparse = True  # densified one batch at a time
        return tags
