"""``sklottery predict TICKET DATA``: a ticket written by ``fit`` applied to
new rows, with the fit's preprocessing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ._parser import PROG, CLIError, add_data, add_ticket

__all__ = ["add_arguments", "predict"]


#: What ``--help`` says of the command.
DESCRIPTION = (
    "Predict the rows of DATA with TICKET, applying the "
    "preprocessing of fit (standardization, one-hot columns; a category "
    "not seen at fit time is encoded as all zeros). Writes a CSV with one "
    "column named like the target (or proba_<class> columns with --proba); "
    "a target column in DATA is ignored."
)


def add_arguments(parser) -> None:
    """The arguments of ``predict``."""
    parser.description = DESCRIPTION
    add_ticket(parser)
    add_data(parser)
    parser.add_argument("--out", default="-", metavar="FILE",
                        help="the CSV to write (default: standard output)")
    parser.add_argument("--proba", action="store_true",
                        help="class probabilities instead of labels")
    parser.set_defaults(run=predict)


def _out_file(text: str) -> Path:
    """``predict --out FILE``: a file, never a directory."""
    out = Path(text)
    if text.endswith(("/", os.sep)) or out.is_dir() or out.name in ("", ".", ".."):
        raise CLIError(f"--out {text!r} is a directory; give a file such as preds.csv")
    return out


def predict(args) -> int:
    """``sklottery predict`` (see :mod:`sklottery.cli._main`)."""
    # imported here to keep --help fast
    import pandas as pd

    from ..estimators import LotteryTicketClassifier, LotteryTicketRegressor
    from ._summary import load_cli_ticket, make_net
    from ._tables import features, read_table, unscale

    out = _out_file(args.out) if args.out != "-" else None
    # the summary checked, its network against the file's tensors: building
    # it allocates no more than the file holds
    summary, pre = load_cli_ticket(args.ticket)
    task, target = summary["task"], summary["target"]
    X, unseen = features(read_table(args.data), target, pre, args.data)
    estimator = (LotteryTicketClassifier if task == "classification"
                 else LotteryTicketRegressor)
    net = make_net(task, summary["params"]["hidden"])
    granularity = summary["params"].get("granularity", "weight")
    model = estimator(net, granularity=granularity).load_ticket(args.ticket)
    if args.proba:
        if task != "classification":
            raise CLIError("--proba needs a classification ticket")
        proba = model.predict_proba(X)
        result = pd.DataFrame(
            proba, columns=[f"proba_{c}" for c in model.classes_]
        )
    elif task == "classification":
        result = pd.DataFrame({target: model.predict(X)})
    else:
        pred = unscale(model.predict(X), pre["target"])
        result = pd.DataFrame({target: pred} if pred.ndim == 1 else pred)
    if out is None:
        result.to_csv(sys.stdout, index=False)
    else:
        if out.parent != Path("") and not out.parent.is_dir():
            raise CLIError(f"--out {args.out!r}: no directory {str(out.parent)!r}")
        result.to_csv(out, index=False)
    if unseen:
        counts = ", ".join(f"{c!r}: {n}" for c, n in unseen.items())
        print(
            f"{PROG} predict: note: rows with categories not seen at fit time "
            f"({counts}) were encoded as all zeros in that column's one-hot block",
            file=sys.stderr,
        )
    return 0
