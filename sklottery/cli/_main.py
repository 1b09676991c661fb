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
``_sanity``) with ``add_arguments(parser)`` and its command function, over
the common modules ``_parser`` (parser class, errors, exit statuses; the
standard library only), ``_common`` (option types and ranges), ``_summary``
(the ticket file's summary) and ``_tables`` (tables and preprocessing).
A command's module is imported only when that command is parsed or prints
its help (:class:`~sklottery.cli._parser.CommandParser`), so that
``sklottery --help`` and a usage error import no torch, skorch or sklearn.
Errors are one line on stderr (see :mod:`sklottery.cli._parser`).
"""

from __future__ import annotations

import argparse
import sys

from ._parser import EXIT_INTERRUPTED, PROG, CommandParser, Parser, run_command

__all__ = ["build_parser", "console_main", "main"]

#: The commands, in the order ``--help`` lists them: name, one-line help,
#: the module with its ``add_arguments``.
COMMANDS = (
    ("demo", "the README's main job: a ticket on sklearn's digits", "_demo"),
    ("fit", "find a ticket in a CSV or Parquet table", "_fit"),
    ("report", "print the summary of a fit again", "_report"),
    ("predict", "predict new rows with a ticket written by fit", "_predict"),
    ("sanity-check",
     "retrain a ticket written by fit beside controls at its sparsity", "_sanity"),
)


def build_parser() -> argparse.ArgumentParser:
    """The ``sklottery`` parser: one subparser per command, each filled in
    by its command's module when it is first used
    (:meth:`~sklottery.cli._parser.CommandParser.populate` fills it now)."""
    parser = Parser(
        prog=PROG,
        description="Find lottery tickets (Frankle & Carbin, 2019) in PyTorch "
        "networks with scikit-learn.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                parser_class=CommandParser)
    sub.required = True
    for name, text, module in COMMANDS:
        sub.add_parser(name, help=text,
                       command_module=f"{__package__}.{module}")
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
        0 on success, 1 when the command failed, 2 for a usage error or a
        ticket whose summary is malformed, 130 when interrupted (Ctrl-C).

    Examples
    --------
    >>> from sklottery.cli import main
    >>> main(["report", "no-such-file.ticket.safetensors"])
    1
    """
    return run_command(build_parser().parse_args(argv))


def console_main() -> None:  # the ``sklottery`` console script
    """``sys.exit(main())``; a Ctrl-C anywhere, also while a command's
    libraries are imported, is one line and exit status 130."""
    try:
        status = main()
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        status = EXIT_INTERRUPTED
    sys.exit(status)
