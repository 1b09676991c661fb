"""``sklottery fit --granularity``: structured tickets from the command line,
their unit columns in the rounds CSV, the summary, and bad values."""

import numpy as np
import pandas as pd
import pytest
import torch

from sklottery import cli
from sklottery.tickets import load_ticket
from tests.cli.conftest import assert_one_line_error

#: a fit of a second or so: two rounds of one epoch, 8 hidden units
OPTIONS = ["--epochs", "1", "--hidden", "8", "--no-progress"]


def fit(iris_files, out, *args):
    return cli.main(["fit", str(iris_files / "iris.csv"), "--target", "species",
                     "--out", str(out), *OPTIONS, *args])


@pytest.fixture(scope="module")
def neuron_fit(iris_files):
    out = iris_files / "neuron" / "iris"
    assert fit(iris_files, out, "--rounds", "2", "--granularity", "neuron") == 0
    return out


def test_rounds_csv_has_the_unit_columns(neuron_fit):
    rounds = pd.read_csv(f"{neuron_fit}.rounds.csv")
    assert rounds["round"].tolist() == [0, 1, 2]
    # 8 hidden units at the default rate 0.2: 8 -> 6 -> 5
    assert rounds["n_units"].tolist() == [8, 6, 5]
    assert rounds["units_remaining"].tolist() == pytest.approx([1.0, 0.75, 0.625])
    # a unit takes its 4 inputs and its 3 outputs with it
    assert rounds["n_weights"].tolist() == [7 * k for k in (8, 6, 5)]
    assert rounds["weights_remaining"].tolist() == pytest.approx([1.0, 0.75, 0.625])


def test_ticket_keeps_the_granularity_and_whole_units(neuron_fit):
    ticket = load_ticket(f"{neuron_fit}.ticket.safetensors")
    summary = ticket.info["sklottery_cli"]
    assert summary["params"]["granularity"] == "neuron"
    assert [r["n_units"] for r in ticket.rounds] == [8, 6, 5]
    hidden, output = ticket.masks["hidden.0.weight"], ticket.masks["output.weight"]
    keep = hidden.any(axis=1)
    assert int(keep.sum()) == 5
    assert (hidden.all(axis=1) == keep).all()  # a unit's row: all or nothing
    assert (output == keep[None, :]).all()  # and its consumers' columns
    for name, mask in ticket.masks.items():
        assert int(mask.sum()) == int((ticket.values[name] != 0).sum()), name


def test_structured_ticket_predicts_and_loads(neuron_fit, iris_files, capsys):
    from sklottery import LotteryTicketClassifier
    from sklottery.cli import _summary as cli_summary

    capsys.readouterr()
    preds = neuron_fit.parent / "preds.csv"
    assert cli.main(["predict", f"{neuron_fit}.ticket.safetensors",
                     str(iris_files / "iris.csv"), "--out", str(preds)]) == 0
    labels = pd.read_csv(preds)["species"]
    assert len(labels) == 150
    assert set(labels) <= {"setosa", "versicolor", "virginica"}
    # the summary's parameters give an estimator that loads it
    summary = load_ticket(f"{neuron_fit}.ticket.safetensors").info["sklottery_cli"]
    kwargs = cli_summary.lottery_kwargs(summary["params"])
    assert kwargs["granularity"] == "neuron"
    clf = LotteryTicketClassifier(cli_summary.make_net("classification", [8]), **kwargs)
    clf.load_ticket(f"{neuron_fit}.ticket.safetensors")
    assert clf.layers_["units_kept"].tolist()[0] == 5
    frame = pd.read_csv(iris_files / "iris.csv").drop(columns="species")
    X = frame.to_numpy(np.float32)
    scaler = summary["scaler"]
    X = ((X - scaler["mean"]) / scaler["scale"]).astype(np.float32)
    assert clf.predict(X).tolist() == labels.tolist()
    small = clf.to_compact(X)
    assert small.removed_units == {"hidden.0": 3}
    with torch.no_grad():
        torch.testing.assert_close(small(torch.as_tensor(X)),
                                   clf.net_.module_.eval()(torch.as_tensor(X)),
                                   atol=1e-5, rtol=1e-5)


def test_channel_is_neuron_and_weight_has_no_units(iris_files):
    out = iris_files / "channel" / "iris"
    assert fit(iris_files, out, "--rounds", "1", "--granularity", "channel") == 0
    assert pd.read_csv(f"{out}.rounds.csv")["n_units"].tolist() == [8, 6]
    out = iris_files / "weight" / "iris"
    assert fit(iris_files, out, "--rounds", "1", "--granularity", "weight") == 0
    rounds = pd.read_csv(f"{out}.rounds.csv")
    assert {"n_units", "units_remaining"} <= set(rounds.columns)
    assert rounds["n_units"].isna().all() and rounds["units_remaining"].isna().all()
    summary = load_ticket(f"{out}.ticket.safetensors").info["sklottery_cli"]
    assert summary["params"]["granularity"] == "weight"


@pytest.mark.parametrize("value", ["bogus", "Neuron", ""])
def test_bad_granularity_is_a_usage_error(iris_files, tmp_path, capsys, value):
    err = assert_one_line_error(
        iris_files, tmp_path, capsys,
        lambda d: ["fit", d / "iris.csv", "--target", "species", "--granularity",
                   value],
        2, "--granularity",
    )
    assert f"invalid choice: '{value}'" in err
    assert not list(tmp_path.glob("*.ticket.safetensors"))
