"""The network's side of the input checks: ids within the vocabulary of every
embedding they reach, and one forward pass before training."""

from __future__ import annotations

import numpy as np
import torch

from ..pruning import unwrap_compiled
from ..pruning.rng import forked
from ..training import SparseRows
from ._ids import ID_LAYERS
from ._info import InputInfo

__all__ = [
    "check_forward",
    "check_module_input",
    "check_network",
    "embedding_vocabulary",
]

def embedding_vocabulary(module: torch.nn.Module) -> list[tuple[str, int]]:
    """``(layer name, num_embeddings)`` of every ``Embedding`` and
    ``EmbeddingBag`` of ``module`` (``""`` for ``module`` itself), in the
    order of ``module.named_modules()``."""
    module = unwrap_compiled(module)
    return [
        (name, int(m.num_embeddings))
        for name, m in module.named_modules()
        if isinstance(m, ID_LAYERS)
    ]


class _OutOfVocabulary(ValueError):
    """An id outside an embedding's rows (raised as it is, not wrapped)."""


def _positions(inp: torch.Tensor, batch: torch.Tensor) -> np.ndarray | None:
    """The positions within one sample (flat, over ``X.shape[1:]``) whose ids
    ``inp`` holds, when ``inp`` is ``batch`` itself or a view of it (a
    reshape, a slice, a column); None when the module computed ``inp``
    (hashing, an offset, a copy)."""
    if (
        not isinstance(inp, torch.Tensor)
        or inp.device != batch.device
        or inp.dtype != batch.dtype
        or inp.untyped_storage().data_ptr() != batch.untyped_storage().data_ptr()
    ):
        return None
    flat = torch.arange(batch.numel())
    try:
        where = flat.as_strided(inp.shape, inp.stride(), inp.storage_offset())
    except RuntimeError:
        return None
    per_sample = max(1, batch[0].numel())
    return np.unique((where % per_sample).numpy())


def _tracing(module, X, batch):
    """Forward pre-hooks on every embedding of ``module``: each call whose
    ids are ``batch``'s own (:func:`_positions`) checks the same positions of
    the whole ``X`` against the layer's ``num_embeddings``."""
    flat = np.asarray(X).reshape(len(X), -1) if len(X) else None
    seen = []

    def largest() -> int:  # the whole X's largest id, computed once
        if not seen:
            seen.append(int(flat.max()))
        return seen[0]

    def hook_for(name, layer):
        def hook(_, args, kwargs):
            inp = args[0] if args else kwargs.get("input")
            pos = _positions(inp, batch)
            if pos is None or flat is None:
                return None
            if pos.size == flat.shape[1]:
                top = largest()
            else:
                top = int(flat[:, pos].max()) if pos.size else -1
            size = int(layer.num_embeddings)
            if top >= size:
                label = repr(name) if name else type(layer).__name__
                raise _OutOfVocabulary(
                    f"X holds the token id {top}, outside the vocabulary of the "
                    f"network's embedding {label} (num_embeddings={size}; {top} "
                    f"is the largest id X feeds it): ids must be in "
                    f"[0, {size - 1}] (map unknown tokens to a reserved id, or "
                    "give the embedding more rows)"
                )
            return None

        return hook

    return [
        m.register_forward_pre_hook(hook_for(name, m), with_kwargs=True)
        for name, m in module.named_modules()
        if isinstance(m, ID_LAYERS)
    ]


def check_forward(module: torch.nn.Module, X, info: InputInfo) -> None:
    """One forward pass of two samples, so that a network that cannot take
    ``X`` fails with a ``ValueError`` saying so rather than a torch traceback
    in the middle of training.

    With ids, every ``Embedding``/``EmbeddingBag`` the ids reach as they are
    -- ``X`` itself or a view of it: a reshape, a slice, a column -- is
    checked during the pass against the largest id the whole ``X`` holds at
    the positions it reads. Ids the module computes (hashing, offsets, a
    copy) are the module's own: they are not checked.

    The module is put in eval mode for the pass and back; no gradients, and
    torch's random generator is left as it was.

    Raises
    ------
    ValueError
        An id ``>= num_embeddings`` of an embedding it reaches (naming the
        layer and the id), or a module that cannot take ``X``.
    """
    if len(X) == 0:
        return
    # eager, uncompiled: the tracing hooks would not run in a compiled graph
    module = unwrap_compiled(module)
    batch = torch.as_tensor(X[:2]).clone()  # its own storage (see _positions)
    try:
        device = next(module.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    batch = batch.to(device)
    ids = info.dtype == "int64" and not isinstance(X, SparseRows)
    hooks = _tracing(module, X, batch) if ids else []
    training = module.training
    try:
        with forked(), torch.no_grad():
            module.eval()
            module(batch)
    except _OutOfVocabulary as exc:
        raise ValueError(str(exc)) from None
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        hint = ""
        if info.dtype == "int64":
            hint = (
                " Integer X is int64 token ids for this module (it takes ids: "
                "see sklottery.modules.takes_ids); for numeric features pass "
                "X.astype(np.float32)."
            )
        raise ValueError(
            f"the network's module {type(module).__name__} cannot take "
            f"{info.describe()}: {type(exc).__name__}: {exc}.{hint}"
        ) from exc
    finally:
        for h in hooks:
            h.remove()
        module.train(training)


def check_module_input(module: torch.nn.Module, X, info: InputInfo) -> None:
    """Check ids against the vocabulary of every embedding of ``module`` they
    reach (one forward pass of two samples: :func:`check_forward`); nothing
    for other inputs.

    Raises
    ------
    ValueError
        When an id is ``>= num_embeddings`` of such an embedding (torch would
        raise ``index out of range`` from inside the forward pass).
    """
    if info.dtype != "int64" or isinstance(X, SparseRows) or len(X) == 0:
        return
    check_forward(module, X, info)


def check_network(module: torch.nn.Module, X, info: InputInfo) -> None:
    """Before training: one forward pass, with ids checked against the
    vocabulary of every embedding they reach (:func:`check_forward`)."""
    check_forward(module, X, info)
