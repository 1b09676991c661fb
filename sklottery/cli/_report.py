"""``sklottery report TICKET``: the summary of a ticket written by ``fit``,
printed again."""

from __future__ import annotations

from ._common import CLIError, add_ticket
from ._summary import load_summary, summary_text

__all__ = ["add_parser", "report"]


def add_parser(sub) -> None:
    """Register ``report`` on the command line's subparsers."""
    parser = sub.add_parser("report", help="print the summary of a fit again")
    add_ticket(parser)
    parser.set_defaults(run=report)


def report(args) -> int:
    """``sklottery report`` (see :mod:`sklottery.cli._main`)."""
    summary, rounds, _ = load_summary(args.ticket)
    try:
        text = summary_text(summary, rounds)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CLIError(
            f"{args.ticket}: its command-line summary is malformed "
            f"({type(exc).__name__}: {exc})"
        ) from None
    print(text)
    return 0
