"""
Grid search over mask criteria
==============================

Which mask criterion gives the best ticket? Zhou et al. (2019) compared the
criteria of their Table 1 on MNIST; here the same question is a
:class:`~sklearn.model_selection.GridSearchCV` over ``strategy``, scored by
accuracy and by sparsity (:func:`~sklottery.scoring.sparsity_scorer`).
Every candidate of a fold starts from the same dense network, so
``memory`` caches that dense round 0 and the search trains it once per fold.
"""

# %%
# The search
# ----------
import tempfile

import matplotlib.pyplot as plt
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from skorch import NeuralNetClassifier

from sklottery import MLP, LotteryTicketClassifier
from sklottery.scoring import sparsity_scorer

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32")

net = NeuralNetClassifier(
    MLP,
    module__hidden_units=(64,),
    criterion=torch.nn.CrossEntropyLoss,
    optimizer=torch.optim.Adam,
    lr=3e-3,
    batch_size=60,
    max_epochs=5,
    train_split=None,
    iterator_train__shuffle=True,
    verbose=0,
)
strategies = ["large_final", "movement", "large_final_same_sign", "large_init",
              "random", "small_final"]
cache = tempfile.mkdtemp(prefix="sklottery-cache-")
search = GridSearchCV(
    LotteryTicketClassifier(net, n_rounds=4, prune_rate=0.5, random_state=0,
                            memory=cache),
    {"strategy": strategies},
    scoring={"accuracy": "accuracy", "sparsity": sparsity_scorer},
    refit="accuracy",
    cv=StratifiedKFold(3, shuffle=True, random_state=0),
)
search.fit(X, y)

# %%
# Results
# -------
# Four rounds of 50% leave 6.25% of the hidden layer's weights and about 10%
# of all weights (the output layer is pruned at half the rate). All
# candidates reach the same sparsity; the criterion decides which survive.
results = pd.DataFrame(search.cv_results_)[
    ["param_strategy", "mean_test_accuracy", "std_test_accuracy",
     "mean_test_sparsity"]
].sort_values("mean_test_accuracy", ascending=False)
results

# %%
# ``large_final`` (Frankle & Carbin) and the criteria that keep large final
# weights (``movement``, ``large_final_same_sign``) do best; keeping the
# *smallest* final weights is far worse than random, as Zhou et al. found.
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.barh(results["param_strategy"], results["mean_test_accuracy"],
        xerr=results["std_test_accuracy"], color="tab:blue", alpha=0.8)
ax.invert_yaxis()
ax.set_xlabel("3-fold test accuracy")
ax.set_title(f"digits, {100 * (1 - results['mean_test_sparsity'].iloc[0]):.0f}% "
             "of the weights remaining")
ax.set_xlim(left=min(0.5, results["mean_test_accuracy"].min() - 0.05))
fig.tight_layout()
plt.show()
