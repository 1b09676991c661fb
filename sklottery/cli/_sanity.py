"""``sklottery sanity-check TICKET DATA``: a ticket written by ``fit``
retrained beside its controls at the same per-layer sparsity.

The rows of DATA (with the target column) are preprocessed as ``fit``
preprocessed its table, the network is the fit's (hidden sizes, epochs,
learning rate, batch size, seed from the ticket's summary), and
:func:`sklottery.sanity_checks` retrains the ticket and each control on a
split of DATA drawn with the fit's seed, scoring them on the held-out part.
Give it the rows the ticket was fitted on (its ``fit`` DATA): the variants
are compared with each other, not with the fit's test score.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

from ._main import PROG, CLIError, _int_at_least
from ._fit import _make_net
from ._predict import features, load_cli_ticket
from ..analysis import CONTROLS, sanity_checks
from ._tables import read_table

__all__ = ["add_parser", "sanity_check"]

_PARAMS = ("n_rounds", "prune_rate", "strategy", "rewind", "scope", "select",
           "epochs", "lr", "batch_size", "seed")


def _variants(text):
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in CONTROLS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated controls from {','.join(CONTROLS)}; got "
            f"{text!r}"
        )
    return names


def add_parser(sub) -> None:
    """Register ``sanity-check`` on the command line's subparsers."""
    parser = sub.add_parser(
        "sanity-check",
        help="retrain a ticket written by fit beside controls at its sparsity",
        description="Retrain TICKET (written by sklottery fit) on the rows of "
        "DATA beside controls with the same number of weights in each layer "
        "(reinit: fresh initialization; shuffle: each layer's mask permuted; "
        "inverted: the lowest-scored weights kept; random: a random mask and "
        "initialization) and print one row per variant and repeat. DATA must "
        "hold the target column; give it the fit's own table.",
    )
    parser.add_argument("ticket", metavar="TICKET",
                        help="a PREFIX.ticket.safetensors written by sklottery fit")
    parser.add_argument("data", metavar="DATA",
                        help="a .csv, .tsv, .parquet or .pq file with the target")
    parser.add_argument("--variants", type=_variants, default=list(CONTROLS),
                        help="comma-separated controls (default: all of "
                        f"{','.join(CONTROLS)})")
    parser.add_argument("--repeats", type=_int_at_least(1), default=1,
                        help="independent repeats (default 1)")
    parser.add_argument("--seed", type=_int_at_least(0), default=0,
                        help="seed of the repeats (default 0)")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help="also write the table as a CSV file")
    parser.set_defaults(run=sanity_check)


def _estimator(args, summary, task, hidden, y):
    from ..estimators import LotteryTicketClassifier, LotteryTicketRegressor

    try:
        params = {k: summary["params"][k] for k in _PARAMS}
    except (KeyError, TypeError) as exc:
        raise CLIError(
            f"{args.ticket}: its command-line summary has no params field {exc}"
        ) from None
    small = task == "classification" and np.unique(y, return_counts=True)[1].min() < 5
    net = _make_net(task, hidden, lr=params["lr"], batch_size=params["batch_size"],
                    epochs=params["epochs"], seed=params["seed"], small=small)
    lottery = {k: params[k] for k in _PARAMS[:6]}
    # written since schedule/sparse_training became fit options (older
    # summaries: the defaults they were fitted with)
    lottery["schedule"] = summary["params"].get("schedule", "iterative")
    lottery["sparse_training"] = summary["params"].get("sparse_training", "auto")
    cls = (LotteryTicketClassifier if task == "classification"
           else LotteryTicketRegressor)
    model = cls(net, random_state=params["seed"], **lottery).load_ticket(args.ticket)
    if model.rewind_point_ is None:
        raise CLIError(
            f"{args.ticket}: the ticket file has no rewind point (written by an "
            "older sklottery fit); fit it again"
        )
    return model


def sanity_check(args) -> int:
    """``sklottery sanity-check`` (see :mod:`sklottery.cli._sanity`)."""
    summary, pre, task, hidden, target = load_cli_ticket(args.ticket)
    frame = read_table(args.data)
    if target not in frame.columns:
        raise CLIError(
            f"{args.data}: no column {target!r} (the ticket's target); "
            "sanity-check retrains the ticket on labelled rows"
        )
    if frame[target].isna().any():
        raise CLIError(f"{args.data}: the target column {target!r} has missing values")
    X, _ = features(frame, target, pre, args.data)
    y = frame[target].to_numpy()
    if task == "regression":
        scaling = pre["target"] or {"mean": 0.0, "scale": 1.0}
        y = ((y.astype(np.float64) - scaling["mean"]) / scaling["scale"]).astype(
            np.float32
        )
    model = _estimator(args, summary, task, hidden, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = sanity_checks(model, X, y, variants=args.variants,
                              n_repeats=args.repeats, random_state=args.seed)
    shown = table[["variant", "repeat", "weights_remaining", "score",
                   "ticket_beats"]].copy()
    shown["weights_remaining"] = (100 * shown["weights_remaining"]).map(
        "{:.2f}%".format
    )
    shown["ticket_beats"] = shown["ticket_beats"].map(
        lambda v: "-" if v is None else ("yes" if v else "NO")
    )
    metric = "accuracy" if task == "classification" else "R2 (scaled target)"
    print(f"{PROG} sanity-check: {args.ticket} on {args.data} ({metric} on "
          f"{table['score_on'].iloc[0]} rows)")
    print(shown.to_string(index=False, float_format="{:.4f}".format))
    means = table.groupby("variant", sort=False)["score"].mean()
    losers = [v for v in means.index[1:] if not means["ticket"] > means[v]]
    if losers:
        print(f"the ticket does NOT beat: {', '.join(losers)}")
    else:
        print("the ticket beats every control")
    for w in caught:
        if issubclass(w.category, UserWarning) and "does not beat" not in str(
            w.message
        ):
            print(f"{PROG} sanity-check: note: {w.message}", file=sys.stderr)
    if args.out is not None:
        try:
            table.to_csv(args.out, index=False)
        except OSError as exc:
            raise CLIError(f"--out {args.out!r}: {exc.strerror or exc}") from None
    return 0
