"""The network's side of the input checks: ids within an embedding's
vocabulary, and one forward pass before training."""

from __future__ import annotations

import numpy as np
import torch

from ..training import SparseRows
from ._info import InputInfo

__all__ = [
    "check_forward",
    "check_module_input",
    "check_network",
    "embedding_vocabulary",
]


def embedding_vocabulary(module: torch.nn.Module) -> tuple[str, int] | None:
    """``(layer name, num_embeddings)`` of the embedding that receives the
    ids, where that is known: an :class:`~sklottery.EmbeddingNet`'s
    ``embedding``, or ``module`` itself when it is an ``Embedding`` or
    ``EmbeddingBag``. None otherwise (a module of the user's may map ids
    before its embedding, e.g. by hashing)."""
    from ..modules import EmbeddingNet

    if isinstance(module, (torch.nn.Embedding, torch.nn.EmbeddingBag)):
        return "", int(module.num_embeddings)
    if isinstance(module, EmbeddingNet):
        return "embedding", int(module.embedding.num_embeddings)
    return None


def check_module_input(module: torch.nn.Module, X, info: InputInfo) -> None:
    """Check ids against the vocabulary of ``module``'s embedding
    (:func:`embedding_vocabulary`).

    Raises
    ------
    ValueError
        When an id is ``>= num_embeddings`` of that embedding (torch would
        raise ``index out of range`` from inside the forward pass).
    """
    if info.dtype != "int64" or isinstance(X, SparseRows) or len(X) == 0:
        return
    vocab = embedding_vocabulary(module)
    if vocab is None:
        return
    name, size = vocab
    top = int(np.max(X)) if isinstance(X, np.ndarray) else int(torch.as_tensor(X).max())
    if top >= size:
        raise ValueError(
            f"X holds the token id {top}, outside the vocabulary of the network's "
            f"embedding {name!r} (num_embeddings={size}): ids must be in "
            f"[0, {size - 1}] (map unknown tokens to a reserved id, or give the "
            "embedding more rows)"
        )


def check_forward(module: torch.nn.Module, X, info: InputInfo) -> None:
    """One forward pass of two samples, so that a network that cannot take ``X``
    fails with a ``ValueError`` saying so rather than a torch traceback in the
    middle of training.

    The module is put in eval mode for the pass and back; no gradients, and
    torch's random generator is left as it was.
    """
    if len(X) == 0:
        return
    batch = X[:2]
    if not isinstance(batch, torch.Tensor):
        batch = torch.as_tensor(batch)
    try:
        device = next(module.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    training = module.training
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            module.eval()
            module(batch.to(device))
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        hint = ""
        if info.dtype == "int64":
            hint = (
                " Integer X is kept as int64 token ids; for numeric features "
                "pass X.astype(np.float32)."
            )
        raise ValueError(
            f"the network's module {type(module).__name__} cannot take "
            f"{info.describe()}: {type(exc).__name__}: {exc}.{hint}"
        ) from exc
    finally:
        module.train(training)


def check_network(module: torch.nn.Module, X, info: InputInfo) -> None:
    """Before training: ids within the network's vocabulary
    (:func:`check_module_input`) and one forward pass (:func:`check_forward`)."""
    check_module_input(module, X, info)
    check_forward(module, X, info)
