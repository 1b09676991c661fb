"""
A convolutional ticket on digits images
=======================================

Frankle & Carbin (2019) found winning tickets in small convolutional networks
(Conv-2/4/6 on CIFAR-10), pruning the convolutions more slowly than the dense
layers. Here the digits are images ``(n, 1, 8, 8)``: the estimators take them
as they are (no flattening) and, with a :class:`~sklottery.ConvNet`, prune
the convolutions at 10% and the dense layers at 20% per round with
``type_rates``.
"""

# %%
# Images in, images to the network
# --------------------------------
# ``X`` has shape (n, 1, 8, 8) and stays float32 of that shape; a
# :class:`~sklottery.ConvNet` module gets its input shape and number of
# classes from the data. The net is smaller than the default (which is the
# paper's Conv-2 at half width) to keep this example to seconds.
import matplotlib.pyplot as plt
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier

from sklottery import ConvNet, LotteryTicketClassifier
from sklottery.plotting import plot_rounds

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype("float32").reshape(-1, 1, 8, 8)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.3, stratify=y, random_state=0
)
net = NeuralNetClassifier(
    ConvNet,
    module__channels=(8, 16),
    module__hidden_units=(64,),
    criterion=torch.nn.CrossEntropyLoss,
    optimizer=torch.optim.Adam,
    lr=3e-3,
    batch_size=60,
    max_epochs=6,
    train_split=None,
    iterator_train__shuffle=True,
    verbose=0,
)

# %%
# Conv layers at their own rate
# -----------------------------
# ``type_rates`` gives each layer type its per-round rate; the output layer
# is pruned at its type's rate times ``output_rate_factor`` (10%).
clf = LotteryTicketClassifier(
    net, n_rounds=5, type_rates={"conv": 0.1, "linear": 0.2}, random_state=0
)
clf.fit(X_train, y_train)
print(f"test accuracy {clf.score(X_test, y_test):.3f} at "
      f"{100 * (1 - clf.sparsity_):.1f}% of the weights")
clf.layers_[["name", "kind", "shape", "sparsity"]]

# %%
# Every pruned weight is exactly zero, in the convolutions too
weights = dict(clf.net_.module_.named_parameters())
for name, mask in clf.masks_.items():
    assert (weights[name].detach()[~mask] == 0).all()
print("features entering the output layer:", clf.transform(X_test[:5]).shape)

# %%
# The rounds
# ----------
ax = plot_rounds(clf, baseline=True, ylabel="training accuracy")
ax.set_title("digits images: ConvNet ticket")
plt.show()
