"""The light part of the command line: the parser class, the errors, the
exit statuses and running a command -- the standard library only, so that
``sklottery --help`` and a usage error never import torch, skorch or
scikit-learn (a command's module, and with it those, is imported when that
command runs or prints its own help, see :class:`CommandParser`).

Every error the user can cause (a missing file, an unreadable table, a
missing column, a bad option, a corrupt or crafted ticket file) ends with
one line on stderr and a non-zero exit status, never a traceback (set
``SKLOTTERY_TRACEBACK=1`` to see one): 2 for a usage error (argparse) or a
ticket whose command-line summary is out of range or malformed
(:class:`SummaryError`), 1 for a failed command, 130 for Ctrl-C (a ``fit``
interrupted after round 0 still writes the ticket of the rounds it
completed, then exits 130).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "PROG",
    "CLIError",
    "CommandParser",
    "Parser",
    "SummaryError",
    "TICKET_SUFFIX",
    "add_data",
    "add_ticket",
    "run_command",
]

PROG = "sklottery"
EXIT_USAGE = 2
EXIT_FAILURE = 1
#: The shell's convention for a process ended by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130
#: What ``fit`` appends to its ``--out`` prefix for the ticket file.
TICKET_SUFFIX = ".ticket.safetensors"


class CLIError(Exception):
    """An error reported as one line on stderr (exit status ``exit_status``)."""

    exit_status = EXIT_FAILURE


class SummaryError(CLIError):
    """A ticket's command-line summary with a field out of range, malformed
    or not matching the file's tensors: the file is refused like a bad
    option (exit status 2)."""

    exit_status = EXIT_USAGE


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not the usage block."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class CommandParser(Parser):
    """A command's parser whose arguments are added on first use (parsing,
    or printing its help or usage) by ``add_arguments(parser)`` of the
    module named ``command_module``: building the whole ``sklottery`` parser
    imports no command module."""

    def __init__(self, *args, command_module=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._command_module = command_module

    def populate(self) -> CommandParser:
        """Add the command's arguments now (once); return the parser."""
        name, self._command_module = self._command_module, None
        if name is not None:
            importlib.import_module(name).add_arguments(self)
        return self

    def parse_known_args(self, args=None, namespace=None):
        self.populate()
        return super().parse_known_args(args, namespace)

    def format_usage(self):
        self.populate()
        return super().format_usage()

    def format_help(self):
        self.populate()
        return super().format_help()


def add_ticket(parser) -> None:
    """The ``TICKET`` argument: a ticket file written by ``fit``."""
    parser.add_argument("ticket", metavar="TICKET",
                        help=f"a PREFIX{TICKET_SUFFIX} written by sklottery fit")


def add_data(parser, note: str = "") -> None:
    """The ``DATA`` argument: a table (what ``note`` adds: what it must hold)."""
    parser.add_argument("data", metavar="DATA",
                        help="a .csv, .tsv, .parquet or .pq file" + note)


def run_command(args) -> int:
    """Run the parsed command (``args.run``); every error is one line on
    stderr and a non-zero exit status."""
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        # CLIError (TableError is one): ours; ValueError/TypeError: the
        # estimator's and the ticket reader's checks; OSError: files.
        # Anything else is a bug, still reported in one line.
        if os.environ.get("SKLOTTERY_TRACEBACK"):
            raise
        message = " ".join(str(exc).split())
        if not isinstance(exc, (CLIError, ValueError, TypeError, OSError)):
            message = (
                f"unexpected {type(exc).__name__}: {message} (set "
                "SKLOTTERY_TRACEBACK=1 to see where)"
            )
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return exc.exit_status if isinstance(exc, CLIError) else EXIT_FAILURE
