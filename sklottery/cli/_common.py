"""What every command of the ``sklottery`` command line shares: the parser
class, the option types and running a command.

The option types of the estimators' parameters take their ranges and choices
from :data:`sklottery.config.PARAMETER_CONSTRAINTS` (scikit-learn
``Interval`` and ``StrOptions`` objects), so that the command line accepts
what the estimators accept; the options the estimators do not have declare
their ranges here in the same form.

Every error the user can cause (a missing file, an unreadable table, a
missing column, a bad option, a corrupt or crafted ticket file) ends with
one line on stderr and a non-zero exit status, never a traceback (set
``SKLOTTERY_TRACEBACK=1`` to see one): exit status 2 for a usage error
(argparse), 1 for a failed command.
"""

from __future__ import annotations

import argparse
import numbers
import os
import sys

from sklearn.utils._param_validation import Interval, StrOptions

from ..config import PARAMETER_CONSTRAINTS
from ._tables import TableError

__all__ = [
    "AT_LEAST_ONE",
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "FRACTION",
    "NON_NEGATIVE",
    "POSITIVE",
    "PROG",
    "TICKET_SUFFIX",
    "CLIError",
    "Parser",
    "add_data",
    "add_ticket",
    "choices",
    "constraint",
    "hidden_sizes",
    "number_in",
    "parameter_number",
    "rewind",
    "run_command",
    "sparse_training",
]

PROG = "sklottery"
#: What ``fit`` appends to its ``--out`` prefix for the ticket file.
TICKET_SUFFIX = ".ticket.safetensors"
EXIT_USAGE = 2
EXIT_FAILURE = 1

#: Ranges of the options that are not estimator parameters (the network's,
#: the held-out split's, the seeds).
AT_LEAST_ONE = Interval(numbers.Integral, 1, None, closed="left")
NON_NEGATIVE = Interval(numbers.Integral, 0, None, closed="left")
POSITIVE = Interval(numbers.Real, 0, None, closed="neither")
FRACTION = Interval(numbers.Real, 0, 1, closed="neither")


class CLIError(Exception):
    """An error reported as one line on stderr."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not the usage block."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def add_ticket(parser) -> None:
    """The ``TICKET`` argument: a ticket file written by ``fit``."""
    parser.add_argument("ticket", metavar="TICKET",
                        help=f"a PREFIX{TICKET_SUFFIX} written by sklottery fit")


def add_data(parser, note: str = "") -> None:
    """The ``DATA`` argument: a table (what ``note`` adds: what it must hold)."""
    parser.add_argument("data", metavar="DATA",
                        help="a .csv, .tsv, .parquet or .pq file" + note)


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
    """``--hidden``: comma-separated layer sizes."""
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes >= 1 such as 300,100; got {text!r}"
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


# -- running a command ---------------------------------------------------------
def run_command(args) -> int:
    """Run the parsed command (``args.run``); every error is one line on
    stderr and exit status 1."""
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # CLIError/TableError: ours; ValueError/TypeError: the estimator's and
        # the ticket reader's checks; OSError: files. Anything else is a bug,
        # still reported in one line.
        if os.environ.get("SKLOTTERY_TRACEBACK"):
            raise
        message = " ".join(str(exc).split())
        if not isinstance(exc, (CLIError, TableError, ValueError, TypeError, OSError)):
            message = (
                f"unexpected {type(exc).__name__}: {message} (set "
                "SKLOTTERY_TRACEBACK=1 to see where)"
            )
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return EXIT_FAILURE
