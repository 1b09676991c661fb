"""Scorers and a refit rule for choosing tickets with scikit-learn's searches.

* :func:`sparsity_scorer` -- the fraction of prunable weights that are zero,
  for ``GridSearchCV(scoring={...})`` and ``cross_validate``.
* :func:`make_ticket_scorer` -- rewards sparsity only while the score stays
  within a tolerance of a baseline (by default the candidate's own dense
  round): a single number that ranks "winning tickets" (Frankle & Carbin,
  2019) first, sparsest first.
* :func:`make_sparsest_refit` -- a ``refit`` callable for multi-metric
  searches: the sparsest candidate whose mean test score is within ``tol``
  of the best.

Examples
--------
>>> from sklottery.scoring import make_sparsest_refit
>>> refit = make_sparsest_refit(tol=0.02)
>>> refit({"mean_test_score": [0.90, 0.89, 0.85, 0.88],
...        "mean_test_sparsity": [0.2, 0.5, 0.9, 0.5]})
1
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.metrics import check_scoring
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from .estimators import BaseLotteryTicket

__all__ = ["make_sparsest_refit", "make_ticket_scorer", "sparsity_scorer"]


def _lottery_estimator(estimator):
    """The fitted sklottery estimator inside ``estimator`` (itself, or the
    final step of a Pipeline)."""
    while isinstance(estimator, Pipeline):
        estimator = estimator[-1]
    if not isinstance(estimator, BaseLotteryTicket):
        raise TypeError(
            "the sklottery scorers need a sklottery estimator (or a Pipeline ending "
            f"in one); got {type(estimator).__name__}"
        )
    check_is_fitted(estimator)
    return estimator


def sparsity_scorer(estimator, X=None, y=None) -> float:
    """Fraction of the prunable weights that are zero in the fitted ticket.

    A scorer with scikit-learn's ``(estimator, X, y)`` signature (``X`` and
    ``y`` are not used): ``GridSearchCV(..., scoring={"score": "accuracy",
    "sparsity": sparsity_scorer}, refit=make_sparsest_refit())``. Higher is
    sparser. Accepts a Pipeline ending in a sklottery estimator.

    Parameters
    ----------
    estimator : fitted sklottery estimator or Pipeline ending in one
    X, y : ignored
        Present for scikit-learn's scorer signature.

    Returns
    -------
    float
        ``estimator.sparsity_`` (of the round chosen by ``select``).
    """
    return float(_lottery_estimator(estimator).sparsity_)


def _check_tol(tol):
    if (
        isinstance(tol, bool)
        or not isinstance(tol, numbers.Real)
        or not float(tol) >= 0.0
    ):
        raise ValueError(f"tol must be a float >= 0; got {tol!r}")
    return float(tol)


class _TicketScorer:
    def __init__(self, scoring, tol, baseline):
        self.scoring = scoring
        self.tol = tol
        self.baseline = baseline

    def _baseline(self, lottery):
        if self.baseline != "dense":
            return float(self.baseline)
        rounds = lottery.rounds_
        if len(rounds) == 0 or rounds["score_on"].iloc[0] != "valid":
            raise ValueError(
                "make_ticket_scorer(baseline='dense') compares with the dense "
                "round's validation score, but this estimator scored its rounds "
                "on the training data: give its net a validation split "
                "(net__train_split=ValidSplit(...)) or pass a numeric baseline"
            )
        return float(rounds["score"].iloc[0])

    def __call__(self, estimator, X, y=None):
        lottery = _lottery_estimator(estimator)
        score = float(check_scoring(estimator, scoring=self.scoring)(estimator, X, y))
        floor = self._baseline(lottery) - self.tol
        if score >= floor:
            return float(lottery.sparsity_)
        return score - floor  # < 0: below every ticket, better scores higher

    def __repr__(self):
        return (
            f"make_ticket_scorer(scoring={self.scoring!r}, tol={self.tol!r}, "
            f"baseline={self.baseline!r})"
        )


def make_ticket_scorer(scoring=None, *, tol=0.01, baseline="dense"):
    """A scorer rewarding sparsity only while the score stays within ``tol``.

    For a fitted candidate with test score ``s`` and a baseline ``b``:

    * ``s >= b - tol`` (a winning ticket): returns its sparsity, in [0, 1];
    * otherwise returns ``s - (b - tol)``, a negative number: every ticket
      ranks above every non-ticket, and among non-tickets the better score
      ranks higher.

    Parameters
    ----------
    scoring : str, callable or None, default=None
        How ``s`` is measured on the test data (any scikit-learn scoring
        name or scorer); ``None`` uses the estimator's ``score`` (accuracy
        for the classifier, R² for the regressor).
    tol : float >= 0, default=0.01
        Allowed drop below the baseline, in score units.
    baseline : "dense" or float, default="dense"
        ``"dense"`` compares with the candidate's own dense round (round 0
        of ``rounds_``), scored on its validation split -- the net needs a
        ``train_split`` and ``scoring`` must be ``None`` so both scores
        measure the same thing. A float is an absolute reference, e.g. a
        dense network's known test accuracy.

    Returns
    -------
    callable
        A scorer ``(estimator, X, y) -> float`` for ``GridSearchCV`` and
        friends.

    References
    ----------
    J. Frankle and M. Carbin, "The Lottery Ticket Hypothesis: Finding Sparse,
    Trainable Neural Networks", ICLR 2019 (a winning ticket matches the dense
    network's accuracy).
    """
    tol = _check_tol(tol)
    if isinstance(baseline, str):
        if baseline != "dense":
            raise ValueError(
                f"baseline={baseline!r} is not valid; use 'dense' or a float"
            )
        if scoring is not None:
            raise ValueError(
                "baseline='dense' compares with the rounds' own score (the "
                "estimator's score), so it needs scoring=None; pass a float "
                "baseline to use another scoring"
            )
    elif isinstance(baseline, bool) or not isinstance(baseline, numbers.Real):
        raise ValueError(f"baseline must be 'dense' or a float; got {baseline!r}")
    return _TicketScorer(scoring, tol, baseline)


class _SparsestRefit:
    def __init__(self, tol, score, sparsity):
        self.tol = tol
        self.score = score
        self.sparsity = sparsity

    def __call__(self, cv_results) -> int:
        keys = (f"mean_test_{self.score}", f"mean_test_{self.sparsity}")
        missing = [k for k in keys if k not in cv_results]
        if missing:
            found = sorted(k for k in cv_results if k.startswith("mean_test_"))
            raise ValueError(
                f"make_sparsest_refit(score={self.score!r}, "
                f"sparsity={self.sparsity!r}) needs {missing} in cv_results_; "
                f"found {found}. Name the scorers with scoring={{{self.score!r}: "
                f"..., {self.sparsity!r}: sparsity_scorer}}"
            )
        score = np.asarray(cv_results[keys[0]], dtype=float)
        sparsity = np.asarray(cv_results[keys[1]], dtype=float)
        if np.all(np.isnan(score)):
            raise ValueError(f"every candidate's {keys[0]} is NaN")
        ok = score >= np.nanmax(score) - self.tol
        # sparsest first, then the better score, then the first candidate
        order = np.lexsort((-score, -np.where(ok, sparsity, -math.inf)))
        return int(order[0])

    def __repr__(self):
        return (
            f"make_sparsest_refit(tol={self.tol!r}, score={self.score!r}, "
            f"sparsity={self.sparsity!r})"
        )


def make_sparsest_refit(tol=0.01, *, score="score", sparsity="sparsity"):
    """A ``refit`` rule: the sparsest candidate within ``tol`` of the best.

    For a multi-metric search such as ``GridSearchCV(est, grid,
    scoring={"score": "accuracy", "sparsity": sparsity_scorer},
    refit=make_sparsest_refit(0.01))``: among the candidates whose
    ``mean_test_<score>`` is at least the best one minus ``tol``, pick the
    one with the highest ``mean_test_<sparsity>`` (ties: the better score,
    then the first). The search then has no ``best_score_``; read
    ``cv_results_`` at ``best_index_``.

    Parameters
    ----------
    tol : float >= 0, default=0.01
        Allowed drop below the best mean test score, in score units.
    score, sparsity : str, default="score", "sparsity"
        The names of the two scorers in the search's ``scoring`` dict.

    Returns
    -------
    callable
        ``refit(cv_results) -> best_index`` (picklable).
    """
    return _SparsestRefit(_check_tol(tol), score, sparsity)
