"""Build and take apart ticket files byte by byte, to craft broken ones; the
network and the files the ticket tests share."""

from __future__ import annotations

import hashlib
import io
import json
import struct

import numpy as np
import torch
from torch import nn

from sklottery import Pruner
from sklottery.tickets import load_ticket


def split(data: bytes) -> tuple[dict, dict, bytes]:
    """``(safetensors header without metadata, sklottery header, tensor bytes)``."""
    (n,) = struct.unpack("<Q", data[:8])
    outer = json.loads(data[8 : 8 + n])
    inner = json.loads(outer.pop("__metadata__")["sklottery"])
    return outer, inner, data[8 + n :]


def join(outer: dict, inner, body: bytes, *, raw_inner: str | None = None) -> bytes:
    """A safetensors file from its parts (``raw_inner`` replaces ``inner``).

    A header with a ``data_sha256`` gets the digest of ``body``: crafted files
    reach the checks behind the digest (a file made to deceive can carry a
    matching digest; the digest guards against corruption)."""
    if raw_inner is None and isinstance(inner, dict) and "data_sha256" in inner:
        inner = {**inner, "data_sha256": hashlib.sha256(body).hexdigest()}
    text = raw_inner if raw_inner is not None else json.dumps(inner)
    header = json.dumps({"__metadata__": {"sklottery": text}, **outer}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + body


def craft(data: bytes, *, outer=None, inner=None, body=None) -> bytes:
    """``data`` with ``outer(h)``, ``inner(h)`` and ``body(bytes)`` edits."""
    o, i, b = split(data)
    if outer is not None:
        outer(o)
    if inner is not None:
        inner(i)
    if body is not None:
        b = body(b)
    return join(o, i, b)


def spec_index(inner: dict, name: str) -> int:
    return [t["name"] for t in inner["tensors"]].index(name)


def set_tensor(data: bytes, key: str, values: np.ndarray) -> bytes:
    """Overwrite tensor ``key``'s bytes in place (same size)."""
    outer, inner, body = split(data)
    begin, end = outer[key]["data_offsets"]
    raw = np.ascontiguousarray(values).tobytes()
    assert len(raw) == end - begin
    return join(outer, inner, body[:begin] + raw + body[end:])


def tensor(data: bytes, key: str, dtype) -> np.ndarray:
    outer, _, body = split(data)
    begin, end = outer[key]["data_offsets"]
    return np.frombuffer(body[begin:end], dtype=dtype).copy()


def edit_state(**fields):
    """An ``inner`` edit setting estimator state fields."""
    return lambda h: h["estimator"]["state"].update(fields)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


ROUNDS = [
    {"round": 0, "weights_remaining": 1.0, "score": 0.5, "valid_loss": float("nan")},
    {"round": 1, "weights_remaining": 0.1, "score": 0.75, "valid_loss": 0.25},
]


class Net(nn.Module):
    """Linear, conv, batch norm (float and int buffers) and an LSTM."""

    def __init__(self, hidden=16):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 3)
        self.norm = nn.BatchNorm1d(3)
        self.rnn = nn.LSTM(3, 5, batch_first=True)
        self.fc = nn.Linear(5 * 6, hidden)
        self.out = nn.Linear(hidden, 2)

    def forward(self, x):
        h = self.norm(self.conv(x)).transpose(1, 2)
        h, _ = self.rnn(h)
        return self.out(torch.relu(self.fc(h.reshape(len(h), -1))))


def ticket_net(seed=0, rate=0.9, **kwargs):
    torch.manual_seed(seed)
    net = Net(**kwargs)
    net.train()
    net(torch.randn(4, 2, 8))  # moves the batch-norm statistics
    pruner = Pruner(net, prune_rate=rate, output_rate_factor=None)
    init = pruner.rewind_point
    with torch.no_grad():  # "training": move every weight
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    pruner.prune()
    return net, pruner.masks, init


def state(module):
    state = dict(module.named_parameters())
    state.update(module.named_buffers())
    return {n: t.detach().clone() for n, t in state.items()}



def fc_index(data):
    return spec_index(split(data)[1], "fc.weight")


def load_bytes(data, module=None):
    return load_ticket(io.BytesIO(data), module)


def nan_first(values):
    values = values.copy()
    values[0] = np.nan
    return values


#: A ticket saved by sklottery 0.1.0 (a LotteryTicketClassifier on digits).
LEGACY = "tests/data/v010_classifier.npz"


def legacy_bytes():
    with open(LEGACY, "rb") as fh:
        return fh.read()
