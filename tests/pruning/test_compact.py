"""Compact modules: Pruner.to_compact() of a structured ticket computes what
the masked module does, PrunedMultiheadAttention matches a masked
nn.MultiheadAttention, the original module is never changed, and a
granularity="weight" pruner compacts the units it pruned whole."""


import pytest
import torch
from torch import nn

from sklottery import Pruner
from sklottery.pruning.compact_attention import PrunedMultiheadAttention


class UserMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(10, 20)
        self.l2 = nn.Linear(20, 12)
        self.out = nn.Linear(12, 3)

    def forward(self, x):
        return self.out(torch.relu(self.l2(torch.relu(self.l1(x)))))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.out(torch.relu(self.fc(x.view(x.size(0), -1))))


class GRUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(6, 12)
        self.rnn = nn.GRU(12, 16, batch_first=True)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        y, _ = self.rnn(torch.relu(self.proj(x)))
        return self.out(y[:, -1])


class AttentionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.ln = nn.LayerNorm(16)
        self.ff1 = nn.Linear(16, 24)
        self.ff2 = nn.Linear(24, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        a, _ = self.attn(x, x, x, need_weights=False)
        x = self.ln(x + a)
        x = x + self.ff2(torch.relu(self.ff1(x)))
        return self.out(x.mean(dim=1))


def _x(*shape, seed=3):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _with_norm_stats(net):
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return net


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _compact(net, x, rounds=2, **kwargs):
    """A structured pruner pruned ``rounds`` times; its compact module. Checks
    that compaction changes nothing in the pruner's module and that the
    compact module computes what the masked one does."""
    kwargs.setdefault("prune_rate", 0.3)
    pruner = Pruner(net, granularity="neuron", example_inputs=x, **kwargs)
    for _ in range(rounds):
        pruner.prune()
    net.eval()
    before = _state(net)
    params = dict(net.named_parameters())
    small = pruner.to_compact().eval()
    # the original module is not changed: same objects, values and shapes
    assert small is not net
    assert dict(net.named_parameters()).keys() == params.keys()
    for n, p in net.named_parameters():
        assert p is params[n], n
    after = net.state_dict()
    for name, value in before.items():
        assert after[name].shape == value.shape and torch.equal(after[name], value)
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), atol=1e-5, rtol=1e-5)
    assert _n_params(small) < _n_params(net)
    counts = pruner.unit_counts()
    return pruner, small, counts


def test_to_compact_user_mlp():
    net, x = UserMLP(), _x(4, 10)
    pruner, small, counts = _compact(net, x)
    assert counts == {"l1": (10, 20), "l2": (6, 12)}  # 20 -> 14 -> 10; 12 -> 8 -> 6
    assert (small.l1.in_features, small.l1.out_features) == (10, 10)
    assert (small.l2.in_features, small.l2.out_features) == (10, 6)
    assert (small.out.in_features, small.out.out_features) == (6, 3)
    # a compact copy has no zero rows left: it is dense
    assert bool(small.l1.weight.abs().sum(1).gt(0).all())
    keep = pruner.unit_masks()["l2"]
    torch.testing.assert_close(small.l2.bias, net.l2.bias[keep])


def test_to_compact_conv_with_flatten():
    net, x = _with_norm_stats(ConvNet()), _x(2, 1, 8, 8)
    _, small, counts = _compact(net, x, prune_rate=0.25)
    # 8 -> 6 -> 4 (round(1.5) = 2); 16 -> 12 -> 9
    assert counts == {"conv1": (4, 8), "conv2": (4, 8), "fc": (9, 16)}
    assert small.conv1.out_channels == small.bn1.num_features == 4
    assert small.bn1.running_mean.shape == (4,)
    assert (small.conv2.in_channels, small.conv2.out_channels) == (4, 4)
    assert (small.fc.in_features, small.fc.out_features) == (4 * 16, 9)
    assert small.out.in_features == 9


def test_to_compact_gru():
    net, x = GRUNet(), _x(2, 5, 6)
    _, small, counts = _compact(net, x, prune_rate=0.25)
    assert counts == {"proj": (7, 12), "rnn": (9, 16)}
    assert small.proj.out_features == 7
    assert small.rnn.input_size == 7 and small.rnn.hidden_size == 9
    assert small.rnn.weight_ih_l0.shape == (27, 7)
    assert small.rnn.weight_hh_l0.shape == (27, 9)
    assert small.out.in_features == 9


def test_to_compact_attention():
    net, x = AttentionNet(), _x(2, 5, 16)
    with pytest.warns(UserWarning, match=r"'ff2' \('add' with an input"):
        _, small, counts = _compact(net, x, rounds=1, prune_rate=0.5)
    assert counts == {"attn": (2, 4), "ff1": (12, 24)}
    assert isinstance(small.attn, PrunedMultiheadAttention)
    assert small.attn.num_heads == 2 and small.attn.embed_dim == 16
    assert small.attn.in_proj_weight.shape == (24, 16)
    assert (small.ff1.out_features, small.ff2.in_features) == (12, 12)
    assert isinstance(net.attn, nn.MultiheadAttention)
    assert net.attn.in_proj_weight.shape == (48, 16)


# -- PrunedMultiheadAttention ------------------------------------------------------
def _masked_attention(batch_first, kept=(0, 2), heads=4, embed=16):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(embed, heads, batch_first=batch_first).eval()
    d = embed // heads
    gone = [h for h in range(heads) if h not in kept]
    with torch.no_grad():
        for h in gone:
            for s in range(3):  # q, k, v rows (biases stay: they meet zero columns)
                mha.in_proj_weight[s * embed + h * d : s * embed + (h + 1) * d] = 0
            mha.out_proj.weight[:, h * d : (h + 1) * d] = 0
    return mha, PrunedMultiheadAttention(mha, torch.tensor(kept)).eval()


def _qkv(batch_first, b=3, t=4, s=6, e=16):
    q, k, v = _x(b, t, e, seed=1), _x(b, s, e, seed=2), _x(b, s, e, seed=3)
    if not batch_first:
        q, k, v = (z.transpose(0, 1) for z in (q, k, v))
    return q, k, v


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("mask_dtype", [torch.bool, torch.float32])
def test_pruned_attention_matches_the_masked_one(batch_first, mask_dtype):
    mha, small = _masked_attention(batch_first)
    assert small.num_heads == 2 and small.batch_first is batch_first
    q, k, v = _qkv(batch_first)
    b, t, s = 3, 4, 6
    pad = torch.zeros(b, s, dtype=torch.bool)
    pad[0, -2:] = True
    pad[2, 0] = True
    attn = torch.triu(torch.ones(t, s, dtype=torch.bool), diagonal=3)
    if mask_dtype is torch.float32:
        pad = torch.zeros(b, s).masked_fill(pad, float("-inf"))
        attn = torch.zeros(t, s).masked_fill(attn, float("-inf"))
    with torch.no_grad():
        for kwargs in (
            {},
            {"key_padding_mask": pad},
            {"attn_mask": attn},
            {"key_padding_mask": pad, "attn_mask": attn},
        ):
            want, _ = mha(q, k, v, **kwargs)
            got, weights = small(q, k, v, **kwargs)
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
            assert weights.shape == (b, t, s)
            got2, none = small(q, k, v, need_weights=False, **kwargs)
            assert none is None
            torch.testing.assert_close(got2, got)
        # the masks matter here: without them the outputs differ
        plain, _ = small(q, k, v)
        masked, _ = small(q, k, v, key_padding_mask=pad, attn_mask=attn)
        assert not torch.allclose(plain, masked, atol=1e-4)


def test_pruned_attention_with_every_head_is_the_original():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    small = PrunedMultiheadAttention(mha, torch.arange(4)).eval()
    q, k, v = _qkv(True)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[1, -3:] = True
    with torch.no_grad():
        want, want_w = mha(q, k, v, key_padding_mask=pad)
        got, got_w = small(q, k, v, key_padding_mask=pad)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got_w, want_w, atol=1e-5, rtol=1e-5)
        want_w, got_w = (
            m(q, k, v, average_attn_weights=False)[1] for m in (mha, small)
        )
        torch.testing.assert_close(got_w, want_w, atol=1e-5, rtol=1e-5)


def test_pruned_attention_per_head_3d_mask():
    mha, small = _masked_attention(True, kept=(1, 3))
    q, k, v = _qkv(True)
    mask = torch.randn(3 * 4, 4, 6, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        want, _ = mha(q, k, v, attn_mask=mask)
        got, _ = small(q, k, v, attn_mask=mask)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_pruned_attention_leaves_the_source_unchanged():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4)
    before = _state(mha)
    small = PrunedMultiheadAttention(mha, torch.tensor([0, 3]))
    with torch.no_grad():
        small.in_proj_weight.add_(1.0)
        small.out_proj.weight.add_(1.0)
    for name, value in mha.state_dict().items():
        assert torch.equal(value, before[name]), name


# -- granularity="weight" --------------------------------------------------------
def test_to_compact_of_a_weight_pruner_removes_units_pruned_whole():
    net, x = UserMLP(), _x(4, 10)
    pruner = Pruner(net, prune_rate=0.2)
    gen = torch.Generator().manual_seed(0)
    masks = {
        n: torch.rand(m.shape, generator=gen) > 0.3 for n, m in pruner.masks.items()
    }
    # l1 units 2, 5, 11 have no consumer left; l2 unit 7 neither
    masks["l2.weight"][:, [2, 5, 11]] = False
    masks["out.weight"][:, 7] = False
    # l1's unit 0 loses its own rows only: it still feeds l2, so it stays
    masks["l1.weight"][0] = False
    # every other unit keeps a consumer column
    masks["l2.weight"][0, [i for i in range(20) if i not in (2, 5, 11)]] = True
    masks["out.weight"][0, [i for i in range(12) if i != 7]] = True
    pruner.set_masks(masks)
    pruner.apply()
    with pytest.raises(ValueError, match="example_inputs"):
        pruner.to_compact()
    before = _state(net)
    small = pruner.to_compact(example_inputs=x).eval()
    assert (small.l1.out_features, small.l2.in_features) == (17, 17)
    assert (small.l2.out_features, small.out.in_features) == (11, 11)
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name]), name
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(small(x), net(x), atol=1e-5, rtol=1e-5)
    # the unstructured zeros of the kept units are kept as zeros
    kept1 = [i for i in range(20) if i not in (2, 5, 11)]
    kept2 = [i for i in range(12) if i != 7]
    assert torch.equal(small.l1.weight == 0, ~masks["l1.weight"][kept1])
    assert torch.equal(small.l2.weight == 0, ~masks["l2.weight"][kept2][:, kept1])
    assert torch.equal(small.out.weight == 0, ~masks["out.weight"][:, kept2])
