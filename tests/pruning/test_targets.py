"""Which tensors of a module are prunable: the weights of the supported layers."""

import pytest
from torch import nn

from sklottery import Pruner
from sklottery.pruning import find_prunable


def test_biases_and_norms_are_never_prunable():
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.LayerNorm(8),
        nn.Linear(8, 3),
    )
    names = [t.name for t in find_prunable(net)]
    assert names == ["0.weight", "4.weight"]


def test_subclass_of_linear_is_found():
    class MyLinear(nn.Linear):
        pass

    net = nn.Sequential(MyLinear(3, 4), nn.Linear(4, 2))
    assert [t.name for t in find_prunable(net)] == ["0.weight", "1.weight"]


def test_every_supported_layer_kind_and_its_tensors():
    net = nn.ModuleDict({
        "lin": nn.Linear(3, 4),
        "bil": nn.Bilinear(2, 2, 3),
        "conv": nn.Conv1d(2, 3, 2),
        "convt": nn.ConvTranspose2d(2, 3, 2),
        "emb": nn.Embedding(5, 2),
        "bag": nn.EmbeddingBag(5, 2),
        "gru": nn.GRU(3, 4),
        "attn": nn.MultiheadAttention(4, 2),
    })
    found = {t.name: t for t in find_prunable(net)}
    assert found["lin.weight"].kind == "linear"
    assert found["lin.weight"].module_name == "lin"
    assert found["lin.weight"].shape == (4, 3) and found["lin.weight"].numel == 12
    assert found["bil.weight"].kind == "bilinear"
    assert found["conv.weight"].kind == found["convt.weight"].kind == "conv"
    assert found["emb.weight"].kind == found["bag.weight"].kind == "embedding"
    # a recurrent layer prunes its input and hidden weights, not its biases
    assert {n for n in found if n.startswith("gru.")} == {
        "gru.weight_ih_l0", "gru.weight_hh_l0"
    }
    # attention: the packed input projection, and out_proj as its own Linear
    assert "attn.in_proj_weight" in found
    assert found["attn.out_proj.weight"].kind == "linear"
    assert not [n for n in found if "bias" in n]


def test_nothing_prunable_is_a_clear_error():
    net = nn.Sequential(nn.BatchNorm1d(3), nn.ReLU())
    assert find_prunable(net) == []
    with pytest.raises(ValueError, match="no prunable tensors.*Linear"):
        Pruner(net)
