"""What an estimator was fitted on: :class:`InputInfo`, and its forms in
ticket files."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "INPUT_KINDS",
    "InputInfo",
    "as_info",
    "fitted_info",
    "input_state",
    "kind_of",
    "ticket_input",
]


#: Input kinds, by what one sample is.
INPUT_KINDS = ("table", "sparse", "ids", "sequence", "image", "tensor")


@dataclass(frozen=True)
class InputInfo:
    """What a fitted estimator was trained on (kept as its ``_input_info``).

    Attributes
    ----------
    kind : {"table", "sparse", "ids", "sequence", "image", "tensor"}
        ``"table"``: 2-D float; ``"sparse"``: a scipy sparse matrix (2-D
        float); ``"ids"``: integer token ids of any rank; ``"sequence"``: float
        ``(n, T, F)``; ``"image"``: float ``(n, C, H, W)``; ``"tensor"``: float
        of another rank.
    shape : tuple of int
        The shape of one sample (``X.shape[1:]``).
    dtype : {"float32", "int64"}
        The dtype the network receives.
    max_id : int or None
        For ids: the largest id in the training data (the default embedding
        network has ``max_id + 1`` rows).
    """

    kind: str
    shape: tuple[int, ...]
    dtype: str
    max_id: int | None = None

    @property
    def n_features(self) -> int:
        """Numbers per sample (the product of :attr:`shape`)."""
        return math.prod(self.shape)

    @property
    def sparse(self) -> bool:
        return self.kind == "sparse"

    def describe(self) -> str:
        """``X`` in words, e.g. ``"float32 X of shape (n, 1, 8, 8)"``."""
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
    return {
        "n_features_in": int(getattr(estimator, "n_features_in_", info.n_features)),
        "input": {
            "kind": info.kind,
            "shape": [int(s) for s in info.shape],
            "dtype": info.dtype,
            "max_id": info.max_id,
        },
    }


def ticket_input(info) -> InputInfo:
    """The :class:`~sklottery.inputs._validation.InputInfo` a ticket file records (files
    written before inputs other than tables were taken: a 2-D float table)."""
    given = info.get("input")
    if given is None:
        return InputInfo("table", (info["n_features_in"],), "float32")
    try:
        shape = tuple(int(s) for s in given["shape"])
        kind, dtype, max_id = given["kind"], given["dtype"], given["max_id"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"the ticket's input description {given!r} is malformed"
        ) from exc
    if (
        kind not in INPUT_KINDS
        or dtype not in ("float32", "int64")
        or not shape
        or min(shape) < 1
    ):
        raise ValueError(f"the ticket's input description {given!r} is malformed")
    return InputInfo(kind, shape, dtype, None if max_id is None else int(max_id))



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
