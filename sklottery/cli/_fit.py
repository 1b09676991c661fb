"""``sklottery fit DATA --target COLUMN``: a ticket from a CSV or Parquet table.

The table's numeric columns are standardized and the others one-hot encoded
(:mod:`sklottery.cli._tables`), a regression target is standardized too, and the
estimator is a :class:`~sklottery.LotteryTicketClassifier` or
:class:`~sklottery.LotteryTicketRegressor` around a LeNet-style
:class:`~sklottery.MLP` with a validation split. Writes the ticket file (with
the summary and the preprocessing in its header) and the rounds table.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ._main import TICKET_SUFFIX, CLIError, _jsonable, _summary_text
from ._tables import read_table, split_features

__all__ = ["fit"]


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


def _make_net(task, hidden, *, lr=1e-3, batch_size=60, epochs=1, seed=0,
              small=False):
    import torch
    from skorch import NeuralNetClassifier, NeuralNetRegressor
    from skorch.dataset import ValidSplit

    from ..modules import MLP

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


def fit(args) -> int:
    """Run ``sklottery fit`` with the parsed ``args``; return 0."""
    from ..estimators import LotteryTicketClassifier, LotteryTicketRegressor

    lottery = {
        "n_rounds": args.rounds, "prune_rate": args.prune_rate,
        "strategy": args.strategy, "rewind": args.rewind, "scope": args.scope,
        "select": args.select, "random_state": args.seed,
        "schedule": args.schedule, "sparse_training": args.sparse_training,
    }
    # the estimator's own parameter checks, before any data is read
    LotteryTicketClassifier(**lottery)._validate_params()
    out = _out_prefix(args)
    frame = read_table(args.data)
    X, y, text_columns, column_specs = split_features(frame, args.target, args.data)

    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

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
        y = y.astype(np.float64)
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
    small = task == "classification" and (
        np.unique(y_train, return_counts=True)[1].min() < 5
    )
    net = _make_net(task, args.hidden, lr=args.lr, batch_size=args.batch_size,
                    epochs=args.epochs, seed=args.seed, small=small)
    target_scaling = None
    if task == "classification":
        clf = LotteryTicketClassifier(net, verbose=verbose, **lottery)
        fit_y = y_train
    else:
        # targets standardized like the features (predictions come back in
        # the original units); R² does not change under this scaling
        scale = float(np.std(y_train)) or 1.0
        target_scaling = {"mean": float(np.mean(y_train)), "scale": scale}
        fit_y = ((y_train - target_scaling["mean"]) / scale).astype(np.float32)
        clf = LotteryTicketRegressor(net, verbose=verbose, **lottery)
    model = make_pipeline(StandardScaler(), clf)
    start = time.perf_counter()
    model.fit(X_train, fit_y)
    elapsed = time.perf_counter() - start
    if task == "classification":
        test_score = float(model.score(X_test, y_test))
    else:
        pred = _unscale(model.predict(X_test), target_scaling)
        test_score = float(r2_score(y_test, pred))

    out.parent.mkdir(parents=True, exist_ok=True)
    rounds_path = out.parent / f"{out.name}.rounds.csv"
    ticket_path = out.parent / f"{out.name}{TICKET_SUFFIX}"
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
            "select": args.select, "schedule": args.schedule,
            "sparse_training": args.sparse_training,
            "epochs": args.epochs, "task": task,
            "hidden": list(args.hidden), "lr": args.lr,
            "batch_size": args.batch_size, "seed": args.seed,
        },
        "selected_round": int(clf.selected_round_),
        "weights_remaining": 1.0 - clf.sparsity_,
        "test_score": test_score,
        "fit_seconds": elapsed,
        "layers": _jsonable(clf.layers_.to_dict(orient="records")),
        "files": {"ticket": str(ticket_path), "rounds": str(rounds_path)},
        "preprocessing": {"columns": column_specs, "target": target_scaling},
    }
    scaler = model[0]
    summary["scaler"] = {
        "feature_names": [str(c) for c in X.columns],
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
    }
    _save_with_summary(clf, ticket_path, _jsonable(summary))
    clf.rounds_.to_csv(rounds_path, index=False)
    print(_summary_text(summary, rounds))
    return 0


def _unscale(pred, target_scaling):
    pred = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    pred = pred * target_scaling["scale"] + target_scaling["mean"]
    return pred[:, 0] if pred.shape[1] == 1 else pred


def _save_with_summary(clf, path, summary) -> None:
    """The estimator's own ticket file (its ``load_ticket`` reads it back),
    with the command line's summary in the header's free ``info``."""
    import io

    from ..tickets import load_ticket, save_estimator_ticket

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
