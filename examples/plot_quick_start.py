"""
Quick start: a winning ticket and its controls
==============================================

Frankle & Carbin (2019) show that a winning ticket -- the sparse network
found by iterative magnitude pruning, with its surviving weights rewound to
their *initial* values -- trains better than the same structure with a fresh
random initialization (*random reinit*) and than a random mask of the same
size (*random pruning*). This example runs the three on scikit-learn's
digits with :class:`~sklottery.LotteryTicketClassifier` and draws the
paper's figure with :func:`~sklottery.plotting.plot_rounds`.
"""

# %%
# Data and network
# ----------------
# The digits ship with scikit-learn (no download). The network is a small
# fully-connected :class:`~sklottery.MLP` trained with Adam; a stratified
# validation split inside ``fit`` gives each round's ``score``.
import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier
from skorch.dataset import ValidSplit

from sklottery import MLP, LotteryTicketClassifier
from sklottery.plotting import plot_rounds

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)

net = NeuralNetClassifier(
    MLP,
    module__hidden_units=(100, 50),
    criterion=torch.nn.CrossEntropyLoss,
    optimizer=torch.optim.Adam,
    lr=1.2e-3,
    batch_size=60,
    max_epochs=8,
    train_split=ValidSplit(0.2, stratified=True, random_state=0),
    iterator_train__shuffle=True,
    verbose=0,
)

# %%
# Three runs of the rounds
# ------------------------
# Six rounds of 35% each leave 7.5% of the hidden layers' weights and 8.6% of
# all weights (the output layer is pruned at half the rate). Only
# ``strategy`` and ``rewind`` differ between the runs.
runs = {
    "winning ticket": {"strategy": "large_final", "rewind": "init"},
    "random reinit": {"strategy": "large_final", "rewind": "reinit"},
    "random pruning": {"strategy": "random", "rewind": "init"},
}
fitted = {}
for label, params in runs.items():
    clf = LotteryTicketClassifier(
        net, n_rounds=6, prune_rate=0.35, random_state=0, **params
    )
    fitted[label] = clf.fit(X_train, y_train)
    print(f"{label:15s} test accuracy {clf.score(X_test, y_test):.3f} at "
          f"{100 * (1 - clf.sparsity_):.1f}% of the weights")

# %%
# The rounds table
# ----------------
# ``rounds_`` has one row per round; ``score`` is the validation accuracy.
fitted["winning ticket"].rounds_[
    ["round", "weights_remaining", "n_weights", "train_loss", "score"]
]

# %%
# Ticket vs controls
# ------------------
# Percent of weights remaining on a reversed log scale, as in the paper; the
# dashed line is the dense network (round 0). As in the paper, the ticket
# keeps the dense accuracy far longer than either control, which fall behind
# once most of the weights are gone (the exact values vary with the seed).
ax = plot_rounds(fitted, baseline=True, ylabel="validation accuracy")
ax.set_title("digits: winning ticket vs controls")
plt.show()
