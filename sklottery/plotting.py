"""Plots of lottery-ticket rounds: score vs percent of weights remaining.

The figure of Frankle & Carbin (2019), Figures 3 and 4: one line per run
(the winning ticket, its random-reinit control, random pruning, ...), the
x axis the percent of weights remaining on a log scale, reversed so that
pruning proceeds from left to right.

matplotlib is an optional dependency: ``pip install "sklottery[plot]"``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["plot_rounds"]

_Y_LABELS = {
    "score": "score",
    "test_acc": "test accuracy",
    "valid_acc": "validation accuracy",
    "early_stop_iteration": "early-stop iteration",
    "train_loss": "training loss",
    "valid_loss": "validation loss",
    "untrained_score": "score before training",
}

#: Columns of training cost (multiply-adds): drawn as they are, on a linear
#: axis from left to right.
_COST_LABELS = {
    "cumulative_macs": "multiply-adds spent training (cumulative)",
    "train_macs": "multiply-adds spent training the round",
}


def require_matplotlib():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "sklottery.plotting needs matplotlib, an optional dependency; install "
            "it with: pip install 'sklottery[plot]'"
        ) from exc
    return plt


def _table(result, what: str) -> pd.DataFrame:
    """The rounds table of a fitted estimator, or a table itself."""
    if isinstance(result, pd.DataFrame):
        return result
    est = result[-1] if hasattr(result, "steps") else result
    if hasattr(est, "fit") and hasattr(est, "get_params"):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(est, "rounds_")
        return est.rounds_
    raise TypeError(
        f"{what} must be a fitted sklottery estimator (or a Pipeline ending in "
        f"one) or a rounds_ DataFrame; got {type(result).__name__}"
    )


def _default_label(result, i: int) -> str:
    est = result[-1] if hasattr(result, "steps") else result
    if hasattr(est, "get_params") and hasattr(est, "rounds_"):
        params = est.get_params(deep=False)
        strategy = params.get("strategy")
        strategy = getattr(strategy, "__name__", strategy)
        return f"{strategy}, rewind={params.get('rewind')}"
    return f"run {i}"


def _as_runs(results) -> list[tuple[str, object]]:
    if isinstance(results, Mapping):
        if not results:
            raise ValueError("results is empty; pass at least one run to plot")
        return [(str(k), v) for k, v in results.items()]
    if isinstance(results, (list, tuple)):
        if not results:
            raise ValueError("results is empty; pass at least one run to plot")
        return [(_default_label(r, i), r) for i, r in enumerate(results)]
    return [(_default_label(results, 0), results)]


def plot_rounds(
    results,
    *,
    y="score",
    x="weights_remaining",
    ax=None,
    baseline=False,
    reverse_x=True,
    ylabel=None,
    title=None,
    **plot_kws,
):
    """Plot a score against the percent of weights remaining, round by round.

    Draws the figures of Frankle & Carbin (2019), Fig. 3 and 4: one line per
    run, the x axis the percent of weights remaining on a log scale, reversed
    (100% on the left) so that pruning proceeds from left to right.

    Parameters
    ----------
    results : estimator, DataFrame, list or dict of them
        A fitted :class:`~sklottery.LotteryTicketClassifier` (or a
        ``Pipeline`` ending in one), its ``rounds_`` table, or any
        ``DataFrame`` with the columns ``x`` and ``y``. A list draws one line
        per item, labelled by strategy and rewind mode for estimators; a
        dict ``{label: run}`` sets the labels, e.g. ``{"winning ticket":
        clf, "random reinit": clf_reinit, "random pruning": clf_random}``.
    y : str, default="score"
        Column on the y axis: ``"score"`` (the per-round validation score of
        ``rounds_``), ``"train_loss"``, ``"valid_loss"``, or any column of a
        table of your own (``"test_acc"``, ``"early_stop_iteration"``).
    x : str, default="weights_remaining"
        Column holding the *fraction* of weights remaining; it is drawn in
        percent. ``"cumulative_macs"`` (or ``"train_macs"``) plots the score
        against what the tickets cost to train so far instead (multiply-adds
        of ``rounds_``, a linear axis; ``reverse_x`` does not apply): sparse
        training makes the later rounds cheaper, so the curve bends left.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made when ``None``.
    baseline : bool, default=False
        Also draw the first run's round-0 (dense) value as a dashed horizontal
        line labelled ``"dense"``: the level a winning ticket matches or beats.
    reverse_x : bool, default=True
        100% on the left, as in the paper.
    ylabel, title : str, optional
        Axis label (a readable name of ``y`` by default) and title.
    **plot_kws
        Passed to ``Axes.plot`` for every line (``marker="o"`` by default).

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install "sklottery[plot]"``).

    References
    ----------
    J. Frankle and M. Carbin, "The Lottery Ticket Hypothesis: Finding Sparse,
    Trainable Neural Networks", ICLR 2019, Figures 3 and 4.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from sklottery.plotting import plot_rounds
    >>> ticket = pd.DataFrame({"weights_remaining": [1.0, 0.8, 0.64],
    ...                        "score": [0.95, 0.96, 0.955]})
    >>> control = pd.DataFrame({"weights_remaining": [1.0, 0.8, 0.64],
    ...                         "score": [0.95, 0.94, 0.92]})
    >>> ax = plot_rounds({"ticket": ticket, "random": control})
    >>> [line.get_label() for line in ax.get_lines()]
    ['ticket', 'random']
    >>> ax.get_lines()[0].get_xdata().tolist()
    [100.0, 80.0, 64.0]
    """
    plt = require_matplotlib()
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    runs = _as_runs(results)
    tables = []
    for label, run in runs:
        table = _table(run, f"results[{label!r}]")
        missing = [c for c in (x, y) if c not in table.columns]
        if missing:
            raise ValueError(
                f"the table for {label!r} has no column {missing[0]!r}; its columns "
                f"are {list(table.columns)}"
            )
        tables.append((label, table))

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    kws = {"marker": "o", "markersize": 4, **plot_kws}
    cost = x in _COST_LABELS
    all_x = []
    for label, table in tables:
        xs = np.asarray(table[x], dtype=float) * (1.0 if cost else 100.0)
        ys = np.asarray(table[y], dtype=float)
        all_x.append(xs)
        ax.plot(xs, ys, label=label, **kws)
    if baseline:
        first = tables[0][1]
        # the dense round: the most weights, or (cost) the first round
        dense = first[y].iloc[0] if cost else first.loc[first[x].idxmax(), y]
        ax.axhline(
            float(dense), color="0.5", linestyle="--", linewidth=1, label="dense"
        )
    if cost:
        ax.set_xlabel(_COST_LABELS[x])
        return _finish(ax, y, ylabel, title)

    ax.set_xscale("log")
    xs = np.concatenate(all_x)
    xs = xs[np.isfinite(xs) & (xs > 0)]
    if xs.size:
        # ticks at the first run's rounds, as the paper labels its axes
        first = np.unique(all_x[0][np.isfinite(all_x[0]) & (all_x[0] > 0)])[::-1]
        step = max(1, int(np.ceil(len(first) / 8)))
        ticks = first[::step] if len(first) else np.array([xs.max()])
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
        lo, hi = xs.min(), xs.max()
        limits = (hi * 1.15, lo / 1.15)
        ax.set_xlim(*(limits if reverse_x else limits[::-1]))
    ax.set_xlabel("percent of weights remaining")
    return _finish(ax, y, ylabel, title)


def _finish(ax, y, ylabel, title):
    ax.set_ylabel(ylabel if ylabel is not None else _Y_LABELS.get(y, y))
    if title is not None:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return ax
