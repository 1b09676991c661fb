"""sklottery.plotting: score vs percent of weights remaining (Agg backend)."""

import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklottery.plotting import plot_rounds

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


pytestmark = pytest.mark.lottery(hidden_units=(8,))


@pytest.fixture(scope="module")
def fitted(make_clf):
    X, y = load_iris(return_X_y=True)
    return {
        "ticket": make_clf().fit(X, y),
        "random": make_clf(strategy="random").fit(X, y),
    }


def test_one_estimator_one_line_with_its_rounds(fitted):
    clf = fitted["ticket"]
    ax = plot_rounds(clf)
    lines = ax.get_lines()
    assert len(lines) == 1
    assert lines[0].get_label() == "large_final, rewind=init"
    np.testing.assert_allclose(
        lines[0].get_xdata(), 100 * clf.rounds_["weights_remaining"].to_numpy()
    )
    np.testing.assert_allclose(lines[0].get_ydata(), clf.rounds_["score"].to_numpy())
    assert ax.get_xscale() == "log"
    left, right = ax.get_xlim()
    assert left > right  # reversed: 100% on the left, as in the paper
    assert ax.get_xlabel() == "percent of weights remaining"
    assert ax.get_ylabel() == "score"
    # ticks at the rounds' percentages, as in the paper's figures
    np.testing.assert_allclose(
        ax.get_xticks(), 100 * clf.rounds_["weights_remaining"].to_numpy()
    )


def test_dict_of_runs_labels_ticket_vs_controls(fitted):
    ax = plot_rounds(
        {"winning ticket": fitted["ticket"], "random pruning": fitted["random"]},
        baseline=True,
        title="iris",
    )
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["winning ticket", "random pruning", "dense"]
    dense = ax.get_lines()[2].get_ydata()
    assert dense[0] == dense[1] == fitted["ticket"].rounds_["score"].iloc[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == labels
    assert ax.get_title() == "iris"


def test_list_of_estimators_and_pipeline(fitted, make_clf):
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), make_clf()).fit(X, y)
    ax = plot_rounds([pipe, fitted["random"]])
    assert [line.get_label() for line in ax.get_lines()] == [
        "large_final, rewind=init",
        "random, rewind=init",
    ]


def test_tables_with_other_columns_and_given_axes():
    table = pd.DataFrame(
        {"weights_remaining": [1.0, 0.512, 0.211], "test_acc": [0.97, 0.98, 0.975]}
    )
    _, ax = plt.subplots()
    out = plot_rounds([table], y="test_acc", ax=ax, reverse_x=False, marker="s")
    assert out is ax
    line = ax.get_lines()[0]
    assert line.get_label() == "run 0"
    assert line.get_marker() == "s"
    np.testing.assert_allclose(line.get_xdata(), [100.0, 51.2, 21.1])
    np.testing.assert_allclose(line.get_ydata(), [0.97, 0.98, 0.975])
    assert ax.get_ylabel() == "test accuracy"
    left, right = ax.get_xlim()
    assert left < right


def test_bad_inputs_raise_clear_errors(fitted, make_clf):
    with pytest.raises(ValueError, match="no column 'test_acc'"):
        plot_rounds(fitted["ticket"], y="test_acc")
    with pytest.raises(TypeError, match="rounds_ DataFrame"):
        plot_rounds({"x": [1, 2, 3]})
    with pytest.raises(ValueError, match="empty"):
        plot_rounds([])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        plot_rounds(make_clf())


def test_missing_matplotlib_names_the_extra(fitted, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"sklottery\[plot\]"):
        plot_rounds(fitted["ticket"])
