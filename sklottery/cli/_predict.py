"""``sklottery predict``: a ticket written by ``fit`` applied to new rows."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ._main import PROG, CLIError, load_summary
from ._fit import _make_net, _unscale
from ..estimators import LotteryTicketClassifier, LotteryTicketRegressor
from ._tables import check_preprocessing, encode, read_table

__all__ = ["features", "load_cli_ticket", "predict"]


def _out_file(text: str) -> Path:
    """``predict --out FILE``: a file, never a directory."""
    out = Path(text)
    if text.endswith(("/", os.sep)) or out.is_dir() or out.name in ("", ".", ".."):
        raise CLIError(f"--out {text!r} is a directory; give a file such as preds.csv")
    return out


def load_cli_ticket(path):
    """``(summary, preprocessing, task, hidden, target)`` of a ticket written
    by ``fit``, every field checked (CLIError naming a malformed one)."""
    summary, _, name = load_summary(path)
    try:
        pre = check_preprocessing(summary)
        task, hidden = summary["task"], summary["params"]["hidden"]
        target = summary["target"]
        if task not in ("classification", "regression") or not isinstance(target, str):
            raise TypeError("task/target")
        if not (isinstance(hidden, list) and hidden
                and all(type(h) is int and 0 < h <= 2**20 for h in hidden)):
            raise TypeError("params.hidden")
    except (KeyError, TypeError) as exc:
        raise CLIError(
            f"{path}: its command-line summary is malformed ({exc})"
        ) from None
    if (task == "classification") != (name == "LotteryTicketClassifier"):
        raise CLIError(f"{path}: summary field 'task' {task!r} is not a {name}")
    return summary, pre, task, hidden, target


def features(frame, target, pre, path):
    """``(X, unseen)``: the rows of ``frame`` (its ``target`` column left out)
    preprocessed as ``fit`` preprocessed them (float32)."""
    features = frame.drop(columns=[target]) if target in frame.columns else frame
    X, unseen = encode(features, pre["columns"], path)
    X = ((X.to_numpy(np.float64) - pre["mean"]) / pre["scale"]).astype(np.float32)
    return X, unseen


def predict(args) -> int:
    """``sklottery predict`` (see :mod:`sklottery.cli._main`)."""
    out = _out_file(args.out) if args.out != "-" else None
    summary, pre, task, hidden, target = load_cli_ticket(args.ticket)
    X, unseen = features(read_table(args.data), target, pre, args.data)
    estimator = (LotteryTicketClassifier if task == "classification"
                 else LotteryTicketRegressor)
    model = estimator(_make_net(task, hidden)).load_ticket(args.ticket)
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
        pred = _unscale(model.predict(X), pre["target"] or {"mean": 0, "scale": 1})
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
