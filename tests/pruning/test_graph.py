"""The unit graph (structured pruning): the groups and fixed spaces traced
for each kind of network, and the compact module of a random half of each
group's units computing what the masked module does."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sklottery.pruning import apply_masks, find_prunable
from sklottery.pruning.compact import compact_module
from sklottery.pruning.compact_attention import PrunedMultiheadAttention
from sklottery.pruning.graph import GraphError, trace_units
from sklottery.pruning.units import expand_masks, unit_keep

OUTPUT = "the network's output"


# -- tiny nets ---------------------------------------------------------------------
class UserMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(10, 16)
        self.l2 = nn.Linear(16, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.relu(self.l2(torch.relu(self.l1(x)))))


def sequential():
    return nn.Sequential(
        nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)
    )


class BasicBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + x)


class ResNet(nn.Module):
    """stem -> BasicBlock (residual) -> pool -> out: the stem and the
    block's conv2 share their channels."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.block = BasicBlock(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out = nn.Linear(8, 4)

    def forward(self, x):
        x = self.block(torch.relu(self.bn(self.stem(x))))
        return self.out(torch.flatten(self.pool(x), 1))


class InputResidual(nn.Module):
    """A residual block on the network's input: conv2's channels are the
    input's, never pruned."""

    def __init__(self):
        super().__init__()
        self.block = BasicBlock(3)
        self.conv = nn.Conv2d(3, 6, 3)
        self.out = nn.Linear(6, 2)

    def forward(self, x):
        return self.out(torch.relu(self.conv(self.block(x))).mean((2, 3)))


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(10, 16)
        self.b = nn.Linear(10, 8)
        self.out = nn.Linear(24, 3)

    def forward(self, x):
        return self.out(torch.cat([torch.relu(self.a(x)), torch.relu(self.b(x))], 1))


class ConcatInput(nn.Module):
    """The input's 10 features first, then a's 16 units."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(10, 16)
        self.out = nn.Linear(26, 3)

    def forward(self, x):
        return self.out(torch.cat([x, torch.relu(self.a(x))], dim=1))


class ConvFlatten(nn.Module):
    """conv (4 channels, 4x4 after pooling) -> flatten -> fc -> out."""

    def __init__(self, how):
        super().__init__()
        self.how = how
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * 4 * 4, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv(x)))
        if self.how == "torch.flatten":
            x = torch.flatten(x, 1)
        elif self.how == "nn.Flatten":
            x = self.flatten(x)
        else:
            x = x.view(x.size(0), -1)
        return self.out(torch.relu(self.fc(x)))


class BNConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 6, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6 * 4 * 4, 10)
        self.out = nn.Linear(10, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        return self.out(torch.relu(self.fc(torch.flatten(x, 1))))


class BNMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(10, 12)
        self.bn = nn.BatchNorm1d(12)
        self.out = nn.Linear(12, 3)

    def forward(self, x):
        return self.out(torch.relu(self.bn(self.l1(x))))


class RNNNet(nn.Module):
    def __init__(self, cell, num_layers=1, bidirectional=False):
        super().__init__()
        self.rnn = cell(
            6, 16, num_layers=num_layers, batch_first=True, bidirectional=bidirectional
        )
        self.out = nn.Linear(32 if bidirectional else 16, 3)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.out(y[:, -1])


class TransformerBlock(nn.Module):
    """Linear embedding -> attention + residual + LayerNorm -> FFN + residual
    + LayerNorm -> mean over time -> out."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 16)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.ln1 = nn.LayerNorm(16)
        self.ff1 = nn.Linear(16, 32)
        self.ff2 = nn.Linear(32, 16)
        self.ln2 = nn.LayerNorm(16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        x = self.embed(x)
        a, _ = self.attn(x, x, x, need_weights=False)
        x = self.ln1(x + a)
        x = self.ln2(x + self.ff2(torch.relu(self.ff1(x))))
        return self.out(x.mean(dim=1))


def _randomize_norms(module):
    """Non-trivial BatchNorm affine parameters and running statistics."""
    gen = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
    return module


def _x(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(7))


# -- helpers -----------------------------------------------------------------------
def _all_kept(module):
    params = dict(module.named_parameters())
    return {
        t.name: torch.ones_like(params[t.name], dtype=torch.bool)
        for t in find_prunable(module)
    }


def _random_half(graph, seed=0):
    gen = torch.Generator().manual_seed(seed)
    units = {}
    for g in graph.groups:
        keep = torch.ones(g.size, dtype=torch.bool)
        keep[torch.randperm(g.size, generator=gen)[: g.size // 2]] = False
        units[g.name] = keep
    return units


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def _summary(graph):
    return [(g.name, g.kind, g.size) for g in graph.groups]


def _check_compact(module, x):
    """Prune a random half of each group's units; the compact module computes
    what the masked one does, with fewer parameters. Returns (masked, small,
    units)."""
    module.eval()
    graph = trace_units(module, x)
    units = _random_half(graph)
    masks = expand_masks(graph, units, _all_kept(module))
    for name, keep in unit_keep(graph, masks).items():  # the masks say the same
        assert torch.equal(keep, units[name]), name
    masked = copy.deepcopy(module)
    apply_masks(masked, masks)
    small = compact_module(masked, graph, units).eval()
    with torch.no_grad():
        want, got = masked(x), small(x)
        full = module(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(full, want, atol=1e-4)  # the pruning did something
    assert _n_params(small) < _n_params(module)
    return masked, small, units


def _positions(graph, group, tensor, role="consumer"):
    return [
        e.positions for e in graph.group(group).entries
        if e.name == tensor and e.role == role
    ]


# -- groups, fixed spaces and compaction per network -------------------------------
def test_user_mlp():
    net, x = UserMLP(), _x(4, 10)
    graph = trace_units(net, x)
    assert _summary(graph) == [("l1", "neuron", 16), ("l2", "neuron", 8)]
    assert graph.fixed == {"out": OUTPUT}
    g = graph.group("l1")
    assert [(e.name, e.dim, e.role) for e in g.entries] == [
        ("l1.weight", 0, "producer"),
        ("l1.bias", 0, "producer"),
        ("l2.weight", 1, "consumer"),
    ]
    assert g.norms == [] and g.layers == ["l1", "l2"]
    assert torch.equal(g.entries[0].positions.squeeze(1), torch.arange(16))
    _, small, units = _check_compact(net, x)
    assert (small.l1.out_features, small.l2.in_features) == (8, 8)
    assert (small.l2.out_features, small.out.in_features, small.out.out_features) == (
        4, 4, 3,
    )
    # the kept rows are the original's, in order
    kept = units["l1"].nonzero().squeeze(1)
    torch.testing.assert_close(small.l1.weight, net.l1.weight[kept])
    torch.testing.assert_close(small.l1.bias, net.l1.bias[kept])


def test_sequential():
    net, x = sequential(), _x(4, 10)
    graph = trace_units(net, x)
    assert _summary(graph) == [("0", "neuron", 16), ("2", "neuron", 8)]
    assert graph.fixed == {"4": OUTPUT}
    _, small, _ = _check_compact(net, x)
    assert isinstance(small, nn.Sequential)
    assert [small[0].out_features, small[2].in_features, small[2].out_features] == [
        8, 8, 4,
    ]
    assert small[4].in_features == 4


def test_residual_block_ties_its_channels():
    net, x = _randomize_norms(ResNet()), _x(2, 3, 8, 8)
    graph = trace_units(net, x)
    assert _summary(graph) == [("stem", "channel", 8), ("block.conv1", "channel", 8)]
    assert graph.fixed == {"out": OUTPUT}
    stem = graph.group("stem")
    producers = {e.name for e in stem.of_role("producer")}
    assert producers == {"stem.weight", "block.conv2.weight"}
    assert {e.name for e in stem.of_role("consumer")} == {
        "block.conv1.weight", "out.weight",
    }
    assert sorted(stem.norms) == ["block.bn2", "bn"]
    assert {e.name for e in stem.of_role("follower")} == {
        f"{bn}.{t}" for bn in ("bn", "block.bn2")
        for t in ("weight", "bias", "running_mean", "running_var")
    }
    assert graph.group("block.conv1").norms == ["block.bn1"]
    _, small, _ = _check_compact(net, x)
    assert small.stem.out_channels == small.block.conv2.out_channels == 4
    assert small.bn.num_features == small.block.bn2.num_features == 4
    assert small.block.conv1.in_channels == 4 and small.block.conv1.out_channels == 4
    assert small.block.bn1.running_mean.shape == (4,)
    assert small.out.in_features == 4


def test_residual_on_the_network_input_is_fixed():
    net, x = _randomize_norms(InputResidual()), _x(2, 3, 8, 8)
    graph = trace_units(net, x)
    assert _summary(graph) == [("block.conv1", "channel", 3), ("conv", "channel", 6)]
    assert set(graph.fixed) == {"block.conv2", "out"}
    assert graph.fixed["out"] == OUTPUT
    why = graph.fixed["block.conv2"]
    assert why.startswith("'add' with an input or constant")
    _, small, _ = _check_compact(net, x)
    assert small.block.conv2.out_channels == 3  # the input's channels stay
    assert small.block.conv1.out_channels == small.block.conv2.in_channels == 2
    assert small.conv.out_channels == small.out.in_features == 3


def test_concat_of_two_branches():
    net, x = Concat(), _x(4, 10)
    graph = trace_units(net, x)
    assert _summary(graph) == [("a", "neuron", 16), ("b", "neuron", 8)]
    assert graph.fixed == {"out": OUTPUT}
    (pa,) = _positions(graph, "a", "out.weight")
    (pb,) = _positions(graph, "b", "out.weight")
    assert torch.equal(pa.squeeze(1), torch.arange(16))
    assert torch.equal(pb.squeeze(1), 16 + torch.arange(8))  # at its offset
    _, small, _ = _check_compact(net, x)
    assert (small.a.out_features, small.b.out_features) == (8, 4)
    assert small.out.in_features == 12


def test_concat_with_the_input():
    net, x = ConcatInput(), _x(4, 10)
    graph = trace_units(net, x)
    assert _summary(graph) == [("a", "neuron", 16)]
    assert graph.fixed == {"out": OUTPUT}
    (pa,) = _positions(graph, "a", "out.weight")
    assert torch.equal(pa.squeeze(1), 10 + torch.arange(16))
    masked, small, units = _check_compact(net, x)
    assert small.a.out_features == 8 and small.out.in_features == 10 + 8
    # the input's columns are all kept, first
    kept = 10 + units["a"].nonzero().squeeze(1)
    torch.testing.assert_close(small.out.weight[:, :10], net.out.weight[:, :10])
    torch.testing.assert_close(small.out.weight[:, 10:], net.out.weight[:, kept])


@pytest.mark.parametrize("how", ["torch.flatten", "nn.Flatten", "view"])
def test_flatten_before_linear(how):
    net, x = ConvFlatten(how), _x(2, 1, 8, 8)
    graph = trace_units(net, x)
    assert _summary(graph) == [("conv", "channel", 4), ("fc", "neuron", 8)]
    assert graph.fixed == {"out": OUTPUT}
    (cols,) = _positions(graph, "conv", "fc.weight")
    # channel j owns the 16 columns of its 4x4 positions
    assert cols.shape == (4, 16)
    assert torch.equal(cols, torch.arange(64).reshape(4, 16))
    _, small, _ = _check_compact(net, x)
    assert small.conv.out_channels == 2
    assert small.fc.in_features == 2 * 16 and small.fc.out_features == 4
    assert small.out.in_features == 4


def test_batchnorm_conv():
    net, x = _randomize_norms(BNConv()), _x(2, 3, 8, 8)
    graph = trace_units(net, x)
    assert _summary(graph) == [
        ("conv1", "channel", 8), ("conv2", "channel", 6), ("fc", "neuron", 10),
    ]
    assert graph.fixed == {"out": OUTPUT}
    assert graph.group("conv1").norms == ["bn1"]
    assert graph.group("conv2").norms == ["bn2"]
    assert graph.group("fc").norms == []
    followers = [e.name for e in graph.group("conv1").of_role("follower")]
    assert followers == [
        "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
    ]
    _, small, _ = _check_compact(net, x)
    assert small.conv1.out_channels == small.bn1.num_features == 4
    assert small.bn1.running_var.shape == (4,) and small.bn1.weight.shape == (4,)
    assert small.conv2.in_channels == 4 and small.conv2.out_channels == 3
    assert small.fc.in_features == 3 * 16


def test_batchnorm1d_mlp():
    net, x = _randomize_norms(BNMLP()), _x(4, 10)
    graph = trace_units(net, x)
    assert _summary(graph) == [("l1", "neuron", 12)]
    assert graph.group("l1").norms == ["bn"]
    _, small, _ = _check_compact(net, x)
    assert small.bn.num_features == 6 and small.out.in_features == 6


def test_gru():
    net, x = RNNNet(nn.GRU), _x(2, 5, 6)
    graph = trace_units(net, x)
    assert _summary(graph) == [("rnn", "hidden", 16)]
    assert graph.fixed == {"out": OUTPUT}
    g = graph.group("rnn")
    rows = {e.name: e.positions for e in g.of_role("producer")}
    assert set(rows) == {"rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0",
                         "rnn.bias_hh_l0"}
    # unit j owns row j of each of the 3 gates
    assert torch.equal(rows["rnn.weight_ih_l0"][5], torch.tensor([5, 21, 37]))
    assert {e.name for e in g.of_role("consumer")} == {"rnn.weight_hh_l0", "out.weight"}
    _, small, _ = _check_compact(net, x)
    assert small.rnn.hidden_size == 8 and small.rnn.input_size == 6
    assert small.rnn.weight_ih_l0.shape == (24, 6)
    assert small.rnn.weight_hh_l0.shape == (24, 8)
    assert small.out.in_features == 8


def test_gru_two_layers_bidirectional():
    net, x = RNNNet(nn.GRU, num_layers=2, bidirectional=True), _x(2, 5, 6)
    graph = trace_units(net, x)
    assert _summary(graph) == [("rnn", "hidden", 16)]
    assert graph.fixed == {"out": OUTPUT}
    g = graph.group("rnn")
    assert len(g.of_role("producer")) == 16  # 4 tensors x 2 layers x 2 directions
    # the second layer reads both directions: columns j and 16 + j
    cols = sorted(
        int(e.positions[0, 0]) for e in g.of_role("consumer")
        if e.name == "rnn.weight_ih_l1"
    )
    assert cols == [0, 16]
    out_cols = sorted(
        int(e.positions[3, 0]) for e in g.of_role("consumer") if e.name == "out.weight"
    )
    assert out_cols == [3, 19]
    _, small, _ = _check_compact(net, x)
    assert small.rnn.hidden_size == 8
    assert small.rnn.weight_ih_l1.shape == (24, 16)
    assert small.rnn.weight_hh_l1_reverse.shape == (24, 8)
    assert small.out.in_features == 16


def test_lstm():
    net, x = RNNNet(nn.LSTM), _x(2, 5, 6)
    graph = trace_units(net, x)
    assert _summary(graph) == [("rnn", "hidden", 16)]
    assert graph.fixed == {"out": OUTPUT}
    (rows,) = [e.positions for e in graph.group("rnn").entries
               if e.name == "rnn.weight_ih_l0"]
    assert rows.shape == (16, 4)  # 4 gates
    _, small, _ = _check_compact(net, x)
    assert small.rnn.hidden_size == 8
    assert small.rnn.weight_hh_l0.shape == (32, 8)
    assert small.out.in_features == 8


def test_attention_block():
    net, x = TransformerBlock(), _x(2, 5, 8)
    graph = trace_units(net, x)
    assert _summary(graph) == [("attn", "head", 4), ("ff1", "neuron", 32)]
    assert set(graph.fixed) == {"embed", "ff2", "out"}
    assert graph.fixed["embed"] == "the embedding dimension of the attention 'attn'"
    assert graph.fixed["ff2"].startswith("'add' with an input or constant")
    assert graph.fixed["out"] == OUTPUT
    heads = graph.group("attn")
    (rows,) = [e.positions for e in heads.entries if e.name == "attn.in_proj_weight"]
    # head 1 owns rows 4..7 of each of q, k, v
    assert torch.equal(rows[1], torch.tensor([4, 5, 6, 7, 20, 21, 22, 23, 36, 37,
                                              38, 39]))
    (cols,) = [e.positions for e in heads.entries if e.name == "attn.out_proj.weight"]
    assert torch.equal(cols[2], torch.tensor([8, 9, 10, 11]))
    _, small, units = _check_compact(net, x)
    assert isinstance(small.attn, PrunedMultiheadAttention)
    assert small.attn.num_heads == 2 and small.attn.embed_dim == 16
    assert torch.equal(small.attn.heads, units["attn"].nonzero().squeeze(1))
    assert small.attn.in_proj_weight.shape == (3 * 8, 16)
    assert small.attn.out_proj.weight.shape == (16, 8)
    assert small.ff1.out_features == small.ff2.in_features == 16
    assert small.embed.out_features == 16  # fixed


def test_layernorm_fixes_its_units():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(10, 16)
            self.ln = nn.LayerNorm(16)
            self.l2 = nn.Linear(16, 8)
            self.out = nn.Linear(8, 3)

        def forward(self, x):
            return self.out(torch.relu(self.l2(self.ln(self.l1(x)))))

    graph = trace_units(Net(), _x(4, 10))
    assert _summary(graph) == [("l2", "neuron", 8)]
    assert graph.fixed == {"l1": "the LayerNorm 'ln' over them", "out": OUTPUT}


# -- what cannot be traced, and ops over the unit dimension ---------------------------
class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(10, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        h = self.l1(x)
        if x.sum() > 0:  # data-dependent control flow
            h = torch.relu(h)
        return self.out(h)


def test_untraceable_module_raises_graph_error():
    with pytest.raises(GraphError) as info:
        trace_units(Untraceable(), _x(4, 10))
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "cannot trace Untraceable" in message
    assert "control flow" in message
    assert "granularity='weight'" in message


def test_reading_a_weight_directly_raises_graph_error():
    class Direct(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(10, 16)
            self.out = nn.Linear(16, 3)

        def forward(self, x):
            return self.out(torch.relu(F.linear(x, self.l1.weight, self.l1.bias)))

    with pytest.raises(GraphError, match=r"reads the weight 'l1\.weight' directly"):
        trace_units(Direct(), _x(4, 10))


class OpOverUnits(nn.Module):
    def __init__(self, op):
        super().__init__()
        self.op = op
        self.l1 = nn.Linear(10, 16)
        self.l2 = nn.Linear(16, 8)
        self.sm = nn.Softmax(dim=1)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        h = self.l1(x)
        if self.op == "mean":
            h = h - h.mean(1, keepdim=True)
        elif self.op == "softmax":
            h = torch.softmax(h, dim=-1)
        elif self.op == "nn.Softmax":
            h = self.sm(h)
        elif self.op == "sum":
            h = h / h.sum(dim=-1, keepdim=True)
        return self.out(torch.relu(self.l2(h)))


@pytest.mark.parametrize(
    "op,why",
    [
        ("mean", "'mean' over the unit dimension"),
        ("softmax", "'softmax' over the unit dimension"),
        ("sum", "'sum' over the unit dimension"),
        ("nn.Softmax", "a softmax over the units ('sm')"),
    ],
)
def test_op_over_the_unit_dimension_fixes_the_space(op, why):
    graph = trace_units(OpOverUnits(op), _x(4, 10))
    assert _summary(graph) == [("l2", "neuron", 8)]  # l2 is still prunable
    assert set(graph.fixed) == {"l1", "out"}
    assert why in graph.fixed["l1"]


def test_op_over_another_dimension_keeps_the_units():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(6, 16)
            self.out = nn.Linear(16, 3)

        def forward(self, x):  # (batch, time, features): mean over time
            return self.out(torch.relu(self.l1(x)).mean(dim=1))

    net, x = Net(), _x(2, 5, 6)
    graph = trace_units(net, x)
    assert _summary(graph) == [("l1", "neuron", 16)]
    _check_compact(net, x)


def test_trace_leaves_the_module_as_it_was():
    net = _randomize_norms(BNConv()).train()
    before = copy.deepcopy(net.state_dict())
    trace_units(net, _x(2, 3, 8, 8))
    assert net.training
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name]), name
