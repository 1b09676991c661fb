"""The progress bar over the rounds (verbose > 0): display only."""

import sys

import pytest

from sklottery.lottery import RoundRecord
from sklottery.lottery._progress import RoundProgress

pytestmark = pytest.mark.lottery(n_rounds=1, prune_rate=0.6)


def test_round_progress_shows_each_completed_round(capsys):
    pytest.importorskip("tqdm")
    bar = RoundProgress(total=3, initial=1)
    record = RoundRecord(
        round=1, weights_remaining=0.25, n_weights=10, epochs=1, train_loss=0.1,
        valid_loss=0.2, score=0.875, score_on="valid", wall_time=0.0,
    )
    bar.update(record)
    bar.close()
    err = capsys.readouterr().err
    assert "lottery rounds" in err and "2/3" in err
    assert "sparsity=0.750" in err and "score=0.8750" in err


def test_verbose_progress_bar(data, capsys, make_clf):
    pytest.importorskip("tqdm")
    X, y = data
    make_clf(verbose=1).fit(X, y)
    err = capsys.readouterr().err
    assert "lottery rounds" in err
    assert "2/2" in err
    assert "sparsity=" in err and "score=" in err


def test_quiet_by_default(data, capsys, make_clf):
    X, y = data
    make_clf().fit(X, y)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_verbose_without_tqdm(data, monkeypatch, make_clf):
    X, y = data
    monkeypatch.setitem(sys.modules, "tqdm", None)
    clf = make_clf(verbose=1)
    with pytest.raises(ImportError, match=r"sklottery\[progress\]"):
        clf.fit(X, y)
    assert not hasattr(clf, "n_features_in_")  # nothing was fitted


def test_verbose_warm_start_continues_the_bar(data, capsys, make_clf):
    pytest.importorskip("tqdm")
    X, y = data
    clf = make_clf(verbose=1, warm_start=True).fit(X, y)
    capsys.readouterr()
    clf.set_params(n_rounds=3).fit(X, y)
    err = capsys.readouterr().err
    assert "4/4" in err and "sparsity=" in err
    assert clf.rounds_["round"].tolist() == [0, 1, 2, 3]
