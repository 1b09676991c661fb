"""Sanity checks of the IMP ticket at 3.6% of LeNet-300-100's weights on MNIST.

Frankle et al. (2021), "Pruning Neural Networks at Initialization: Why Are
We Missing the Mark?", and Su et al. (2020), "Sanity-Checking Pruning
Methods": a winning ticket must beat controls at its own layerwise sparsity.
The ticket is ``reproduce_mnist.py``'s winning-ticket arm (Frankle & Carbin
2019: ``strategy="large_final"``, ``rewind="init"``, 20% of the hidden
layers' and 10% of the output layer's remaining weights per round; Adam
1.2e-3, batches of 60) after 15 rounds, 3.6% of the weights; then
:func:`sklottery.sanity_checks` retrains it beside its reinit, layerwise
shuffled, inverted and random controls (``--repeats`` times), every variant
scored on MNIST's 10,000 validation images, as the rounds are. Optionally
(``--stability``) :func:`sklottery.stability_analysis` measures the error
barrier between two copies from rewind epochs 0, 1 and 2 (Frankle et al.
2020) on the same data.

``--quick`` runs the same on scikit-learn's digits (no download). Writes
``reproduce_sanity[_digits].csv`` (and ``..._stability.csv``) into
``--out`` (default ``benchmarks/output``, not committed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from skorch import NeuralNetClassifier

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reproduce_mnist as rm  # noqa: E402

from sklottery import (  # noqa: E402
    MLP,
    LotteryTicketClassifier,
    sanity_checks,
    stability_analysis,
    suggest_rewind_epoch,
)


def make_net(data, epochs, hidden):
    """LeNet-300-100 with the paper's training (``rm.training_options``),
    validating on the validation split, without the early-stop tracker."""
    (X_tr, y_tr), (X_va, y_va), _ = data
    options = {**rm.training_options(X_va, y_va, None, epochs, ()), "callbacks": []}
    return NeuralNetClassifier(
        MLP,
        module__input_units=X_tr.shape[1],
        module__output_units=int(y_tr.max()) + 1,
        module__hidden_units=hidden,
        **options,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits, not MNIST")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stability", action="store_true",
                        help="also the error barriers from epochs 0, 1, 2")
    parser.add_argument("--train-size", type=int, default=None,
                        help="use the first N training images (default: all)")
    parser.add_argument("--out", default=None, help=rm.OUT_HELP)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        data, name, hidden = rm.load_digits_splits(), "digits", (300, 100)
    else:
        data, name, hidden = rm.load_mnist(), "mnist", (300, 100)
    if args.train_size:
        (X_tr, y_tr), *rest = data
        data = ((X_tr[: args.train_size], y_tr[: args.train_size]), *rest)
    (X_tr, y_tr), _, _ = data
    out = Path(args.out) if args.out else rm.OUTPUT
    out.mkdir(parents=True, exist_ok=True)
    stem = "reproduce_sanity" + ("_digits" if args.quick else "")
    print(f"LeNet-300-100 on {name} ({len(y_tr)} training images): IMP "
          f"{args.rounds} rounds x {args.epochs} epochs, then sanity checks "
          f"x {args.repeats} repeats", flush=True)

    clf = LotteryTicketClassifier(
        make_net(data, args.epochs, hidden), n_rounds=args.rounds, prune_rate=0.2,
        output_rate_factor=0.5, random_state=args.seed,
        **rm.ARMS["winning ticket"],
    )
    cpu = time.process_time()
    clf.fit(X_tr, y_tr)
    fit_cpu = time.process_time() - cpu
    last = clf.rounds_.iloc[-1]
    print(f"  IMP: {fit_cpu:.1f}s CPU, round {int(last['round'])}: "
          f"{100 * last['weights_remaining']:.2f}% of the weights, validation "
          f"accuracy {last['score']:.4f} (dense {clf.rounds_['score'].iloc[0]:.4f})",
          flush=True)

    cpu = time.process_time()
    table = sanity_checks(clf, X_tr, y_tr, n_repeats=args.repeats,
                          random_state=args.seed)
    sanity_cpu = time.process_time() - cpu
    table.insert(0, "dataset", name)
    table["epochs"] = args.epochs
    table["imp_cpu_s"] = fit_cpu
    table["sanity_cpu_s"] = sanity_cpu
    table.to_csv(out / f"{stem}.csv", index=False)
    summary = table.groupby("variant", sort=False).agg(
        weights_remaining=("weights_remaining", "first"),
        mean=("score", "mean"), std=("score", "std"),
        ticket_beats=("ticket_beats", lambda s: "-" if s.isna().all()
                      else f"{int(s.sum())}/{len(s)}"),
    )
    print(f"  sanity checks: {sanity_cpu:.1f}s CPU")
    print(summary.to_string(float_format="{:.4f}".format), flush=True)

    if args.stability:
        cpu = time.process_time()
        stab = stability_analysis(clf, X_tr, y_tr, rewind_epochs=[0, 1, 2],
                                  n_points=11, random_state=args.seed)
        stab_cpu = time.process_time() - cpu
        stab.insert(0, "dataset", name)
        stab["cpu_s"] = stab_cpu
        stab.to_csv(out / f"{stem}_stability.csv", index=False)
        print(f"  stability (dense, from the ticket's initialization): "
              f"{stab_cpu:.1f}s CPU")
        print(stab[["rewind_epoch", "error_start", "error_end", "max_error",
                    "barrier"]].to_string(index=False, float_format="{:.4f}".format))
        print(f"  suggested rewind epoch (barrier <= 2%): "
              f"{suggest_rewind_epoch(stab, tol=0.02)}")
    print(f"wrote {out / stem}*.csv; total {fit_cpu + sanity_cpu:.1f}s CPU "
          "(IMP + sanity checks)")
    return table


if __name__ == "__main__":
    main()
