"""The ticket files of the command line: the summary ``fit`` keeps in the
estimator's ticket file (plain JSON in its header's ``info``, with the
preprocessing of :mod:`sklottery.cli._tables`), reading it back and checking
it, printing it, and the network and estimator parameters it describes.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.dataset import ValidSplit

from ..modules import MLP
from ..tickets import Ticket, load_ticket, read_estimator_ticket, save_estimator_ticket
from ._checks import check_network, check_summary
from ._parser import CLIError, SummaryError
from ._tables import TableError, check_preprocessing

__all__ = [
    "ESTIMATORS",
    "interrupted_text",
    "jsonable",
    "load_cli_ticket",
    "load_summary",
    "lottery_kwargs",
    "make_net",
    "save_with_summary",
    "summary_text",
]

ESTIMATORS = ("LotteryTicketClassifier", "LotteryTicketRegressor")
#: The estimator parameters a summary's ``params`` keeps under their names.
_LOTTERY = ("n_rounds", "prune_rate", "strategy", "rewind", "scope", "select")
_NO_SUMMARY = ("a ticket file without a command-line summary (it was not "
               "written by sklottery fit)")


def lottery_kwargs(params: dict) -> dict:
    """The estimator's keyword arguments from a summary's ``params`` (or
    ``fit``'s options); ``schedule``, ``sparse_training`` and ``granularity``
    are written since
    they became ``fit`` options (older summaries: the defaults they were
    fitted with)."""
    kwargs = {k: params[k] for k in _LOTTERY}
    kwargs["schedule"] = params.get("schedule", "iterative")
    kwargs["sparse_training"] = params.get("sparse_training", "auto")
    kwargs["granularity"] = params.get("granularity", "weight")
    kwargs["random_state"] = params["seed"]
    return kwargs


def make_net(task, hidden, *, y=None, lr=1e-3, batch_size=60, epochs=1, seed=0):
    """The skorch net of a ticket: a LeNet-style :class:`~sklottery.MLP` with
    a validation split, stratified for classes of ``y`` with 5 rows or more."""
    common = {
        "module__hidden_units": tuple(hidden),
        "optimizer": torch.optim.Adam,
        "lr": lr,
        "batch_size": batch_size,
        "max_epochs": epochs,
        "iterator_train__shuffle": True,
        "verbose": 0,
    }
    if task == "classification":
        small = y is not None and np.unique(y, return_counts=True)[1].min() < 5
        return NeuralNetClassifier(
            MLP, criterion=torch.nn.CrossEntropyLoss,
            train_split=ValidSplit(0.2, stratified=not small, random_state=seed),
            **common,
        )
    return NeuralNetRegressor(
        MLP, criterion=torch.nn.MSELoss,
        train_split=ValidSplit(0.2, stratified=False, random_state=seed),
        **common,
    )


# -- writing -------------------------------------------------------------------
def jsonable(value):
    """``value`` as plain JSON: numpy scalars as Python ones, non-finite
    floats as None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_with_summary(clf, path, summary) -> None:
    """The estimator's own ticket file (its ``load_ticket`` reads it back),
    with the command line's summary in the header's free ``info``."""
    buf = io.BytesIO()
    clf.save_ticket(buf, rewind_point=True)
    buf.seek(0)
    saved = load_ticket(buf)
    save_estimator_ticket(
        path, clf.net_.module_, clf.masks_, estimator=saved.estimator,
        state=saved.state, rounds=saved.rounds, arrays=saved.arrays,
        rewind_point=saved.rewind_point,
        info={**saved.info, "sklottery_cli": summary},
    )


# -- reading -------------------------------------------------------------------
def load_summary(path) -> tuple[dict, Ticket, str]:
    """``(summary, ticket, estimator class)`` of a ticket written by ``fit``;
    the whole file is checked as the estimator's ``load_ticket`` checks it,
    and every field of the summary a command reads is checked
    (:func:`~sklottery.cli._checks.check_summary`)."""
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    name = load_ticket(path).estimator  # ValueError, one line, if not a ticket
    if name is None:  # 0.1.0 kept the estimator's name in its info
        name = next((n for n in ESTIMATORS if _reads_as(path, n)), None)
    if name not in ESTIMATORS:
        raise CLIError(f"{path}: {_NO_SUMMARY}")
    ticket, _ = read_estimator_ticket(path, name)
    summary = ticket.info.get("sklottery_cli")
    if not isinstance(summary, dict):
        raise CLIError(f"{path}: {_NO_SUMMARY}")
    summary = check_summary(summary, ticket.rounds, path)
    if (summary["task"] == "classification") != (name == "LotteryTicketClassifier"):
        raise SummaryError(
            f"{path}: summary field 'task' {summary['task']!r} is not a {name}"
        )
    return summary, ticket, name


def _reads_as(path, name) -> bool:
    try:
        read_estimator_ticket(path, name)
    except ValueError:
        return False
    return True


def load_cli_ticket(path):
    """``(summary, preprocessing)`` of a ticket written by ``fit``, every
    field checked, the network the summary declares checked against the
    file's tensors (:func:`~sklottery.cli._checks.check_network`) -- so that
    building it allocates no more than the file holds -- and the
    preprocessing against the network's inputs (SummaryError naming the
    field)."""
    summary, ticket, _ = load_summary(path)
    check_network(summary, ticket.specs, path)
    try:
        pre = check_preprocessing(summary)
    except TableError as exc:
        raise SummaryError(f"{path}: {exc}") from None
    if len(pre["mean"]) != summary["n_features"]:
        raise SummaryError(
            f"{path}: its preprocessing encodes {len(pre['mean'])} features, not "
            f"the {summary['n_features']} of summary field 'n_features'"
        )
    return summary, pre


# -- printing ------------------------------------------------------------------
def _rounds_table(summary: dict, records: list[dict]) -> str:
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
        return table.to_string(index=False)


def interrupted_text(summary: dict, records: list[dict]) -> str:
    """The line that says a fit was interrupted (``summary["interrupted"]``)."""
    return (
        f"INTERRUPTED: fit was stopped (Ctrl-C) after round {records[-1]['round']}; "
        f"the ticket is chosen from the {len(records)} completed round(s), not "
        f"from all the rounds asked for (--rounds {summary['params']['n_rounds']})"
    )


def summary_text(summary: dict, records: list[dict]) -> str:
    """What ``fit`` prints, and ``report`` prints again."""
    metric = "R²" if summary.get("task") == "regression" else "accuracy"
    p = summary["params"]
    score = summary["test_score"]
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
        _rounds_table(summary, records),
        "",
        f"ticket (round {summary['selected_round']}): "
        f"{100 * summary['weights_remaining']:.1f}% of weights remaining, "
        f"held-out {metric} {'n/a' if score is None else f'{score:.4f}'} "
        f"(dense round 0, validation: {records[0]['score']:.4f})",
    ]
    if summary.get("interrupted"):
        lines.append(interrupted_text(summary, records))
    files = summary.get("files", {})
    if files:
        lines.append("files: " + ", ".join(files.values()))
    return "\n".join(lines)
