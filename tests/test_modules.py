"""sklottery.modules: which modules take token ids (issue 19)."""

import pytest
import torch
from torch import nn

from sklottery import MLP, ConvNet, EmbeddingNet, RecurrentNet
from sklottery.inputs import InputInfo, first_layer, takes_ids
from sklottery.modules import default_module_for


class _Hashing(nn.Module):
    takes_ids = True  # maps ids before its embedding: it says so

    def __init__(self):
        super().__init__()
        self.scale = nn.Linear(1, 1)
        self.emb = nn.Embedding(10, 2)


@pytest.mark.parametrize(
    "module, expected",
    [
        (MLP, False),
        (ConvNet, False),
        (RecurrentNet, False),
        (EmbeddingNet, True),
        (nn.Embedding, True),
        (nn.EmbeddingBag, True),
        (nn.Linear, False),
        (_Hashing, True),
        (nn.Sequential(nn.Embedding(4, 2), nn.Linear(2, 2)), True),
        (nn.Sequential(nn.Sequential(nn.EmbeddingBag(4, 2)), nn.Linear(2, 1)), True),
        (nn.Sequential(nn.Linear(2, 2), nn.Embedding(4, 2)), False),
        (nn.Sequential(nn.ReLU(), nn.Embedding(4, 2)), True),  # no weights first
        (nn.Sequential(nn.ReLU()), False),
        (EmbeddingNet(5, 2), True),
        (MLP(3, 2), False),
    ],
)
def test_takes_ids(module, expected):
    assert takes_ids(module) is expected


def test_first_layer_is_the_first_with_weights():
    net = MLP(3, 2, hidden_units=(4,))
    assert first_layer(net) is net.hidden[0]
    emb = EmbeddingNet(5, 2)
    assert first_layer(emb) is emb.embedding
    assert first_layer(nn.ReLU()) is None


def test_no_default_network_for_ids_of_rank_3_names_the_way_out():
    info = InputInfo("ids", (2, 3), "int64", 4)
    with pytest.raises(ValueError, match=r"token ids need a net whose module"):
        default_module_for(info)
    # a ticket file that recorded 2-D ids (net=None before issue 19)
    assert default_module_for(InputInfo("ids", (3,), "int64", 4)) is EmbeddingNet
    assert default_module_for(InputInfo("table", (3,), "float32")) is MLP
    assert torch.get_default_dtype() == torch.float32
