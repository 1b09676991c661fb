"""``sklottery report TICKET``: the summary of a ticket written by ``fit``,
printed again."""

from __future__ import annotations

from ._parser import SummaryError, add_ticket

__all__ = ["add_arguments", "report"]


def add_arguments(parser) -> None:
    """The arguments of ``report``."""
    parser.description = ("Print the summary of a ticket file written by "
                          "sklottery fit again.")
    add_ticket(parser)
    parser.set_defaults(run=report)


def report(args) -> int:
    """``sklottery report`` (see :mod:`sklottery.cli._main`)."""
    from ._summary import load_summary, summary_text  # to keep --help fast

    summary, ticket, _ = load_summary(args.ticket)
    try:  # every field it prints is checked: a safety net
        text = summary_text(summary, ticket.rounds)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise SummaryError(
            f"{args.ticket}: its command-line summary is malformed "
            f"({type(exc).__name__}: {exc})"
        ) from None
    print(text)
    return 0
