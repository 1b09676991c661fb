"""``sklottery fit DATA --target COLUMN``: a ticket from a CSV or Parquet table.

The table's numeric columns are standardized and the others one-hot encoded
(:mod:`sklottery.cli._tables`), a regression target is standardized too, and the
estimator is a :class:`~sklottery.LotteryTicketClassifier` or
:class:`~sklottery.LotteryTicketRegressor` around a LeNet-style
:class:`~sklottery.MLP` with a validation split. Writes the ticket file (with
the summary and the preprocessing in its header, see
:mod:`sklottery.cli._summary`) and the rounds table.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from ..pruning import ALIASES, STRATEGIES
from ._common import (
    FRACTION,
    PARAMS,
    TASKS,
    choices,
    hidden_sizes,
    number_in,
    parameter_number,
    rewind,
    sparse_training,
)
from ._parser import EXIT_INTERRUPTED, PROG, TICKET_SUFFIX, CLIError, add_data

__all__ = ["add_arguments", "fit"]


#: What ``--help`` says of the command.
DESCRIPTION = (
    "Find a lottery ticket that predicts COLUMN from the other "
    "columns of DATA (.csv, .tsv, .parquet or .pq). Numeric columns are "
    "standardized, text and category columns one-hot encoded."
)


# -- parser --------------------------------------------------------------------
def add_arguments(parser) -> None:
    """The arguments of ``fit``."""
    parser.description = DESCRIPTION
    add_data(parser)
    parser.add_argument("--target", required=True, metavar="COLUMN",
                        help="the column to predict")
    parser.add_argument("--task", default="auto", choices=TASKS,
                        help="auto (default): regression for a float target "
                        "with non-integer values, else classification")
    _add_lottery_options(parser)
    _add_training_options(parser)
    parser.add_argument("--out", default=None, metavar="PREFIX",
                        help="output prefix (default: DATA without its suffix); "
                        f"writes PREFIX{TICKET_SUFFIX} and PREFIX.rounds.csv")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (it needs tqdm)")
    parser.set_defaults(run=fit)


def _add_lottery_options(parser) -> None:
    """The estimator's parameters, with the ranges and choices it declares."""
    strategies = choices("strategy")
    at_init = [s for s in strategies if s not in STRATEGIES and s not in ALIASES]
    parser.add_argument("--rounds", type=parameter_number("n_rounds"), default=5,
                        help="pruning rounds after the dense round 0 (default 5)")
    parser.add_argument("--prune-rate", type=parameter_number("prune_rate"),
                        default=0.2,
                        help="fraction of the remaining weights pruned per round "
                        "(default 0.2)")
    parser.add_argument("--schedule", default="iterative",
                        choices=choices("schedule"),
                        help="iterative rounds (default), one prune of what the "
                        "rounds would remove (oneshot), or that prune applied to "
                        "the initialization before training (at_init)")
    parser.add_argument("--strategy", default="large_final",
                        help="mask criterion (default large_final); one of: "
                        + ", ".join(s for s in strategies if s not in at_init)
                        + "; with --schedule at_init also " + ", ".join(at_init))
    parser.add_argument("--rewind", default="init", type=rewind,
                        help="where survivors go before retraining (default "
                        "init); one of: " + ", ".join(choices("rewind"))
                        + ", or an epoch k of the dense round (late rewinding)")
    parser.add_argument("--select", default="last", choices=choices("select"),
                        help="which round becomes the ticket (default last)")
    parser.add_argument("--scope", default="layer", choices=choices("scope"),
                        help="prune each layer on its own or all together "
                        "(default layer)")
    parser.add_argument("--sparse-training", default="auto", type=sparse_training,
                        help="train pruned Linear layers with their survivors "
                        "only: auto (default: where faster), true or false")
    parser.add_argument("--granularity", default="weight",
                        choices=choices("granularity"),
                        help="prune single weights (default) or whole hidden "
                        "units: neuron (channel is a synonym)")


def _add_training_options(parser) -> None:
    """The network's, the held-out split's and the seed."""
    # the ranges a ticket's summary is checked against (PARAMS) are these
    parser.add_argument("--epochs", type=number_in(*PARAMS["epochs"]), default=10,
                        help="training epochs per round (default 10)")
    parser.add_argument("--hidden", type=hidden_sizes, default=(300, 100),
                        help="hidden layer sizes, comma separated (default 300,100)")
    parser.add_argument("--lr", type=number_in(*PARAMS["lr"]), default=1.2e-3,
                        help="Adam learning rate (default 1.2e-3)")
    parser.add_argument("--batch-size", type=number_in(*PARAMS["batch_size"]),
                        default=60,
                        help="minibatch size (default 60)")
    parser.add_argument("--test-size", type=number_in(FRACTION), default=0.2,
                        help="fraction of rows held out to score the ticket "
                        "(default 0.2)")
    parser.add_argument("--seed", type=number_in(*PARAMS["seed"]), default=0,
                        help="random seed (default 0)")


# -- the command ---------------------------------------------------------------
def fit(args) -> int:
    """Run ``sklottery fit`` with the parsed ``args``; return 0, or 130 when
    the user interrupted it after round 0 (the ticket of the completed
    rounds is written, its summary says ``interrupted: true``)."""
    # imported here to keep --help fast
    from sklearn.model_selection import train_test_split
    from sklearn.utils._param_validation import validate_parameter_constraints

    from ..config import PARAMETER_CONSTRAINTS
    from ._summary import lottery_kwargs
    from ._tables import read_table, split_features

    params = _params(args)
    lottery = lottery_kwargs(params)
    # the estimator's own parameter checks, before any data is read
    validate_parameter_constraints(
        {k: PARAMETER_CONSTRAINTS[k] for k in lottery}, lottery,
        caller_name="LotteryTicketClassifier",
    )
    out = _out_prefix(args)
    frame = read_table(args.data)
    X, y, text_columns, column_specs = split_features(frame, args.target, args.data)
    params["task"] = task = _task(args.task, y)
    y, stratify = _checked_target(args, task, y)
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=args.test_size, stratify=stratify, random_state=args.seed
        )
    except ValueError as exc:
        raise CLIError(
            f"{args.data}: cannot hold out --test-size rows ({exc})"
        ) from None
    model, clf, target_scaling, elapsed = _fit_model(
        args, task, lottery, X_train, y_train)
    summary = {
        "data": str(args.data),
        "target": args.target,
        "n_train": int(len(y_train)),
        "n_test": int(len(y_test)),
        "n_features": int(X.shape[1]),
        "one_hot_columns": text_columns,
        "task": task,
        "params": params,
        "test_score": _test_score(model, task, X_test, y_test, target_scaling),
        "fit_seconds": elapsed,
        "preprocessing": {"columns": column_specs, "target": target_scaling},
        "scaler": _scaler(model[0], X.columns),
    }
    return _write(args, out, clf, summary)


def _fit_model(args, task, lottery, X_train, y_train):
    """``(pipeline, estimator, target scaling, seconds)``: the estimator
    (behind a StandardScaler) fitted on the training rows."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..estimators import LotteryTicketClassifier, LotteryTicketRegressor
    from ._summary import make_net
    from ._tables import scale_target

    net = make_net(task, args.hidden, y=y_train, lr=args.lr,
                   batch_size=args.batch_size, epochs=args.epochs, seed=args.seed)
    verbose = 0 if args.no_progress or not _has_tqdm() else 1
    target_scaling = None
    if task == "classification":
        clf = LotteryTicketClassifier(net, verbose=verbose, **lottery)
        fit_y = y_train
    else:
        # targets standardized like the features (predictions come back in
        # the original units); R² does not change under this scaling
        scale = float(np.std(y_train)) or 1.0
        target_scaling = {"mean": float(np.mean(y_train)), "scale": scale}
        fit_y = scale_target(y_train, target_scaling)
        clf = LotteryTicketRegressor(net, verbose=verbose, **lottery)
    model = make_pipeline(StandardScaler(), clf)
    start = time.perf_counter()
    model.fit(X_train, fit_y)
    return model, clf, target_scaling, time.perf_counter() - start


def _test_score(model, task, X_test, y_test, target_scaling) -> float:
    """The held-out accuracy, or R² in the target's units."""
    from sklearn.metrics import r2_score

    from ._tables import unscale

    if task == "classification":
        return float(model.score(X_test, y_test))
    return float(r2_score(y_test, unscale(model.predict(X_test), target_scaling)))


def _write(args, out, clf, summary) -> int:
    """Write the ticket file (with ``summary`` completed by the estimator's
    results) and the rounds table, print the summary; the exit status: 0,
    or 130 when the user interrupted the fit after round 0."""
    from ._summary import interrupted_text, jsonable, save_with_summary, summary_text

    out.parent.mkdir(parents=True, exist_ok=True)
    rounds_path = out.parent / f"{out.name}.rounds.csv"
    ticket_path = out.parent / f"{out.name}{TICKET_SUFFIX}"
    summary.update({
        "classes": jsonable(clf.classes_.tolist())
        if summary["task"] == "classification" else None,
        "selected_round": int(clf.selected_round_),
        "weights_remaining": 1.0 - clf.sparsity_,
        "layers": jsonable(clf.layers_.to_dict(orient="records")),
        "files": {"ticket": str(ticket_path), "rounds": str(rounds_path)},
        # a Ctrl-C after round 0: the estimator keeps the completed rounds
        "interrupted": bool(clf.interrupted_),
    })
    summary = jsonable(summary)
    save_with_summary(clf, ticket_path, summary)
    clf.rounds_.to_csv(rounds_path, index=False)
    records = jsonable(clf.rounds_.to_dict(orient="records"))
    print(summary_text(summary, records))
    if summary["interrupted"]:
        print(f"{PROG} fit: {interrupted_text(summary, records)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _params(args) -> dict:
    """The summary's ``params``: the estimator's (under their names), the
    network's and the seed; ``task`` is resolved once the target is read."""
    return {
        "n_rounds": args.rounds, "prune_rate": args.prune_rate,
        "strategy": args.strategy, "rewind": args.rewind, "scope": args.scope,
        "select": args.select, "schedule": args.schedule,
        "sparse_training": args.sparse_training,
        "granularity": args.granularity,
        "epochs": args.epochs, "task": args.task,
        "hidden": list(args.hidden), "lr": args.lr,
        "batch_size": args.batch_size, "seed": args.seed,
    }


def _scaler(scaler, columns) -> dict:
    """The summary's ``scaler``: the fitted StandardScaler, as plain lists."""
    return {"feature_names": [str(c) for c in columns],
            "mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}


def _out_prefix(args) -> Path:
    """``--out PREFIX`` of ``fit``: a file prefix, never a directory or a
    hidden name (``--out .`` would write ``./.ticket.safetensors``)."""
    text = args.out if args.out else str(Path(args.data).with_suffix(""))
    out = Path(text)
    if text.endswith(("/", os.sep)) or out.is_dir() or out.name in ("", ".", ".."):
        raise CLIError(
            f"--out {text!r} is a directory; give a file prefix such as "
            f"{os.path.join(text, 'run')!r} (writes PREFIX{TICKET_SUFFIX} and "
            "PREFIX.rounds.csv)"
        )
    if out.name.startswith("."):
        raise CLIError(
            f"--out {text!r} would write hidden files ({out.name}{TICKET_SUFFIX}); "
            "give a prefix whose name does not start with '.'"
        )
    return out


def _task(task: str, y) -> str:
    """``--task auto``: regression for a float target with non-integer values."""
    if task != "auto":
        return task
    if np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0):
        return "regression"
    return "classification"


def _checked_target(args, task, y) -> tuple:
    """``(y, stratify)``: the target checked for ``task`` (a regression's as
    float64), and the labels to stratify the held-out split by (or None)."""
    if task == "regression":
        if not np.issubdtype(y.dtype, np.number) or y.dtype == bool:
            raise CLIError(
                f"{args.data}: --task regression needs a numeric target; "
                f"{args.target!r} holds {y.dtype} values"
            )
        return y.astype(np.float64), None
    labels, counts = np.unique(y.astype(str) if y.dtype == object else y,
                               return_counts=True)
    if len(labels) < 2:
        raise CLIError(f"{args.data}: the target {args.target!r} has only one class")
    if len(labels) > max(50, len(y) // 5):
        raise CLIError(
            f"{args.data}: the target {args.target!r} has {len(labels)} "
            "distinct values; use --task regression to predict numbers"
        )
    return y, (y if counts.min() >= 2 else None)


def _has_tqdm() -> bool:
    try:
        import tqdm  # noqa: F401  (only whether it is installed)
    except ImportError:
        return False
    return True
