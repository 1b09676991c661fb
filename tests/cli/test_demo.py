"""``sklottery demo``: the README's main job."""

from tests.cli.conftest import run_module


def test_demo_runs_the_main_job():
    result = run_module("demo", "--rounds", "1", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert "Lottery-ticket rounds on sklearn digits" in result.stdout
    assert "final ticket:" in result.stdout
