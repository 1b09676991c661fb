"""The network's side of the input checks: ids within the vocabulary of every
embedding they reach, and one forward pass before training."""

from __future__ import annotations

import numpy as np
import torch

from ..pruning import unwrap_compiled
from ..pruning.rng import forked
from ..training import DictRows, SparseRows, call_module
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


def _tracing(module, sources):
    """Forward pre-hooks on every embedding of ``module``: each call whose
    ids are a batch's own (:func:`_positions`) checks the same positions of
    the whole input against the layer's ``num_embeddings``. ``sources`` are
    ``(label, X, batch)``: the ids' name in messages, all of them, and the
    batch of the first samples the forward pass is given."""
    flats = [
        (label, np.asarray(X).reshape(len(X), -1), batch, [])
        for label, X, batch in sources
        if len(X)
    ]

    def largest(flat, seen) -> int:  # the whole X's largest id, computed once
        if not seen:
            seen.append(int(flat.max()))
        return seen[0]

    def hook_for(name, layer):
        def hook(_, args, kwargs):
            inp = args[0] if args else kwargs.get("input")
            for label, flat, batch, seen in flats:
                pos = _positions(inp, batch)
                if pos is not None:
                    break
            else:
                return None
            if pos.size == flat.shape[1]:
                top = largest(flat, seen)
            else:
                top = int(flat[:, pos].max()) if pos.size else -1
            size = int(layer.num_embeddings)
            if top >= size:
                where = repr(name) if name else type(layer).__name__
                raise _OutOfVocabulary(
                    f"{label} holds the token id {top}, outside the vocabulary of "
                    f"the network's embedding {where} (num_embeddings={size}; "
                    f"{top} is the largest id {label} feeds it): ids must be in "
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


def _first_samples(module, X, info):
    """The first two samples of ``X`` on the module's device, each tensor
    with its own storage (see :func:`_positions`), and the ``(label, X,
    batch)`` sources of ids :func:`_tracing` checks."""
    try:
        device = next(module.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    if isinstance(X, DictRows):
        batch = {k: t.clone().to(device) for k, t in X[:2].items()}
        sources = [
            (f"X[{k!r}]", X.tensors[k], batch[k])
            for k, t in X.tensors.items()
            if t.dtype == torch.int64
        ]
        return batch, sources
    batch = torch.as_tensor(X[:2]).clone().to(device)
    ids = info.dtype == "int64" and not isinstance(X, SparseRows)
    return batch, [("X", X, batch)] if ids else []


def check_forward(module: torch.nn.Module, X, info: InputInfo) -> None:
    """One forward pass of two samples, so that a network that cannot take
    ``X`` fails with a ``ValueError`` saying so rather than a torch traceback
    in the middle of training.

    With ids (or a dict ``X``'s int64 values, each with its key), every
    ``Embedding``/``EmbeddingBag`` the ids reach as they are -- ``X`` itself
    or a view of it: a reshape, a slice, a column -- is checked during the
    pass against the largest id the whole ``X`` holds at the positions it
    reads. Ids the module computes (hashing, offsets, a
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
    batch, sources = _first_samples(module, X, info)
    hooks = _tracing(module, sources)
    training = module.training
    try:
        with forked(), torch.no_grad():
            module.eval()
            call_module(module, batch)
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
    """Check ids (and a dict ``X``'s int64 values) against the vocabulary of
    every embedding of ``module`` they reach (one forward pass of two
    samples: :func:`check_forward`); nothing for other inputs.

    Raises
    ------
    ValueError
        When an id is ``>= num_embeddings`` of such an embedding (torch would
        raise ``index out of range`` from inside the forward pass).
    """
    if len(X) == 0 or isinstance(X, SparseRows):
        return
    if isinstance(X, DictRows):
        if any(t.dtype == torch.int64 for t in X.tensors.values()):
            check_forward(module, X, info)
        return
    if info.dtype == "int64":
        check_forward(module, X, info)


def check_network(module: torch.nn.Module, X, info: InputInfo) -> None:
    """Before training: one forward pass, with ids checked against the
    vocabulary of every embedding they reach (:func:`check_forward`)."""
    check_forward(module, X, info)
