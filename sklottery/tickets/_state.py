"""The checks of a fitted estimator's ticket that need no network: its state,
round records and label arrays against each other and against the tensors
the header declares, and every size the state declares bounded by those
tensors (so that nothing built from the state is larger than the file
describes)."""

from __future__ import annotations

import math

import numpy as np

from ..inputs import FIELD_DTYPES, INPUT_KINDS
from ._format import MAX_NDIM, _Invalid, _is_int, _short

#: The fields of an estimator's ``state``: name -> (type, required). Files of
#: sklottery 0.1.0 lack ``rescale`` (then False), ``y_1d`` (then a single
#: target is predicted 1-d) and ``input`` (then a 2-D float table).
STATE_FIELDS: dict[str, tuple[type, bool]] = {
    "n_features_in": (int, True),
    "n_outputs": (int, True),
    "n_features_out": (int, True),
    "output_layer": (str, True),
    "selected_round": (int, True),
    "interrupted": (bool, True),
    "rescale": (bool, False),
    # a regressor's: whether y was 1-d (predict then returns 1-d)
    "y_1d": (bool, False),
    # what X was (sklottery.inputs.input_state): kind, sample shape, dtype,
    # largest id; absent in files of tables written before it was recorded
    "input": (dict, False),
}
#: The arrays an estimator's ticket may hold.
ESTIMATOR_ARRAYS = ("classes_", "feature_names_in_")
#: The fields every round record must have: name -> kind ("int": an int
#: >= 0, "number": an int or float, NaN allowed, "str").
ROUND_FIELDS: dict[str, str] = {
    "round": "int",
    "weights_remaining": "number",
    "n_weights": "int",
    "epochs": "int",
    "train_loss": "number",
    "valid_loss": "number",
    "score": "number",
    "score_on": "str",
    "wall_time": "number",
}
#: The keys of the state's ``input`` record.
INPUT_KEYS = ("kind", "shape", "dtype", "max_id")
# the rank of one sample each input kind has (None: any; "tensor": the others)
_KIND_RANKS = {"table": 1, "sparse": 1, "sequence": 2, "image": 3}


def _check_state(state, rounds, masked: dict[str, tuple[int, int]]) -> dict:
    """Validate an estimator's state and rounds; `_Invalid` naming the field.

    ``masked``: ``{name: (numel, kept)}`` of the pruned tensors, in the
    network's order.
    """
    if not isinstance(state, dict):
        raise _Invalid("the estimator state must be a dict")
    unknown = set(state) - set(STATE_FIELDS)
    if unknown:
        raise _Invalid(f"unknown estimator state fields {sorted(map(str, unknown))}")
    for key, (kind, required) in STATE_FIELDS.items():
        if key not in state:
            if required:
                raise _Invalid(f"estimator state field {key!r} is missing")
            continue
        value = state[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _Invalid(
                f"estimator state field {key!r} must be a {kind.__name__}; got "
                f"{_short(value)}"
            )
    for key in ("n_features_in", "n_outputs", "n_features_out"):
        if state[key] < 1:
            raise _Invalid(
                f"estimator state field {key!r} must be >= 1; got {state[key]}"
            )
    if state.get("y_1d") and state["n_outputs"] != 1:
        raise _Invalid(
            f"estimator state field 'y_1d' is true (y was 1-d), but 'n_outputs' "
            f"is {state['n_outputs']}"
        )
    if "input" in state:
        _check_input(state["input"], state["n_features_in"])
    # the output layer is the last pruned layer (the last masked tensor)
    if not masked:
        raise _Invalid("an estimator's ticket must prune at least one tensor")
    last = list(masked)[-1]
    last_layer = last.rsplit(".", 1)[0] if "." in last else ""
    if state["output_layer"] != last_layer:
        raise _Invalid(
            f"estimator state field 'output_layer' is {state['output_layer']!r}; "
            f"the last pruned layer is {last_layer!r}"
        )
    _check_rounds(rounds, state["selected_round"], masked)
    return state


def _check_input(given, n_features_in: int) -> None:
    """The state's ``input`` record: a kind, the shape of one sample of that
    kind's rank, the kind's dtype and (ids only) the largest id, and
    ``n_features_in`` the values of one sample."""
    what = "estimator state field 'input'"
    if given.get("kind") == "dict":
        _check_dict_input(given, n_features_in)
        return
    if set(given) != set(INPUT_KEYS):
        raise _Invalid(
            f"{what} must have exactly the keys {list(INPUT_KEYS)}; got "
            f"{_short(sorted(map(str, given)))}"
        )
    kind, shape, dtype, max_id = (given[k] for k in INPUT_KEYS)
    if kind not in INPUT_KINDS:
        raise _Invalid(
            f"{what} 'kind' is {_short(kind)}; expected one of {list(INPUT_KINDS)}"
        )
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= MAX_NDIM
        or not all(_is_int(s) and s >= 1 for s in shape)
    ):
        raise _Invalid(
            f"{what} 'shape' must be a list of 1 to {MAX_NDIM} ints >= 1; got "
            f"{_short(shape)}"
        )
    rank = _KIND_RANKS.get(kind)
    if (rank is not None and len(shape) != rank) or (
        kind == "tensor" and len(shape) in _KIND_RANKS.values()
    ):
        raise _Invalid(
            f"{what} 'shape' {shape} does not have the rank of kind {kind!r} "
            f"(one sample of {kind!r} has "
            + (f"{rank} axes)" if rank else "more than 3 axes)")
        )
    want = "int64" if kind == "ids" else "float32"
    if dtype != want:
        raise _Invalid(f"{what} 'dtype' of kind {kind!r} must be {want!r}; got "
                       f"{_short(dtype)}")
    if kind == "ids" and not (_is_int(max_id) and max_id >= 0):
        raise _Invalid(f"{what} 'max_id' of ids must be an int >= 0; got "
                       f"{_short(max_id)}")
    if kind != "ids" and max_id is not None:
        raise _Invalid(f"{what} 'max_id' must be null for kind {kind!r}")
    if math.prod(shape) != n_features_in:
        raise _Invalid(
            f"estimator state field 'n_features_in' is {n_features_in}; one "
            f"sample of {what} 'shape' {shape} holds {math.prod(shape)} values"
        )


def _check_dict_input(given, n_features_in: int) -> None:
    """A dict ``X``'s record: ``fields``, one ``{"key", "shape", "dtype"}``
    per value (a str key, once; the shape of one sample, possibly ``[]``;
    ``float32``, ``int64`` or ``bool``), ``n_features_in`` their values."""
    what = "estimator state field 'input'"
    keys = (*INPUT_KEYS, "fields")
    if set(given) != set(keys):
        raise _Invalid(
            f"{what} of kind 'dict' must have exactly the keys {list(keys)}; got "
            f"{_short(sorted(map(str, given)))}"
        )
    if given["shape"] != [] or given["dtype"] != "dict" or given["max_id"] is not None:
        raise _Invalid(
            f"{what} of kind 'dict' must have 'shape' [], 'dtype' 'dict' and "
            "'max_id' null (each value is described in 'fields')"
        )
    fields = given["fields"]
    if not isinstance(fields, list) or not fields:
        raise _Invalid(
            f"{what} 'fields' must be a non-empty list; got {_short(fields)}"
        )
    seen = set()
    for field in fields:
        if (
            not isinstance(field, dict)
            or set(field) != {"key", "shape", "dtype"}
            or not isinstance(field["key"], str)
            or field["key"] in seen
            or not isinstance(field["shape"], list)
            or len(field["shape"]) > MAX_NDIM
            or not all(_is_int(s) and s >= 1 for s in field["shape"])
            or field["dtype"] not in FIELD_DTYPES
        ):
            raise _Invalid(
                f"{what} 'fields' entry {_short(field)} must be "
                "{'key': a str (once), 'shape': a list of at most "
                f"{MAX_NDIM} ints >= 1, 'dtype': one of {list(FIELD_DTYPES)}}}"
            )
        seen.add(field["key"])
    total = sum(math.prod(f["shape"]) for f in fields)
    if total != n_features_in:
        raise _Invalid(
            f"estimator state field 'n_features_in' is {n_features_in}; one "
            f"sample of {what} 'fields' holds {total} values"
        )


def _check_rounds(rounds, selected: int, masked: dict[str, tuple[int, int]]):
    """The round records: their fields, rounds increasing, each round's
    ``n_weights`` and ``weights_remaining`` within the pruned tensors, the
    selected round among them and keeping what the masks keep."""
    if not rounds:
        raise _Invalid("the round history is empty")
    total = sum(numel for numel, _ in masked.values())
    seen = []
    for i, record in enumerate(rounds):
        _check_record(i, record)
        r, n, w = record["round"], record["n_weights"], record["weights_remaining"]
        if seen and r <= seen[-1]:
            raise _Invalid(
                f"round record {i} field 'round' is {r}; rounds must increase"
            )
        seen.append(r)
        if not 0 <= w <= 1:
            raise _Invalid(
                f"round record {i} field 'weights_remaining' must be in [0, 1]; "
                f"got {_short(w)}"
            )
        if n > total:
            raise _Invalid(
                f"round record {i} field 'n_weights' is {n}; the pruned tensors "
                f"hold {total} weights"
            )
        if not math.isclose(w, n / total, rel_tol=1e-9, abs_tol=1e-12):
            raise _Invalid(
                f"round record {i} field 'weights_remaining' is {_short(w)}; its "
                f"n_weights {n} of the {total} pruned weights are {n / total:.6g}"
            )
    if selected not in seen:
        raise _Invalid(
            f"estimator state field 'selected_round' is {selected}, "
            f"which is not among the rounds {_short(seen)}"
        )
    kept = sum(k for _, k in masked.values())
    n = rounds[seen.index(selected)]["n_weights"]
    if n != kept:
        raise _Invalid(
            f"round record {seen.index(selected)} (the selected round {selected}) "
            f"field 'n_weights' is {n}; the masks keep {kept} weights"
        )


def _check_record(i: int, record) -> None:
    if not isinstance(record, dict):
        raise _Invalid(f"round record {i} must be a dict")
    for key, kind in ROUND_FIELDS.items():
        if key not in record:
            raise _Invalid(f"round record {i} has no field {key!r}")
        value = record[key]
        ok = (
            isinstance(value, str)
            if kind == "str"
            else _is_int(value) and value >= 0
            if kind == "int"
            else isinstance(value, (int, float)) and not isinstance(value, bool)
        )
        if not ok:
            want = {"str": "a str", "int": "an int >= 0", "number": "a number"}
            raise _Invalid(
                f"round record {i} field {key!r} must be {want[kind]}; got "
                f"{_short(value)}"
            )
    for key, value in record.items():
        if isinstance(value, (dict, list)):
            raise _Invalid(
                f"round record {i} field {str(key)!r} must be a number, str, "
                "bool or null"
            )


def declared_sizes(state: dict) -> dict[str, int]:
    """Every size a checked state declares that a network or a first batch
    is built from: ``{field: value}``."""
    sizes = {k: state[k] for k in ("n_features_in", "n_outputs", "n_features_out")}
    given = state.get("input")
    if given is not None and given["kind"] == "dict":
        sizes["input 'fields'"] = sum(math.prod(f["shape"]) for f in given["fields"])
    elif given is not None:
        sizes["input 'shape'"] = math.prod(given["shape"])
        if given["max_id"] is not None:  # the default network's max_id + 1 rows
            sizes["input 'max_id' + 1"] = given["max_id"] + 1
    return sizes


def _check_sizes(
    sizes: dict[str, int], total: int, what: str = "estimator state field "
) -> None:
    """`_Invalid` naming the first size over ``total``, the values of all the
    ticket's tensors: a network built from sizes within it is never larger
    than the tensors the file describes times its own widths (every input
    feature, output and embedding row has at least one weight)."""
    for key, value in sizes.items():
        if value > total:
            label = f"{what}{key!r}" if what else str(key)
            raise _Invalid(
                f"{label} is {value}, more than the "
                f"{total} values of all the ticket's tensors"
            )


def _check_arrays(estimator: str, state: dict, arrays: dict) -> None:
    """Validate an estimator's label arrays against its state."""
    unknown = set(arrays) - set(ESTIMATOR_ARRAYS)
    if unknown:
        raise _Invalid(f"unexpected estimator arrays {sorted(unknown)}")
    classes = arrays.get("classes_")
    if classes is None and estimator.endswith("Classifier"):
        raise _Invalid(f"a {estimator} ticket needs the array 'classes_'")
    if classes is not None:
        _labels(np.asarray(classes), "classes_", state["n_outputs"], "n_outputs")
        if state["n_outputs"] < 2:
            raise _Invalid("array 'classes_' must hold at least 2 classes")
    names = arrays.get("feature_names_in_")
    if names is not None:
        names = np.asarray(names)
        if names.dtype.kind not in "UO":
            raise _Invalid("array 'feature_names_in_' must hold str")
        _labels(names, "feature_names_in_", state["n_features_in"], "n_features_in")


def _labels(arr: np.ndarray, name: str, n: int, field_name: str) -> None:
    if arr.ndim != 1:
        raise _Invalid(f"array {name!r} must be 1-d; got shape {arr.shape}")
    if len(arr) != n:
        raise _Invalid(
            f"array {name!r} has {len(arr)} entries; estimator state field "
            f"{field_name!r} is {n}"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise _Invalid(f"array {name!r} holds NaN or infinite values")
    if arr.dtype.kind == "O" and not all(isinstance(v, str) for v in arr):
        raise _Invalid(f"array {name!r} must hold str, not objects")
    if len(np.unique(arr.astype(str) if arr.dtype.kind == "O" else arr)) != len(arr):
        raise _Invalid(f"array {name!r} holds duplicated entries")


def check_declared_sizes(ticket, sizes) -> int:
    """Bound sizes read from a ticket file by the file's own tensors.

    A network (or a batch) sized by a number the file declares -- the width
    of a layer, a count of features or outputs -- must not be built larger
    than what the file describes: every such size is at most the number of
    values of all the ticket's tensors (each input feature, output and unit
    has at least one weight). Call this before building anything from a
    ticket's ``info`` or ``state``; the estimators' ``load_ticket`` does it
    for the state it builds the network from.

    Parameters
    ----------
    ticket : Ticket
        A loaded ticket (:func:`load_ticket`).
    sizes : mapping of str to int
        ``{name: size}``; ``name`` (e.g. ``"info field 'hidden'[0]"``) is
        used in the error message.

    Returns
    -------
    int
        The number of values of all the ticket's tensors.

    Raises
    ------
    ValueError
        Naming the first size that is not an int, is below 0, or is larger.
    """
    total = sum(int(v.numel()) for v in ticket.values.values())
    for key, value in dict(sizes).items():
        if not _is_int(value) or value < 0:
            raise ValueError(f"{key} must be an int >= 0; got {_short(value)}")
    try:
        _check_sizes(dict(sizes), total, what="")
    except _Invalid as exc:
        raise ValueError(f"the ticket does not describe this size: {exc}") from None
    return total
