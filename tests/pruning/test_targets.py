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


def test_tied_weights_are_one_prunable_tensor_with_one_mask():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(12, 4)
            self.hidden = nn.Linear(4, 4)
            self.decoder = nn.Linear(4, 12, bias=False)
            self.decoder.weight = self.embed.weight  # tied

        def forward(self, x):
            return self.decoder(self.hidden(self.embed(x)))

    net = Tied()
    names = [t.name for t in find_prunable(net)]
    assert names == ["embed.weight", "hidden.weight"]
    p = Pruner(net, prune_rate=0.5, output_rate_factor=None)
    p.prune()
    assert list(p.masks) == ["embed.weight", "hidden.weight"]
    # pruned once: the decoder computes with the same zeros
    assert net.decoder.weight is net.embed.weight
    assert int((net.decoder.weight != 0).sum()) == p.n_kept()["embed.weight"] == 24
    # the rewind point holds the shared tensor once: 4 bytes per fp32 value
    unique = sum(t.numel() for t in net.parameters())  # parameters() dedups
    assert unique == 12 * 4 + 4 * 4 + 4
    assert sum(t.numel() * t.element_size() for t in p.rewind_point.values()) == (
        4 * unique
    )


def test_data_parallel_wrappers_are_unwrapped():
    """A DataParallel (and, the same way, DistributedDataParallel, as
    accelerate prepares a module in several processes) is seen through: the
    names and tensors are the module's own, nested wrappers included."""
    from sklottery.pruning import unwrap_compiled

    inner = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    wrapped = nn.DataParallel(nn.DataParallel(inner))
    assert unwrap_compiled(wrapped) is inner
    assert [t.name for t in find_prunable(wrapped)] == ["0.weight", "2.weight"]
    pruner = Pruner(wrapped, prune_rate=0.5)
    pruner.prune()
    assert set(pruner.masks) == {"0.weight", "2.weight"}
    assert (inner[0].weight[~pruner.masks["0.weight"]] == 0).all()
