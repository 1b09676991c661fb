"""The ticket tests' shared fixture: a saved ticket of :class:`ticket_helpers.Net`."""

import numpy as np
import pytest

from sklottery.tickets import save_ticket
from tests.tickets import ticket_helpers as th


@pytest.fixture
def saved(tmp_path):
    net, masks, init = th.ticket_net()
    path = save_ticket(
        tmp_path / "ticket",
        net,
        masks,
        rounds=th.ROUNDS,
        rewind_point=init,
        info={"who": "test", "n": 3},
        arrays={"classes": np.array(["a", "b"]), "w": np.arange(3.0)},
    )
    return path, net, masks, init
