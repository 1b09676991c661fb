"""Batch iteration: a loader that slices tensors directly, sparse rows that
become dense one batch at a time, and training rows that carry weights.

skorch's default ``DataLoader`` indexes a dataset item by item and collates the
items back into a batch; for tabular data that bookkeeping costs more than the
forward pass of a small network. :class:`TensorLoader` slices whole batches
out of the tensors instead. The estimators use it whenever the wrapped net
uses the default ``DataLoader`` with no options beyond ``batch_size``,
``shuffle`` and ``drop_last``; anything else is left as the user set it.

:class:`SparseRows` holds a scipy sparse matrix and densifies only the rows a
batch asks for; :class:`WeightedDataset` pairs the training targets with
``sample_weight`` (batches ``(X, (y, w))``, see
:class:`~sklottery.training.SampleWeightedLoss`).
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader

from ._dict import DictRows, _index_array

__all__ = [
    "SUPPORTED_OPTIONS",
    "SparseRows",
    "TensorLoader",
    "WeightedDataset",
    "as_rows",
    "take_rows",
]

#: The ``iterator_*`` options :class:`TensorLoader` supports (beyond them the
#: net keeps its own loader).
SUPPORTED_OPTIONS = frozenset({"batch_size", "shuffle", "drop_last"})


class SparseRows:
    """Rows of a sparse matrix that become dense only when indexed.

    Indexing returns a dense float32 tensor of the selected rows (one batch),
    so the training loop, skorch's ``Dataset`` and the scoring code use it like
    a tensor; the whole matrix is never densified. :meth:`take` selects rows
    and keeps them sparse (validation splits).

    Parameters
    ----------
    matrix : scipy sparse matrix or array
        Any format; stored as float32 CSR with sorted, summed indices (a copy:
        the caller's matrix is never changed).
    """

    def __init__(self, matrix):
        if not sp.issparse(matrix):
            raise TypeError(
                f"SparseRows needs a scipy sparse matrix; got {type(matrix).__name__}"
            )
        m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        m.sum_duplicates()  # canonical: sorted indices, no duplicates
        self.matrix = m

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def __repr__(self) -> str:
        n, f = self.shape
        return f"SparseRows(shape=({n}, {f}), nnz={self.nnz})"

    def __getitem__(self, key) -> torch.Tensor:
        """Dense float32 rows: an int gives one row (1-D), anything else
        (slice, index array or tensor, boolean mask) a 2-D batch."""
        if isinstance(key, numbers.Integral):
            return torch.from_numpy(self._dense(np.array([int(key)]))[0])
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return torch.from_numpy(self._dense_range(start, stop))
        return torch.from_numpy(self._dense(_index_array(key, len(self))))

    def _dense_range(self, start, stop):
        """Rows ``start:stop``, densified straight from the CSR arrays."""
        m = self.matrix
        stop = max(stop, start)
        lo, hi = m.indptr[start], m.indptr[stop]
        out = np.zeros((stop - start, m.shape[1]), dtype=np.float32)
        counts = np.diff(m.indptr[start : stop + 1])
        rows = np.repeat(np.arange(stop - start), counts)
        out[rows, m.indices[lo:hi]] = m.data[lo:hi]
        return out

    def _dense(self, idx):
        """Rows ``idx`` (an int array), densified straight from the CSR arrays."""
        m = self.matrix
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"row index out of range for {n} rows")
        idx = np.where(idx < 0, idx + n, idx)
        starts, ends = m.indptr[idx], m.indptr[idx + 1]
        counts = ends - starts
        total = int(counts.sum())
        out = np.zeros((len(idx), m.shape[1]), dtype=np.float32)
        if total:
            rows = np.repeat(np.arange(len(idx)), counts)
            # positions of each selected row's entries in data/indices
            offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            pos = np.repeat(starts, counts) + offsets
            out[rows, m.indices[pos]] = m.data[pos]
        return out

    def take(self, index) -> SparseRows:
        """The selected rows, still sparse."""
        out = SparseRows.__new__(SparseRows)
        out.matrix = self.matrix[_index_array(index, len(self))]
        return out

    def to_dense(self) -> torch.Tensor:
        """The whole matrix as a dense float32 tensor (for small matrices only)."""
        return torch.from_numpy(self.matrix.toarray())


def as_rows(X):
    """Prepared data as the loop holds it: an ndarray becomes a tensor (no
    copy); tensors and :class:`SparseRows` are kept."""
    if isinstance(X, np.ndarray):
        return torch.from_numpy(X)
    return X


def take_rows(X, index):
    """Rows ``index`` of prepared data, kept in its form (:class:`SparseRows`
    stay sparse, :class:`~sklottery.training.DictRows` a dict)."""
    if isinstance(X, (SparseRows, DictRows)):
        return X.take(index)
    if isinstance(X, torch.Tensor):
        return X[torch.as_tensor(_index_array(index, len(X)))]
    return X[_index_array(index, len(X))]


class WeightedDataset(torch.utils.data.Dataset):
    """Training rows with a per-sample weight: items are ``(X_i, (y_i, w_i))``.

    Handed to skorch as ``X`` (with ``y=None``), it brings ``sample_weight``
    to the loss: :class:`TensorLoader` yields ``(X_batch, (y_batch,
    w_batch))`` and :class:`~sklottery.training.SampleWeightedLoss` weights
    each sample's loss. The attributes are not named ``X``/``y`` on purpose:
    skorch would otherwise take the (tuple) targets for labels.
    """

    def __init__(self, X, y, sample_weight):
        if not (len(X) == len(y) == len(sample_weight)):
            raise ValueError(
                f"X, y and sample_weight must have the same length; got "
                f"{len(X)}, {len(y)} and {len(sample_weight)}"
            )
        self.data = X
        self.target = torch.as_tensor(y)
        self.weight = torch.as_tensor(sample_weight, dtype=torch.float32)

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i], (self.target[i], self.weight[i])


class _Pair:
    """``(y, w)`` indexed together: ``pair[idx] == (y[idx], w[idx])``."""

    def __init__(self, y, w):
        self.y, self.w = y, w

    def __getitem__(self, idx):
        return self.y[idx], self.w[idx]


def _as_tensor(a):
    if a is None or isinstance(a, (torch.Tensor, SparseRows, DictRows)):
        return a
    if isinstance(a, np.ndarray) and a.dtype != object:
        return torch.as_tensor(a)
    return None


class TensorLoader:
    """Iterate ``(X_batch, y_batch)`` slices of a skorch ``Dataset``'s tensors.

    Shuffling draws from torch's global generator, like ``DataLoader``.
    :class:`SparseRows` are densified one batch at a time,
    :class:`~sklottery.training.DictRows` give dict batches and a
    :class:`WeightedDataset` gives batches ``(X, (y, w))``. Other data that
    is not a single tensor or array (plain dicts, lists, custom datasets) is
    handed to a plain ``DataLoader``.
    """

    def __init__(self, dataset, batch_size=128, shuffle=False, drop_last=False):
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if isinstance(dataset, WeightedDataset):
            X = _as_tensor(dataset.data)
            y_t = _Pair(dataset.target, dataset.weight)
            y = y_t
        else:
            X = _as_tensor(getattr(dataset, "X", None))
            y = getattr(dataset, "y", None)
            y_t = _as_tensor(y)
        scalar = getattr(X, "ndim", 1) == 0
        if X is None or (y is not None and y_t is None) or scalar:
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
