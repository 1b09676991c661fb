"""The ``sklottery`` command line.

``sklottery demo``
    The README's main job: a ticket on sklearn's digits (same as ``make demo``).
``sklottery fit DATA --target COLUMN [options]``
    Read a CSV or Parquet table with pandas, find a ticket for ``COLUMN`` from
    the other columns (numeric columns standardized, the others one-hot
    encoded; a regression target standardized too), and write the ticket
    file (``PREFIX.ticket.safetensors``, see :mod:`sklottery.tickets`) and the
    rounds table (``PREFIX.rounds.csv``); print a summary, which the ticket
    file keeps with the preprocessing (plain JSON, see
    :mod:`sklottery.cli._tables`).
``sklottery predict TICKET DATA [--out FILE] [--proba]``
    Apply the same preprocessing to the rows of DATA and write the ticket's
    predictions (in the target's original units) or class probabilities as
    a CSV.
``sklottery report TICKET``
    Print the summary of a ticket file written by ``fit`` again.
``sklottery sanity-check TICKET DATA``
    Retrain the ticket beside its sanity-check controls
    (:func:`sklottery.sanity_checks`).

The parser and ``demo``/``report`` live here; ``fit``, ``predict`` and
``sanity-check`` in ``cli_fit.py``, ``cli_predict.py`` and ``cli_sanity.py``.

Every error the user can cause (a missing file, an unreadable table, a
missing column, a bad option, a corrupt or crafted ticket file) ends with
one line on stderr and a non-zero exit status, never a traceback (set
``SKLOTTERY_TRACEBACK=1`` to see one).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ._tables import READERS, TableError, read_table, split_features

__all__ = ["main", "read_table", "split_features", "READERS"]

PROG = "sklottery"
#: What ``fit`` appends to its ``--out`` prefix for the ticket file.
TICKET_SUFFIX = ".ticket.safetensors"
EXIT_USAGE = 2
EXIT_FAILURE = 1


class CLIError(Exception):
    """An error reported as one line on stderr."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not the usage block."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# -- option types --------------------------------------------------------------
def _int_at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, got {text!r}"
            )
        return value

    return parse


def _float_in(accept, expected):
    """An option type: a float for which ``accept(value)`` holds."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_open_unit = _float_in(lambda v: 0.0 < v < 1.0, "a number in the open interval (0, 1)")
_positive_float = _float_in(lambda v: 0.0 < v < math.inf, "a positive number")


def _hidden(text):
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes >= 1 such as 300,100; got {text!r}"
        )
    return sizes


def _strategies():
    from ..pruning.strategies import valid_names

    return valid_names()


def _rewind_modes():
    from ..pruning import REWIND_MODES

    return list(REWIND_MODES)


def _rewind(text):
    """A rewind mode name, or an int k (late rewinding to after epoch k)."""
    return int(text) if text.isdigit() else text


def _sparse_training(text):
    """``auto``, ``true`` or ``false`` (the estimators' ``sparse_training``)."""
    values = {"auto": "auto", "true": True, "false": False}
    if text.lower() not in values:
        raise argparse.ArgumentTypeError(
            f"expected auto, true or false; got {text!r}"
        )
    return values[text.lower()]


def _select_modes():
    from ..config import SELECT_MODES

    return list(SELECT_MODES)


# -- parser --------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Find lottery tickets (Frankle & Carbin, 2019) in PyTorch "
        "networks with scikit-learn.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    demo = sub.add_parser(
        "demo", help="the README's main job: a ticket on sklearn's digits"
    )
    demo.add_argument("--rounds", type=_int_at_least(0), default=8)
    demo.add_argument("--epochs", type=_int_at_least(1), default=15)
    demo.add_argument("--seed", type=_int_at_least(0), default=0)

    fit = sub.add_parser(
        "fit",
        help="find a ticket in a CSV or Parquet table",
        description="Find a lottery ticket that predicts COLUMN from the other "
        "columns of DATA (.csv, .tsv, .parquet or .pq). Numeric columns are "
        "standardized, text and category columns one-hot encoded.",
    )
    fit.add_argument("data", metavar="DATA", help="a .csv, .tsv, .parquet or .pq file")
    fit.add_argument("--target", required=True, metavar="COLUMN",
                     help="the column to predict")
    fit.add_argument("--task", default="auto",
                     choices=["auto", "classification", "regression"],
                     help="auto (default): regression for a float target with "
                     "non-integer values, else classification")
    fit.add_argument("--rounds", type=_int_at_least(0), default=5,
                     help="pruning rounds after the dense round 0 (default 5)")
    fit.add_argument("--prune-rate", type=_open_unit, default=0.2,
                     help="fraction of the remaining weights pruned per round "
                     "(default 0.2)")
    fit.add_argument("--schedule", default="iterative",
                     choices=["iterative", "oneshot", "at_init"],
                     help="iterative rounds (default), one prune of what the "
                     "rounds would remove (oneshot), or that prune applied to "
                     "the initialization before training (at_init)")
    fit.add_argument("--strategy", default="large_final",
                     help="mask criterion (default large_final); one of: "
                     + ", ".join(_strategies()) + "; with --schedule at_init "
                     "also grasp, synflow")
    fit.add_argument("--rewind", default="init", type=_rewind,
                     help="where survivors go before retraining (default init); "
                     "one of: " + ", ".join(_rewind_modes()) + ", or an epoch k "
                     "of the dense round (late rewinding)")
    fit.add_argument("--select", default="last", choices=_select_modes(),
                     help="which round becomes the ticket (default last)")
    fit.add_argument("--scope", default="layer", choices=["layer", "global"],
                     help="prune each layer on its own or all together "
                     "(default layer)")
    fit.add_argument("--epochs", type=_int_at_least(1), default=10,
                     help="training epochs per round (default 10)")
    fit.add_argument("--hidden", type=_hidden, default=(300, 100),
                     help="hidden layer sizes, comma separated (default 300,100)")
    fit.add_argument("--lr", type=_positive_float, default=1.2e-3,
                     help="Adam learning rate (default 1.2e-3)")
    fit.add_argument("--batch-size", type=_int_at_least(1), default=60,
                     help="minibatch size (default 60)")
    fit.add_argument("--test-size", type=_open_unit, default=0.2,
                     help="fraction of rows held out to score the ticket "
                     "(default 0.2)")
    fit.add_argument("--seed", type=_int_at_least(0), default=0,
                     help="random seed (default 0)")
    fit.add_argument("--out", default=None, metavar="PREFIX",
                     help="output prefix (default: DATA without its suffix); "
                     f"writes PREFIX{TICKET_SUFFIX} and PREFIX.rounds.csv")
    fit.add_argument("--sparse-training", default="auto",
                     type=_sparse_training,
                     help="train pruned Linear layers with their survivors "
                     "only: auto (default: where faster), true or false")
    fit.add_argument("--no-progress", action="store_true",
                     help="no progress bar (it needs tqdm)")

    report = sub.add_parser("report", help="print the summary of a fit again")
    report.add_argument("ticket", metavar="TICKET",
                        help=f"a PREFIX{TICKET_SUFFIX} written by sklottery fit")

    predict = sub.add_parser(
        "predict",
        help="predict new rows with a ticket written by fit",
        description="Predict the rows of DATA with TICKET, applying the "
        "preprocessing of fit (standardization, one-hot columns; a category "
        "not seen at fit time is encoded as all zeros). Writes a CSV with one "
        "column named like the target (or proba_<class> columns with --proba); "
        "a target column in DATA is ignored.",
    )
    predict.add_argument("ticket", metavar="TICKET",
                         help=f"a PREFIX{TICKET_SUFFIX} written by sklottery fit")
    predict.add_argument("data", metavar="DATA",
                         help="a .csv, .tsv, .parquet or .pq file")
    predict.add_argument("--out", default="-", metavar="FILE",
                         help="the CSV to write (default: standard output)")
    predict.add_argument("--proba", action="store_true",
                         help="class probabilities instead of labels")
    from ._sanity import add_parser  # sanity-check: its own module
    add_parser(sub)
    return parser


# -- commands ------------------------------------------------------------------
def _summary_text(summary: dict, records: list[dict]) -> str:
    metric = "R²" if summary.get("task") == "regression" else "accuracy"
    rounds = pd.DataFrame(records)
    # ticket files keep the selected round once, not as a column
    rounds["selected"] = rounds["round"] == summary["selected_round"]
    cols = [c for c in ("round", "weights_remaining", "n_weights", "epochs",
                        "train_loss", "valid_loss", "score", "selected")
            if c in rounds]
    table = rounds[cols].copy()
    percent = 100 * table["weights_remaining"]
    table["weights_remaining"] = percent.map("{:.1f}%".format)
    floats = "{:.4f}".format
    with pd.option_context("display.width", 120, "display.float_format", floats):
        text = table.to_string(index=False)
    p = summary["params"]
    lines = [
        f"sklottery ticket for {summary['target']!r} from {summary['data']}",
        f"  {summary['n_train']} training rows, {summary['n_test']} held out; "
        f"{summary['n_features']} features; " + (
            f"{len(summary['classes'])} classes"
            if summary.get("classes") is not None else "regression (score: R²)"
        ),
        f"  strategy={p['strategy']} rewind={p['rewind']} scope={p['scope']} "
        f"select={p['select']} schedule={p.get('schedule', 'iterative')} "
        f"prune_rate={p['prune_rate']} rounds={p['n_rounds']} epochs={p['epochs']} "
        f"hidden={','.join(map(str, p['hidden']))} seed={p['seed']}",
        "",
        text,
        "",
        f"ticket (round {summary['selected_round']}): "
        f"{100 * summary['weights_remaining']:.1f}% of weights remaining, "
        f"held-out {metric} {summary['test_score']:.4f} "
        f"(dense round 0, validation: {records[0]['score']:.4f})",
    ]
    files = summary.get("files", {})
    if files:
        lines.append("files: " + ", ".join(files.values()))
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def cmd_demo(args) -> int:
    from ..demo import run

    run(args.rounds, args.epochs, args.seed)
    return 0


_ESTIMATORS = ("LotteryTicketClassifier", "LotteryTicketRegressor")


def load_summary(path) -> tuple[dict, list[dict], str]:
    """``(summary, round records, estimator class)`` of a ticket written by
    ``fit``; the whole file is checked as the estimator's ``load_ticket``
    checks it."""
    from ..tickets import load_ticket, read_estimator_ticket

    path = Path(path)
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    name = load_ticket(path).estimator  # ValueError, one line, if not a ticket
    if name is None:  # 0.1.0 kept the estimator's name in its info
        name = next((n for n in _ESTIMATORS if _reads_as(path, n)), None)
    if name not in _ESTIMATORS:
        raise CLIError(
            f"{path}: a ticket file without a command-line summary (it was not "
            "written by sklottery fit)"
        )
    ticket, _ = read_estimator_ticket(path, name)
    summary = ticket.info.get("sklottery_cli")
    if not isinstance(summary, dict):
        raise CLIError(
            f"{path}: a ticket file without a command-line summary (it was not "
            "written by sklottery fit)"
        )
    return summary, ticket.rounds, name


def _reads_as(path, name) -> bool:
    from ..tickets import read_estimator_ticket

    try:
        read_estimator_ticket(path, name)
    except ValueError:
        return False
    return True


def cmd_report(args) -> int:
    summary, rounds, _ = load_summary(args.ticket)
    try:
        text = _summary_text(summary, rounds)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CLIError(
            f"{args.ticket}: its command-line summary is malformed "
            f"({type(exc).__name__}: {exc})"
        ) from None
    print(text)
    return 0


def cmd_fit(args) -> int:
    from ._fit import fit

    return fit(args)


def cmd_predict(args) -> int:
    from ._predict import predict

    return predict(args)


COMMANDS = {"demo": cmd_demo, "fit": cmd_fit, "report": cmd_report,
            "predict": cmd_predict}


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
    >>> from sklottery.cli._main import main
    >>> main(["report", "no-such-file.ticket.safetensors"])
    1
    """
    args = build_parser().parse_args(argv)
    try:
        return (getattr(args, "run", None) or COMMANDS[args.command])(args)
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


def console_main() -> None:  # the ``sklottery`` console script
    sys.exit(main())
