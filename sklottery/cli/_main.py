"""The ``sklottery`` command line: the parser built from the commands, and
the dispatch.

``sklottery demo``
    The README's main job: a ticket on sklearn's digits (same as ``make demo``).
``sklottery fit DATA --target COLUMN [options]``
    Read a CSV or Parquet table with pandas, find a ticket for ``COLUMN`` from
    the other columns (numeric columns standardized, the others one-hot
    encoded; a regression target standardized too), and write the ticket
    file (``PREFIX.ticket.safetensors``, see :mod:`sklottery.tickets`) and the
    rounds table (``PREFIX.rounds.csv``); print a summary, which the ticket
    file keeps with the preprocessing (plain JSON, see
    :mod:`sklottery.cli._summary` and :mod:`sklottery.cli._tables`).
``sklottery report TICKET``
    Print the summary of a ticket file written by ``fit`` again.
``sklottery predict TICKET DATA [--out FILE] [--proba]``
    Apply the same preprocessing to the rows of DATA and write the ticket's
    predictions (in the target's original units) or class probabilities as
    a CSV.
``sklottery sanity-check TICKET DATA``
    Retrain the ticket beside its sanity-check controls
    (:func:`sklottery.sanity_checks`).

Each command is one module (``_demo``, ``_fit``, ``_report``, ``_predict``,
``_sanity``) with ``add_parser(subparsers)`` and its command function, over
the common modules ``_common`` (parser, option types, errors), ``_summary``
(the ticket file's summary) and ``_tables`` (tables and preprocessing).
Errors are one line on stderr (see :mod:`sklottery.cli._common`).
"""

from __future__ import annotations

import argparse
import sys

from . import _demo, _fit, _predict, _report, _sanity
from ._common import PROG, Parser, run_command

__all__ = ["build_parser", "console_main", "main"]

#: The commands, in the order ``--help`` lists them.
COMMANDS = (_demo, _fit, _report, _predict, _sanity)


def build_parser() -> argparse.ArgumentParser:
    """The ``sklottery`` parser: one subparser per command."""
    parser = Parser(
        prog=PROG,
        description="Find lottery tickets (Frankle & Carbin, 2019) in PyTorch "
        "networks with scikit-learn.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run the command line; return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (``sys.argv[1:]`` by default).

    Returns
    -------
    int
        0 on success, 1 when the command failed, 2 for a usage error.

    Examples
    --------
    >>> from sklottery.cli import main
    >>> main(["report", "no-such-file.ticket.safetensors"])
    1
    """
    return run_command(build_parser().parse_args(argv))


def console_main() -> None:  # the ``sklottery`` console script
    sys.exit(main())
