"""Fixtures and helpers of the command-line tests: tables on disk, a fitted
ticket file, ``python -m sklottery`` in a fresh interpreter."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sklottery import cli
from tests.conftest import cli_error

ROOT = Path(__file__).resolve().parents[2]
#: ``fit`` options for a fit of a second or so.
FAST = ["--rounds", "1", "--epochs", "1", "--hidden", "8", "--no-progress"]


def run_module(*args, cwd=None):
    """``python -m sklottery ARGS`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("SKLOTTERY_TRACEBACK", None)
    return subprocess.run(
        [sys.executable, "-m", "sklottery", *map(str, args)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )


def assert_one_line_error(iris_files, tmp_path, capsys, make_args, code, message):
    """``make_args(d)`` run in a folder ``d`` holding ``iris.csv``: exit status
    ``code`` and one line on stderr, from ``sklottery``, naming ``message``;
    returns that line."""
    (tmp_path / "iris.csv").write_bytes((iris_files / "iris.csv").read_bytes())
    err = cli_error(make_args(tmp_path), capsys, code)
    assert message in err
    assert err.startswith("sklottery")
    return err


@pytest.fixture(scope="module")
def iris_files(tmp_path_factory, iris_table):
    d = tmp_path_factory.mktemp("data")
    iris_table.to_csv(d / "iris.csv", index=False)
    iris_table.to_parquet(d / "iris.parquet")
    return d


@pytest.fixture(scope="module")
def fitted_csv(iris_files):
    """``python -m sklottery fit`` on iris.csv: ``(its result, --out)``."""
    out = iris_files / "out" / "iris"
    result = run_module("fit", iris_files / "iris.csv", "--target", "species",
                        "--out", out, *FAST)
    return result, out


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A string target, a categorical column, and new rows with a city unseen
    at fit time; ``shop.ticket.safetensors`` fitted on them."""
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
