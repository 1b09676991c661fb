"""What the estimators accept as ``X``, and what each input becomes.

The estimators call :func:`check_X` (or :func:`check_X_y` in ``fit``) instead
of ``validate_data(..., dtype=float32)``. Every input is checked the way
scikit-learn checks a table and handed to the network in the form a skorch net
takes:

============================  ==============================================
input                         what the network receives
============================  ==============================================
2-D float array, DataFrame    float32 rows (sklearn's ``validate_data``:
                              ``n_features_in_``, ``feature_names_in_``)
float array of rank >= 3      float32 samples of the same shape: images
                              ``(n, C, H, W)``, sequences ``(n, T, F)``
integer array                 numbers, as float32 (``int_as="float"``); int64
                              token ids, never cast through float, when the
                              net's module takes ids (``int_as="ids"``:
                              :func:`~sklottery.inputs.integer_input`)
scipy sparse matrix           float32 CSR rows, densified one batch at a time
                              (:class:`~sklottery.training._loader.SparseRows`)
torch tensor                  as the numpy array (or sparse matrix) it holds
dict of arrays or tensors,    each value row-wise, as skorch: integers int64,
``BatchEncoding``             floats float32, booleans bool
                              (:class:`~sklottery.training.DictRows`; the
                              module's ``forward`` takes them as keywords)
============================  ==============================================

NaN or infinity, an empty ``X``, a prediction input whose shape after the
first axis differs from the fitted one, negative ids, ids outside the
vocabulary of an embedding they reach and inputs a network cannot take
(strings, complex numbers, objects that are not numbers) raise a
``ValueError`` (``TypeError`` for objects, as scikit-learn) naming the problem.

``pandas`` DataFrames are tables: whatever their column dtypes, they become
float32 (as before sklottery took images and ids).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import check_array
from sklearn.utils.validation import _check_sample_weight, _check_y, validate_data

from ..training import SparseRows
from ._dict import check_dict, is_dict_input
from ._info import InputInfo, fitted_info, kind_of
from ._network import check_module_input

__all__ = [
    "LEARNT_FROM_X",
    "check_X",
    "check_X_y",
    "check_no_missing_targets",
    "check_sample_weight",
]


# -- validation ---------------------------------------------------------------
def _name(estimator) -> str:
    return type(estimator).__name__


def _from_torch(X):
    """A torch tensor as the numpy array or scipy matrix it holds."""
    X = X.detach()
    if X.layout == torch.sparse_coo:
        X = X.coalesce().cpu()
        if X.ndim != 2:
            raise ValueError(
                f"a sparse tensor X must be 2-D (samples, features); got "
                f"{X.ndim}-D"
            )
        row, col = X.indices().numpy()
        return sp.coo_matrix((_numpy_of(X.values()), (row, col)), shape=X.shape)
    if X.layout == torch.sparse_csr:
        X = X.cpu()
        return sp.csr_matrix(
            (
                _numpy_of(X.values()),
                X.col_indices().numpy(),
                X.crow_indices().numpy(),
            ),
            shape=X.shape,
        )
    if X.layout != torch.strided:
        raise ValueError(f"X has the torch layout {X.layout}, which is not supported")
    return _numpy_of(X.cpu())


def _numpy_of(t: torch.Tensor) -> np.ndarray:
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    return t.numpy()


def _bad_dtype(dtype: np.dtype) -> str | None:
    """Why a network cannot take an array of ``dtype``, or None."""
    if dtype.kind in "US":
        return (
            f"X holds strings (dtype {dtype}); networks take numbers: turn text "
            "into features first (e.g. TfidfVectorizer, a sparse matrix) or into "
            "integer token ids"
        )
    if dtype.kind == "c":
        # scikit-learn's own words (its estimator checks match them)
        return (
            f"Complex data not supported: X is {dtype}; networks here take float "
            "or integer X (split real and imaginary parts into features)"
        )
    if dtype.kind in "mMV":
        return (
            f"X has dtype {dtype}, which a network cannot take; convert it to "
            "numbers"
        )
    return None


def check_X(
    estimator,
    X,
    *,
    reset: bool,
    int_as: str = "float",
    module: torch.nn.Module | None = None,
    learnt: dict | None = None,
):
    """Validate ``X`` for ``estimator`` and prepare it for its network.

    Nothing is written on ``estimator``: with ``reset=True`` scikit-learn's
    checks run on a bare instance of its class, and what ``fit`` learns from
    ``X`` (``n_features_in_``, ``feature_names_in_`` for 2-D inputs, and
    ``_input_info``) goes into ``learnt``.

    Parameters
    ----------
    estimator : estimator
        With ``reset=False`` ``X`` is checked against its fitted
        ``n_features_in_``, ``feature_names_in_`` and ``_input_info``.
    X : array-like, DataFrame, scipy sparse matrix, torch tensor or dict
        A dict (or ``BatchEncoding``) of arrays, lists or tensors: several
        inputs per sample (:func:`~sklottery.inputs._dict.check_dict`).
    reset : bool
        True in ``fit``; False in ``predict``, ``transform``, ``score``.
    int_as : {"float", "ids"}, default="float"
        With ``reset=True``: what integer ``X`` is. ``"float"`` makes it
        float32 features; ``"ids"`` keeps it int64 (token ids, for a module
        that takes them: :func:`~sklottery.inputs.integer_input`). With
        ``reset=False`` the fitted input decides.
    module : torch.nn.Module, optional
        The fitted network; with ids, :func:`check_module_input` checks them
        against the vocabulary of every embedding they reach.
    learnt : dict, optional
        With ``reset=True``: receives the fitted attributes learnt from ``X``
        (attribute name to value), for the estimator to set once its fit
        succeeds.

    Returns
    -------
    X : ndarray, SparseRows or DictRows
        float32 or int64 C-contiguous writable ndarray,
        :class:`~sklottery.training.SparseRows` or (a dict ``X``)
        :class:`~sklottery.training.DictRows`.
    info : InputInfo

    Raises
    ------
    ValueError
        NaN or infinity, an empty ``X``, a shape after the first axis other
        than the fitted one, negative ids, a dtype no network takes.
    TypeError
        Objects that are not numbers (as scikit-learn).
    """
    if int_as not in ("ids", "float"):
        raise ValueError(f"int_as must be 'ids' or 'float'; got {int_as!r}")
    fitted = None if reset else fitted_info(estimator)
    # sklearn's validate_data records n_features_in_/feature_names_in_ on the
    # estimator it is given: in fit, a bare instance of the class takes them
    target = _bare(estimator) if reset else estimator
    if fitted is not None:
        int_as = "ids" if fitted.dtype == "int64" else "float"
    if is_dict_input(X) or (fitted is not None and fitted.kind == "dict"):
        return check_dict(estimator, X, fitted, learnt=learnt, module=module)
    if isinstance(X, torch.Tensor):
        X = _from_torch(X)
    if sp.issparse(X):
        Xc, info = _check_sparse(estimator, target, X, reset, fitted)
    elif (hasattr(X, "iloc") and hasattr(X, "columns")) or hasattr(
        X, "__dataframe__"
    ):
        Xc, info = _check_frame(estimator, target, X, reset, fitted)
    else:
        Xc, info = _check_array(estimator, target, X, reset, fitted, int_as)
    return _finish(estimator, Xc, info, fitted, module, learnt, target)


def _check_sparse(estimator, target, X, reset, fitted):
    """A scipy sparse matrix: float32 CSR rows."""
    if fitted is not None and fitted.dtype == "int64":
        raise ValueError(
            f"{_name(estimator)} was fitted on integer token ids; a sparse "
            "matrix is float features. Pass int64 ids as in fit"
        )
    if fitted is not None and len(fitted.shape) != 1:
        _shape_mismatch(estimator, X.shape, fitted)
    Xc = validate_data(
        target,
        X,
        reset=reset,
        accept_sparse=["csr", "csc", "coo"],
        accept_large_sparse=True,
        dtype=np.float32,
    )
    rows = SparseRows(Xc)
    return rows, InputInfo("sparse", (rows.shape[1],), "float32")


def _check_frame(estimator, target, X, reset, fitted):
    """A DataFrame: a table, float32 whatever the column dtypes, as always."""
    if fitted is not None and (len(fitted.shape) != 1 or fitted.dtype != "float32"):
        _shape_mismatch(estimator, X.shape, fitted)
    Xc = validate_data(target, X, reset=reset, dtype=np.float32)
    Xc = np.require(Xc, dtype=np.float32, requirements=["C", "W"])
    return Xc, InputInfo("table", (Xc.shape[1],), "float32")


def _check_array(estimator, target, X, reset, fitted, int_as):
    """Arrays and array-likes: float32 samples of any rank, or int64 ids."""
    if not hasattr(X, "dtype") or not hasattr(X, "shape"):
        # lists and other array-likes: numpy decides the dtype, as sklearn
        X = np.asarray(X) if not isinstance(X, (str, bytes)) else X
    dtype = getattr(X, "dtype", None)
    if isinstance(dtype, np.dtype):
        why = _bad_dtype(dtype)
        if why is not None:
            raise ValueError(why)
    ndim = getattr(X, "ndim", None)
    integer = isinstance(dtype, np.dtype) and dtype.kind in "iu"
    if fitted is not None and fitted.dtype == "int64" and not integer:
        raise ValueError(
            f"{_name(estimator)} was fitted on integer token ids (int64); got X "
            f"of dtype {dtype}. Pass integer ids as in fit (floats are never "
            "taken as ids)"
        )
    as_ids = integer and int_as == "ids"
    # a 2-D fit and an input of rank <= 2: scikit-learn's checks and words
    table_check = fitted is not None and len(fitted.shape) == 1 and (ndim or 0) <= 2
    if (
        fitted is not None
        and ndim is not None
        and not table_check
        and ndim != len(fitted.shape) + 1
    ):
        _shape_mismatch(estimator, X.shape, fitted)

    if ndim is None or ndim <= 2:
        # 2-D (and bad ranks, for sklearn's messages): sklearn's validation
        Xc = validate_data(
            target, X, reset=reset, dtype=np.int64 if as_ids else np.float32
        )
    else:
        # 2-D bookkeeping does not apply: no n_features_in_ for N-D data
        Xc = check_array(
            X,
            allow_nd=True,
            dtype=np.int64 if as_ids else np.float32,
            input_name="X",
            estimator=estimator,
        )
        if any(s == 0 for s in Xc.shape[1:]):
            raise ValueError(
                f"X of shape {Xc.shape} has an empty axis; each sample must hold "
                f"at least one value ({_name(estimator)} needs non-empty samples)"
            )
    if as_ids and dtype.kind == "u" and dtype.itemsize == 8:
        big = np.asarray(X).max(initial=0)
        if int(big) > np.iinfo(np.int64).max:
            raise ValueError(f"X holds the id {int(big)}, beyond the int64 range")
    dtype_name = "int64" if as_ids else "float32"
    Xc = np.require(Xc, dtype=dtype_name, requirements=["C", "W"])
    max_id = None
    if as_ids:
        lowest = int(Xc.min())
        if lowest < 0:
            where = tuple(int(i) for i in np.argwhere(Xc == lowest)[0])
            raise ValueError(
                f"X holds integer token ids, which must be >= 0; found {lowest} "
                f"at index {where} (for numeric features pass float X, e.g. "
                "X.astype(np.float32))"
            )
        max_id = int(Xc.max())
    info = InputInfo(
        kind_of(Xc.ndim, dtype_name, False), tuple(Xc.shape[1:]), dtype_name, max_id
    )
    return Xc, info


def _shape_mismatch(estimator, shape, fitted: InputInfo):
    got = ", ".join(["n", *(str(s) for s in tuple(shape)[1:])])
    raise ValueError(
        f"X has shape ({got}) after the first axis, but {_name(estimator)} was "
        f"fitted on {fitted.describe()}; the shape of a sample must match"
    )


def _bare(estimator):
    """An instance of ``estimator``'s class with no attributes: what
    scikit-learn's validation writes on in ``fit``."""
    return object.__new__(type(estimator))


#: What ``fit`` learns from ``X`` (see ``learnt`` of :func:`check_X`).
LEARNT_FROM_X = ("n_features_in_", "feature_names_in_", "_input_info")


def _finish(estimator, X, info, fitted, module, learnt, target):
    if fitted is not None:
        if info.shape != fitted.shape:
            _shape_mismatch(estimator, (len(X), *info.shape), fitted)
        # a sparse matrix after a dense fit (or the reverse) is the same table
        info = InputInfo(
            info.kind if info.kind in ("sparse", "table") else fitted.kind,
            fitted.shape,
            fitted.dtype,
            fitted.max_id,
        )
    elif learnt is not None:
        learnt.update(
            {a: v for a, v in vars(target).items() if a in LEARNT_FROM_X}
        )
        learnt["_input_info"] = info
    if module is not None:
        check_module_input(module, X, info)
    return X, info


def check_X_y(estimator, X, y, *, reset=True, int_as: str = "float", learnt=None,
              **y_checks):
    """:func:`check_X` and ``y`` checked by scikit-learn.

    ``y_checks`` go to scikit-learn's ``validate_data`` for ``y`` (e.g.
    ``y_numeric=True, multi_output=True``); ``X`` and ``y`` must have the same
    number of samples.

    Returns
    -------
    X, y, info
    """
    if y is None:
        raise ValueError(
            f"{_name(estimator)} requires y to be passed, but the target y is None"
        )
    X, info = check_X(estimator, X, reset=reset, int_as=int_as, learnt=learnt)
    # (validate_data(X="no_validation") would drop feature_names_in_)
    y = _check_y(y, estimator=estimator, **y_checks)
    if len(X) != len(y):
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"[{len(X)}, {len(y)}]"
        )
    return X, y, info


def check_sample_weight(sample_weight, n_samples: int) -> np.ndarray | None:
    """Validate ``sample_weight`` for ``n_samples`` samples (scikit-learn's rules).

    Returns None for ``None`` and for all-ones weights (no weights), and
    float32 weights otherwise: finite, non-negative, one per sample, not all
    zero, and within float32 (the network's loss is weighted in float32). A
    scalar is a weight for every sample.

    Raises
    ------
    ValueError
        Naming ``sample_weight``: NaN or infinity, a negative weight, the
        wrong length, all zeros, a weight (or the weights' sum) beyond
        float32's largest (infinity there), or every weight below float32's
        smallest normal number (zero, or a few digits, there).
    """
    if sample_weight is None:
        return None
    w = _check_sample_weight(
        sample_weight,
        np.empty((n_samples, 0)),
        dtype=np.float64,
        ensure_non_negative=True,
    )
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinity")
    if n_samples and not w.any():
        raise ValueError(
            "sample_weight is zero for every sample: at least one weight must "
            "be non-zero (positive)"
        )
    if np.all(w == 1):
        return None  # all ones: exactly the unweighted fit
    _check_float32_range(w)
    return w.astype(np.float32)


def _check_float32_range(w: np.ndarray) -> None:
    """The weights are numbers in float32: none (nor their sum) beyond its
    largest, where it is infinity, and not all below its smallest normal
    number, where they lose their digits (or are zero)."""
    f32 = np.finfo(np.float32)
    largest, smallest = float(f32.max), float(f32.tiny)
    top, total = float(w.max(initial=0.0)), float(w.sum())
    if total > largest:
        what = f"holds {top:.3g}" if top > largest else f"sums to {total:.3g}"
        why = f"beyond float32's largest {largest:.3g}, where it is infinity"
    elif top < smallest:
        what = f"is at most {top:.3g}"
        why = f"below float32's smallest normal number {smallest:.3g}"
    else:
        return
    raise ValueError(
        f"sample_weight {what}, {why} (the network's loss is weighted in "
        "float32). The weighted loss sum(w*l)/sum(w) is the same for the weights "
        "times any positive number: rescale them, e.g. "
        "sample_weight / sample_weight.max()"
    )


def check_no_missing_targets(y):
    """Raise ``ValueError`` if ``y`` holds ``None`` (a missing label), which
    scikit-learn reports as an unrelated ``TypeError`` or an "unknown label
    type"."""
    if y is None:
        return
    try:
        arr = np.asarray(y)
    except ValueError:  # ragged: leave it to scikit-learn's checks
        return
    if arr.dtype != object:
        return
    flat = arr.ravel()
    missing = np.flatnonzero(np.fromiter((v is None for v in flat), bool, len(flat)))
    if missing.size:
        rows = missing[:5].tolist()
        raise ValueError(
            f"y contains {missing.size} missing value(s) (None), e.g. at positions "
            f"{rows}: drop those rows or fill in their targets before fit"
        )
