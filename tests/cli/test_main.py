"""The command line's entry points: the console script, ``python -m
sklottery``, the parser's own errors."""

import re
import sys
from importlib import import_module

import pytest

from sklottery import cli
from sklottery.tickets import load_ticket
from tests.cli.conftest import FAST, ROOT, assert_one_line_error, run_module


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


def test_errors_through_python_m_are_one_line(iris_files):
    result = run_module("fit", iris_files / "iris.csv", "--target", "colour")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "no column 'colour'" in result.stderr
    assert "Traceback" not in result.stderr


ERRORS = [
    (lambda d: ["frobnicate"], 2, "invalid choice"),
    (lambda d: [], 2, "required"),
]


@pytest.mark.parametrize("make_args, code, message", ERRORS)
def test_errors_are_one_line(iris_files, tmp_path, capsys, make_args, code, message):
    assert_one_line_error(iris_files, tmp_path, capsys, make_args, code, message)
