"""What the commands of the ``sklottery`` command line share: the option
types, and the ranges of every parameter a ticket's summary keeps.

The option types of the estimators' parameters take their ranges and choices
from :data:`sklottery.config.PARAMETER_CONSTRAINTS` (scikit-learn
``Interval`` and ``StrOptions`` objects), so that the command line accepts
what the estimators accept; the options the estimators do not have declare
their ranges here in the same form. :data:`PARAMS` holds them all, by the
name a summary's ``params`` keeps them under: ``fit``'s options are built
from it and the summary of a ticket file is checked against it
(:func:`check_params`), so a file can never hold what ``fit`` refuses.
The parser class, the errors and running a command are in
:mod:`sklottery.cli._parser` (light: ``--help`` imports no torch).
"""

from __future__ import annotations

import argparse
import math
import numbers

from sklearn.utils._param_validation import Interval, StrOptions

from ..config import PARAMETER_CONSTRAINTS
from ._parser import SummaryError

__all__ = [
    "AT_LEAST_ONE",
    "FRACTION",
    "HIDDEN_SIZE",
    "NON_NEGATIVE",
    "PARAMS",
    "POSITIVE",
    "TASKS",
    "check_params",
    "choices",
    "constraint",
    "hidden_sizes",
    "number_in",
    "parameter_number",
    "rewind",
    "satisfies",
    "sparse_training",
]

#: ``fit --task``: auto (from the target's values), or explicit.
TASKS = ("auto", "classification", "regression")

#: Ranges of the options that are not estimator parameters (the network's,
#: the held-out split's, the seeds).
AT_LEAST_ONE = Interval(numbers.Integral, 1, None, closed="left")
NON_NEGATIVE = Interval(numbers.Integral, 0, None, closed="left")
POSITIVE = Interval(numbers.Real, 0, None, closed="neither")
FRACTION = Interval(numbers.Real, 0, 1, closed="neither")
#: Each hidden layer's size: the one limit of ``fit --hidden`` and of the
#: sizes a ticket's summary may declare (``predict`` and ``sanity-check``
#: also check them against the file's tensors before building a network).
HIDDEN_SIZE = Interval(numbers.Integral, 1, 2**20, closed="both")


# -- option types --------------------------------------------------------------
def constraint(name: str, kind: type):
    """The estimators' first constraint of class ``kind`` on parameter ``name``
    (e.g. its ``Interval`` or its ``StrOptions``)."""
    return next(c for c in PARAMETER_CONSTRAINTS[name] if isinstance(c, kind))


def choices(name: str) -> list[str]:
    """The string values the estimators accept for parameter ``name``, sorted."""
    return sorted(constraint(name, StrOptions).options)


def number_in(interval: Interval):
    """An option type: a number in ``interval`` (an int where the interval
    holds integers)."""
    integral = issubclass(interval.type, numbers.Integral)

    def parse(text):
        try:
            value = int(text) if integral else float(text)
        except ValueError:
            value = None
        if value is None or not interval.is_satisfied_by(value):
            raise argparse.ArgumentTypeError(f"expected {interval}, got {text!r}")
        return value

    return parse


def parameter_number(name: str):
    """An option type: a number in the range the estimators declare for
    parameter ``name``."""
    return number_in(constraint(name, Interval))


def hidden_sizes(text):
    """``--hidden``: comma-separated layer sizes in :data:`HIDDEN_SIZE`."""
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or not all(HIDDEN_SIZE.is_satisfied_by(s) for s in sizes):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes in {HIDDEN_SIZE} such as "
            f"300,100; got {text!r}"
        )
    return sizes


def rewind(text):
    """A rewind mode name, or an int k (late rewinding to after epoch k);
    checked with the other estimator parameters."""
    return int(text) if text.isdigit() else text


def sparse_training(text):
    """The estimators' ``sparse_training``: one of its string options, or
    ``true``/``false`` for its boolean."""
    values = {**{o: o for o in choices("sparse_training")},
              "true": True, "false": False}
    if text.lower() not in values:
        names = list(values)
        raise argparse.ArgumentTypeError(
            f"expected {', '.join(names[:-1])} or {names[-1]}; got {text!r}"
        )
    return values[text.lower()]


# -- the ranges of a summary's params ------------------------------------------
def _all(name: str) -> list:
    """Every constraint of estimator parameter ``name`` a JSON value can meet
    and ``fit``'s option can give (no callables, lists or None)."""
    return [c for c in PARAMETER_CONSTRAINTS[name]
            if isinstance(c, (Interval, StrOptions)) or c == "boolean"]


#: ``{name: constraints}`` of everything a summary's ``params`` keeps, as
#: ``fit``'s options give it (a value must meet one of the constraints).
PARAMS = {
    "n_rounds": [constraint("n_rounds", Interval)],
    "prune_rate": [constraint("prune_rate", Interval)],
    "strategy": [constraint("strategy", StrOptions)],
    "rewind": _all("rewind"),
    "scope": [constraint("scope", StrOptions)],
    "select": _all("select"),
    "schedule": _all("schedule"),
    "sparse_training": _all("sparse_training"),
    "granularity": _all("granularity"),
    "epochs": [AT_LEAST_ONE],
    "task": [StrOptions(set(TASKS))],
    "hidden": [HIDDEN_SIZE],  # each size, of a non-empty list
    "lr": [POSITIVE],
    "batch_size": [AT_LEAST_ONE],
    "seed": [NON_NEGATIVE],
}
#: Fields older summaries lack (0.1.0 fitted with these values).
_OPTIONAL = {"schedule": "iterative", "sparse_training": "auto",
             "granularity": "weight"}


def satisfies(value, constraints) -> bool:
    """Whether the JSON ``value`` meets one of ``constraints`` (a bool is no
    number, a number must be finite)."""
    for c in constraints:
        if c == "boolean":
            ok = isinstance(value, bool)
        elif isinstance(c, StrOptions):
            ok = isinstance(value, str) and c.is_satisfied_by(value)
        else:
            ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
                  and math.isfinite(value) and c.is_satisfied_by(value))
        if ok:
            return True
    return False


def check_params(params, where) -> dict:
    """A summary's ``params`` checked against :data:`PARAMS` (the ranges
    ``fit`` accepts), older summaries' missing fields filled in; a
    :class:`~sklottery.cli._parser.SummaryError` naming the field and its
    range otherwise (``where``: the file)."""
    if not isinstance(params, dict):
        raise SummaryError(f"{where}: summary field 'params' must be a dict; "
                           f"got {type(params).__name__}")
    params = {**_OPTIONAL, **params}
    for name, constraints in PARAMS.items():
        if name not in params:
            if name == "task":  # not read, and 0.1.0 kept the resolved task
                continue
            raise SummaryError(f"{where}: summary field 'params.{name}' is missing")
        value = params[name]
        if name == "hidden":
            ok = (isinstance(value, list) and value
                  and all(satisfies(v, constraints) for v in value))
        else:
            ok = satisfies(value, constraints)
        if not ok:
            expected = " or ".join(map(str, constraints))
            raise SummaryError(
                f"{where}: summary field 'params.{name}' must be "
                + ("a non-empty list of sizes in " if name == "hidden" else "")
                + f"{expected}; got {value!r}"
            )
    return params
