"""Checking a ticket's command-line summary before anything trusts it.

Every field of the summary a command reads is checked here: the run's
``params`` against the ranges ``fit`` accepts
(:func:`sklottery.cli._common.check_params`, from :mod:`sklottery.config`),
the other fields by type and range, and -- before ``predict`` or
``sanity-check`` builds a network -- the network the summary declares
against the tensors the file holds, so that a crafted summary can never make
the command line build (or train) more than the file's own tensors describe.
A problem is a :class:`~sklottery.cli._parser.SummaryError` (one line, exit
status 2) naming the file and the field.
"""

from __future__ import annotations

import math
import numbers

from ._common import check_params
from ._parser import SummaryError

__all__ = ["check_network", "check_summary"]

TASK_NAMES = ("classification", "regression")


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _fraction(value) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value) and 0.0 <= value <= 1.0)


def _score(value) -> bool:  # None: a score that was not finite
    return value is None or (isinstance(value, numbers.Real)
                             and not isinstance(value, bool) and math.isfinite(value))


def _label(value) -> bool:
    return isinstance(value, (str, int, float)) and not (
        isinstance(value, float) and not math.isfinite(value)
    )


def _classes(summary) -> bool:
    classes = summary.get("classes")
    if summary.get("task") == "regression":
        return classes is None
    return (isinstance(classes, list) and len(classes) >= 2
            and all(_label(c) for c in classes))


def _files(value) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


#: The fields besides ``params``: name -> (check, what it must be). A field
#: named in ``_DEFAULTS`` may be absent (older summaries).
_FIELDS = {
    "data": (lambda v: isinstance(v, str), "a str"),
    "target": (lambda v: isinstance(v, str), "a str"),
    "task": (lambda v: v in TASK_NAMES, " or ".join(TASK_NAMES)),
    "n_train": (_count, "an int >= 0"),
    "n_test": (_count, "an int >= 0"),
    "n_features": (lambda v: _count(v) and v >= 1, "an int >= 1"),
    "selected_round": (_count, "an int >= 0"),
    "weights_remaining": (_fraction, "a number in [0, 1]"),
    "test_score": (_score, "a finite number or null"),
    "files": (_files, "a dict of str"),
    "interrupted": (lambda v: isinstance(v, bool), "true or false"),
}
_DEFAULTS = {"files": {}, "interrupted": False}


def check_summary(summary, records, where) -> dict:
    """The command-line ``summary`` of the ticket file ``where`` (its round
    ``records`` already checked by the ticket reader), every field a command
    reads checked; returns it with older summaries' missing fields filled in.
    """
    if not isinstance(summary, dict):
        raise SummaryError(f"{where}: its command-line summary must be a dict")
    summary = {**_DEFAULTS, **summary}
    for name, (ok, what) in _FIELDS.items():
        if name not in summary:
            raise SummaryError(f"{where}: summary field {name!r} is missing")
        if not ok(summary[name]):
            raise SummaryError(f"{where}: summary field {name!r} must be {what}; "
                               f"got {_shown(summary[name])}")
    if not _classes(summary):
        what = ("null for a regression" if summary["task"] == "regression"
                else "a list of 2 or more class labels")
        raise SummaryError(f"{where}: summary field 'classes' must be {what}; got "
                           f"{_shown(summary.get('classes'))}")
    rounds = [r["round"] for r in records]
    if summary["selected_round"] not in rounds:
        raise SummaryError(
            f"{where}: summary field 'selected_round' is {summary['selected_round']}, "
            f"not one of the file's rounds {rounds}"
        )
    summary["params"] = check_params(summary.get("params"), where)
    return summary


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_network(summary, specs, where) -> None:
    """The network ``summary`` declares (an :class:`~sklottery.MLP` with
    ``params.hidden`` hidden layers, ``n_features`` inputs and one output per
    class, or one for a regression) checked against ``specs``, the ticket
    file's ``{tensor name: (shape, dtype)}``
    (:attr:`sklottery.tickets.Ticket.specs`), before a network is built:
    every declared size is then bounded by a tensor the file holds."""
    hidden = summary["params"]["hidden"]
    sizes = [summary["n_features"], *hidden,
             1 if summary["task"] == "regression" else len(summary["classes"])]
    names = [f"hidden.{2 * i}" for i in range(len(hidden))] + ["output"]
    expected = {}
    for name, n_in, n_out in zip(names, sizes[:-1], sizes[1:]):
        expected[f"{name}.weight"] = (n_out, n_in)
        expected[f"{name}.bias"] = (n_out,)
    held = {name: tuple(shape) for name, (shape, _) in specs.items()}
    if held != expected:
        # the first tensor, in the network's order, that differs
        first = next((n for n in expected if held.get(n) != expected[n]), None)
        first = first or sorted(set(held) - set(expected))[0]
        raise SummaryError(
            f"{where}: its summary (params.hidden={hidden}, n_features="
            f"{summary['n_features']}, {sizes[-1]} output(s)) does not match the "
            f"file's tensors ({first}: summary {expected.get(first, 'none')}, "
            f"file {held.get(first, 'none')})"
        )
