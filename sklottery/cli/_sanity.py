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

from ._common import AT_LEAST_ONE, NON_NEGATIVE, number_in
from ._parser import PROG, CLIError, add_data, add_ticket

__all__ = ["add_arguments", "sanity_check"]


#: What ``--help`` says of the command.
DESCRIPTION = (
    "Retrain TICKET (written by sklottery fit) on the rows of "
    "DATA beside controls with the same number of weights in each layer "
    "(reinit: fresh initialization; shuffle: each layer's mask permuted; "
    "inverted: the lowest-scored weights kept; random: a random mask and "
    "initialization) and print one row per variant and repeat. DATA must "
    "hold the target column; give it the fit's own table."
)


def _variants_type(controls):
    def parse(text):
        names = [s.strip() for s in text.split(",") if s.strip()]
        unknown = [n for n in names if n not in controls]
        if not names or unknown:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated controls from {','.join(controls)}; "
                f"got {text!r}"
            )
        return names

    return parse


def add_arguments(parser) -> None:
    """The arguments of ``sanity-check``."""
    from ..analysis import CONTROLS

    parser.description = DESCRIPTION
    add_ticket(parser)
    add_data(parser, " with the target")
    parser.add_argument("--variants", type=_variants_type(CONTROLS),
                        default=list(CONTROLS),
                        help="comma-separated controls (default: all of "
                        f"{','.join(CONTROLS)})")
    parser.add_argument("--repeats", type=number_in(AT_LEAST_ONE), default=1,
                        help="independent repeats (default 1)")
    parser.add_argument("--seed", type=number_in(NON_NEGATIVE), default=0,
                        help="seed of the repeats (default 0)")
    parser.add_argument("--out", default=None, metavar="FILE",
                        help="also write the table as a CSV file")
    parser.set_defaults(run=sanity_check)


def _estimator(args, summary, y):
    """The fit's estimator, from the ticket's checked summary, loaded with
    the ticket."""
    from ..estimators import LotteryTicketClassifier, LotteryTicketRegressor
    from ._summary import lottery_kwargs, make_net

    p, task = summary["params"], summary["task"]
    net = make_net(task, p["hidden"], y=y, lr=p["lr"], batch_size=p["batch_size"],
                   epochs=p["epochs"], seed=p["seed"])
    cls = (LotteryTicketClassifier if task == "classification"
           else LotteryTicketRegressor)
    model = cls(net, **lottery_kwargs(p)).load_ticket(args.ticket)
    if model.rewind_point_ is None:
        raise CLIError(
            f"{args.ticket}: the ticket file has no rewind point (written by an "
            "older sklottery fit); fit it again"
        )
    return model


def _labelled_rows(args, summary, pre):
    """``(X, y)``: the rows of DATA preprocessed as ``fit`` did, with the
    ticket's target (a regression's scaled, a classification's holding
    exactly the ticket's classes)."""
    from ._tables import features, read_table, scale_target

    target = summary["target"]
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
    if summary["task"] == "regression":
        return X, scale_target(y, pre["target"])
    found = sorted(set(y.tolist()), key=str)
    if {str(c) for c in found} != {str(c) for c in summary["classes"]}:
        raise CLIError(
            f"{args.data}: the target column {target!r} holds the classes "
            f"{_few(found)}; the ticket was fitted on the classes "
            f"{_few(summary['classes'])} -- give sanity-check the rows of its fit"
        )
    return X, y


def _few(values) -> str:
    return str(values) if len(values) <= 10 else f"{values[:10]} ... ({len(values)})"


def sanity_check(args) -> int:
    """``sklottery sanity-check`` (see :mod:`sklottery.cli._sanity`)."""
    # imported here to keep --help fast
    from ..analysis import sanity_checks
    from ._summary import load_cli_ticket

    # the summary checked, its network against the file's tensors, before
    # anything is built or trained
    summary, pre = load_cli_ticket(args.ticket)
    task = summary["task"]
    X, y = _labelled_rows(args, summary, pre)
    model = _estimator(args, summary, y)
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
