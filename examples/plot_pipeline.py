"""
A ticket inside a scikit-learn pipeline
=======================================

:class:`~sklottery.LotteryTicketClassifier` is an ordinary scikit-learn
estimator: it goes at the end of a :class:`~sklearn.pipeline.Pipeline`, is
cross-validated like any other, and with ``select="ticket"`` keeps the
sparsest round whose validation score is within ``tol`` of the dense
network's -- the *winning ticket* of Frankle & Carbin (2019).
"""

# %%
# The pipeline
# ------------
# Standardize the 30 features of the breast-cancer data, then find a ticket in
# the default-shaped :class:`~sklottery.MLP`. ``net=None`` would build a
# LeNet-300-100; here a smaller network keeps the example fast.
import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from skorch.dataset import ValidSplit

from sklottery import MLP, LotteryTicketClassifier
from sklottery.plotting import plot_rounds

torch.set_num_threads(1)
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
net = NeuralNetClassifier(
    MLP,
    module__hidden_units=(64, 32),
    criterion=torch.nn.CrossEntropyLoss,
    optimizer=torch.optim.Adam,
    lr=3e-3,
    batch_size=32,
    max_epochs=10,
    train_split=ValidSplit(0.2, stratified=True, random_state=0),
    verbose=0,
)
model = make_pipeline(
    StandardScaler(),
    LotteryTicketClassifier(net, n_rounds=8, prune_rate=0.3, select="ticket",
                            tol=0.01, random_state=0),
)
model.fit(X_train, y_train)
ticket = model[-1]
print(f"selected round {ticket.selected_round_}: "
      f"{100 * (1 - ticket.sparsity_):.1f}% of the weights, "
      f"test accuracy {model.score(X_test, y_test):.3f}")

# %%
# Which round was kept
# --------------------
# ``rounds_["selected"]`` marks the round that ``predict`` uses; ``layers_``
# shows how sparse each layer of it is.
ticket.rounds_[["round", "weights_remaining", "score", "selected"]]

# %%
ticket.layers_

# %%
# Cross-validation
# ----------------
# The pipeline is cloned and refitted on each fold, like any estimator.
scores = cross_val_score(model, X, y, cv=3)
print("3-fold accuracy:", scores.round(3))

# %%
# The rounds, plotted
# -------------------
# :func:`~sklottery.plotting.plot_rounds` accepts the pipeline itself.
ax = plot_rounds({"breast cancer ticket": model}, baseline=True,
                 ylabel="validation accuracy")
ax.axvline(100 * (1 - ticket.sparsity_), color="0.7", linestyle=":")
plt.show()
