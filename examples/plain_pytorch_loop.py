"""
Lottery tickets in a plain PyTorch loop
=======================================

:class:`sklottery.Pruner` is the machinery behind
:class:`~sklottery.LotteryTicketClassifier`, usable in any training loop: it
computes masks by any criterion and scope, applies them, rewinds the
survivors and reports sparsity -- the counterpart of the Keras pruner's
``calc_prune_mask``/``apply_pruning`` and of the Julia ``prune!``,
``rewind!`` and ``pruneandrewind!``.

This example finds a ticket in an MLP on scikit-learn's digits with
iterative magnitude pruning and *late rewinding* (Frankle et al. 2020): the
rewind point is the state after the first epoch of the dense round.
"""

# %%
# Data and model
# --------------
# Digits ship with scikit-learn: no download. The model is a plain
# ``torch.nn.Sequential``; nothing about it is specific to sklottery.
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from sklottery import Pruner

torch.manual_seed(0)
X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X / 16.0, y, test_size=0.25, stratify=y, random_state=0
)
X_train, X_test = (torch.tensor(a, dtype=torch.float32) for a in (X_train, X_test))
y_train, y_test = torch.tensor(y_train), torch.tensor(y_test)

model = nn.Sequential(
    nn.Linear(64, 100), nn.ReLU(), nn.Linear(100, 50), nn.ReLU(), nn.Linear(50, 10)
)

# %%
# The pruner
# ----------
# It records the current parameters as the rewind point. Every criterion,
# scope and rewind mode of the estimator is available: here the largest
# trained magnitudes are kept (``"large_final"``), each layer loses 20% of
# its remaining weights per round (the output layer 10%), and survivors go
# back to the rewind point (``rewind="init"``, the default: whatever
# :meth:`~sklottery.Pruner.set_rewind_point` last recorded).
pruner = Pruner(model, strategy="large_final", prune_rate=0.2, scope="layer",
                random_state=0)


def train(model, epochs, on_epoch_end=None):
    """An ordinary loop; the only addition is ``pruner.apply()`` after each
    optimizer step, which keeps pruned weights exactly zero."""
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(X_train), generator=generator)
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            loss = nn.functional.cross_entropy(model(X_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            pruner.apply()
        if on_epoch_end is not None:
            on_epoch_end(epoch)


def accuracy(model):
    with torch.no_grad():
        return float((model(X_test).argmax(1) == y_test).float().mean())


# %%
# Round 0: dense training, with late rewinding
# --------------------------------------------
# After epoch 1 the state becomes the rewind point (and the reference
# ``w_init`` the criteria compare against).
def checkpoint(epoch):
    if epoch == 1:
        pruner.set_rewind_point()


train(model, epochs=5, on_epoch_end=checkpoint)
print(f"round 0: {1 - pruner.sparsity():.3f} of the weights, "
      f"test accuracy {accuracy(model):.3f}")

# %%
# Rounds 1..4: prune, rewind, retrain
# -----------------------------------
# ``prune_and_rewind`` computes the new masks from the trained weights, zeroes
# the pruned ones and puts the survivors back to the rewind point.
for r in range(1, 5):
    pruner.prune_and_rewind()
    untrained = accuracy(model)  # the "supermask" score (Zhou et al. 2019)
    train(model, epochs=5)
    print(f"round {r}: {1 - pruner.sparsity():.3f} of the weights, "
          f"untrained {untrained:.3f}, test accuracy {accuracy(model):.3f}")

# %%
# The ticket
# ----------
# Pruned weights are exactly zero; the table gives the per-layer sparsity.
print(pruner.layer_table())
for name, param in model.named_parameters():
    if name in pruner.masks:
        assert torch.equal(param != 0, pruner.masks[name])

# %%
# Other criteria need nothing more than a different ``strategy``; gradient
# saliency (``"snip"``, Lee et al. 2019) needs gradients, which the pruner
# computes from a loss function and batches without touching ``.grad``:
snip = Pruner(model, strategy="snip", prune_rate=0.2)
grad = snip.gradients(
    lambda m, batch: nn.functional.cross_entropy(m(batch[0]), batch[1]),
    [(X_train[:256], y_train[:256])],
)
masks = snip.compute_masks(grad=grad)
print({name: int(m.sum()) for name, m in masks.items()})
