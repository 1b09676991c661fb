"""``sklottery fit``: a ticket from a CSV or Parquet table, end to end."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from sklottery import cli
from sklottery.tickets import load_ticket
from tests.cli.conftest import FAST, assert_one_line_error


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
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--out", d], 1,
     "is a directory; give a file prefix"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--out", "."], 1,
     "is a directory; give a file prefix"),
    (lambda d: ["fit", d / "iris.csv", "--target", "species", "--out",
                d / ".run"], 1, "would write hidden files"),
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
    assert_one_line_error(iris_files, tmp_path, capsys, make_args, code, message)


def test_options_take_their_ranges_from_the_config():
    """The choices and ranges of fit's options are the estimators' own."""
    from sklearn.utils._param_validation import Interval, StrOptions

    from sklottery.config import PARAMETER_CONSTRAINTS

    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    # a command's arguments are added on first use (--help stays light)
    actions = {a.dest: a for a in sub.choices["fit"].populate()._actions}
    for name in ("schedule", "select", "scope"):
        options = next(c for c in PARAMETER_CONSTRAINTS[name]
                       if isinstance(c, StrOptions)).options
        assert sorted(actions[name].choices) == sorted(options)
    for dest, name in (("prune_rate", "prune_rate"), ("rounds", "n_rounds")):
        interval = next(c for c in PARAMETER_CONSTRAINTS[name]
                        if isinstance(c, Interval))
        for value in (-1, 0, 0.5, 1, 2):
            try:
                actions[dest].type(str(value))
            except Exception:
                accepted = False
            else:
                accepted = True
            assert accepted == interval.is_satisfied_by(value), (dest, value)


# -- issue 19: an interrupted fit says so; one limit for --hidden ---------------
def _interrupt_after_round_0(monkeypatch, epochs):
    """The fit's net raises KeyboardInterrupt (a user's Ctrl-C) at the end of
    its first epoch after round 0's ``epochs``."""
    from skorch.callbacks import Callback

    from sklottery.cli import _summary

    seen = {"epochs": 0}

    class CtrlC(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen["epochs"] += 1
            if seen["epochs"] == epochs + 1:
                raise KeyboardInterrupt

    real = _summary.make_net

    def make_net(*args, **kwargs):
        net = real(*args, **kwargs)
        net.set_params(callbacks=[("ctrl_c", CtrlC())])
        return net

    monkeypatch.setattr(_summary, "make_net", make_net)
    return seen


def test_ctrl_c_after_round_0_writes_the_ticket_and_says_so(
    iris_files, tmp_path, capsys, monkeypatch
):
    seen = _interrupt_after_round_0(monkeypatch, epochs=1)
    out = tmp_path / "stopped"
    with pytest.warns(RuntimeWarning, match="interrupted"):
        status = cli.main(["fit", str(iris_files / "iris.csv"), "--target",
                           "species", "--out", str(out), "--rounds", "3",
                           "--epochs", "1", "--hidden", "8", "--no-progress"])
    assert seen["epochs"] == 2
    assert status == 130
    captured = capsys.readouterr()
    assert "INTERRUPTED" in captured.out and "after round 0" in captured.out
    assert "sklottery fit: INTERRUPTED" in captured.err
    # the ticket of the completed rounds is written, and its summary says so
    ticket = load_ticket(f"{out}.ticket.safetensors")
    assert [r["round"] for r in ticket.rounds] == [0]
    assert ticket.info["sklottery_cli"]["interrupted"] is True
    assert cli.main(["report", f"{out}.ticket.safetensors"]) == 0
    assert "INTERRUPTED: fit was stopped (Ctrl-C) after round 0" in (
        capsys.readouterr().out
    )


def test_an_uninterrupted_fit_says_nothing_of_it(fitted_csv):
    result, out = fitted_csv
    assert "INTERRUPTED" not in result.stdout
    summary = load_ticket(f"{out}.ticket.safetensors").info["sklottery_cli"]
    assert summary["interrupted"] is False


def test_hidden_sizes_have_one_limit(fitted_csv, iris_files, tmp_path, capsys):
    """fit's --hidden takes what a ticket's summary may declare, no more."""
    from sklottery.cli._common import HIDDEN_SIZE, PARAMS, check_params

    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    hidden = next(a for a in sub.choices["fit"].populate()._actions
                  if a.dest == "hidden").type
    assert PARAMS["hidden"] == [HIDDEN_SIZE]
    top = HIDDEN_SIZE.right
    assert hidden(f"8,{top}") == (8, top)
    summary = load_ticket(f"{fitted_csv[1]}.ticket.safetensors").info[
        "sklottery_cli"]
    check_params({**summary["params"], "hidden": [8, top]}, "t")
    err = assert_one_line_error(
        iris_files, tmp_path, capsys,
        lambda d: ["fit", d / "iris.csv", "--target", "species", "--hidden",
                   f"8,{top + 1}"], 2, "--hidden")
    assert str(HIDDEN_SIZE) in err
