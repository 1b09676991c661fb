"""A round's cost columns (sklottery.training._cost)."""

import torch

from sklottery.training import (
    RoundData,
    forward_macs_of,
    round_cost,
    training_batch_size,
)


def test_training_batch_size(tiny_net):
    assert training_batch_size(tiny_net(batch_size=64), 240) == 64
    assert training_batch_size(tiny_net(batch_size=64), 10) == 10
    assert training_batch_size(tiny_net(batch_size=-1), 240) == 240
    own = tiny_net(batch_size=64, iterator_train__batch_size=16)
    assert training_batch_size(own, 240) == 16


def test_round_cost_counts_the_training_rows(net, data):
    X = torch.as_tensor(data[0])
    rows = RoundData(X, None, X, None, "train")
    assert round_cost(rows, [], 2, None) == {"sparse_layers": ""}
    rows.macs = forward_macs_of(net, X)
    assert rows.macs
    first = round_cost(rows, [], 2, None)
    assert first["train_macs"] > 0
    assert first["cumulative_macs"] == first["train_macs"]

    class Previous:
        cumulative_macs = 5.0

    second = round_cost(rows, [], 4, Previous())
    assert second["train_macs"] == 2 * first["train_macs"]
    assert second["cumulative_macs"] == 5.0 + second["train_macs"]


def test_forward_macs_of_is_none_when_a_row_cannot_run(net):
    assert forward_macs_of(net, torch.zeros(3, 5)) is None  # wrong width: None
