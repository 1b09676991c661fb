"""Small deterministic torch nets for benchmarking dependency-graph tracers.

Each factory returns ``(module, example_input)``; the module is in eval mode and its
final output layer is the attribute ``out`` (or the last ``nn.Linear``). Used by
``benchmarks/bench_depgraph.py``.
"""

import torch
from torch import nn


def _seeded(seed=0):
    torch.manual_seed(seed)


def _randomize_bn(model):
    """Give BatchNorm/LayerNorm non-trivial affine params and running stats."""
    g = torch.Generator().manual_seed(123)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return model


class MLPUser(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(20, 64)
        self.l2 = nn.Linear(64, 32)
        self.out = nn.Linear(32, 3)

    def forward(self, x):
        return self.out(torch.relu(self.l2(torch.relu(self.l1(x)))))


def mlp_user():
    _seeded()
    return MLPUser().eval(), torch.randn(4, 20)


def mlp_sequential():
    _seeded()
    m = nn.Sequential(
        nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 3)
    )
    return m.eval(), torch.randn(4, 20)


class Conv2(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 4 * 4, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv2(torch.relu(self.conv1(x)))))
        x = torch.flatten(x, 1)
        return self.out(torch.relu(self.fc(x)))


def conv2():
    _seeded()
    return Conv2().eval(), torch.randn(2, 1, 8, 8)


class BNConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 4 * 4, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        return self.out(torch.relu(self.fc(torch.flatten(x, 1))))


def bn_conv():
    _seeded()
    return _randomize_bn(BNConv()).eval(), torch.randn(2, 3, 8, 8)


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


class ResNetBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.block1 = BasicBlock(16)
        self.block2 = BasicBlock(16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out = nn.Linear(16, 10)

    def forward(self, x):
        x = self.block2(self.block1(torch.relu(self.bn(self.stem(x)))))
        return self.out(torch.flatten(self.pool(x), 1))


def resnet_block():
    _seeded()
    return _randomize_bn(ResNetBlock()).eval(), torch.randn(2, 3, 8, 8)


class ConcatNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(10, 16)
        self.b = nn.Linear(10, 8)
        self.out = nn.Linear(24, 3)

    def forward(self, x):
        return self.out(
            torch.cat([torch.relu(self.a(x)), torch.relu(self.b(x))], dim=1)
        )


def concat_net():
    _seeded()
    return ConcatNet().eval(), torch.randn(4, 10)


class RNNNet(nn.Module):
    def __init__(self, cell, in_proj=False, num_layers=1, bidirectional=False):
        super().__init__()
        self.proj = nn.Linear(6, 12) if in_proj else None
        self.rnn = cell(
            12 if in_proj else 6,
            16,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
        )
        self.out = nn.Linear(32 if bidirectional else 16, 3)

    def forward(self, x):
        if self.proj is not None:
            x = torch.relu(self.proj(x))
        y, _ = self.rnn(x)
        return self.out(y[:, -1])


def gru_net():
    _seeded()
    return RNNNet(nn.GRU).eval(), torch.randn(2, 5, 6)


def lstm_net():
    _seeded()
    return RNNNet(nn.LSTM).eval(), torch.randn(2, 5, 6)


def gru_bi2():
    """2-layer bidirectional GRU."""
    _seeded()
    return RNNNet(nn.GRU, num_layers=2, bidirectional=True).eval(), torch.randn(2, 5, 6)


def gru_proj():
    """Linear(6->12)-relu before the GRU: pruning it must drop GRU input columns."""
    _seeded()
    return RNNNet(nn.GRU, in_proj=True).eval(), torch.randn(2, 5, 6)


def lstm_proj():
    _seeded()
    return RNNNet(nn.LSTM, in_proj=True).eval(), torch.randn(2, 5, 6)


class TransformerBlock(nn.Module):
    def __init__(self, embed=False):
        super().__init__()
        self.embed = nn.Linear(8, 16) if embed else None
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.ln1 = nn.LayerNorm(16)
        self.ff1 = nn.Linear(16, 32)
        self.ff2 = nn.Linear(32, 16)
        self.ln2 = nn.LayerNorm(16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        if self.embed is not None:
            x = self.embed(x)
        a, _ = self.attn(x, x, x, need_weights=False)
        x = self.ln1(x + a)
        x = self.ln2(x + self.ff2(torch.relu(self.ff1(x))))
        return self.out(x.mean(dim=1))


def transformer_block():
    _seeded()
    return TransformerBlock().eval(), torch.randn(2, 5, 16)


def transformer_embed():
    """The block behind a Linear(8->16) embedding, so the residual width is prunable."""
    _seeded()
    return TransformerBlock(embed=True).eval(), torch.randn(2, 5, 8)


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(10, 16)
        self.l2 = nn.Linear(16, 16)
        self.out = nn.Linear(16, 3)

    def forward(self, x):
        h = torch.relu(self.l1(x))
        if x.sum() > 0:  # data-dependent control flow
            h = torch.relu(self.l2(h))
        return self.out(h)


def untraceable():
    _seeded()
    x = torch.randn(4, 10)
    return Untraceable().eval(), x.abs()  # positive sum: the l2 branch is taken


NETS = {
    "mlp_user": mlp_user,
    "mlp_sequential": mlp_sequential,
    "conv2": conv2,
    "bn_conv": bn_conv,
    "resnet_block": resnet_block,
    "concat_net": concat_net,
    "gru_net": gru_net,
    "lstm_net": lstm_net,
    "gru_bi2": gru_bi2,
    "gru_proj": gru_proj,
    "lstm_proj": lstm_proj,
    "transformer_block": transformer_block,
    "transformer_embed": transformer_embed,
    "untraceable": untraceable,
}


def output_layer(model):
    """The final output layer: attribute ``out`` or the last nn.Linear."""
    out = getattr(model, "out", None)
    if out is not None:
        return out
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
