"""Several named inputs per sample, as skorch takes them (``X`` a dict):
:class:`DictRows`, and calling a module on a batch of either form.

skorch indexes every value of a dict ``X`` row-wise and calls the module
with the batch's values as keyword arguments (``module(**batch)``);
:class:`DictRows` holds those values as tensors of the same length, so that
the split, the batch loader and the scoring code select rows of all of them
at once, and every batch is a plain dict of tensors, as skorch makes it.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Mapping

import numpy as np
import torch

__all__ = ["DictRows", "batch_to", "call_module", "dict_as_kwargs"]


class DictRows:
    """Rows of named tensors of the same length (skorch's dict ``X``).

    Indexing returns a plain dict of the selected rows of every tensor (one
    batch: an int gives one sample, a slice, index array or tensor, or a
    boolean mask a batch); :meth:`take` selects rows and keeps them a
    :class:`DictRows`.

    Parameters
    ----------
    tensors : dict of str to torch.Tensor
        At least one tensor, each with at least one axis, all of the same
        length (the number of samples).
    """

    def __init__(self, tensors: Mapping):
        tensors = dict(tensors)
        if not tensors:
            raise ValueError("DictRows needs at least one tensor")
        lengths = set()
        for key, t in tensors.items():
            if not isinstance(key, str) or not isinstance(t, torch.Tensor):
                raise TypeError(
                    "DictRows needs str keys and torch tensors; got "
                    f"{type(key).__name__} -> {type(t).__name__}"
                )
            if t.ndim == 0:
                raise ValueError(f"DictRows: the tensor {key!r} has no samples axis")
            lengths.add(len(t))
        if len(lengths) != 1:
            raise ValueError(
                f"DictRows needs tensors of the same length; got {sorted(lengths)}"
            )
        self.tensors = tensors

    def keys(self):
        return self.tensors.keys()

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __repr__(self) -> str:
        shapes = ", ".join(
            f"{k!r}: {tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}"
            for k, t in self.tensors.items()
        )
        return f"DictRows({{{shapes}}})"

    def __getitem__(self, key) -> dict:
        if not isinstance(key, (numbers.Integral, slice)):
            key = torch.as_tensor(_index_array(key, len(self)))
        return {k: t[key] for k, t in self.tensors.items()}

    def take(self, index) -> DictRows:
        """The selected rows, still a :class:`DictRows`."""
        return DictRows(self[torch.as_tensor(_index_array(index, len(self)))])


def _index_array(key, n):
    if isinstance(key, slice):
        return np.arange(n)[key]
    if isinstance(key, torch.Tensor):
        key = key.cpu().numpy()
    key = np.asarray(key)
    if key.dtype == bool:
        return np.flatnonzero(key)
    return key.astype(np.int64, copy=False).reshape(-1)


def batch_to(batch, device):
    """A batch (a tensor, or a dict of tensors) on ``device``."""
    if isinstance(batch, Mapping):
        return {k: v.to(device) for k, v in batch.items()}
    return batch.to(device)


def call_module(module, batch):
    """``module(**batch)`` for a dict batch (skorch's keyword arguments),
    ``module(batch)`` otherwise."""
    if isinstance(batch, Mapping):
        return module(**batch)
    return module(batch)


@contextlib.contextmanager
def dict_as_kwargs(module: torch.nn.Module):
    """While open, ``module(batch)`` with a dict ``batch`` runs as
    ``module(**batch)`` (for code that calls a module on one positional
    input)."""

    def hook(_, args, kwargs):
        if len(args) == 1 and isinstance(args[0], Mapping):
            return (), {**args[0], **kwargs}
        return None

    handle = module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield module
    finally:
        handle.remove()
