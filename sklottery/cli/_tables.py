"""Tables for the command line: reading them, and the preprocessing ``fit``
learns and ``predict`` applies again.

The preprocessing is kept in the ticket file's header as plain JSON (no
pickle): for each feature column, its kind (``"numeric"``, or
``"categorical"`` with the categories seen at fit time), the standardization
of every encoded feature (``mean``/``scale``) and, for a regression, the
standardization of the target. A categorical value not seen at fit time is
encoded as all zeros in that column's one-hot block -- what
``OneHotEncoder(handle_unknown="ignore")`` does.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ._parser import CLIError

__all__ = [
    "READERS",
    "TableError",
    "check_preprocessing",
    "encode",
    "features",
    "fit_columns",
    "read_table",
    "scale_target",
    "split_features",
    "unscale",
]

READERS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


class TableError(CLIError):
    """A problem with a table or its columns (one line for the user)."""


def read_table(path) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet file; any failure becomes a one-line TableError."""
    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise TableError(
            f"{path}: unknown file type {path.suffix or '(no suffix)'!r}; "
            f"expected one of {', '.join(READERS)}"
        )
    if not path.is_file():
        raise TableError(f"{path}: no such file")
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    except ImportError as exc:
        raise TableError(f"{path}: reading Parquet needs pyarrow ({exc})") from None
    except Exception as exc:  # pandas/pyarrow raise many types for bad files
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        raise TableError(f"{path}: not a readable {kind} file ({reason})") from None
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise TableError(f"{path}: the table is empty")
    return frame


def _no_missing(features: pd.DataFrame, path) -> None:
    missing = features.columns[features.isna().any()].tolist()
    if missing:
        raise TableError(
            f"{path}: missing values in feature column(s) {missing[:5]}; "
            "fill or drop them first"
        )


def fit_columns(features: pd.DataFrame) -> list[dict]:
    """The column specs of ``features``: numeric (and bool) columns stay,
    every other column is categorical with its sorted distinct values."""
    text = set(features.select_dtypes(exclude=["number", "bool"]).columns)
    specs = []
    for name in features.columns:
        if name in text:
            categories = sorted(set(features[name].astype(str)))
            specs.append({"name": str(name), "kind": "categorical",
                          "categories": categories})
        else:
            specs.append({"name": str(name), "kind": "numeric"})
    return specs


def encode(features: pd.DataFrame, specs: list[dict], path) -> tuple:
    """``(X, unseen)``: the float32 features (numeric columns first, then one
    indicator per category of each categorical column, like
    :func:`pandas.get_dummies`) and ``{column: rows with an unseen
    category}``."""
    columns = {str(c): c for c in features.columns}
    missing = [s["name"] for s in specs if s["name"] not in columns]
    if missing:
        raise TableError(
            f"{path}: no column(s) {missing[:5]}, which the ticket was fitted on"
        )
    features = features[[columns[s["name"]] for s in specs]]
    _no_missing(features, path)
    numeric, blocks, names, unseen = {}, [], [], {}
    for s in specs:
        col = features[columns[s["name"]]]
        if s["kind"] == "numeric":
            values = pd.to_numeric(col, errors="coerce") if col.dtype == object else col
            if not (pd.api.types.is_numeric_dtype(values)
                    or pd.api.types.is_bool_dtype(values)) or values.isna().any():
                raise TableError(
                    f"{path}: column {s['name']!r} must hold numbers (it did at fit "
                    "time)"
                )
            numeric[s["name"]] = values.to_numpy(np.float32)
        else:
            text = col.astype(str).to_numpy()
            cats = s["categories"]
            block = (text[:, None] == np.asarray(cats, dtype=object)[None, :])
            n_unseen = int((~block.any(axis=1)).sum())
            if n_unseen:
                unseen[s["name"]] = n_unseen
            blocks.append(block.astype(np.float32))
            names += [f"{s['name']}_{c}" for c in cats]
    X = pd.DataFrame(numeric, index=features.index)
    if blocks:
        X = pd.concat(
            [X, pd.DataFrame(np.hstack(blocks), columns=names, index=features.index)],
            axis=1,
        )
    return X.astype(np.float32), unseen


def split_features(frame: pd.DataFrame, target: str, path) -> tuple:
    """``(X, y, categorical column names, column specs)`` of a table."""
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:20]))
        more = " ..." if frame.shape[1] > 20 else ""
        raise TableError(
            f"{path}: no column {target!r}; the columns are: {shown}{more}"
        )
    y = frame[target]
    if y.isna().any():
        raise TableError(
            f"{path}: the target column {target!r} has {int(y.isna().sum())} "
            "missing value(s)"
        )
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise TableError(f"{path}: no feature columns besides the target {target!r}")
    _no_missing(features, path)
    specs = fit_columns(features)
    X, _ = encode(features, specs, path)
    text = [s["name"] for s in specs if s["kind"] == "categorical"]
    return X, y.to_numpy(), text, specs


def features(frame: pd.DataFrame, target: str, pre: dict, path) -> tuple:
    """``(X, unseen)``: the rows of ``frame`` (its ``target`` column left out)
    preprocessed as ``fit`` preprocessed them (float32); ``pre`` is
    :func:`check_preprocessing`'s."""
    columns = frame.drop(columns=[target]) if target in frame.columns else frame
    X, unseen = encode(columns, pre["columns"], path)
    X = ((X.to_numpy(np.float64) - pre["mean"]) / pre["scale"]).astype(np.float32)
    return X, unseen


def scale_target(y, scaling: dict | None) -> np.ndarray:
    """A regression target standardized by ``scaling`` (``{"mean", "scale"}``;
    None: unchanged), as float32."""
    y = np.asarray(y, dtype=np.float64)
    if scaling is not None:
        y = (y - scaling["mean"]) / scaling["scale"]
    return y.astype(np.float32)


def unscale(pred, scaling: dict | None) -> np.ndarray:
    """Regression predictions back in the target's units (float64; one
    column as a 1-d array)."""
    pred = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    if scaling is not None:
        pred = pred * scaling["scale"] + scaling["mean"]
    return pred[:, 0] if pred.shape[1] == 1 else pred


def _finite_list(value, n=None) -> bool:
    return (
        isinstance(value, list)
        and (n is None or len(value) == n)
        and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        )
    )


def check_preprocessing(summary: dict) -> dict:
    """The preprocessing saved by ``fit``, checked; TableError naming the field.

    Returns ``{"columns", "mean", "scale", "target"}``.
    """
    pre = summary.get("preprocessing")
    if not isinstance(pre, dict):
        raise TableError(
            "the ticket has no 'preprocessing' in its command-line summary (it was "
            "written by sklottery 0.1.0, whose tickets predict only from Python); "
            "fit it again"
        )
    columns = pre.get("columns")
    if not isinstance(columns, list) or not columns:
        raise TableError("summary field 'preprocessing.columns' must be a list")
    names, n_features = set(), 0
    for i, s in enumerate(columns):
        ok = isinstance(s, dict) and isinstance(s.get("name"), str)
        if ok and s.get("kind") == "numeric":
            ok = set(s) == {"name", "kind"}
            n_features += 1
        elif ok and s.get("kind") == "categorical":
            cats = s.get("categories")
            ok = (set(s) == {"name", "kind", "categories"} and isinstance(cats, list)
                  and all(isinstance(c, str) for c in cats)
                  and len(set(cats)) == len(cats))
            n_features += len(cats) if ok else 0
        else:
            ok = False
        if not ok or s["name"] in names:
            raise TableError(
                f"summary field 'preprocessing.columns'[{i}] is malformed"
            )
        names.add(s["name"])
    scaler = summary.get("scaler")
    if not isinstance(scaler, dict):
        raise TableError("summary field 'scaler' must be a dict")
    mean, scale = scaler.get("mean"), scaler.get("scale")
    if not _finite_list(mean, n_features) or not _finite_list(scale, n_features) or (
        not all(v > 0 for v in scale)
    ):
        raise TableError(
            f"summary fields 'scaler.mean'/'scaler.scale' must be {n_features} "
            "finite numbers (scale > 0)"
        )
    target = pre.get("target")
    if target is not None and not (
        isinstance(target, dict) and set(target) == {"mean", "scale"}
        and _finite_list([target["mean"], target["scale"]]) and target["scale"] > 0
    ):
        raise TableError(
            "summary field 'preprocessing.target' must be null or a finite "
            "{'mean', 'scale' > 0}"
        )
    return {"columns": columns, "mean": mean, "scale": scale, "target": target}
