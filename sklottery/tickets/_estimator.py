"""A fitted estimator's ticket: its state, round records and label arrays,
checked before anything is built or changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..pruning import find_prunable
from ._format import (
    LEGACY_VERSION,
    Ticket,
    _fail,
    _Invalid,
    _is_int,
    _json_default,
    _short,
)
from ._read import _check_against_module, _load
from ._write import _write

# -- fitted estimators ---------------------------------------------------------
#: The fields of an estimator's ``state``: name -> (type, required). Files of
#: sklottery 0.1.0 lack ``rescale`` (then False) and ``y_1d``.
STATE_FIELDS: dict[str, tuple[type, bool]] = {
    "n_features_in": (int, True),
    "n_outputs": (int, True),
    "n_features_out": (int, True),
    "output_layer": (str, True),
    "selected_round": (int, True),
    "interrupted": (bool, True),
    "rescale": (bool, False),
    "y_1d": (bool, False),
    # what X was (sklottery.inputs._validation.input_state): kind, sample shape, dtype,
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


def save_estimator_ticket(
    file,
    module,
    masks: dict[str, torch.Tensor],
    *,
    estimator: str,
    state: dict,
    rounds,
    arrays: dict[str, np.ndarray] | None = None,
    rewind_point: dict[str, torch.Tensor] | None = None,
    info: dict | None = None,
) -> Path | None:
    """Write a fitted estimator's ticket from plain values.

    Parameters
    ----------
    file : str, os.PathLike or binary file object
    module : torch.nn.Module or dict of str to tensor
        The fitted network holding the selected round (or its tensors).
    masks : dict of str to bool tensor
    estimator : str
        The estimator's class name; :func:`read_estimator_ticket` only reads
        the file back for the same name.
    state : dict
        The estimator's fitted fields, JSON values; see :data:`STATE_FIELDS`.
    rounds : sequence of dict
        The round records (``rounds_.to_dict("records")``); each needs
        :data:`ROUND_FIELDS`.
    arrays : dict of str to ndarray, optional
        ``classes_`` and/or ``feature_names_in_`` (object arrays of str are
        restored as object arrays).
    rewind_point : dict of str to tensor, optional
        What ``warm_start`` rewinds survivors to.
    info : dict, optional
        Free JSON metadata (the command line keeps its summary there).

    Returns
    -------
    pathlib.Path or None
        The path written, or None for a file object.
    """
    # plain JSON values (numpy scalars become ints and floats)
    rounds = json.loads(json.dumps(list(rounds), default=_json_default))
    state = json.loads(json.dumps(dict(state), default=_json_default))
    arrays = dict(arrays or {})
    try:
        _check_state(state, rounds, list(masks))
        _check_arrays(estimator, state, arrays)
    except _Invalid as exc:
        raise ValueError(f"cannot save the ticket: {exc}") from None
    return _write(
        file,
        module,
        masks,
        rounds=rounds,
        rewind_point=rewind_point,
        info=info,
        arrays=arrays,
        estimator={"class": estimator, "state": dict(state)},
    )


def _check_state(state, rounds, masked) -> dict:
    """Validate an estimator's state and rounds; `_Invalid` naming the field."""
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
    # the output layer is the last pruned layer (the last masked tensor)
    if not masked:
        raise _Invalid("an estimator's ticket must prune at least one tensor")
    last = masked[-1]
    last_layer = last.rsplit(".", 1)[0] if "." in last else ""
    if state["output_layer"] != last_layer:
        raise _Invalid(
            f"estimator state field 'output_layer' is {state['output_layer']!r}; "
            f"the last pruned layer is {last_layer!r}"
        )
    # rounds
    if not rounds:
        raise _Invalid("the round history is empty")
    seen = []
    for i, record in enumerate(rounds):
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
        r = record["round"]
        if seen and r <= seen[-1]:
            raise _Invalid(
                f"round record {i} field 'round' is {r}; rounds must increase"
            )
        seen.append(r)
        w = record["weights_remaining"]
        if not 0 <= w <= 1:
            raise _Invalid(
                f"round record {i} field 'weights_remaining' must be in [0, 1]; "
                f"got {_short(w)}"
            )
    if state["selected_round"] not in seen:
        raise _Invalid(
            f"estimator state field 'selected_round' is {state['selected_round']}, "
            f"which is not among the rounds {_short(seen)}"
        )
    return state


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


def read_estimator_ticket(file, estimator: str, module=None) -> tuple[Ticket, dict]:
    """Load and validate a ticket saved from an estimator of class ``estimator``.

    Parameters
    ----------
    file : str, os.PathLike or binary file object
    estimator : str
        The class name of the estimator loading it; a ticket saved from
        another class is refused.
    module : torch.nn.Module or callable, optional
        The network to check the ticket against before its tensors are read
        (shapes, dtypes, prunable tensors, the output layer and an
        ``nn.Linear`` output layer's ``in_features`` against
        ``n_features_out``), or a callable ``module(state)`` that builds it
        from the checked state (called only once the header is valid and
        ``n_features_in``/``n_outputs`` are at most the number of values the
        file describes). Not changed.

    Returns
    -------
    ticket : Ticket
        ``ticket.arrays`` holds ``classes_``/``feature_names_in_`` with their
        saved types.
    state : dict
        The checked :data:`STATE_FIELDS` (``rescale`` False for 0.1.0 files).

    Raises
    ------
    ValueError
        Naming the file and the field, for everything :func:`load_ticket`
        refuses and for: another estimator class or a plain ticket; a state
        field missing, unknown, of the wrong type, or ``< 1`` where it counts
        something; an ``output_layer`` that is not the last pruned layer; a
        ``selected_round`` that is not among the rounds; round records
        without :data:`ROUND_FIELDS` or of the wrong types, rounds not
        increasing or ``weights_remaining`` outside [0, 1]; ``classes_`` not
        1-d, not ``n_outputs`` long, duplicated, NaN, or missing from a
        classifier's ticket; ``feature_names_in_`` not ``n_features_in``
        distinct str.
    """
    found = {}

    def resolve(header, specs):
        name, state, info, objects = _estimator_part(header)
        if name != estimator:
            raise _Invalid(
                f"it was saved from a {name}; it cannot be loaded into a {estimator}"
            )
        masked = [s.name for s in specs if s.masked]
        state = _check_state(state, header["rounds"], masked)
        # a network built from these counts is never larger than the file's
        # tensors (every input feature and output has at least one weight)
        total = sum(s.numel for s in specs)
        for key in ("n_features_in", "n_outputs", "n_features_out"):
            if state[key] > total:
                raise _Invalid(
                    f"estimator state field {key!r} is {state[key]}, more than the "
                    f"{total} values of all the ticket's tensors"
                )
        found.update(state=state, info=info, objects=objects, name=name)
        net = module
        if callable(module) and not isinstance(module, nn.Module):
            net = module(dict(state, rescale=state.get("rescale", False)))
        if net is not None:
            _check_against_module(specs, net)
            _check_output_layer(state, net)
        return net

    ticket = _load(file, resolve)
    try:
        for attr in found["objects"]:
            if attr in ticket.arrays:
                if ticket.arrays[attr].dtype.kind != "U":
                    raise _Invalid(f"array {attr!r} listed as object must hold str")
                ticket.arrays[attr] = ticket.arrays[attr].astype(object)
        _check_arrays(estimator, found["state"], ticket.arrays)
    except _Invalid as exc:
        raise _fail(file, str(exc)) from None
    ticket.estimator, ticket.state, ticket.info = (
        found["name"], found["state"], found["info"],
    )
    state = dict(found["state"])
    state.setdefault("rescale", False)
    return ticket, state


def _check_output_layer(state: dict, module: nn.Module) -> None:
    name = state["output_layer"]
    try:
        layer = module.get_submodule(name)
    except AttributeError:
        raise _Invalid(
            f"estimator state field 'output_layer' {name!r} is not a layer of the "
            "network"
        ) from None
    prunable = find_prunable(module)
    if not prunable or prunable[-1].module_name != name:
        raise _Invalid(
            f"estimator state field 'output_layer' {name!r} is not the network's "
            "output layer (its last prunable layer)"
        )
    if isinstance(layer, nn.Linear) and layer.in_features != state["n_features_out"]:
        raise _Invalid(
            f"estimator state field 'n_features_out' is {state['n_features_out']}; "
            f"the output layer {name!r} takes {layer.in_features}"
        )


def _estimator_part(header: dict) -> tuple[str, dict, dict, list]:
    """``(class name, state, info, object arrays)`` of an estimator's ticket;
    0.1.0 kept the estimator's fields in ``info``."""
    est = header.get("estimator")
    if est is not None:
        return est["class"], est["state"], header["info"], []
    if header["version"] != LEGACY_VERSION:
        raise _Invalid("it was not saved from a sklottery estimator")
    info = dict(header["info"])
    if "estimator" not in info:
        raise _Invalid("it was not saved from a sklottery estimator")
    name = info.pop("estimator")
    if not isinstance(name, str):
        raise _Invalid("info field 'estimator' must be a str")
    objects = info.pop("object_arrays", [])
    if not isinstance(objects, list) or not all(
        isinstance(o, str) and o in ESTIMATOR_ARRAYS for o in objects
    ):
        raise _Invalid(
            f"info field 'object_arrays' must list some of {list(ESTIMATOR_ARRAYS)}"
        )
    state = {k: info.pop(k) for k in list(info) if k in STATE_FIELDS}
    return name, state, info, objects
