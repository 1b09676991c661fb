"""layer_stats: exact per-tensor counts, torch only; layer_table: the same rows."""

import torch
from torch import nn

from sklottery import Pruner
from sklottery.pruning import layer_stats, layer_table
from sklottery.pruning.stats import LAYER_COLUMNS


def _pruned():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Flatten(), nn.Linear(18, 5))
    pruner = Pruner(net, prune_rate=0.5)  # output layer at 0.25
    pruner.prune()
    return pruner


def test_layer_stats_counts_exactly():
    pruner = _pruned()
    # conv: 18 weights, 9 pruned; linear (output): 90 weights, round(22.5) = 23
    assert pruner.layer_stats() == [
        {"name": "0.weight", "kind": "conv", "shape": (3, 2, 3), "kept": 9,
         "total": 18, "sparsity": 0.5},
        {"name": "2.weight", "kind": "linear", "shape": (5, 18), "kept": 67,
         "total": 90, "sparsity": 1 - 67 / 90},
    ]
    assert layer_stats(pruner.targets, pruner.masks) == pruner.layer_stats()
    for row in pruner.layer_stats():
        assert tuple(row) == LAYER_COLUMNS
        assert type(row["kept"]) is int and type(row["total"]) is int


def test_layer_table_is_layer_stats_as_a_frame():
    pruner = _pruned()
    table = pruner.layer_table()
    assert list(table.columns) == list(LAYER_COLUMNS)
    assert table.to_dict("records") == pruner.layer_stats()
    assert layer_table(pruner.targets, pruner.masks).equals(table)
