"""Sanity checks of a ticket: does it beat controls at the same sparsity?

Frankle et al. (2021), "Pruning Neural Networks at Initialization: Why Are
We Missing the Mark?", and Su et al. (2020), "Sanity-Checking Pruning
Methods: Random Tickets can Win the Jackpot", ask of every pruned network
whether its *particular* mask and initialization matter: a ticket that
trains no better than the same layerwise sparsity with a shuffled mask, a
fresh initialization or a random mask is not a winning ticket.

:func:`sanity_checks` retrains a fitted estimator's ticket beside such
controls, every variant with exactly the ticket's number of weights kept in
each layer, trained as a pruning round of the fit and scored as ``rounds_``
is scored. The variants:

``"ticket"`` (always included)
    The ticket's masks (``masks_``) and the weights its round started from:
    the rewind point (``rewind_point_``; the initialization for
    ``rewind="init"``, the epoch-k state with late rewinding), or for the
    rewind modes that load other values (``"reinit"``, ``"reshuffle"``,
    ``"signed_constant"``, ``"none"``, ``"lr"``) the values the selected
    round really started from.
``"reinit"``
    The ticket's masks with a fresh random initialization (Frankle & Carbin
    2019's random reinitialization; Frankle et al. 2021's "reinitialize").
``"shuffle"``
    Each layer's mask randomly permuted within the layer (Frankle et al.
    2021's "layerwise random shuffling"), the weights starting from the
    ticket's start values.
``"inverted"``
    Each layer keeps its lowest-ranked weights by the estimator's pruning
    strategy, as many as the ticket keeps there (Frankle et al. 2021's
    "inversion"), starting from the ticket's start values. The scores are
    those of a one-shot prune of the ticket's network: the strategy applied
    to ``w_init`` = the rewind point (``rewind_point_``) and ``w_final`` =
    that network trained dense from it for one round of the estimator's
    training (gradient strategies: the loss gradient at ``w_final``, as the
    fit computes it). For a ticket pruned at initialization
    (``schedule="at_init"``) they are its strategy's scores of the
    initialization, with the data the fit gives it (for ``"synflow"`` the
    scores of its first prune step; no training). Ties keep the lower
    positions first.
``"random"``
    A uniformly random mask in each layer with the ticket's counts and a
    fresh random initialization (Su et al. 2020's "random tickets"; the
    shuffled mask is equally random, but keeps the ticket's initialization).

Structured tickets (``granularity="neuron"``/``"channel"``) get the
controls over *units*: ``"reinit"`` is the ticket's smaller architecture
trained from a fresh initialization (Liu et al. 2019, "Rethinking the Value
of Network Pruning"); ``"shuffle"`` and ``"random"`` keep as many randomly
chosen units per layer as the ticket (random unit selection; with the
ticket's and a fresh initialization); ``"inverted"`` keeps each layer's
lowest-ranked units by the strategy (per-weight scores summed over a unit,
or the BatchNorm scales for ``"bn_scale"``).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state

from ..lottery import train_from
from ..pruning.masks import snapshot
from ..pruning.rewind import fresh_values
from ..pruning.strategies import compute_scores, needs_grad, resolve_strategy
from ..pruning.units import UNIT_CRITERIA
from ._retraining import check_estimator, prepare_retraining

__all__ = [
    "CONTROLS",
    "inverted_masks",
    "plot_sanity_checks",
    "random_masks",
    "sanity_checks",
    "shuffled_masks",
]

#: The control variants, in the order they are trained.
CONTROLS = ("reinit", "shuffle", "inverted", "random")
#: Columns of the frame :func:`sanity_checks` returns.
COLUMNS = ("variant", "repeat", "init", "mask", "weights_remaining", "n_weights",
           "score", "score_on", "ticket_score", "ticket_beats")
_DESIGN = {  # variant: (initialization, mask)
    "ticket": ("ticket", "ticket"),
    "reinit": ("fresh", "ticket"),
    "shuffle": ("ticket", "shuffled"),
    "inverted": ("ticket", "inverted"),
    "random": ("fresh", "random"),
}
_MAX_SEED = np.iinfo(np.int32).max


# -- the control masks (pure) --------------------------------------------------
def shuffled_masks(masks: dict, generator: torch.Generator) -> dict:
    """Each mask with its entries randomly permuted within the tensor (the
    count kept per tensor is unchanged)."""
    out = {}
    for name, mask in masks.items():
        flat = mask.reshape(-1).cpu()
        perm = torch.randperm(flat.numel(), generator=generator)
        out[name] = flat[perm].reshape(mask.shape)
    return out


def random_masks(masks: dict, generator: torch.Generator) -> dict:
    """A uniformly random mask per tensor keeping as many entries as ``masks``
    keeps there."""
    out = {}
    for name, mask in masks.items():
        kept = int(torch.count_nonzero(mask))
        flat = torch.zeros(mask.numel(), dtype=torch.bool)
        flat[torch.randperm(mask.numel(), generator=generator)[:kept]] = True
        out[name] = flat.reshape(mask.shape)
    return out


def inverted_masks(masks: dict, scores: dict) -> dict:
    """Per tensor, keep the ``masks[name].sum()`` entries with the *lowest*
    ``scores[name]`` (ties: the lower flat positions first)."""
    out = {}
    for name, mask in masks.items():
        kept = int(torch.count_nonzero(mask))
        score = scores[name].reshape(-1).cpu()
        lowest = torch.argsort(score, stable=True)[:kept]
        flat = torch.zeros(mask.numel(), dtype=torch.bool)
        flat[lowest] = True
        out[name] = flat.reshape(mask.shape)
    return out


# -- options ---------------------------------------------------------------------
def _check_variants(variants) -> list:
    if isinstance(variants, str):
        variants = [variants]
    try:
        variants = list(variants)
    except TypeError:
        raise TypeError(
            f"variants must be a list of names from {list(CONTROLS)}; got "
            f"{type(variants).__name__}"
        ) from None
    unknown = [v for v in variants if not isinstance(v, str) or v not in _DESIGN]
    if unknown:
        raise ValueError(
            f"unknown variant(s) {unknown}; valid variants are {list(CONTROLS)} "
            "(the ticket itself is always included)"
        )
    if len(set(variants)) != len(variants):
        raise ValueError(f"variants must not repeat a name; got {variants}")
    return ["ticket", *[v for v in CONTROLS if v in variants]]


def _check_n_repeats(n_repeats) -> int:
    if (
        isinstance(n_repeats, bool)
        or not isinstance(n_repeats, numbers.Integral)
        or n_repeats < 1
    ):
        raise ValueError(f"n_repeats must be an int >= 1; got {n_repeats!r}")
    return int(n_repeats)


def _ticket_start(estimator) -> dict:
    """The values the ticket's round started from (all tensors)."""
    point = getattr(estimator, "rewind_point_", None)
    if point is None:
        raise ValueError(
            "sanity_checks needs the ticket's rewind point; this estimator was "
            "loaded from a ticket file saved without it (use "
            "save_ticket(..., rewind_point=True))"
        )
    start = getattr(estimator, "_round_start", None)
    if estimator._lacks_round_start(estimator.rewind):
        raise ValueError(
            f"sanity_checks with rewind={estimator.rewind!r} needs the weights the "
            "selected round started from; an estimator loaded from a ticket "
            "file does not have them (refit it)"
        )
    values = dict(point)
    if start is not None:
        values.update(start)
    return values


# -- the checks --------------------------------------------------------------------
def _inversion_scores(estimator, setup, seed) -> dict:
    """The strategy's scores of a one-shot prune of the ticket's network."""
    from ..pruning import Pruner
    from ..training import gradient_function

    point = estimator.rewind_point_
    if setup.config.at_init:
        return _init_scores(estimator, setup, seed)
    train_from(setup, dict(point), None, seed)
    module = setup.net.module_
    names = list(estimator.masks_)
    trained = snapshot(module, names)
    strategy = setup.config.pruner["strategy"]
    if isinstance(strategy, str) and strategy in UNIT_CRITERIA:
        # a structured criterion: bn_scale's scores are the BatchNorm scales
        # of the trained network (read by _unit_controls), the norms' are
        # per-weight scores summed over each unit
        score_fn = UNIT_CRITERIA[strategy] or UNIT_CRITERIA["l1_norm"]
    else:
        score_fn, _ = resolve_strategy(strategy)
    extra = {}
    if needs_grad(score_fn):
        pruner = Pruner(module, strategy=strategy)
        data = setup.data
        extra["grad"] = gradient_function(
            setup.net, pruner, data.X_train, data.y_train, seed=setup.config.seed
        )()
    return compute_scores(
        score_fn,
        {n: point[n].to(trained[n].device) for n in names},
        trained,
        generator=torch.Generator().manual_seed(int(seed)),
        **extra,
    )


def _init_scores(estimator, setup, seed) -> dict:
    """An at-initialization strategy's scores of the ticket's initialization."""
    from ..lottery import at_init_options
    from ..pruning.at_init import init_scores
    from ..pruning.masks import load_values

    module = setup.net.module_
    load_values(module, dict(estimator.rewind_point_))
    strategy = setup.config.pruner["strategy"]
    dense = {n: torch.ones_like(m, dtype=torch.bool)
             for n, m in estimator.masks_.items()}
    return init_scores(
        module, strategy, dense,
        generator=torch.Generator().manual_seed(int(seed)),
        **at_init_options(setup.net, setup.data, strategy, setup.config.seed),
    )


def _unit_controls(estimator, setup, ticket, scores):
    """For a structured ticket (``granularity="neuron"``), a function
    ``(kind, generator) -> masks`` giving the controls over *units*: each
    group's kept units shuffled (``"shuffled"``; ``"random"`` is the same
    draw, with a fresh initialization: random unit selection), or its
    lowest-ranked units (``"inverted"``), as many per group as the ticket
    keeps. None for a ticket of single weights."""
    if getattr(estimator, "granularity", "weight") == "weight":
        return None
    from ..pruning.graph import trace_units
    from ..pruning.units import expand_masks, unit_keep, unit_scores
    from ..training import batch_to

    module = setup.net.module_
    device = next(iter(module.parameters())).device
    graph = trace_units(module, batch_to(setup.data.X_train[:2], device))
    units = unit_keep(graph, ticket)
    dense = {n: torch.ones_like(m) for n, m in ticket.items()}
    unit_rank = None
    if scores is not None:
        strategy = setup.config.pruner["strategy"]
        modules = dict(setup.net.module_.named_modules())
        norms = {g.norms[0]: modules[g.norms[0]].weight for g in graph.groups
                 if g.norms}
        unit_rank = unit_scores(graph, list(units), strategy, scores, norms)

    def control(kind, generator):
        if kind in ("shuffled", "random"):
            chosen = shuffled_masks(units, generator)
        else:
            chosen = inverted_masks(units, unit_rank)
        return expand_masks(graph, chosen, dense)

    return control


def sanity_checks(estimator, X, y, *, variants=CONTROLS, n_repeats=1,
                  sample_weight=None, random_state=None, return_masks=False):
    """Retrain a fitted estimator's ticket beside controls at its sparsity.

    Every variant keeps exactly the ticket's number of weights in each
    layer and is trained as a pruning round of the estimator (its net, a
    fresh optimizer and learning-rate schedule, the masks held by
    :class:`~sklottery.ApplyMasks`) on the training part of ``X``, ``y``
    split as ``fit`` splits, then scored as ``rounds_`` is (accuracy or R²
    on the net's validation split; on the training data when the net has
    none). Within a repeat every variant sees the same data order. See
    :mod:`sklottery.analysis._sanity` for the variants.

    Parameters
    ----------
    estimator : LotteryTicketClassifier or LotteryTicketRegressor
        Fitted. With an int ``random_state`` the validation split is the
        fit's own; otherwise it is drawn anew.
    X, y : array-like
        The data (as for ``fit``; normally the fit's own).
    variants : list of str, default=("reinit", "shuffle", "inverted", "random")
        The controls; the ticket is always trained too.
    n_repeats : int, default=1
        Independent repeats (other data orders, masks and initializations).
    sample_weight : array-like of shape (n_samples,), optional
    random_state : int, RandomState or None, default=None
        Seeds the repeats' training, masks and fresh initializations.
    return_masks : bool, default=False
        Also return ``{(variant, repeat): masks}``.

    Returns
    -------
    pandas.DataFrame
        One row per variant and repeat (the ticket's rows first): ``variant``,
        ``repeat``, ``init`` (``"ticket"`` or ``"fresh"``), ``mask``,
        ``weights_remaining``, ``n_weights``, ``score``, ``score_on``,
        ``ticket_score`` (the ticket's score in the same repeat) and
        ``ticket_beats`` (the ticket scored higher; None on its own rows).
        A :class:`UserWarning` names every control whose mean score is not
        below the ticket's. With ``return_masks``, ``(frame, masks)``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        The estimator is not fitted.
    ValueError
        Unknown variants or a bad ``n_repeats``.
    """
    check_estimator(estimator, fitted=True)
    names = _check_variants(variants)
    n_repeats = _check_n_repeats(n_repeats)
    rng = check_random_state(random_state)
    start = _ticket_start(estimator)
    setup = prepare_retraining(estimator, X, y, sample_weight)
    if setup.data.eval_on == "train":
        warnings.warn(
            "sanity_checks without a validation split: the variants are scored "
            "on their training data; give the net a train_split (e.g. skorch's "
            "ValidSplit) to compare them on held-out data",
            UserWarning, stacklevel=2,
        )
    ticket = {n: m.detach().cpu().bool() for n, m in estimator.masks_.items()}
    total = sum(m.numel() for m in ticket.values())
    scores = None
    if "inverted" in names:
        scores = _inversion_scores(estimator, setup, int(rng.randint(_MAX_SEED)))
    controls = _unit_controls(estimator, setup, ticket, scores)
    rows, kept_masks = [], {}
    for repeat in range(n_repeats):
        train_seed, mask_seed, init_seed = (int(s) for s in rng.randint(_MAX_SEED,
                                                                        size=3))
        generator = torch.Generator().manual_seed(mask_seed)
        ticket_score = None
        for variant in names:
            init, kind = _DESIGN[variant]
            if kind == "ticket":
                masks = ticket
            elif controls is not None:  # a structured ticket: units, not weights
                masks = controls(kind, generator)
            elif kind == "shuffled":
                masks = shuffled_masks(ticket, generator)
            elif kind == "random":
                masks = random_masks(ticket, generator)
            else:
                masks = inverted_masks(ticket, scores)
            values = start if init == "ticket" else fresh_values(
                setup.net.module_, init_seed
            )
            score = train_from(setup, values, masks, train_seed, round_=None)
            if variant == "ticket":
                ticket_score = score
            kept = sum(int(torch.count_nonzero(m)) for m in masks.values())
            rows.append({
                "variant": variant, "repeat": repeat, "init": init, "mask": kind,
                "weights_remaining": kept / total, "n_weights": kept,
                "score": score, "score_on": setup.data.eval_on,
                "ticket_score": ticket_score,
                "ticket_beats": None if variant == "ticket" else ticket_score > score,
            })
            if return_masks:
                kept_masks[(variant, repeat)] = masks
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    _warn_if_not_winning(frame)
    return (frame, kept_masks) if return_masks else frame


def _warn_if_not_winning(frame) -> None:
    means = frame.groupby("variant", sort=False)["score"].mean()
    ticket = means["ticket"]
    losers = [v for v, s in means.items() if v != "ticket" and not ticket > s]
    if losers:
        shown = ", ".join(f"{v} {means[v]:.4f}" for v in losers)
        warnings.warn(
            f"the ticket (mean score {ticket:.4f}) does not beat its control(s) "
            f"{shown}: at this sparsity its mask and initialization are no better "
            "than these controls' (see the ticket_beats column)",
            UserWarning, stacklevel=3,
        )


def plot_sanity_checks(frame, ax=None):
    """Scores of :func:`sanity_checks`' variants: each repeat a dot, the mean
    a bar; the ticket's mean a dashed line, and controls that the ticket does
    not beat (mean score at least the ticket's) drawn in red.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from ..plotting import require_matplotlib

    if not isinstance(frame, pd.DataFrame) or not {"variant", "score"} <= set(
        frame.columns
    ):
        raise TypeError(
            "plot_sanity_checks needs the DataFrame returned by sanity_checks"
        )
    plt = require_matplotlib()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    means = frame.groupby("variant", sort=False)["score"].mean()
    ticket = means.get("ticket", np.nan)
    for i, (variant, mean) in enumerate(means.items()):
        if variant == "ticket":
            color = "C0"
        else:
            color = "C3" if not ticket > mean else "C7"
        ax.bar(i, mean, color=color, alpha=0.5)
        scores = frame.loc[frame["variant"] == variant, "score"]
        ax.plot(np.full(len(scores), i), scores, "o", color=color)
    ax.axhline(ticket, color="C0", linestyle="--", label="ticket (mean)")
    ax.set_xticks(range(len(means)))
    ax.set_xticklabels(list(means.index))
    remaining = frame["weights_remaining"].iloc[0] if len(frame) else np.nan
    ax.set_title(f"sanity checks at {100 * remaining:.3g}% of the weights")
    ax.set_ylabel(f"score ({frame['score_on'].iloc[0]})" if "score_on" in frame
                  and len(frame) else "score")
    ax.legend(loc="lower right")
    return ax
