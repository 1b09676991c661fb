"""The command line, end to end through its real entry points."""

import os
import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from sklottery import cli
from sklottery.tickets import load_ticket

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--rounds", "1", "--epochs", "1", "--hidden", "8", "--no-progress"]


def run_module(*args, cwd=None):
    """``python -m sklottery ARGS`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("SKLOTTERY_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "sklottery", *map(str, args)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )


@pytest.fixture(scope="module")
def iris_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    frame = load_iris(as_frame=True).frame
    frame["species"] = frame.pop("target").map({0: "setosa", 1: "versicolor",
                                                 2: "virginica"})
    frame.to_csv(d / "iris.csv", index=False)
    frame.to_parquet(d / "iris.parquet")
    return d


@pytest.fixture(scope="module")
def fitted_csv(iris_files):
    out = iris_files / "out" / "iris"
    result = run_module("fit", iris_files / "iris.csv", "--target", "species",
                        "--out", out, *FAST)
    return result, out


def test_fit_csv_through_python_m(fitted_csv):
    result, out = fitted_csv
    assert result.returncode == 0, result.stderr
    rounds = pd.read_csv(f"{out}.rounds.csv")
    assert rounds["round"].tolist() == [0, 1]
    assert rounds["n_weights"].iloc[0] == 4 * 8 + 8 * 3
    assert rounds["weights_remaining"].iloc[0] == 1.0
    assert rounds["weights_remaining"].iloc[1] < 1.0
    ticket = load_ticket(f"{out}.ticket.npz")
    summary = ticket.info["sklottery_cli"]
    assert [r["n_weights"] for r in ticket.rounds] == rounds["n_weights"].tolist()
    assert ticket.arrays["classes_"].tolist() == ["setosa", "versicolor", "virginica"]
    assert len(summary["scaler"]["mean"]) == 4
    # the ticket's values are the fitted network's: exact zeros where pruned
    for name, mask in ticket.masks.items():
        assert int(mask.sum()) == int((ticket.values[name] != 0).sum())
    assert sum(int(m.sum()) for m in ticket.masks.values()) == (
        rounds["n_weights"].iloc[-1]
    )
    assert summary["target"] == "species"
    assert summary["classes"] == ["setosa", "versicolor", "virginica"]
    assert summary["n_train"] + summary["n_test"] == 150
    assert summary["n_test"] == 30
    assert summary["params"]["hidden"] == [8]
    assert summary["weights_remaining"] == pytest.approx(
        rounds["weights_remaining"].iloc[-1]
    )
    assert 0.0 <= summary["test_score"] <= 1.0
    assert "ticket (round 1):" in result.stdout
    assert f"{100 * summary['weights_remaining']:.1f}% of weights" in result.stdout


def test_ticket_loads_into_the_estimator(fitted_csv, iris_files):
    import torch
    from skorch import NeuralNetClassifier

    from sklottery import MLP, LotteryTicketClassifier

    _, out = fitted_csv
    net = NeuralNetClassifier(MLP, module__hidden_units=(8,),
                              criterion=torch.nn.CrossEntropyLoss)
    clf = LotteryTicketClassifier(net).load_ticket(f"{out}.ticket.npz")
    summary = load_ticket(f"{out}.ticket.npz").info["sklottery_cli"]
    frame = pd.read_csv(iris_files / "iris.csv")
    X = frame.drop(columns="species").to_numpy(np.float32)
    X = (X - summary["scaler"]["mean"]) / summary["scaler"]["scale"]
    y = frame["species"].to_numpy()
    # the held-out rows of `fit` (same split, same seed) score exactly the same
    _, X_test, _, y_test = train_test_split(
        X.astype(np.float32), y, test_size=0.2, stratify=y, random_state=0
    )
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert 1.0 - clf.sparsity_ == pytest.approx(summary["weights_remaining"])
    assert clf.score(X_test, y_test) == summary["test_score"]


def test_report_prints_the_summary_again(fitted_csv):
    result, out = fitted_csv
    again = run_module("report", f"{out}.ticket.npz")
    assert again.returncode == 0, again.stderr
    assert again.stdout == result.stdout
    assert again.stderr == ""


def test_console_script_is_declared_and_runs_parquet(iris_files, capsys, monkeypatch):
    pyproject = (ROOT / "pyproject.toml").read_text()
    scripts = pyproject.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    target = re.search(r'^sklottery\s*=\s*"([^"]+)"', scripts, re.M).group(1)
    module, func = target.split(":")
    console_main = getattr(import_module(module), func)
    assert console_main is cli.console_main

    out = iris_files / "pq" / "run"
    monkeypatch.setattr(sys, "argv", [
        "sklottery", "fit", str(iris_files / "iris.parquet"), "--target",
        "species", "--out", str(out), "--strategy", "random", "--seed", "3",
        "--rewind", "reinit", *FAST,
    ])
    with pytest.raises(SystemExit) as exit_info:
        console_main()
    assert exit_info.value.code == 0
    captured = capsys.readouterr()
    assert "strategy=random rewind=reinit" in captured.out
    assert load_ticket(f"{out}.ticket.npz").info["sklottery_cli"]["params"]["seed"] == 3


def test_progress_bar_goes_to_stderr_and_select(iris_files, capsys):
    out = iris_files / "progress" / "run"
    code = cli.main(["fit", str(iris_files / "iris.csv"), "--target", "species",
                     "--out", str(out), "--rounds", "2", "--epochs", "1",
                     "--hidden", "8", "--select", "best"])
    assert code == 0
    captured = capsys.readouterr()
    assert "lottery rounds" in captured.err
    assert "3/3" in captured.err
    assert "lottery rounds" not in captured.out
    rounds = pd.read_csv(f"{out}.rounds.csv")
    summary = load_ticket(f"{out}.ticket.npz").info["sklottery_cli"]
    assert summary["params"]["select"] == "best"
    assert rounds["selected"].sum() == 1
    selected = rounds.loc[rounds["selected"], "round"].tolist()
    assert [summary["selected_round"]] == selected


def test_text_features_are_one_hot_encoded(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "x": rng.normal(size=60),
        "colour": rng.choice(["red", "green", "blue"], size=60),
        "label": np.repeat([0, 1], 30),
    })
    frame.to_csv(tmp_path / "t.csv", index=False)
    code = cli.main(["fit", str(tmp_path / "t.csv"), "--target", "label",
                     "--out", str(tmp_path / "t"), *FAST])
    assert code == 0
    summary = load_ticket(tmp_path / "t.ticket.npz").info["sklottery_cli"]
    assert summary["one_hot_columns"] == ["colour"]
    assert summary["n_features"] == 4
    assert summary["classes"] == [0, 1]


def test_float_target_is_a_regression(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["y"] = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=80)
    frame.to_csv(tmp_path / "reg.csv", index=False)
    code = cli.main(["fit", str(tmp_path / "reg.csv"), "--target", "y",
                     "--out", str(tmp_path / "reg"), *FAST])
    assert code == 0
    out = capsys.readouterr().out
    assert "regression (score: R²)" in out
    assert "held-out R²" in out
    summary = load_ticket(tmp_path / "reg.ticket.npz").info["sklottery_cli"]
    assert summary["task"] == "regression"
    assert summary["classes"] is None
    assert summary["n_test"] == 16
    # an integer target is taken for class labels unless --task says otherwise
    frame["y"] = np.arange(80) % 2
    frame.to_csv(tmp_path / "ints.csv", index=False)
    code = cli.main(["fit", str(tmp_path / "ints.csv"), "--target", "y",
                     "--task", "regression", "--out", str(tmp_path / "ints"),
                     *FAST])
    assert code == 0
    summary = load_ticket(tmp_path / "ints.ticket.npz").info["sklottery_cli"]
    assert summary["task"] == "regression"


def test_demo_runs_the_main_job():
    result = run_module("demo", "--rounds", "1", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert "Lottery-ticket rounds on sklearn digits" in result.stdout
    assert "final ticket:" in result.stdout


# -- errors: one line on stderr, non-zero exit, no traceback ---------------------
def _bad_parquet(d):
    (d / "bad.parquet").write_bytes(b"this is not parquet")
    return d / "bad.parquet"


def _one_class(d):
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [1, 1, 1]}).to_csv(d / "one.csv",
                                                                index=False)
    return d / "one.csv"


def _target_nan(d):
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [0, None, 1]}).to_csv(d / "nan.csv",
                                                                  index=False)
    return d / "nan.csv"


def _foreign_ticket(d):
    import torch

    from sklottery.tickets import save_ticket

    module = torch.nn.Linear(2, 2)
    save_ticket(d / "plain.npz", module, {"weight": torch.ones(2, 2, dtype=bool)})
    return d / "plain.npz"


ERRORS = [
    (lambda d: ["fit", d / "missing.csv", "--target", "y"], 1, "no such file"),
    (lambda d: ["fit", d / "data.xlsx", "--target", "y"], 1, "unknown file type"),
    (lambda d: ["fit", _bad_parquet(d), "--target", "y"], 1, "not a readable parquet"),
    (lambda d: ["fit", d / "iris.csv", "--target", "nope"], 1, "no column 'nope'"),
    (lambda d: ["fit", _one_class(d), "--target", "y"], 1, "only one class"),
    (lambda d: ["fit", _target_nan(d), "--target", "y"], 1, "missing value"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--strategy", "big"],
     1, "'strategy' parameter of"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--rewind", "nope"],
     1, "'rewind' parameter of"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--prune-rate", "1.5"],
     2, "--prune-rate"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--epochs", "0"],
     2, "--epochs"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--hidden", "a,b"],
     2, "--hidden"),
    (lambda d: ["fit", d / "iris.csv"], 2, "--target"),
    (lambda d: ["frobnicate"], 2, "invalid choice"),
    (lambda d: [], 2, "required"),
    (lambda d: ["report", d / "iris.csv"], 1, "not a valid sklottery ticket"),
    (lambda d: ["report", d / "absent.npz"], 1, "no such file"),
    (lambda d: ["report", _foreign_ticket(d)], 1, "not written by sklottery fit"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--select", "x"],
     2, "--select"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--task",
                "regression"], 1, "needs a numeric target"),
]


@pytest.mark.parametrize("make_args, code, message", ERRORS)
def test_errors_are_one_line(iris_files, tmp_path, capsys, make_args, code, message):
    (tmp_path / "iris.csv").write_bytes((iris_files / "iris.csv").read_bytes())
    args = [str(a) for a in make_args(tmp_path)]
    try:
        status = cli.main(args)
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code
    assert status == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert message in err
    assert err.startswith("sklottery")
    assert "Traceback" not in err


def test_errors_through_python_m_are_one_line(iris_files):
    result = run_module("fit", iris_files / "iris.csv", "--target", "colour")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "no column 'colour'" in result.stderr
    assert "Traceback" not in result.stderr
