"""benchmarks/reproduce_mnist.py, in its --quick mode on digits (tiny run)."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "reproduce_mnist", ROOT / "benchmarks" / "reproduce_mnist.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_writes_consistent_results(bench, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    bench.main(["--quick", "--rounds", "2", "--epochs", "1", "--seeds", "1",
                "--eval-every", "5", "--out", str(tmp_path)])
    results = pd.read_csv(tmp_path / "reproduce_digits.csv")
    assert (tmp_path / "reproduce_digits.png").stat().st_size > 0
    table = pd.read_csv(tmp_path / "reproduce_digits_table.csv")
    assert table["round"].tolist() == [0, 1, 2]

    arms = results[results["arm"].isin(bench.ALL_ARMS)]
    assert sorted(arms["arm"].unique()) == sorted(bench.DEFAULT_ARMS)
    for _, rows in arms.groupby("arm"):
        assert rows["round"].tolist() == [0, 1, 2]
        assert rows["iterations"].tolist() == [17, 17, 17]  # 1,000 rows / 60
        # checked every 5 iterations and at the end of the round
        assert set(rows["early_stop_iteration"]) <= {5, 10, 15, 17}
    # the dense round 0 is the same network in every arm (same seed)
    dense = arms[arms["round"] == 0]
    assert dense["test_acc"].nunique() == 1
    assert dense["early_stop_iteration"].nunique() == 1
    # the random-reinit control trains the winning tickets' masks afresh
    ticket = arms[arms["arm"] == "winning ticket"].set_index("round")
    reinit = arms[arms["arm"] == bench.REINIT].set_index("round")
    assert reinit.loc[0, "test_acc"] == ticket.loc[0, "test_acc"]  # shared dense row
    # every arm prunes to the same sizes; supermasks are one-shot at each size
    sizes = arms.groupby("arm")["n_weights"].apply(list)
    assert len({tuple(v) for v in sizes}) == 1
    masks = results[results["arm"].isin(bench.SUPERMASK)]
    assert sorted(masks["round"].unique()) == [1, 2]
    np.testing.assert_array_equal(
        masks.groupby("round")["n_weights"].first().to_numpy(),
        arms[arms["arm"] == "winning ticket"]["n_weights"].to_numpy()[1:],
    )
    assert "winning ticket acc" in capsys.readouterr().out

    # --from-csv redraws the same table without training
    again = tmp_path / "again"
    bench.main(["--from-csv", str(tmp_path / "reproduce_digits.csv"),
                "--out", str(again)])
    pd.testing.assert_frame_equal(
        pd.read_csv(again / "reproduce_digits_table.csv"), table
    )


def test_supermask_quick_run(tmp_path):
    """benchmarks/reproduce_supermask.py --quick, tiny: both experiments."""
    spec = importlib.util.spec_from_file_location(
        "reproduce_supermask", ROOT / "benchmarks" / "reproduce_supermask.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--mask-epochs", "2", "--dense-epochs", "2",
                 "--snapshots", "1", "2", "--levels", "2", "10",
                 "--out", str(tmp_path)])
    learned = pd.read_csv(tmp_path / "reproduce_supermask_digits_learned.csv")
    assert learned["weights_remaining"].tolist() == [0.5]
    assert learned["test_acc"].iloc[0] > 0.2  # far above chance after 2 epochs
    untrained = pd.read_csv(tmp_path / "reproduce_supermask_digits_untrained.csv")
    # snapshots x levels x survivor values x bias treatments
    assert len(untrained) == 2 * 2 * 2 * 2
    assert set(untrained["biases"]) == {"init", "zero"}
    kept = untrained.groupby("level")["weights_remaining"]
    assert kept.max()[10] < kept.min()[2]


def test_conv_quick_runs_of_two_seeds_merge(tmp_path):
    """reproduce_conv.py: a CI-sized run per seed, then one table of both."""
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location(
        "reproduce_conv", ROOT / "benchmarks" / "reproduce_conv.py"
    )
    conv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conv)
    for seed in (0, 1):
        conv.main(["--quick", "--rounds", "1", "--epochs", "1", "--eval-every",
                   "5", "--first-seed", str(seed), "--out", str(tmp_path / str(seed))])
    runs = [tmp_path / s / "reproduce_conv_digits.csv" for s in ("0", "1")]
    assert [pd.read_csv(p)["seed"].unique().tolist() for p in runs] == [[0], [1]]
    conv.main(["--merge", *map(str, runs), "--out", str(tmp_path / "both")])
    merged = pd.read_csv(tmp_path / "both" / "reproduce_conv_digits.csv")
    assert sorted(merged["seed"].unique()) == [0, 1]
    table = pd.read_csv(tmp_path / "both" / "reproduce_conv_digits_table.csv")
    assert table["round"].tolist() == [0, 1]
    assert (tmp_path / "both" / "reproduce_conv_digits.png").stat().st_size > 0
