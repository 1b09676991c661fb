"""The ``sklottery`` command line: one module per command over the common modules."""

from ._main import build_parser, console_main, main

__all__ = ["build_parser", "console_main", "main"]
