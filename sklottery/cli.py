"""The ``sklottery`` command line.

``sklottery demo``
    The README's main job: a ticket on sklearn's digits (same as ``make demo``).
``sklottery fit DATA --target COLUMN [options]``
    Read a CSV or Parquet table with pandas, find a ticket for ``COLUMN`` from
    the other columns, and write the ticket file (``PREFIX.ticket.npz``, see
    :mod:`sklottery.tickets`) and the rounds table (``PREFIX.rounds.csv``);
    print a summary, which the ticket file keeps.
``sklottery report TICKET``
    Print the summary of a ticket file written by ``fit`` again.

Every error the user can cause (a missing file, an unreadable table, a
missing column, a bad option) ends with one line on stderr and a non-zero
exit status, never a traceback (set ``SKLOTTERY_TRACEBACK=1`` to see one).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["main"]

PROG = "sklottery"
READERS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
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
    from .pruning.strategies import valid_names

    return valid_names()


def _rewind_modes():
    from .pruning import REWIND_MODES

    return list(REWIND_MODES)


def _rewind(text):
    """A rewind mode name, or an int k (late rewinding to after epoch k)."""
    return int(text) if text.isdigit() else text


def _select_modes():
    from .selection import SELECT_MODES

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
    fit.add_argument("--strategy", default="large_final",
                     help="mask criterion (default large_final); one of: "
                     + ", ".join(_strategies()))
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
                     "writes PREFIX.ticket.npz and PREFIX.rounds.csv")
    fit.add_argument("--no-progress", action="store_true",
                     help="no progress bar (it needs tqdm)")

    report = sub.add_parser("report", help="print the summary of a fit again")
    report.add_argument("ticket", metavar="TICKET",
                        help="a PREFIX.ticket.npz written by sklottery fit")
    return parser


# -- data ----------------------------------------------------------------------
def read_table(path) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet file; any failure becomes a one-line CLIError."""
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise CLIError(
            f"{path}: unknown file type {path.suffix or '(no suffix)'!r}; "
            f"expected one of {', '.join(READERS)}"
        )
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    except ImportError as exc:
        raise CLIError(f"{path}: reading Parquet needs pyarrow ({exc})") from None
    except Exception as exc:  # pandas/pyarrow raise many types for bad files
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        raise CLIError(f"{path}: not a readable {kind} file ({reason})") from None
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise CLIError(f"{path}: the table is empty")
    return frame


def split_features(frame: pd.DataFrame, target: str, path) -> tuple:
    """Features (float32, one-hot for text columns) and labels from a table."""
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:20]))
        more = " ..." if frame.shape[1] > 20 else ""
        raise CLIError(
            f"{path}: no column {target!r}; the columns are: {shown}{more}"
        )
    y = frame[target]
    if y.isna().any():
        raise CLIError(
            f"{path}: the target column {target!r} has {int(y.isna().sum())} "
            "missing value(s)"
        )
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise CLIError(f"{path}: no feature columns besides the target {target!r}")
    missing = features.columns[features.isna().any()].tolist()
    if missing:
        raise CLIError(
            f"{path}: missing values in feature column(s) {missing[:5]}; "
            "fill or drop them first"
        )
    text = features.select_dtypes(exclude=["number", "bool"]).columns.tolist()
    X = pd.get_dummies(features, columns=text, dtype=np.float32) if text else features
    X = X.astype(np.float32)
    return X, y.to_numpy(), text


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
        f"select={p['select']} "
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
    from .demo import run

    run(args.rounds, args.epochs, args.seed)
    return 0


def cmd_fit(args) -> int:
    from .estimator import LotteryTicketClassifier, LotteryTicketRegressor

    lottery = {
        "n_rounds": args.rounds, "prune_rate": args.prune_rate,
        "strategy": args.strategy, "rewind": args.rewind, "scope": args.scope,
        "select": args.select, "random_state": args.seed,
    }
    # the estimator's own parameter checks, before any data is read
    LotteryTicketClassifier(**lottery)._validate_params()
    frame = read_table(args.data)
    X, y, text_columns = split_features(frame, args.target, args.data)

    import torch
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from skorch import NeuralNetClassifier, NeuralNetRegressor
    from skorch.dataset import ValidSplit

    from .modules import MLP
    from .tickets import load_ticket, save_ticket

    task = _task(args.task, y)
    if task == "classification":
        labels, counts = np.unique(y.astype(str) if y.dtype == object else y,
                                   return_counts=True)
        if len(labels) < 2:
            raise CLIError(
                f"{args.data}: the target {args.target!r} has only one class"
            )
        if len(labels) > max(50, len(y) // 5):
            raise CLIError(
                f"{args.data}: the target {args.target!r} has {len(labels)} "
                "distinct values; use --task regression to predict numbers"
            )
        stratify = y if counts.min() >= 2 else None
    else:
        if not np.issubdtype(y.dtype, np.number) or y.dtype == bool:
            raise CLIError(
                f"{args.data}: --task regression needs a numeric target; "
                f"{args.target!r} holds {y.dtype} values"
            )
        y = y.astype(np.float32)
        stratify = None
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=args.test_size, stratify=stratify, random_state=args.seed
        )
    except ValueError as exc:
        raise CLIError(
            f"{args.data}: cannot hold out --test-size rows ({exc})"
        ) from None

    verbose = 0 if args.no_progress or not _has_tqdm() else 1
    common = {
        "module__hidden_units": args.hidden,
        "optimizer": torch.optim.Adam,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "max_epochs": args.epochs,
        "iterator_train__shuffle": True,
        "verbose": 0,
    }
    if task == "classification":
        small = np.unique(y_train, return_counts=True)[1].min() < 5
        net = NeuralNetClassifier(
            MLP, criterion=torch.nn.CrossEntropyLoss,
            train_split=ValidSplit(0.2, stratified=not small, random_state=args.seed),
            **common,
        )
        estimator = LotteryTicketClassifier
    else:
        net = NeuralNetRegressor(
            MLP, criterion=torch.nn.MSELoss,
            train_split=ValidSplit(0.2, stratified=False, random_state=args.seed),
            **common,
        )
        estimator = LotteryTicketRegressor
    clf = estimator(net, verbose=verbose, **lottery)
    model = make_pipeline(StandardScaler(), clf)
    start = time.perf_counter()
    model.fit(X_train, y_train)
    elapsed = time.perf_counter() - start

    out = Path(args.out) if args.out else Path(args.data).with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    rounds_path = out.parent / f"{out.name}.rounds.csv"
    ticket_path = out.parent / f"{out.name}.ticket.npz"
    clf.rounds_.to_csv(rounds_path, index=False)
    rounds = _jsonable(clf.rounds_.to_dict(orient="records"))
    summary = {
        "data": str(args.data),
        "target": args.target,
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
        "n_features": int(X.shape[1]),
        "one_hot_columns": text_columns,
        "task": task,
        "classes": _jsonable(clf.classes_.tolist()) if task == "classification"
        else None,
        "params": {
            "n_rounds": args.rounds, "prune_rate": args.prune_rate,
            "strategy": args.strategy, "rewind": args.rewind, "scope": args.scope,
            "select": args.select, "epochs": args.epochs, "task": task,
            "hidden": list(args.hidden), "lr": args.lr,
            "batch_size": args.batch_size, "seed": args.seed,
        },
        "selected_round": int(clf.selected_round_),
        "weights_remaining": 1.0 - clf.sparsity_,
        "test_score": float(model.score(X_test, y_test)),
        "fit_seconds": elapsed,
        "layers": _jsonable(clf.layers_.to_dict(orient="records")),
        "files": {"ticket": str(ticket_path), "rounds": str(rounds_path)},
    }
    scaler = model[0]
    summary["scaler"] = {
        "feature_names": [str(c) for c in X.columns],
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
    }
    # the estimator's own ticket file (the estimator's load_ticket reads
    # it back), with the command line's summary added to its metadata
    clf.save_ticket(ticket_path)
    saved = load_ticket(ticket_path)
    save_ticket(
        ticket_path,
        clf.net_.module_,
        clf.masks_,
        rounds=saved.rounds,
        info={**saved.info, "sklottery_cli": _jsonable(summary)},
        arrays=saved.arrays,
    )
    print(_summary_text(summary, rounds))
    return 0


def _task(task: str, y) -> str:
    """``--task auto``: regression for a float target with non-integer values."""
    if task != "auto":
        return task
    if np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0):
        return "regression"
    return "classification"


def _has_tqdm() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def load_summary(path) -> tuple[dict, list[dict]]:
    """The summary and round records saved in a ticket file by ``fit``."""
    from .tickets import load_ticket

    path = Path(path)
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    ticket = load_ticket(path)  # ValueError, one line, if it is not a ticket
    summary = ticket.info.get("sklottery_cli")
    if not isinstance(summary, dict):
        raise CLIError(
            f"{path}: a ticket file without a command-line summary (it was not "
            "written by sklottery fit)"
        )
    return summary, ticket.rounds


def cmd_report(args) -> int:
    summary, rounds = load_summary(args.ticket)
    print(_summary_text(summary, rounds))
    return 0


COMMANDS = {"demo": cmd_demo, "fit": cmd_fit, "report": cmd_report}


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
    >>> main(["report", "no-such-file.ticket.npz"])
    1
    """
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (CLIError, ValueError, TypeError, OSError) as exc:
        # ValueError/TypeError: the estimator's and the ticket reader's checks
        if os.environ.get("SKLOTTERY_TRACEBACK"):
            raise
        message = " ".join(str(exc).split())
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130


def console_main() -> None:  # the ``sklottery`` console script
    sys.exit(main())
