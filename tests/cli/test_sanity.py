"""``sklottery sanity-check``: a fit's ticket beside its controls, end to end."""

import pandas as pd
import pytest

from sklottery import cli
from sklottery.analysis._sanity import COLUMNS, CONTROLS
from sklottery.tickets import load_ticket, save_estimator_ticket
from tests.conftest import cli_error

FIT = ["--rounds", "2", "--prune-rate", "0.5", "--epochs", "3", "--hidden", "8",
       "--lr", "0.01", "--no-progress"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, iris_table):
    d = tmp_path_factory.mktemp("sanity")
    iris_table.to_csv(d / "iris.csv", index=False)
    assert cli.main(["fit", str(d / "iris.csv"), "--target", "species", "--out",
                     str(d / "iris"), *FIT]) == 0
    return d


def test_sanity_check_end_to_end(fitted, capsys):
    capsys.readouterr()
    ticket = fitted / "iris.ticket.safetensors"
    out = fitted / "sanity.csv"
    code = cli.main(["sanity-check", str(ticket), str(fitted / "iris.csv"),
                     "--repeats", "2", "--seed", "1", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "sanity-check" in printed and "accuracy on valid rows" in printed
    assert ("the ticket beats every control" in printed
            or "the ticket does NOT beat" in printed)
    table = pd.read_csv(out)
    assert list(table.columns) == list(COLUMNS)
    assert list(table["variant"]) == ["ticket", *CONTROLS] * 2
    assert table["weights_remaining"].nunique() == 1
    summary = load_ticket(ticket).info["sklottery_cli"]
    assert table["weights_remaining"].iloc[0] == pytest.approx(
        summary["weights_remaining"]
    )
    for variant in ("ticket", *CONTROLS):
        assert f"\n{variant:>8} " in printed or f"\n{variant} " in printed


def test_variants_option(fitted, capsys):
    code = cli.main(["sanity-check", str(fitted / "iris.ticket.safetensors"),
                     str(fitted / "iris.csv"), "--variants", "shuffle,reinit"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split()[0] for line in lines[2:-1]]
    assert rows == ["ticket", "reinit", "shuffle"]


def _no_target(d):
    pd.read_csv(d / "iris.csv").drop(columns="species").to_csv(
        d / "x.csv", index=False)
    return d / "x.csv"


def _without_rewind_point(d):
    saved = load_ticket(d / "iris.ticket.safetensors")
    path = d / "old.ticket.safetensors"
    save_estimator_ticket(
        path, saved.values, saved.masks, estimator=saved.estimator,
        state=saved.state, rounds=saved.rounds, arrays=saved.arrays,
        info=saved.info,
    )
    return path


@pytest.mark.parametrize("make_args, code, message", [
    (lambda d: [d / "iris.ticket.safetensors", _no_target(d)], 1,
     "no column 'species' (the ticket's target)"),
    (lambda d: [d / "absent.safetensors", d / "iris.csv"], 1, "no such file"),
    (lambda d: [_without_rewind_point(d), d / "iris.csv"], 1, "no rewind point"),
    (lambda d: [d / "iris.ticket.safetensors", d / "iris.csv", "--variants",
                "shuffle,magic"], 2, "--variants"),
    (lambda d: [d / "iris.ticket.safetensors", d / "iris.csv", "--repeats", "0"],
     2, "--repeats"),
])
def test_errors_are_one_line(fitted, capsys, make_args, code, message):
    err = cli_error(["sanity-check", *make_args(fitted)], capsys, code)
    assert message in err


def test_an_at_init_ticket_end_to_end(fitted, capsys):
    """fit --schedule at_init --strategy synflow --sparse-training false, then
    sanity-check the file: the summary keeps both options and the
    sanity check rebuilds the at-init estimator from them."""
    out = fitted / "at_init"
    assert cli.main(["fit", str(fitted / "iris.csv"), "--target", "species",
                     "--out", str(out), "--schedule", "at_init", "--strategy",
                     "synflow", "--sparse-training", "false", *FIT]) == 0
    summary = load_ticket(f"{out}.ticket.safetensors").info["sklottery_cli"]
    assert summary["params"]["schedule"] == "at_init"
    assert summary["params"]["sparse_training"] is False
    rounds = pd.read_csv(f"{out}.rounds.csv")
    assert list(rounds["round"]) == [0, 1]  # the dense baseline, then at-init
    assert rounds["untrained_score"].notna().tolist() == [False, True]
    capsys.readouterr()
    assert cli.main(["sanity-check", f"{out}.ticket.safetensors",
                     str(fitted / "iris.csv"), "--variants", "inverted"]) == 0
    assert "inverted" in capsys.readouterr().out


def test_rows_without_the_tickets_classes_say_so(fitted, tmp_path, capsys):
    """Issue 19: 'y must have the classes/outputs of the estimator's fit (2
    outputs); got 2' -- now the file, the column and both sets of classes."""
    frame = pd.read_csv(fitted / "iris.csv")
    frame[frame["species"] != "virginica"].to_csv(tmp_path / "two.csv", index=False)
    err = cli_error(["sanity-check", fitted / "iris.ticket.safetensors",
                     tmp_path / "two.csv"], capsys, 1)
    assert (f"{tmp_path / 'two.csv'}: the target column 'species' holds the "
            "classes ['setosa', 'versicolor']; the ticket was fitted on the "
            "classes ['setosa', 'versicolor', 'virginica']") in err
