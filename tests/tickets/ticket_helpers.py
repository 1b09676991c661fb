"""Build and take apart ticket files byte by byte, to craft broken ones."""

from __future__ import annotations

import json
import struct

import numpy as np


def split(data: bytes) -> tuple[dict, dict, bytes]:
    """``(safetensors header without metadata, sklottery header, tensor bytes)``."""
    (n,) = struct.unpack("<Q", data[:8])
    outer = json.loads(data[8 : 8 + n])
    inner = json.loads(outer.pop("__metadata__")["sklottery"])
    return outer, inner, data[8 + n :]


def join(outer: dict, inner, body: bytes, *, raw_inner: str | None = None) -> bytes:
    """A safetensors file from its parts (``raw_inner`` replaces ``inner``)."""
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
