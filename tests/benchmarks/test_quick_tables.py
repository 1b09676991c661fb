"""The committed quick tables (benchmarks/results/quick/) against a fresh run.

Every ``--quick`` mode that benchmarks/RESULTS.md quotes wrote its tables into
``benchmarks/results/quick`` (``--out benchmarks/results/quick``); the runs
are seeded and single-threaded, so a fresh run must give the same tables
exactly -- a figure of RESULTS.md that no longer comes back fails here. Only
the timing columns (CPU seconds) are left out. The quick modes that take a
few seconds run always; the minute-long ones (reproduce_mnist, reproduce_conv
and reproduce_at_init ``--quick``) only with SKLOTTERY_SLOW_BENCHMARKS=1.

The scripts write to the uncommitted ``benchmarks/output`` unless given
``--out``: the committed figures are refreshed only on purpose.
"""

import importlib.util
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICK = ROOT / "benchmarks" / "results" / "quick"
SLOW = pytest.mark.skipif(
    not os.environ.get("SKLOTTERY_SLOW_BENCHMARKS"),
    reason="a minute or more of CPU: set SKLOTTERY_SLOW_BENCHMARKS=1",
)


def load(script):
    spec = importlib.util.spec_from_file_location(
        script, ROOT / "benchmarks" / f"{script}.py"
    )
    module = importlib.util.module_from_spec(spec)
    # registered, as when run as a script: joblib's memory (reproduce_at_init)
    # pickles the script's classes by module name
    sys.modules[script] = module
    spec.loader.exec_module(module)
    return module


def timing(column):
    return column.endswith("cpu_s")


def assert_same_tables(fresh_dir, names):
    for name in names:
        committed = pd.read_csv(QUICK / name)
        fresh = pd.read_csv(fresh_dir / name)
        drop = [c for c in committed.columns if timing(c)]
        assert list(fresh.columns) == list(committed.columns), name
        pd.testing.assert_frame_equal(
            fresh.drop(columns=drop), committed.drop(columns=drop),
            check_exact=True, obj=name,
        )


@pytest.mark.parametrize(
    ("script", "args", "names"),
    [
        pytest.param(
            "reproduce_sanity", ["--quick", "--stability"],
            ["reproduce_sanity_digits.csv", "reproduce_sanity_digits_stability.csv"],
            id="sanity",
        ),
        pytest.param(
            "reproduce_supermask", ["--quick"],
            ["reproduce_supermask_digits_learned.csv",
             "reproduce_supermask_digits_untrained.csv"],
            id="supermask",
        ),
        pytest.param(
            "reproduce_mnist", ["--quick"],
            ["reproduce_digits.csv", "reproduce_digits_table.csv"],
            id="mnist", marks=SLOW,
        ),
        pytest.param(
            "reproduce_at_init", ["--quick"],
            ["reproduce_at_init_digits.csv", "reproduce_at_init_digits_table.csv"],
            id="at_init", marks=SLOW,
        ),
        pytest.param(
            "reproduce_conv", ["--quick"],
            ["reproduce_conv_digits.csv", "reproduce_conv_digits_table.csv"],
            id="conv", marks=SLOW,
        ),
    ],
)
def test_quick_tables_come_back(script, args, names, tmp_path):
    if script in ("reproduce_mnist", "reproduce_at_init", "reproduce_conv"):
        pytest.importorskip("matplotlib")
    load(script).main([*args, "--out", str(tmp_path)])
    assert_same_tables(tmp_path, names)


def test_every_committed_quick_table_is_checked():
    checked = {
        "reproduce_sanity_digits.csv", "reproduce_sanity_digits_stability.csv",
        "reproduce_supermask_digits_learned.csv",
        "reproduce_supermask_digits_untrained.csv",
        "reproduce_digits.csv", "reproduce_digits_table.csv",
        "reproduce_at_init_digits.csv", "reproduce_at_init_digits_table.csv",
        "reproduce_conv_digits.csv", "reproduce_conv_digits_table.csv",
    }
    assert {p.name for p in QUICK.glob("*.csv")} == checked


def test_no_column_of_the_mnist_tables_is_timed():
    """Two runs of reproduce_mnist.py write the same bytes (``cmp``): its CSVs
    carry no wall or CPU time."""
    for path in [*QUICK.glob("reproduce_digits*.csv"),
                 *QUICK.parent.glob("reproduce_mnist*.csv")]:
        columns = pd.read_csv(path, nrows=1).columns
        assert not [c for c in columns if "time" in c or timing(c)], path


def committed_bytes():
    results = ROOT / "benchmarks" / "results"
    return {p: p.read_bytes() for p in sorted(results.rglob("*")) if p.is_file()}


def test_default_output_is_not_the_committed_folder(tmp_path, monkeypatch):
    """Without --out, every script writes to benchmarks/output (here: a
    temporary folder in its place); the committed results stay as they are."""
    pytest.importorskip("matplotlib")
    before = committed_bytes()
    mnist = load("reproduce_mnist")
    assert mnist.OUTPUT == ROOT / "benchmarks" / "output"
    monkeypatch.setattr(mnist, "OUTPUT", tmp_path / "mnist")
    # --from-csv used to write next to the CSV it read: the committed folder
    mnist.main(["--from-csv", str(QUICK / "reproduce_digits.csv")])
    assert (tmp_path / "mnist" / "reproduce_digits_table.csv").is_file()

    supermask = load("reproduce_supermask")  # its default was benchmarks/results
    monkeypatch.setattr(supermask.rm, "OUTPUT", tmp_path / "supermask")
    supermask.main(["--quick", "--only", "learned", "--mask-epochs", "1"])
    assert (tmp_path / "supermask" / "reproduce_supermask_digits_learned.csv").is_file()

    conv = load("reproduce_conv")  # --merge wrote next to its first CSV
    monkeypatch.setattr(conv.rm, "OUTPUT", tmp_path / "conv")
    conv.main(["--merge", str(QUICK / "reproduce_conv_digits.csv")])
    assert (tmp_path / "conv" / "reproduce_conv_digits_table.csv").is_file()
    assert committed_bytes() == before
