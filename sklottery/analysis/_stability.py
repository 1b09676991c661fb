"""Stability to SGD noise and the rewind epoch it suggests.

Frankle et al. (2020), "Linear Mode Connectivity and the Lottery Ticket
Hypothesis": train two copies of a network from the same point with
different data orders, then evaluate the error along the straight line
between the two trained weight vectors. The *error barrier* is the largest
error on that line minus the mean of the two ends' errors; a network is
*stable* from that point when the barrier is about zero (the paper: below
2%), and lottery tickets are found by rewinding to the earliest such point
(late rewinding, ``rewind=k``).

:func:`stability_analysis` measures the barrier from several candidate
rewind points -- the states after epochs ``k`` of the dense training -- of
an estimator's network, dense or under a fitted estimator's masks;
:func:`suggest_rewind_epoch` picks the earliest stable epoch of its table.
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state

from ..lottery import RoundPlan, evaluate, run_round, seeded, train_from
from ..pruning import Pruner, load_values, snapshot
from ..training import RewindCheckpoint
from ._retraining import check_estimator, prepare_retraining

__all__ = ["interpolate", "stability_analysis", "suggest_rewind_epoch"]

#: Columns of the table :func:`stability_analysis` returns.
COLUMNS = ("rewind_epoch", "repeat", "error_start", "error_end", "max_error",
           "barrier", "errors")
_MAX_SEED = np.iinfo(np.int32).max


def interpolate(a: dict, b: dict, alpha: float) -> dict:
    """``(1 - alpha) * a + alpha * b`` tensor by tensor (``torch.lerp``: exact
    at ``alpha`` 0 and 1, and ``a`` itself wherever ``a == b``); tensors
    that are not floating point (counters) are taken from ``a``."""
    return {
        n: torch.lerp(t, b[n].to(t.device), float(alpha)) if t.is_floating_point()
        else t
        for n, t in a.items()
    }


def _check_epochs(rewind_epochs, max_epochs) -> list:
    if isinstance(rewind_epochs, numbers.Integral) and not isinstance(
        rewind_epochs, bool
    ):
        rewind_epochs = [rewind_epochs]
    try:
        epochs = list(rewind_epochs)
    except TypeError:
        epochs = None
    if not epochs or any(
        isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0
        for k in epochs
    ):
        raise ValueError(
            "rewind_epochs must be a non-empty list of ints >= 0 (epochs of the "
            f"dense training); got {rewind_epochs!r}"
        )
    epochs = sorted({int(k) for k in epochs})
    if max_epochs is not None and epochs[-1] > max_epochs:
        raise ValueError(
            f"rewind_epochs={epochs}: epoch {epochs[-1]} is beyond the net's "
            f"max_epochs={max_epochs}"
        )
    return epochs


def _check_options(n_points, n_repeats, copy_seeds, use_masks):
    for name, value, least in (("n_points", n_points, 2), ("n_repeats", n_repeats, 1)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
            value < least
        ):
            raise ValueError(f"{name} must be an int >= {least}; got {value!r}")
    if not isinstance(use_masks, bool):
        raise TypeError(f"use_masks must be True or False; got {use_masks!r}")
    if copy_seeds is None:
        return None
    try:
        seeds = tuple(copy_seeds)
    except TypeError:
        seeds = ()
    if len(seeds) != 2 or any(
        isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 0
        for s in seeds
    ):
        raise ValueError(
            "copy_seeds must be None or a pair of ints >= 0 (the two copies' "
            f"training seeds); got {copy_seeds!r}"
        )
    return tuple(int(s) for s in seeds)


def _rewind_points(setup, start, epochs, seed) -> dict:
    """The states after each epoch in ``epochs`` of dense training from
    ``start`` (:class:`~sklottery.RewindCheckpoint` on one pruner per epoch)."""
    points = {0: dict(start)} if 0 in epochs else {}
    later = [k for k in epochs if k > 0]
    if not later:
        return points
    net = setup.net
    module = net.module_
    load_values(module, start)
    checkpoints = [(k, RewindCheckpoint(Pruner(module), k)) for k in later]
    net.callbacks = list(setup.user_callbacks)
    net.initialize_callbacks()
    plan = RoundPlan(
        callbacks=[(f"stability_rewind_{k}", cb) for k, cb in checkpoints],
        max_epochs=later[-1], record=False,
    )
    with seeded(seed):
        interrupted = run_round(net, None, setup.data, plan,
                                score=setup.score).interrupted
    if interrupted:
        raise KeyboardInterrupt("stability_analysis was interrupted")
    for k, cb in checkpoints:
        if not cb.done_:
            raise ValueError(
                f"the dense training stopped after {len(net.history)} epoch(s), "
                f"before rewind epoch {k} (an early-stopping callback?)"
            )
        points[k] = cb.pruner.rewind_point
    return points


@contextlib.contextmanager
def _shuffled(net):
    """The copies' training with ``iterator_train__shuffle=True``: the data
    order is what differs between the two copies (torch's seed draws it), and
    a net that does not shuffle (skorch's default) would train two identical
    copies. Left as the user set it when the iterator has a ``sampler`` or
    ``batch_sampler`` of its own (which decides the order) or takes no
    ``shuffle``; the net's own setting is back afterwards."""
    options = net.get_params_for("iterator_train")
    if options.get("shuffle") or {"sampler", "batch_sampler"} & set(options) or (
        not _takes_shuffle(net.iterator_train)
    ):
        yield
        return
    # an attribute, as set_params stores it: skorch's set_params of an
    # iterator option on an initialized net raises
    key = "iterator_train__shuffle"
    had = key in vars(net)
    setattr(net, key, True)
    try:
        yield
    finally:
        if had:
            setattr(net, key, options["shuffle"])
        else:
            delattr(net, key)


def _takes_shuffle(iterator) -> bool:
    try:
        params = inspect.signature(iterator).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "shuffle" or p.kind is p.VAR_KEYWORD for p in params)


def _check_copies_differ(ends, seeds, k) -> None:
    """Refuse two copies trained with different seeds to the same weights:
    their training draws no random numbers, and the barrier is 0 by
    construction, not a measurement."""
    a, b = ends
    if seeds[0] != seeds[1] and all(torch.equal(a[n], b[n]) for n in a):
        raise ValueError(
            f"the two copies trained from rewind epoch {k} with different seeds "
            f"{tuple(seeds)} have identical weights: their training does not "
            "depend on torch's random numbers (a training iterator whose sampler "
            "or batch_sampler fixes the order, or one without "
            "iterator_train__shuffle, and no dropout), so their error barrier "
            "would be 0 whatever the network; give the net's training iterator "
            "a random order"
        )


def stability_analysis(estimator, X, y, *, rewind_epochs=(0, 1, 2), n_points=11,
                       use_masks=False, n_repeats=1, copy_seeds=None,
                       sample_weight=None, random_state=None):
    """Error barriers between two copies trained from each rewind point.

    The network is the estimator's (its ``net``, sized for ``X`` and ``y``),
    starting from a fitted estimator's rewind point (``rewind_point_``: the
    initialization, or with late rewinding its epoch-k state, from which the
    epochs here count) or, unfitted, from a fresh initialization seeded as
    ``fit`` seeds it. It trains dense for ``max(rewind_epochs)`` epochs,
    keeping the state after each epoch ``k`` (epoch 0: the start). From each
    state two copies train as a pruning round of the estimator trains (the
    net's ``max_epochs``, a fresh optimizer and schedule), differing only in
    torch's seed: the data order (the copies always train shuffled,
    ``iterator_train__shuffle=True``, whatever the net's own setting), and
    dropout if any. Copies that train identically despite different seeds
    (an iterator whose own sampler fixes the order) raise ``ValueError``
    rather than give a barrier of 0 by construction. With ``use_masks``
    they keep the fitted ``masks_``, and so do the networks between them.
    Along the line ``(1 - a) * w1 + a * w2`` at ``n_points`` evenly spaced
    ``a`` in [0, 1] (every parameter and floating-point buffer
    interpolated) the error is ``1 - score``, the score as ``rounds_`` is
    scored: classification error, or ``1 - R²`` for a regressor, on the
    net's validation split (the training data when it has none).

    Parameters
    ----------
    estimator : LotteryTicketClassifier or LotteryTicketRegressor
        Fitted when ``use_masks=True``.
    X, y : array-like
    rewind_epochs : list of int, default=(0, 1, 2)
        Candidate rewind points, each at most the net's ``max_epochs``.
    n_points : int, default=11
        Points on the line, both ends included (>= 2).
    use_masks : bool, default=False
        Train and interpolate under the fitted estimator's ``masks_``.
    n_repeats : int, default=1
        Pairs of copies per rewind point.
    copy_seeds : (int, int), optional
        The two copies' seeds (every repeat); default: drawn from
        ``random_state``. Equal seeds train identical copies (barrier 0).
    sample_weight : array-like of shape (n_samples,), optional
    random_state : int, RandomState or None, default=None
        Seeds the dense training and the copies.

    Returns
    -------
    pandas.DataFrame
        One row per rewind epoch and repeat: ``rewind_epoch``, ``repeat``,
        ``error_start`` and ``error_end`` (the two copies), ``max_error``,
        ``barrier`` (``max_error`` minus the mean of the ends' errors, >= 0)
        and ``errors`` (the ``n_points`` errors along the line, a tuple).
    """
    fitted = hasattr(estimator, "masks_")
    copy_seeds = _check_options(n_points, n_repeats, copy_seeds, use_masks)
    check_estimator(estimator, fitted=use_masks)
    rng = check_random_state(random_state)
    start = None
    if fitted:
        start = getattr(estimator, "rewind_point_", None)
        if start is None:
            raise ValueError(
                "stability_analysis needs the fitted estimator's rewind point; it "
                "was loaded from a ticket file saved without it (use "
                "save_ticket(..., rewind_point=True))"
            )
    setup = prepare_retraining(estimator, X, y, sample_weight)
    epochs = _check_epochs(rewind_epochs, setup.net.max_epochs)
    start = setup.init if start is None else start
    masks = None
    if use_masks:
        masks = {n: m.detach().cpu().bool() for n, m in estimator.masks_.items()}
    points = _rewind_points(setup, start, epochs, rng.randint(_MAX_SEED))
    alphas = np.linspace(0.0, 1.0, int(n_points))
    rows = []
    for k in epochs:
        for repeat in range(int(n_repeats)):
            seeds = copy_seeds or tuple(int(s) for s in rng.randint(_MAX_SEED, size=2))
            ends = []
            with _shuffled(setup.net):
                for seed in seeds:
                    train_from(setup, points[k], masks, seed)
                    ends.append(snapshot(setup.net.module_))
            _check_copies_differ(ends, seeds, k)
            errors = tuple(
                1.0 - evaluate(setup, interpolate(ends[0], ends[1], a), masks)
                for a in alphas
            )
            top = max(errors)
            rows.append({
                "rewind_epoch": k, "repeat": repeat,
                "error_start": errors[0], "error_end": errors[-1],
                "max_error": top,
                "barrier": top - (errors[0] + errors[-1]) / 2,
                "errors": errors,
            })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def suggest_rewind_epoch(table, tol=0.02):
    """The earliest rewind epoch whose error barrier is at most ``tol``.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`stability_analysis` (columns ``rewind_epoch`` and
        ``barrier``; repeats are averaged per epoch).
    tol : float, default=0.02
        The largest barrier counted as stable (Frankle et al. 2020: 2%).

    Returns
    -------
    int or None
        None (with a :class:`UserWarning`) when no epoch is stable.
    """
    if not isinstance(table, pd.DataFrame) or not {"rewind_epoch", "barrier"} <= set(
        table.columns
    ):
        raise TypeError(
            "table must be the DataFrame of stability_analysis (columns "
            "'rewind_epoch' and 'barrier')"
        )
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0:
        raise ValueError(f"tol must be a number >= 0; got {tol!r}")
    if table.empty:
        raise ValueError("table has no rows")
    barriers = table.groupby("rewind_epoch")["barrier"].mean().sort_index()
    stable = barriers[barriers <= tol]
    if stable.empty:
        warnings.warn(
            f"no rewind epoch has an error barrier <= tol={tol} (smallest: "
            f"{barriers.min():.4f} at epoch {int(barriers.idxmin())}); try later "
            "epochs",
            UserWarning, stacklevel=2,
        )
        return None
    return int(stable.index[0])
