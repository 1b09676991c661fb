"""Every supported layer type trains for a round inside the estimator and
ends with exact zeros where its masks say, and nowhere else."""

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from torch import nn

from sklottery import LotteryTicketClassifier
from sklottery.pruning import n_to_prune

RNG = np.random.default_rng(0)
X = RNG.integers(0, 4, size=(96, 8)).astype(np.float32)
Y = (X[:, :4].sum(1) > X[:, 4:].sum(1)).astype(np.int64)


class LinearNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.head = nn.Linear(8, 6), nn.Linear(6, 2)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))


class BilinearNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.head = nn.Bilinear(4, 4, 6), nn.Linear(6, 2)

    def forward(self, x):
        return self.head(torch.tanh(self.body(x[:, :4], x[:, 4:])))


class ConvNet(nn.Module):
    """A conv layer on the 8 features reshaped to ``shape``, then a Linear head."""

    def __init__(self, layer="Conv1d", shape=(1, 8), out=2):
        super().__init__()
        self.shape = shape
        self.body = getattr(nn, layer)(1, out, 2)
        with torch.no_grad():
            n = self.body(torch.zeros(1, *shape)).numel()
        self.head = nn.Linear(n, 2)

    def forward(self, x):
        h = self.body(x.reshape(len(x), *self.shape))
        return self.head(torch.relu(h).flatten(1))


class RecurrentNet(nn.Module):
    def __init__(self, kind="LSTM"):
        super().__init__()
        self.body = getattr(nn, kind)(2, 5, num_layers=2, batch_first=True)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        out, _ = self.body(x.reshape(len(x), 4, 2))
        return self.head(out[:, -1])


class EmbeddingNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.head = nn.Embedding(4, 3), nn.Linear(24, 2)

    def forward(self, x):
        return self.head(self.body(x.long()).flatten(1))


class AttentionNet(nn.Module):
    """Self-attention with a packed ``in_proj_weight``, or cross-attention with
    separate q/k/v weights (``kdim``/``vdim`` differ from ``embed_dim``)."""

    def __init__(self, separate=False):
        super().__init__()
        self.separate = separate
        kw = {"kdim": 2, "vdim": 2} if separate else {}
        self.body = nn.MultiheadAttention(4, 2, batch_first=True, **kw)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        q = x.reshape(len(x), 2, 4)
        kv = x.reshape(len(x), 4, 2) if self.separate else q
        out, _ = self.body(q, kv, kv)
        return self.head(out.flatten(1))


CASES = {
    "linear": (LinearNet, {}, ["body.weight"]),
    "bilinear": (BilinearNet, {}, ["body.weight"]),
    "conv1d": (ConvNet, {"layer": "Conv1d", "shape": (1, 8)}, ["body.weight"]),
    "conv2d": (ConvNet, {"layer": "Conv2d", "shape": (1, 2, 4)}, ["body.weight"]),
    "conv3d": (ConvNet, {"layer": "Conv3d", "shape": (1, 2, 2, 2)}, ["body.weight"]),
    "convtranspose1d": (
        ConvNet, {"layer": "ConvTranspose1d", "shape": (1, 8)}, ["body.weight"]
    ),
    "convtranspose2d": (
        ConvNet, {"layer": "ConvTranspose2d", "shape": (1, 2, 4)}, ["body.weight"]
    ),
    "convtranspose3d": (
        ConvNet, {"layer": "ConvTranspose3d", "shape": (1, 2, 2, 2)}, ["body.weight"]
    ),
    **{
        kind.lower(): (
            RecurrentNet,
            {"kind": kind},
            ["body.weight_ih_l0", "body.weight_hh_l0", "body.weight_ih_l1",
             "body.weight_hh_l1"],
        )
        for kind in ("RNN", "LSTM", "GRU")
    },
    "embedding": (EmbeddingNet, {}, ["body.weight"]),
    "attention_packed": (
        AttentionNet, {}, ["body.in_proj_weight", "body.out_proj.weight"]
    ),
    "attention_separate_qkv": (
        AttentionNet,
        {"separate": True},
        ["body.q_proj_weight", "body.k_proj_weight", "body.v_proj_weight",
         "body.out_proj.weight"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_type_trains_a_round_with_exact_zeros(case):
    module, kwargs, body = CASES[case]
    net = NeuralNetClassifier(
        module,
        **{f"module__{k}": v for k, v in kwargs.items()},
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=0.05,
        max_epochs=2,
        batch_size=32,
        train_split=None,
        verbose=0,
    )
    clf = LotteryTicketClassifier(net, n_rounds=2, prune_rate=0.5, random_state=0)
    clf.fit(X, Y)
    names = [*body, "head.weight"]
    assert list(clf.masks_) == names
    params = dict(clf.net_.module_.named_parameters())
    for name in names:
        mask, p = clf.masks_[name], params[name].detach()
        rate = 0.25 if name == "head.weight" else 0.5
        n = mask.numel()
        for _ in range(2):
            n -= n_to_prune(n, rate)
        assert int(mask.sum()) == n, name
        # exact zeros exactly where pruned (survivors are trained, non-zero)
        assert torch.equal(p != 0, mask), name
    assert clf.rounds_["epochs"].tolist() == [2, 2, 2]
    assert np.isfinite(clf.rounds_["train_loss"]).all()
    assert clf.predict(X).shape == (len(X),)
