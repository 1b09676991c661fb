"""``sklottery report``: a fit's summary printed again."""

import pytest

from tests.cli.conftest import assert_one_line_error, run_module


def test_report_prints_the_summary_again(fitted_csv):
    result, out = fitted_csv
    again = run_module("report", f"{out}.ticket.safetensors")
    assert again.returncode == 0, again.stderr
    assert again.stdout == result.stdout
    assert again.stderr == ""


def _foreign_ticket(d):
    import torch

    from sklottery.tickets import save_ticket

    module = torch.nn.Linear(2, 2)
    save_ticket(d / "plain", module, {"weight": torch.ones(2, 2, dtype=bool)})
    return d / "plain.safetensors"


ERRORS = [
    (lambda d: ["report", d / "iris.csv"], 1, "not a valid sklottery ticket"),
    (lambda d: ["report", d / "absent.safetensors"], 1, "no such file"),
    (lambda d: ["report", _foreign_ticket(d)], 1, "not written by sklottery fit"),
]


@pytest.mark.parametrize("make_args, code, message", ERRORS)
def test_errors_are_one_line(iris_files, tmp_path, capsys, make_args, code, message):
    assert_one_line_error(iris_files, tmp_path, capsys, make_args, code, message)
