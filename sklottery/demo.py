"""The main job: find a lottery ticket in an MLP on sklearn's digits.

Run ``python -m sklottery.demo`` (or ``make demo``). No download: the digits
ship with scikit-learn.
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from skorch import NeuralNetClassifier
from skorch.dataset import ValidSplit

from .estimators import LotteryTicketClassifier
from .modules import MLP


def make_demo_estimator(n_rounds=8, max_epochs=15, random_state=0):
    """LeNet-300-100-shaped MLP, Adam 1.2e-3, batch 60; 20% per round."""
    net = NeuralNetClassifier(
        MLP,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1.2e-3,
        batch_size=60,
        max_epochs=max_epochs,
        train_split=ValidSplit(0.2, stratified=True),
        iterator_train__shuffle=True,
        verbose=0,
    )
    return LotteryTicketClassifier(
        net, n_rounds=n_rounds, prune_rate=0.2, strategy="large_final",
        random_state=random_state,
    )


def run(n_rounds=8, max_epochs=15, random_state=0):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=random_state
    )
    model = make_pipeline(
        MinMaxScaler(), make_demo_estimator(n_rounds, max_epochs, random_state)
    )
    model.fit(X_train, y_train)
    ticket = model[-1]
    table = ticket.rounds_[
        ["round", "weights_remaining", "epochs", "train_loss", "valid_loss", "score"]
    ].rename(columns={"score": "valid_acc"})
    with pd.option_context(
        "display.width", 120, "display.float_format", "{:.4f}".format
    ):
        print(
            "Lottery-ticket rounds on sklearn digits (LeNet-300-100 MLP, 20% per round)"
        )
        print(table.to_string(index=False))
        print()
        print(ticket.layers_.to_string(index=False))
    print(
        f"\nfinal ticket: {100 * (1 - ticket.sparsity_):.1f}% of weights remaining, "
        f"test accuracy {model.score(X_test, y_test):.4f}"
    )
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    run(args.rounds, args.epochs, args.seed)


if __name__ == "__main__":
    main()
