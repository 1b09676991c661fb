"""A batch iterator that slices tensors directly.

skorch's default ``DataLoader`` indexes a dataset item by item and collates the
items back into a batch; for tabular data that bookkeeping costs more than the
forward pass of a small network. :class:`TensorLoader` slices whole batches
out of the tensors instead. The estimators use it whenever the wrapped net
uses the default ``DataLoader`` with no options beyond ``batch_size``,
``shuffle`` and ``drop_last``; anything else is left as the user set it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

__all__ = ["TensorLoader"]

SUPPORTED_OPTIONS = frozenset({"batch_size", "shuffle", "drop_last"})


def _as_tensor(a):
    if a is None or isinstance(a, torch.Tensor):
        return a
    if isinstance(a, np.ndarray) and a.dtype != object:
        return torch.as_tensor(a)
    return None


class TensorLoader:
    """Iterate ``(X_batch, y_batch)`` slices of a skorch ``Dataset``'s tensors.

    Shuffling draws from torch's global generator, like ``DataLoader``. Data
    that is not a single tensor or array (dicts, lists, custom datasets) is
    handed to a plain ``DataLoader``.
    """

    def __init__(self, dataset, batch_size=128, shuffle=False, drop_last=False):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        X = _as_tensor(getattr(dataset, "X", None))
        y = getattr(dataset, "y", None)
        y_t = _as_tensor(y)
        if X is None or (y is not None and y_t is None) or X.ndim == 0:
            self._fallback = DataLoader(
                dataset, batch_size=self.batch_size, shuffle=self.shuffle,
                drop_last=self.drop_last,
            )
            self.X = self.y = None
        else:
            self._fallback = None
            self.X, self.y = X, y_t

    def __len__(self):
        if self._fallback is not None:
            return len(self._fallback)
        n = len(self.X)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        if self._fallback is not None:
            yield from self._fallback
            return
        X, y, bs = self.X, self.y, self.batch_size
        n = len(X)
        stop = n - n % bs if self.drop_last else n
        if self.shuffle:
            order = torch.randperm(n)
            for start in range(0, stop, bs):
                idx = order[start : start + bs]
                yield X[idx], (None if y is None else y[idx])
        else:
            for start in range(0, stop, bs):
                yield (
                    X[start : start + bs],
                    (None if y is None else y[start : start + bs]),
                )
