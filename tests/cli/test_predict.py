"""``sklottery predict``, target scaling, bad ticket files."""

import io

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from sklottery import cli
from sklottery.cli import _summary as cli_summary
from sklottery.tickets import load_ticket
from tests.cli.conftest import assert_one_line_error


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

    clf = LotteryTicketClassifier(cli_summary.make_net("classification", [16]))
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


# (make the file, status of report/predict, what the error says); a summary
# field out of range or malformed is refused like a bad option (status 2)
BAD_TICKETS = [
    (lambda src, d: d / "cut.safetensors", 1, "truncated or corrupt"),
    (lambda src, d: _crafted(src, d, "t1", inner=lambda h: h["estimator"][
        "state"].update(selected_round=99)), 1, "'selected_round' is 99"),
    (lambda src, d: _crafted(src, d, "t2", inner=lambda h: h["rounds"][0].pop(
        "round")), 1, "round record 0 has no field 'round'"),
    (lambda src, d: _crafted(src, d, "t3", inner=_summary_edit(params=None)),
     2, "summary field 'params' must be a dict"),
    (lambda src, d: _crafted(src, d, "t4", inner=_summary_edit(
        preprocessing={"columns": [{"name": "x"}]})), 2,
     "'preprocessing.columns'[0]"),
    (lambda src, d: _crafted(src, d, "t5", inner=_summary_edit(
        scaler={"mean": [1.0], "scale": [0.0]})), 2, "'scaler.mean'/'scaler.scale'"),
    (lambda src, d: _crafted(src, d, "t6", inner=lambda h: h["info"].pop(
        "sklottery_cli")), 1, "not written by sklottery fit"),
]


@pytest.mark.parametrize("command", ["report", "predict"])
@pytest.mark.parametrize("make, code, message", BAD_TICKETS)
def test_bad_ticket_files_are_one_line(shop, tmp_path, capsys, command, make,
                                       code, message):
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
    assert status == code
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err


# -- issue 19: every field of the summary checked, before anything is built -----
def _params_edit(**fields):
    return lambda h: h["info"]["sklottery_cli"]["params"].update(fields)


CRAFTED_PARAMS = [
    ({"epochs": -1}, "'params.epochs'"),
    ({"epochs": True}, "'params.epochs'"),
    ({"batch_size": 0}, "'params.batch_size'"),
    ({"lr": -0.1}, "'params.lr'"),
    ({"lr": "fast"}, "'params.lr'"),
    ({"seed": -1}, "'params.seed'"),
    ({"n_rounds": -1}, "'params.n_rounds'"),
    ({"prune_rate": 1.5}, "'params.prune_rate'"),
    ({"strategy": "biggest"}, "'params.strategy'"),
    ({"rewind": "later"}, "'params.rewind'"),
    ({"scope": ["hidden.0"]}, "'params.scope'"),
    ({"select": "first"}, "'params.select'"),
    ({"schedule": "sometimes"}, "'params.schedule'"),
    ({"sparse_training": "maybe"}, "'params.sparse_training'"),
    ({"hidden": []}, "'params.hidden'"),
    ({"hidden": [0]}, "'params.hidden'"),
    ({"hidden": "16"}, "'params.hidden'"),
    ({"hidden": [2**20 + 1]}, "'params.hidden' must be a non-empty list of sizes in"),
]
CRAFTED_FIELDS = [
    ({"weights_remaining": 2.0}, "'weights_remaining'"),
    ({"selected_round": 7}, "'selected_round' is 7"),
    ({"test_score": "high"}, "'test_score'"),
    ({"interrupted": "no"}, "'interrupted'"),
    ({"n_train": -5}, "'n_train'"),
    ({"target": 3}, "'target'"),
]


@pytest.mark.parametrize("command", ["report", "predict", "sanity-check"])
@pytest.mark.parametrize("edit, message", [
    *[(_params_edit(**e), m) for e, m in CRAFTED_PARAMS],
    *[(_summary_edit(**e), m) for e, m in CRAFTED_FIELDS],
])
def test_crafted_summaries_are_refused(shop, tmp_path, capsys, monkeypatch,
                                       command, edit, message):
    path = _crafted(shop / "shop.ticket.safetensors", tmp_path, "t", inner=edit)
    _no_network_built(monkeypatch)
    status = cli.main([command, str(path)] + (
        [str(shop / "shop.csv")] if command != "report" else []))
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and message in err, err
    assert err.startswith(f"sklottery {command}: error: {path}: summary field")


def _no_network_built(monkeypatch):
    def make_net(*args, **kwargs):
        raise AssertionError("a network was built")

    monkeypatch.setattr(cli_summary, "make_net", make_net)


@pytest.mark.parametrize("command", ["predict", "sanity-check"])
@pytest.mark.parametrize("edit, shown", [
    # 4.5 kB of tensors claiming two 30000-wide layers: 0.1 built them
    (_params_edit(hidden=[30000, 30000]), "hidden.0.weight: summary (30000, 4)"),
    (_params_edit(hidden=[16, 16]), "hidden.2.weight: summary (16, 16), file none"),
    (_summary_edit(n_features=9), "hidden.0.weight: summary (16, 9), file (16, 4)"),
    (_summary_edit(classes=["a", "b", "c"]), "output.weight: summary (3, 16)"),
])
def test_a_summary_not_matching_the_tensors_is_refused_before_building(
    shop, tmp_path, capsys, monkeypatch, command, edit, shown
):
    path = _crafted(shop / "shop.ticket.safetensors", tmp_path, "t", inner=edit)
    _no_network_built(monkeypatch)
    status = cli.main([command, str(path), str(shop / "shop.csv")])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and "does not match the file's tensors" in err, err
    assert shown in err, err


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


ERRORS = [
    (lambda d: ["predict", d / "absent.safetensors", d / "iris.csv"], 1,
     "no such file"),
]


@pytest.mark.parametrize("make_args, code, message", ERRORS)
def test_errors_are_one_line(iris_files, tmp_path, capsys, make_args, code, message):
    assert_one_line_error(iris_files, tmp_path, capsys, make_args, code, message)
