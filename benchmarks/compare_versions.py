"""Same seeds, same figures: print the ``rounds_`` of a set of fits.

Run it with two checkouts on ``PYTHONPATH`` in turn and ``diff`` the outputs
to show that a restructuring kept every figure (wall time aside):

    PYTHONPATH=/path/to/old python benchmarks/compare_versions.py > old.txt
    PYTHONPATH=. python benchmarks/compare_versions.py > new.txt
    diff old.txt new.txt

Each configuration is a 3-round fit on sklearn's digits with a seeded
validation split; the last four also continue by ``warm_start`` from 2 to 4
rounds.
"""

import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from skorch import NeuralNetClassifier
from skorch.dataset import ValidSplit

from sklottery import MLP, LotteryTicketClassifier

CONFIGS = [
    {},
    {"rewind": "reshuffle", "strategy": "movement", "select": "best"},
    {"rewind": 1, "strategy": "snip"},
    {"strategy": "random", "schedule": "oneshot"},
    {"early_bird": True},
    {"rewind": "lr"},
]
WARM = [{}, {"rewind": "reshuffle", "strategy": "movement", "select": "best"},
        {"rewind": "lr"}, {"rewind": 1}]


def make(**params):
    net = NeuralNetClassifier(
        MLP, module__hidden_units=(32,), criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam, lr=0.01, max_epochs=3, batch_size=64,
        iterator_train__shuffle=True, verbose=0,
        train_split=ValidSplit(0.2, stratified=True, random_state=0),
    )
    return LotteryTicketClassifier(net, random_state=0, **params)


def show(label, clf, X, y):
    kept = int(sum(m.sum() for m in clf.masks_.values()))
    print(label)
    print(clf.rounds_.drop(columns=["wall_time"]).to_string())
    print(f"kept {kept}, selected round {clf.selected_round_}, "
          f"score {clf.score(X, y):.10f}")


def main():
    warnings.filterwarnings("ignore")
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    for params in CONFIGS:
        show(params, make(n_rounds=3, **params).fit(X, y), X, y)
    for params in WARM:
        clf = make(n_rounds=2, **params).fit(X, y)
        clf.set_params(warm_start=True, n_rounds=4).fit(X, y)
        show(f"warm start {params}", clf, X, y)


if __name__ == "__main__":
    main()
