"""The command line, end to end through its real entry points."""

import io
import os
import re
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.conftest import cli_error
from sklearn.model_selection import train_test_split

from sklottery import cli
from sklottery.cli import _fit as cli_fit
from sklottery.tickets import load_ticket

ROOT = Path(__file__).resolve().parents[2]
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
def iris_files(tmp_path_factory, iris_table):
    d = tmp_path_factory.mktemp("data")
    iris_table.to_csv(d / "iris.csv", index=False)
    iris_table.to_parquet(d / "iris.parquet")
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
    ticket = load_ticket(f"{out}.ticket.safetensors")
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
    clf = LotteryTicketClassifier(net).load_ticket(f"{out}.ticket.safetensors")
    summary = load_ticket(f"{out}.ticket.safetensors").info["sklottery_cli"]
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
    again = run_module("report", f"{out}.ticket.safetensors")
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
    summary = load_ticket(f"{out}.ticket.safetensors").info["sklottery_cli"]
    assert summary["params"]["seed"] == 3


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
    summary = load_ticket(f"{out}.ticket.safetensors").info["sklottery_cli"]
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
    summary = load_ticket(tmp_path / "t.ticket.safetensors").info["sklottery_cli"]
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
    summary = load_ticket(tmp_path / "reg.ticket.safetensors").info["sklottery_cli"]
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
    summary = load_ticket(tmp_path / "ints.ticket.safetensors").info["sklottery_cli"]
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
    save_ticket(d / "plain", module, {"weight": torch.ones(2, 2, dtype=bool)})
    return d / "plain.safetensors"


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
    (lambda d: ["report", d / "absent.safetensors"], 1, "no such file"),
    (lambda d: ["predict", d / "absent.safetensors", d / "iris.csv"], 1,
     "no such file"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--out", d], 1,
     "is a directory; give a file prefix"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--out", "."], 1,
     "is a directory; give a file prefix"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--out",
                d / ".run"], 1, "would write hidden files"),
    (lambda d: ["report", _foreign_ticket(d)], 1, "not written by sklottery fit"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--select", "x"],
     2, "--select"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--task",
                "regression"], 1, "needs a numeric target"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--schedule",
                "sometimes"], 2, "--schedule"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--sparse-training",
                "maybe"], 2, "--sparse-training"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--strategy",
                "synflow"], 1, "use schedule='at_init'"),
]


@pytest.mark.parametrize("make_args, code, message", ERRORS)
def test_errors_are_one_line(iris_files, tmp_path, capsys, make_args, code, message):
    (tmp_path / "iris.csv").write_bytes((iris_files / "iris.csv").read_bytes())
    err = cli_error(make_args(tmp_path), capsys, code)
    assert message in err
    assert err.startswith("sklottery")


def test_errors_through_python_m_are_one_line(iris_files):
    result = run_module("fit", iris_files / "iris.csv", "--target", "colour")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "no column 'colour'" in result.stderr
    assert "Traceback" not in result.stderr


# -- predict, target scaling, bad ticket files ----------------------------------
@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A string target, a categorical column, and new rows with a city unseen
    at fit time."""
    d = tmp_path_factory.mktemp("shop")
    rng = np.random.default_rng(0)
    n = 240
    x = rng.normal(size=n)
    city = rng.choice(["paris", "rome", "oslo"], size=n)
    label = np.where(x + 2.0 * (city == "rome") > 0.5, "buys", "leaves")
    pd.DataFrame({"x": x, "city": city, "label": label}).to_csv(
        d / "shop.csv", index=False)
    pd.DataFrame({"city": ["rome", "berlin", "oslo"], "x": [0.1, 2.0, -3.0]}).to_csv(
        d / "new.csv", index=False)
    code = cli.main(["fit", str(d / "shop.csv"), "--target", "label", "--out",
                     str(d / "shop"), "--rounds", "1", "--epochs", "5",
                     "--hidden", "16", "--lr", "0.01", "--no-progress"])
    assert code == 0
    return d


def test_predict_end_to_end_applies_the_fit_preprocessing(shop, capsys):
    capsys.readouterr()
    ticket = shop / "shop.ticket.safetensors"
    summary = load_ticket(ticket).info["sklottery_cli"]
    assert summary["preprocessing"]["columns"] == [
        {"name": "x", "kind": "numeric"},
        {"name": "city", "kind": "categorical",
         "categories": ["oslo", "paris", "rome"]},
    ]
    # the whole table (its target column is ignored): the held-out rows score
    # exactly what fit reported
    assert cli.main(["predict", str(ticket), str(shop / "shop.csv"), "--out",
                     str(shop / "all.csv")]) == 0
    assert capsys.readouterr().err == ""
    frame = pd.read_csv(shop / "shop.csv")
    preds = pd.read_csv(shop / "all.csv")
    assert preds.columns.tolist() == ["label"] and len(preds) == len(frame)
    _, test_idx = train_test_split(np.arange(len(frame)), test_size=0.2,
                                   stratify=frame["label"], random_state=0)
    held_out = (preds["label"].to_numpy()[test_idx]
                == frame["label"].to_numpy()[test_idx]).mean()
    assert held_out == pytest.approx(summary["test_score"])
    # new rows, columns in another order, a city never seen: all-zero one-hot
    assert cli.main(["predict", str(ticket), str(shop / "new.csv"), "--out",
                     str(shop / "new_preds.csv")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not seen at fit time ('city': 1)" in err
    new = pd.read_csv(shop / "new_preds.csv")
    assert set(new["label"]) <= {"buys", "leaves"} and len(new) == 3
    assert cli.main(["predict", str(ticket), str(shop / "new.csv"), "--proba"]) == 0
    proba = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert proba.columns.tolist() == ["proba_buys", "proba_leaves"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert ((proba["proba_buys"] > 0.5) == (new["label"] == "buys")).all()
    # the same as the estimator given the same encoding by hand
    from sklottery import LotteryTicketClassifier

    clf = LotteryTicketClassifier(cli_fit._make_net("classification", [16]))
    clf.load_ticket(ticket)
    X = np.array([[0.1, 0, 0, 1], [2.0, 0, 0, 0], [-3.0, 1, 0, 0]])
    X = (X - summary["scaler"]["mean"]) / summary["scaler"]["scale"]
    np.testing.assert_allclose(clf.predict_proba(X.astype(np.float32)),
                               proba.to_numpy(), rtol=1e-5)


def test_regression_targets_are_scaled(tmp_path, capsys):
    rng = np.random.default_rng(0)
    income = rng.uniform(20_000, 120_000, size=300)
    frame = pd.DataFrame({"income": income,
                          "spend": 0.01 * income + rng.normal(0, 20, size=300)})
    frame.to_csv(tmp_path / "spend.csv", index=False)
    code = cli.main(["fit", str(tmp_path / "spend.csv"), "--target", "spend",
                     "--out", str(tmp_path / "spend"), "--rounds", "1",
                     "--no-progress"])
    assert code == 0
    summary = load_ticket(tmp_path / "spend.ticket.safetensors").info["sklottery_cli"]
    # linear regression gets 0.995 here; unscaled targets gave a negative R²
    assert summary["test_score"] > 0.95
    assert summary["preprocessing"]["target"]["scale"] > 100
    assert cli.main(["predict", str(tmp_path / "spend.ticket.safetensors"),
                     str(tmp_path / "spend.csv"), "--out",
                     str(tmp_path / "p.csv")]) == 0
    from sklearn.metrics import r2_score

    preds = pd.read_csv(tmp_path / "p.csv")["spend"]
    assert r2_score(frame["spend"], preds) > 0.95  # original units
    assert cli.main(["predict", str(tmp_path / "spend.ticket.safetensors"),
                     str(tmp_path / "spend.csv"), "--proba"]) == 1
    assert "--proba needs a classification ticket" in capsys.readouterr().err


def _crafted(src, d, name, **edits):
    from tests.tickets import ticket_helpers as th

    path = d / name
    path.write_bytes(th.craft(src.read_bytes(), **edits))
    return path


def _summary_edit(**fields):
    return lambda h: h["info"]["sklottery_cli"].update(fields)


BAD_TICKETS = [
    (lambda src, d: d / "cut.safetensors", "truncated or corrupt"),
    (lambda src, d: _crafted(src, d, "t1", inner=lambda h: h["estimator"][
        "state"].update(selected_round=99)), "'selected_round' is 99"),
    (lambda src, d: _crafted(src, d, "t2", inner=lambda h: h["rounds"][0].pop(
        "round")), "round record 0 has no field 'round'"),
    (lambda src, d: _crafted(src, d, "t3", inner=_summary_edit(params=None)),
     "summary is malformed"),
    (lambda src, d: _crafted(src, d, "t4", inner=_summary_edit(
        preprocessing={"columns": [{"name": "x"}]})), "'preprocessing.columns'[0]"),
    (lambda src, d: _crafted(src, d, "t5", inner=_summary_edit(
        scaler={"mean": [1.0], "scale": [0.0]})), "'scaler.mean'/'scaler.scale'"),
    (lambda src, d: _crafted(src, d, "t6", inner=lambda h: h["info"].pop(
        "sklottery_cli")), "not written by sklottery fit"),
]


@pytest.mark.parametrize("command", ["report", "predict"])
@pytest.mark.parametrize("make, message", BAD_TICKETS)
def test_bad_ticket_files_are_one_line(shop, tmp_path, capsys, command, make,
                                       message):
    src = shop / "shop.ticket.safetensors"
    (tmp_path / "cut.safetensors").write_bytes(src.read_bytes()[:-100])
    path = make(src, tmp_path)
    args = [command, str(path)] + ([str(shop / "new.csv")] if command == "predict"
                                   else [])
    status = cli.main(args)
    err = capsys.readouterr().err
    if command == "report" and ("preprocessing" in message or "scaler" in message):
        assert status == 0  # report does not need the preprocessing
        return
    assert status == 1
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.drop(columns="city"), "no column(s) ['city']"),
    (lambda f: f.assign(x="abc"), "column 'x' must hold numbers"),
    (lambda f: f.assign(x=np.nan), "missing values in feature column(s) ['x']"),
])
def test_predict_bad_rows(shop, tmp_path, capsys, edit, message):
    edit(pd.read_csv(shop / "new.csv")).to_csv(tmp_path / "rows.csv", index=False)
    status = cli.main(["predict", str(shop / "shop.ticket.safetensors"),
                       str(tmp_path / "rows.csv"), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "p.csv").exists()
