"""
Choosing a winning ticket with a grid search
============================================

A lottery ticket (Frankle & Carbin, 2019) is a sparse subnetwork that trains
to the accuracy of the dense network. Which pruning rate and how many rounds
give the sparsest ticket that still matches it is a model-selection question,
so we answer it with scikit-learn's :class:`~sklearn.model_selection.GridSearchCV`:

* :func:`~sklottery.scoring.sparsity_scorer` reports each candidate's
  fraction of pruned weights next to its accuracy;
* :func:`~sklottery.scoring.make_sparsest_refit` refits the sparsest
  candidate whose mean test accuracy is within ``tol`` of the best one;
* ``memory`` caches the dense round 0, which every candidate of a fold
  shares: the search trains it once per fold, not once per candidate.
"""

# %%
# Data and the estimator
# ----------------------
# sklearn's digits (no download), scaled to [0, 1]. The network is a small
# MLP; a stratified validation split inside each fit scores the rounds (the
# ``score`` column of ``rounds_``, and the dense baseline of the ticket
# scorer). Each candidate keeps its last round (``select="last"``), so its
# sparsity is fixed by ``prune_rate`` and ``n_rounds`` and the search alone
# decides how far to prune. (``select="ticket"`` would instead let every fit
# stop at its own sparsest round within ``tol`` of its dense round.)
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from skorch import NeuralNetClassifier
from skorch.dataset import ValidSplit

from sklottery import MLP, LotteryTicketClassifier
from sklottery.scoring import make_sparsest_refit, make_ticket_scorer, sparsity_scorer

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

net = NeuralNetClassifier(
    MLP,
    module__hidden_units=(64,),
    criterion=torch.nn.CrossEntropyLoss,
    optimizer=torch.optim.Adam,
    lr=3e-3,
    batch_size=64,
    max_epochs=8,
    train_split=ValidSplit(5, stratified=True),
    iterator_train__shuffle=True,
    verbose=0,
)
cache = tempfile.TemporaryDirectory()
clf = LotteryTicketClassifier(net, select="last", memory=cache.name, random_state=0)

# %%
# The search
# ----------
# Three pruning rates times two round counts. ``scoring`` names three
# metrics: accuracy, sparsity, and the ticket score (sparsity while the test
# accuracy stays within 0.02 of the candidate's own dense round, negative
# otherwise). ``refit`` picks the sparsest candidate within one point of the
# best accuracy.
search = GridSearchCV(
    clf,
    {"prune_rate": [0.2, 0.4, 0.6], "n_rounds": [2, 4]},
    scoring={
        "score": "accuracy",
        "sparsity": sparsity_scorer,
        "ticket": make_ticket_scorer(tol=0.02),
    },
    refit=make_sparsest_refit(tol=0.01),
    cv=StratifiedKFold(3, shuffle=True, random_state=0),
)
start = time.perf_counter()
search.fit(X_train, y_train)
print(f"search: {time.perf_counter() - start:.1f} s")

results = pd.DataFrame(search.cv_results_)
columns = ["param_prune_rate", "param_n_rounds", "mean_test_score",
           "mean_test_sparsity", "mean_test_ticket"]
print(results[columns].round(3).to_string(index=False))

# %%
# The chosen ticket
# -----------------
# ``best_index_`` is the sparsest candidate within one point of the best
# accuracy, refitted on all the training data. ``rounds_`` has one row per
# round (``selected`` marks the one kept) and ``layers_`` one row per pruned
# tensor.
best = search.best_estimator_
print("chosen:", search.best_params_)
print(best.rounds_[["round", "weights_remaining", "score", "selected"]].round(3))
# one cached dense round per fold, plus the refit's on all the data
n_dense = len(list(Path(cache.name).rglob("output.pkl")))
print(f"dense round 0 trained {n_dense} times for {len(results)} candidates x "
      f"{search.n_splits_} folds + 1 refit")
print(best.layers_[["name", "kept", "total", "sparsity"]])
print(f"sparsity {best.sparsity_:.3f}, test accuracy {best.score(X_test, y_test):.3f}")
cache.cleanup()
