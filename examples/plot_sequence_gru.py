"""
A recurrent ticket on sequences
===============================

Sequences ``(n, T, F)`` go to the network as they are. With ``net=None`` the
estimators build a :class:`~sklottery.RecurrentNet` (a GRU with a dense
output layer); here the same module is given with a smaller hidden state and
a higher learning rate, to train in seconds. Its input-to-hidden and
hidden-to-hidden weights are pruned along with the output layer. The task:
tell apart noisy sine waves of three frequencies.
"""

# %%
# Sequences
# ---------
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier

from sklottery import LotteryTicketClassifier, RecurrentNet
from sklottery.plotting import plot_rounds

torch.set_num_threads(1)
rng = np.random.default_rng(0)
n, T = 600, 24
y = rng.integers(0, 3, n)
t = np.arange(T)
phase = rng.uniform(0, 2 * np.pi, n)
X = np.sin((0.3 + 0.3 * y)[:, None] * t + phase[:, None])
X = (X + 0.2 * rng.normal(size=X.shape))[:, :, None].astype("float32")
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
print("X:", X.shape)

# %%
# A GRU ticket
# ------------
# :class:`~sklottery.RecurrentNet` gets ``input_size`` (F) and the number of
# classes from the data.
net = NeuralNetClassifier(
    RecurrentNet,
    module__hidden_size=16,
    criterion=torch.nn.CrossEntropyLoss,
    optimizer=torch.optim.Adam,
    lr=1e-2,
    batch_size=32,
    max_epochs=10,
    train_split=None,
    iterator_train__shuffle=True,
    verbose=0,
)
clf = LotteryTicketClassifier(net, n_rounds=4, prune_rate=0.3, random_state=0)
clf.fit(X_train, y_train)
print(type(clf.net_.module_).__name__)
print(f"test accuracy {clf.score(X_test, y_test):.3f} at "
      f"{100 * (1 - clf.sparsity_):.1f}% of the weights")
clf.layers_[["name", "kind", "shape", "sparsity"]]

# %%
# The rounds
# ----------
ax = plot_rounds(clf, baseline=True, ylabel="training accuracy")
ax.set_title("sine waves: GRU ticket")
plt.show()
