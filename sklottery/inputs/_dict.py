"""A dict ``X`` -- several inputs per sample, skorch's form for a module
whose ``forward`` takes them as keyword arguments (and the form of
``skorch.hf``'s tokenizers, a ``BatchEncoding``) -- validated row-wise value
by value, as :class:`~sklottery.training.DictRows`."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import torch

from ..training import DictRows
from ._info import InputInfo
from ._network import check_module_input

__all__ = ["check_dict", "is_dict_input", "sample_input"]


def is_dict_input(X) -> bool:
    """Whether ``X`` is a dict of inputs (any mapping: a ``dict``, a
    ``BatchEncoding``) or :class:`~sklottery.training.DictRows`; not a
    scipy DOK matrix, which is a dict of its entries."""
    return isinstance(X, (Mapping, DictRows)) and not sp.issparse(X)


def _name(estimator) -> str:
    return type(estimator).__name__


def _value(key, value) -> np.ndarray | torch.Tensor:
    """One value of a dict ``X`` as a tensor: integers int64, booleans bool,
    floats float32 and finite."""
    what = f"X[{key!r}]"
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided:
            raise ValueError(
                f"{what} has the torch layout {value.layout}; the values of a "
                "dict X must be dense"
            )
        value = value.detach().cpu()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        value = value.numpy()
    else:
        try:
            value = np.asarray(value)
        except ValueError as exc:  # ragged lists
            raise ValueError(
                f"{what} does not have the same shape for every sample (pad the "
                f"sequences to one length, e.g. a tokenizer's padding): {exc}"
            ) from None
    kind = value.dtype.kind
    if kind not in "biuf":
        raise (TypeError if kind == "O" else ValueError)(
            f"{what} has dtype {value.dtype}; the values of a dict X must be "
            "numbers (integer, boolean or floating-point arrays of one shape)"
        )
    if value.ndim == 0:
        raise ValueError(f"{what} is a scalar; each value must hold one row per sample")
    if kind == "u" and value.dtype.itemsize == 8 and value.size:
        if int(value.max()) > np.iinfo(np.int64).max:
            raise ValueError(f"{what} holds {int(value.max())}, beyond the int64 range")
    if kind == "f":
        value = value.astype(np.float32)
        if not np.isfinite(value).all():
            raise ValueError(f"Input {what} contains NaN or infinity")
    elif kind in "iu":
        value = value.astype(np.int64)
    if any(s == 0 for s in value.shape[1:]):
        raise ValueError(
            f"{what} of shape {value.shape} has an empty axis; each sample must "
            "hold at least one value"
        )
    return torch.from_numpy(np.require(value, requirements=["C", "W"]))


def check_dict(estimator, X, fitted: InputInfo | None, *, learnt=None, module=None):
    """A dict ``X`` (``dict``, ``BatchEncoding``, any mapping of str to
    arrays, lists or tensors) as :class:`~sklottery.training.DictRows` and
    its :class:`InputInfo` (kind ``"dict"``).

    Every value is checked as a column of samples: the same number of rows
    for all of them, numbers only, no NaN or infinity in floating-point
    values; integer values stay integers (int64), booleans bool, floats
    become float32. After a fit (``fitted``) the keys, each value's sample
    shape and its dtype must be the fitted ones. ``learnt`` (in ``fit``)
    receives the ``_input_info``; with ``module`` the int64 values are
    checked against the embeddings they reach
    (:func:`~sklottery.inputs.check_module_input`).

    Raises
    ------
    ValueError
        An empty dict, a non-str key, values of different lengths, no
        samples, NaN or infinity, a form other than the fitted one.
    TypeError
        Values that are not numbers (as scikit-learn).
    """
    if not is_dict_input(X):
        raise ValueError(
            f"{_name(estimator)} was fitted on {fitted.describe()}; got X of type "
            f"{type(X).__name__}. Pass a dict with the same keys"
        )
    if fitted is not None and fitted.kind != "dict":
        raise ValueError(
            f"{_name(estimator)} was fitted on {fitted.describe()}; got a dict X "
            f"with the keys {list(X.keys())}. Pass X in the form it was fitted on"
        )
    if isinstance(X, DictRows):
        X = X.tensors
    if not X:
        raise ValueError("X is an empty dict; a dict X needs at least one value")
    bad = [k for k in X if not isinstance(k, str)]
    if bad:
        raise ValueError(
            f"the keys of a dict X must be str (the module's keyword arguments); "
            f"got {bad!r}"
        )
    values = {k: _value(k, v) for k, v in X.items()}
    lengths = {k: len(v) for k, v in values.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: the "
            f"values of the dict X have the lengths {lengths}"
        )
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (dict X with the keys {list(values)}) "
            f"while a minimum of 1 is required by {_name(estimator)}."
        )
    fields = tuple(
        (k, tuple(int(s) for s in v.shape[1:]), str(v.dtype).removeprefix("torch."))
        for k, v in values.items()
    )
    info = InputInfo("dict", (), "dict", None, fields)
    if fitted is not None:
        _check_same(estimator, info, fitted)
        info = fitted  # the fitted order of the keys
    elif learnt is not None:
        learnt["_input_info"] = info
    rows = DictRows(values)
    if module is not None:
        check_module_input(module, rows, info)
    return rows, info


def _check_same(estimator, info: InputInfo, fitted: InputInfo) -> None:
    got = {k: (shape, dtype) for k, shape, dtype in info.fields}
    want = {k: (shape, dtype) for k, shape, dtype in fitted.fields}
    if set(got) != set(want):
        raise ValueError(
            f"X has the keys {sorted(got)}, but {_name(estimator)} was fitted on "
            f"a dict X with the keys {sorted(want)}; pass the same keys"
        )
    for key, (shape, dtype) in want.items():
        if got[key] != (shape, dtype):
            dims = ", ".join(["n", *map(str, got[key][0])])
            raise ValueError(
                f"X[{key!r}] is {got[key][1]} of shape ({dims}), but "
                f"{_name(estimator)} was fitted on {fitted.describe()}; each "
                "value's dtype and sample shape must match"
            )


def sample_input(info: InputInfo, n: int = 1):
    """``n`` samples of zeros of the input ``info`` describes: a tensor, or
    :class:`~sklottery.training.DictRows` for a dict."""
    if info.kind == "dict":
        return DictRows(
            {
                key: torch.zeros((n, *shape), dtype=getattr(torch, dtype))
                for key, shape, dtype in info.fields
            }
        )
    return torch.zeros((n, *info.shape), dtype=getattr(torch, info.dtype))
