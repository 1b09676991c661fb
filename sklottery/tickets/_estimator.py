"""A fitted estimator's ticket: writing it, and reading it with its state,
round records and label arrays checked (:mod:`._state`), every size the
state declares bounded by the file's tensors before a network is built from
it, and the built network checked against every state field before any
tensor is read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..inputs import sample_input, ticket_input
from ..pruning import find_prunable
from ..training import batch_to, call_module
from ._format import LEGACY_VERSION, Ticket, _fail, _Invalid, _json_default
from ._read import _check_against_module, _load
from ._state import (
    ESTIMATOR_ARRAYS,
    STATE_FIELDS,
    _check_arrays,
    _check_sizes,
    _check_state,
    declared_sizes,
)
from ._write import _write


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
    if not all(isinstance(m, torch.Tensor) for m in masks.values()):
        raise TypeError("masks must be a dict of bool tensors")
    masked = {n: (int(m.numel()), int(m.count_nonzero())) for n, m in masks.items()}
    try:
        _check_state(state, rounds, masked)
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
        (shapes, dtypes, prunable tensors, the output layer, an ``nn.Linear``
        output layer's ``in_features``/``out_features`` against
        ``n_features_out``/``n_outputs``, and one sample of zeros of the
        recorded input run through it in evaluation mode giving
        ``n_outputs`` values), or a callable ``module(state)`` that builds it
        from the checked state (called only once the header and the tensor
        data's digest are valid and every size the state declares --
        ``n_features_in``, ``n_outputs``, ``n_features_out``, the input's
        values per sample and ``max_id + 1`` -- is at most the number of
        values the file's tensors describe). Not changed.

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
        increasing or ``weights_remaining`` outside [0, 1] or not
        ``n_weights`` of the pruned weights, ``n_weights`` over them or the
        selected round's not what the masks keep; an ``input`` whose kind,
        rank, dtype and ``max_id`` disagree or whose values per sample are
        not ``n_features_in``; ``y_1d`` with ``n_outputs != 1``; ``classes_`` not
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
        masked = {s.name: (s.numel, s.n_kept) for s in specs if s.masked}
        state = _check_state(state, header["rounds"], masked)
        # nothing built from the state is larger than the file's tensors
        _check_sizes(declared_sizes(state), sum(s.numel for s in specs))
        found.update(state=state, info=info, objects=objects, name=name)
        net = module
        if callable(module) and not isinstance(module, nn.Module):
            net = module(dict(state, rescale=state.get("rescale", False)))
        if net is not None:
            _check_against_module(specs, net)
            _check_output_layer(state, net)
            _check_forward(state, net)
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
    if isinstance(layer, nn.Linear) and layer.out_features != state["n_outputs"]:
        raise _Invalid(
            f"estimator state field 'n_outputs' is {state['n_outputs']}; the "
            f"output layer {name!r} gives {layer.out_features}"
        )


def _check_forward(state: dict, module: nn.Module) -> None:
    """One sample of zeros of the recorded input runs through ``module``
    (evaluation mode, no gradients, its mode restored) and gives
    ``n_outputs`` values, its output layer receiving ``n_features_out``."""
    given = ticket_input(state)
    layer = module.get_submodule(state["output_layer"])
    device = next(module.parameters()).device
    x = batch_to(sample_input(given)[:1], device)
    seen = []

    def hook(mod, args):
        if args and isinstance(args[0], torch.Tensor) and not seen:
            seen.append(args[0].reshape(len(args[0]), -1).shape[1])

    handle = layer.register_forward_pre_hook(hook)
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = call_module(module, x)
    except Exception as exc:  # noqa: BLE001 - any failure of the forward pass
        raise _Invalid(
            f"one sample of {given.describe()} (estimator state fields "
            f"'input'/'n_features_in') does not run through the network: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    finally:
        handle.remove()
        module.train(training)
    if isinstance(out, (tuple, list)) and out:  # skorch predicts from the first
        out = out[0]
    if isinstance(out, torch.Tensor) and out.numel() != state["n_outputs"]:
        raise _Invalid(
            f"estimator state field 'n_outputs' is {state['n_outputs']}; the "
            f"network gives {out.numel()} outputs per sample"
        )
    if seen and seen[0] != state["n_features_out"]:
        raise _Invalid(
            f"estimator state field 'n_features_out' is "
            f"{state['n_features_out']}; the output layer receives {seen[0]}"
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
