"""Fixtures shared by the tests of sklottery.training."""

import pytest


@pytest.fixture
def net(tiny_net):
    """An initialized 64 -> 16 -> 10 net (2 epochs)."""
    return tiny_net(
        max_epochs=2, module__input_units=64, module__output_units=10
    ).initialize()
