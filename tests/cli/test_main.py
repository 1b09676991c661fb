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


# -- issue 19: --help imports no torch; Ctrl-C while importing -----------------
HEAVY = ("torch", "skorch", "sklearn", "pandas")
#: Runs the command line without ``sklottery/__init__.py`` (which imports
#: every public name, so torch) and prints which of the modules named after
#: the package's path it imported.
WITHOUT_PACKAGE_FACE = """
import sys, types
package = types.ModuleType("sklottery")
package.__path__ = [sys.argv[1]]
sys.modules["sklottery"] = package
from sklottery.cli import build_parser, main
build_parser()
for argv, code in ([["--help"], 0], [["frobnicate"], 2], [[], 2],
                   [["report", "--help"], 0], [["predict", "--help"], 0]):
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code == code, (argv, exc.code)
    else:
        raise AssertionError(argv)
print(sorted(m for m in sys.argv[2:] if m in sys.modules))
"""


def test_help_and_usage_errors_import_no_torch():
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_PACKAGE_FACE, str(ROOT / "sklottery"),
         *HEAVY],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]", result.stdout


def test_python_m_sklottery_help_imports_no_torch():
    # the package face loads its subpackages on first use (PEP 562)
    import subprocess

    code = ("import runpy, sys; sys.argv = ['sklottery', '--help']\n"
            "try:\n    runpy.run_module('sklottery', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, timeout=300, cwd=ROOT)
    assert result.stdout.splitlines()[-1] == "[]", result.stdout


def test_ctrl_c_while_a_command_imports_is_one_line(monkeypatch, capsys):
    from sklottery.cli import _parser

    def interrupted(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(_parser.importlib, "import_module", interrupted)
    monkeypatch.setattr(sys, "argv", ["sklottery", "fit", "data.csv"])
    with pytest.raises(SystemExit) as exit_info:
        cli.console_main()
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    assert err == "sklottery: interrupted\n"
