"""What an estimator was fitted on: :class:`InputInfo`, and its forms in
ticket files."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "FIELD_DTYPES",
    "INPUT_KINDS",
    "InputInfo",
    "as_info",
    "fitted_info",
    "input_state",
    "kind_of",
    "ticket_input",
]


#: Input kinds, by what one sample is.
INPUT_KINDS = ("table", "sparse", "ids", "sequence", "image", "tensor", "dict")

#: The dtypes a value of a dict ``X`` is given to the network in.
FIELD_DTYPES = ("float32", "int64", "bool")


@dataclass(frozen=True)
class InputInfo:
    """What a fitted estimator was trained on (kept as its ``_input_info``).

    Attributes
    ----------
    kind : {"table", "sparse", "ids", "sequence", "image", "tensor", "dict"}
        ``"table"``: 2-D float; ``"sparse"``: a scipy sparse matrix (2-D
        float); ``"ids"``: integer token ids of any rank; ``"sequence"``: float
        ``(n, T, F)``; ``"image"``: float ``(n, C, H, W)``; ``"tensor"``: float
        of another rank; ``"dict"``: a dict of arrays (skorch's several
        inputs, the module's keyword arguments), described by :attr:`fields`.
    shape : tuple of int
        The shape of one sample (``X.shape[1:]``); ``()`` for a dict.
    dtype : {"float32", "int64", "dict"}
        The dtype the network receives; ``"dict"`` for a dict (each value's
        is in :attr:`fields`).
    max_id : int or None
        For ids: the largest id in the training data (the default embedding
        network has ``max_id + 1`` rows).
    fields : tuple of (str, tuple of int, str)
        For a dict: ``(key, shape of one sample, dtype)`` of each value, in
        the dict's order; dtypes ``"float32"``, ``"int64"`` or ``"bool"``.
    """

    kind: str
    shape: tuple[int, ...]
    dtype: str
    max_id: int | None = None
    fields: tuple[tuple[str, tuple[int, ...], str], ...] = ()

    @property
    def n_features(self) -> int:
        """Numbers per sample (the product of :attr:`shape`; for a dict, the
        sum over its values)."""
        if self.kind == "dict":
            return sum(math.prod(shape) for _, shape, _ in self.fields)
        return math.prod(self.shape)

    @property
    def sparse(self) -> bool:
        return self.kind == "sparse"

    def describe(self) -> str:
        """``X`` in words, e.g. ``"float32 X of shape (n, 1, 8, 8)"``."""
        if self.kind == "dict":
            values = ", ".join(
                f"{key!r}: {dtype} (" + ", ".join(["n", *map(str, shape)]) + ")"
                for key, shape, dtype in self.fields
            )
            return f"dict X {{{values}}}"
        dims = ", ".join(["n", *(str(s) for s in self.shape)])
        what = "sparse " if self.sparse else ""
        return f"{what}{self.dtype} X of shape ({dims})"


def as_info(n_features) -> InputInfo:
    """``n_features`` (the columns of a 2-D float table) as an
    :class:`InputInfo`; an :class:`InputInfo` as it is."""
    if isinstance(n_features, InputInfo):
        return n_features
    return InputInfo("table", (int(n_features),), "float32")


def input_state(estimator) -> dict:
    """What a ticket file records of a fitted estimator's input."""
    info = fitted_info(estimator)
    given = {
        "kind": info.kind,
        "shape": [int(s) for s in info.shape],
        "dtype": info.dtype,
        "max_id": info.max_id,
    }
    if info.kind == "dict":
        given["fields"] = [
            {"key": key, "shape": [int(s) for s in shape], "dtype": dtype}
            for key, shape, dtype in info.fields
        ]
    return {
        "n_features_in": int(getattr(estimator, "n_features_in_", info.n_features)),
        "input": given,
    }


def ticket_input(info) -> InputInfo:
    """The :class:`~sklottery.inputs._validation.InputInfo` a ticket file records (files
    written before inputs other than tables were taken: a 2-D float table)."""
    given = info.get("input")
    if given is None:
        return InputInfo("table", (info["n_features_in"],), "float32")
    if isinstance(given, dict) and given.get("kind") == "dict":
        return _ticket_dict(given)
    try:
        shape = tuple(int(s) for s in given["shape"])
        kind, dtype, max_id = given["kind"], given["dtype"], given["max_id"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"the ticket's input description {given!r} is malformed"
        ) from exc
    if (
        kind not in INPUT_KINDS
        or kind == "dict"
        or dtype not in ("float32", "int64")
        or not shape
        or min(shape) < 1
    ):
        raise ValueError(f"the ticket's input description {given!r} is malformed")
    return InputInfo(kind, shape, dtype, None if max_id is None else int(max_id))


def _ticket_dict(given: dict) -> InputInfo:
    """A ticket's record of a dict ``X``: its ``fields``."""
    try:
        fields = tuple(
            (f["key"], tuple(int(s) for s in f["shape"]), f["dtype"])
            for f in given["fields"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"the ticket's input description {given!r} is malformed"
        ) from exc
    keys = [key for key, _, _ in fields]
    if (
        not fields
        or len(set(keys)) != len(keys)
        or not all(isinstance(k, str) for k in keys)
        or any(dtype not in FIELD_DTYPES for _, _, dtype in fields)
        or any(shape and min(shape) < 1 for _, shape, _ in fields)
    ):
        raise ValueError(f"the ticket's input description {given!r} is malformed")
    return InputInfo("dict", (), "dict", None, fields)


def kind_of(ndim: int, dtype: str, sparse: bool) -> str:
    if sparse:
        return "sparse"
    if dtype == "int64":
        return "ids"
    return {2: "table", 3: "sequence", 4: "image"}.get(ndim, "tensor")


def fitted_info(estimator) -> InputInfo | None:
    """The estimator's :class:`InputInfo`, or None when it was never fitted.

    Estimators fitted before sklottery took other inputs have only
    ``n_features_in_``: they were fitted on 2-D floats.
    """
    info = getattr(estimator, "_input_info", None)
    if info is None and hasattr(estimator, "n_features_in_"):
        info = InputInfo("table", (int(estimator.n_features_in_),), "float32")
    return info
