"""``sklottery demo``: the README's main job, a ticket on sklearn's digits
(:mod:`sklottery.demo`, the same as ``make demo``)."""

from __future__ import annotations

from ._common import AT_LEAST_ONE, NON_NEGATIVE, number_in, parameter_number

__all__ = ["add_arguments", "demo"]


def add_arguments(parser) -> None:
    """The arguments of ``demo``."""
    parser.description = "The README's main job: a ticket on sklearn's digits."
    parser.add_argument("--rounds", type=parameter_number("n_rounds"), default=8)
    parser.add_argument("--epochs", type=number_in(AT_LEAST_ONE), default=15)
    parser.add_argument("--seed", type=number_in(NON_NEGATIVE), default=0)
    parser.set_defaults(run=demo)


def demo(args) -> int:
    """``sklottery demo``: run :func:`sklottery.demo.run`; return 0."""
    from ..demo import run  # imported here to keep --help fast

    run(args.rounds, args.epochs, args.seed)
    return 0
