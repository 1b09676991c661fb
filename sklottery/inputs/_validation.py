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
integer array                 int64 token ids, never cast through float
                              (``int_as="ids"``); numeric features as float32
                              when the network takes floats (``int_as="float"``)
scipy sparse matrix           float32 CSR rows, densified one batch at a time
                              (:class:`~sklottery.training._loader.SparseRows`)
torch tensor                  as the numpy array (or sparse matrix) it holds
============================  ==============================================

NaN or infinity, an empty ``X``, a prediction input whose shape after the
first axis differs from the fitted one, negative ids, ids outside the
vocabulary of an embedding network and inputs a network cannot take
(strings, complex numbers, objects that are not numbers) raise a
``ValueError`` (``TypeError`` for objects, as scikit-learn) naming the problem.

``pandas`` DataFrames are tables: whatever their column dtypes, they become
float32 (as before sklottery took images and ids).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils import check_array
from sklearn.utils.validation import _check_sample_weight, _check_y, validate_data

from ..training import SparseRows

__all__ = [
    "InputInfo",
    "as_info",
    "check_X",
    "check_X_y",
    "check_forward",
    "check_module_input",
    "check_network",
    "check_sample_weight",
    "embedding_vocabulary",
    "input_state",
    "integer_input",
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



def integer_input(net) -> str:
    """What integer ``X`` is for the estimator parameter ``net``: ``"float"``
    numbers for the float networks of :mod:`sklottery.modules` (``MLP``,
    ``ConvNet``, ``RecurrentNet``), else ``"ids"`` (int64 token ids; also for
    ``net=None``, whose default for integer ``X`` is an ``EmbeddingNet``)."""
    from ..modules import takes_floats

    return "float" if net is not None and takes_floats(net.module) else "ids"


def _kind_of(ndim: int, dtype: str, sparse: bool) -> str:
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
    int_as: str = "ids",
    module: torch.nn.Module | None = None,
):
    """Validate ``X`` for ``estimator`` and prepare it for its network.

    Parameters
    ----------
    estimator : estimator
        With ``reset=True`` its ``n_features_in_`` and ``feature_names_in_``
        are set the way scikit-learn sets them (for 2-D inputs; removed for
        inputs of other ranks) and ``_input_info`` records the input. With
        ``reset=False`` ``X`` is checked against them.
    X : array-like, DataFrame, scipy sparse matrix or torch tensor
    reset : bool
        True in ``fit``; False in ``predict``, ``transform``, ``score``.
    int_as : {"ids", "float"}, default="ids"
        With ``reset=True``: what integer ``X`` is. ``"ids"`` keeps it int64
        (token ids for an embedding); ``"float"`` makes it float32 features
        (for networks that take floats, such as :class:`~sklottery.MLP`).
        With ``reset=False`` the fitted input decides.
    module : torch.nn.Module, optional
        The fitted network; with ids, :func:`check_module_input` checks them
        against its vocabulary.

    Returns
    -------
    X : ndarray or SparseRows
        float32 or int64 C-contiguous writable ndarray, or
        :class:`~sklottery.training._loader.SparseRows`.
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
    if fitted is not None:
        int_as = "ids" if fitted.dtype == "int64" else "float"
    if isinstance(X, torch.Tensor):
        X = _from_torch(X)

    if sp.issparse(X):
        if fitted is not None and fitted.dtype == "int64":
            raise ValueError(
                f"{_name(estimator)} was fitted on integer token ids; a sparse "
                "matrix is float features. Pass int64 ids as in fit"
            )
        if fitted is not None and len(fitted.shape) != 1:
            _shape_mismatch(estimator, X.shape, fitted)
        Xc = validate_data(
            estimator,
            X,
            reset=reset,
            accept_sparse=["csr", "csc", "coo"],
            accept_large_sparse=True,
            dtype=np.float32,
        )
        rows = SparseRows(Xc)
        info = InputInfo("sparse", (rows.shape[1],), "float32")
        return _finish(estimator, rows, info, reset, fitted, module)

    is_frame = hasattr(X, "iloc") and hasattr(X, "columns")
    if is_frame or hasattr(X, "__dataframe__"):
        # tables: float32 whatever the column dtypes, as always
        if fitted is not None and (len(fitted.shape) != 1 or fitted.dtype != "float32"):
            _shape_mismatch(estimator, X.shape, fitted)
        Xc = validate_data(estimator, X, reset=reset, dtype=np.float32)
        Xc = np.require(Xc, dtype=np.float32, requirements=["C", "W"])
        info = InputInfo("table", (Xc.shape[1],), "float32")
        return _finish(estimator, Xc, info, reset, fitted, module)

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
            estimator, X, reset=reset, dtype=np.int64 if as_ids else np.float32
        )
    else:
        if reset:
            # 2-D bookkeeping does not apply: no n_features_in_ for N-D data
            for attr in ("n_features_in_", "feature_names_in_"):
                estimator.__dict__.pop(attr, None)
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
        _kind_of(Xc.ndim, dtype_name, False), tuple(Xc.shape[1:]), dtype_name, max_id
    )
    return _finish(estimator, Xc, info, reset, fitted, module)


def _shape_mismatch(estimator, shape, fitted: InputInfo):
    got = ", ".join(["n", *(str(s) for s in tuple(shape)[1:])])
    raise ValueError(
        f"X has shape ({got}) after the first axis, but {_name(estimator)} was "
        f"fitted on {fitted.describe()}; the shape of a sample must match"
    )


def _finish(estimator, X, info, reset, fitted, module):
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
    if reset:
        estimator._input_info = info
    if module is not None:
        check_module_input(module, X, info)
    return X, info


def check_X_y(estimator, X, y, *, reset=True, int_as: str = "ids", **y_checks):
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
    X, info = check_X(estimator, X, reset=reset, int_as=int_as)
    # (validate_data(X="no_validation") would drop feature_names_in_)
    y = _check_y(y, estimator=estimator, **y_checks)
    if len(X) != len(y):
        raise ValueError(
            "Found input variables with inconsistent numbers of samples: "
            f"[{len(X)}, {len(y)}]"
        )
    return X, y, info


# -- the network's side --------------------------------------------------------
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


def check_sample_weight(sample_weight, n_samples: int) -> np.ndarray | None:
    """Validate ``sample_weight`` for ``n_samples`` samples (scikit-learn's rules).

    Returns None for ``None`` and for all-ones weights (no weights), and
    float32 weights otherwise: finite, non-negative, one per sample, not all
    zero. A scalar is a weight for every sample.
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
            "sample_weight is zero for every sample: at least one sample must "
            "have a positive weight"
        )
    if np.all(w == 1):
        return None  # all ones: exactly the unweighted fit
    return w.astype(np.float32)


def check_network(module: torch.nn.Module, X, info: InputInfo) -> None:
    """Before training: ids within the network's vocabulary
    (:func:`check_module_input`) and one forward pass (:func:`check_forward`)."""
    check_module_input(module, X, info)
    check_forward(module, X, info)
