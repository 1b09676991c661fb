"""The safetensors container of a ticket: writing its bytes, and reading
them bounded and strict -- the layout checked before sklottery's header is
read, both before any tensor, and the tensor data against the SHA-256 the
header records (:data:`~._format.DIGEST_FIELD`) before any of it is used."""

from __future__ import annotations

import hashlib
import json
import math
import struct

import numpy as np
import torch

from ._format import (
    _BY_CODE,
    _BY_TORCH,
    _DTYPES,
    _METADATA_KEY,
    _NUMPY,
    DIGEST_FIELD,
    MAX_HEADER_BYTES,
    SAFETENSORS_VERSIONS,
    _check_names,
    _Invalid,
    _is_int,
    _json,
    _json_default,
    _Parsed,
    _shape,
    _short,
)


def data_digest(data) -> str:
    """The SHA-256 (hex) of a ticket's data section: what the header's
    :data:`~._format.DIGEST_FIELD` records."""
    return hashlib.sha256(data).hexdigest()


def _check_digest(header: dict, data) -> None:
    """`_Invalid` unless the data section has the digest the header records
    (files of version 2 have none: nothing to check)."""
    want = header.get(DIGEST_FIELD)
    if want is not None and data_digest(data) != want:
        raise _Invalid(
            f"its tensor data does not match header field {DIGEST_FIELD!r} (the "
            "SHA-256 of the data): the file is corrupt"
        )


# -- writing ---------------------------------------------------------------------
def _safetensors_bytes(tensors: dict[str, torch.Tensor], header: dict) -> bytes:
    """The safetensors serialization of ``tensors`` (little-endian, byte
    ranges in name order, header padded with spaces to 8 bytes), with
    sklottery's ``header`` and the data's digest in its metadata."""
    outer: dict = {}
    chunks, offset = [], 0
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        name = _BY_TORCH[t.dtype]
        arr = (t.view(torch.uint16) if name == "bfloat16" else t).numpy()
        raw = arr.astype(np.dtype(_NUMPY[name]), copy=False).tobytes()
        outer[key] = {
            "dtype": _DTYPES[name][1],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    body = b"".join(chunks)
    inner = json.dumps({**header, DIGEST_FIELD: data_digest(body)},
                       default=_json_default)
    if len(inner.encode("utf-8")) > MAX_HEADER_BYTES // 2:
        raise ValueError(
            f"the ticket's header (round history, info, text arrays) would take "
            f"{len(inner)} bytes; at most {MAX_HEADER_BYTES // 2} are allowed"
        )
    outer = {"__metadata__": {_METADATA_KEY: inner}, **outer}
    text = json.dumps(outer, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


# -- reading -----------------------------------------------------------------
def _read_exact(fh, n: int, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise _Invalid(f"it is truncated ({what}: {len(data)} of {n} bytes)")
    return data


class _SafetensorsTicket:
    """The steps of reading a safetensors ticket (see ``_read._read_ticket``):
    its whole layout is checked before sklottery's header is read, both
    before any tensor, and the tensor data against its digest before any of
    it is used."""

    versions = SAFETENSORS_VERSIONS

    def __init__(self, fh, size: int):
        self.fh, self.size = fh, size
        self.data_len = 0
        self.data = b""
        self.entries: dict[str, tuple[tuple[int, ...], str, int, int]] = {}

    def header(self) -> tuple[bytes, str]:
        n = _header_length(self.fh, self.size)
        outer, meta = _outer_header(_read_exact(self.fh, n, "header"))
        self.data_len = data_len = self.size - 8 - n
        self.entries = {k: _entry(k, e, data_len) for k, e in outer.items()}
        _check_tiling(self.entries.values(), data_len)
        return meta.encode("utf-8"), "sklottery's header"

    def check_tensors(self, parsed: _Parsed) -> None:
        """Every entry is a tensor the header implies, of its shape and dtype."""
        entries, implied = self.entries, dict(parsed.expected)
        for e in parsed.extras:
            if e["kind"] == "numeric":
                key = f"x.{e['name']}"
                if key not in entries:
                    raise _Invalid(f"extra array {e['name']!r} is missing")
                implied[key] = entries[key][:2]
        _check_names(entries, implied, "tensors")
        for key, (shape, dtype) in implied.items():
            if entries[key][:2] != (shape, dtype):
                raise _Invalid(
                    f"tensor {key!r} is {entries[key][1]} of shape "
                    f"{_short(entries[key][0])}; the header implies {dtype} of "
                    f"shape {_short(shape)}"
                )

    def verify(self, parsed: _Parsed) -> None:
        """Read the data section (bounded by the file) and check its SHA-256
        against the header's (version 3; version 2 files have none)."""
        self.data = _read_exact(self.fh, self.data_len, "tensor data")
        _check_digest(parsed.header, self.data)

    def read(self, parsed: _Parsed, module):
        data, entries = self.data, self.entries

        def get(key):
            shape, dtype, begin, _ = entries[key]
            return np.frombuffer(data, dtype=_NUMPY[dtype], count=math.prod(shape),
                                 offset=begin)

        def get_extra(e):
            if e["kind"] == "str":
                arr = np.array(e["values"], dtype=str).reshape(e["shape"])
                return arr.astype(object) if e["object"] else arr
            key = f"x.{e['name']}"
            return np.array(get(key), copy=True).reshape(entries[key][0])

        return get, get_extra


def _header_length(fh, size: int) -> int:
    if size < 8:
        raise _Invalid(f"it is truncated ({size} bytes)")
    (n,) = struct.unpack("<Q", _read_exact(fh, 8, "header length"))
    if n > size - 8:
        raise _Invalid(
            f"its header length {n} is larger than the rest of the file "
            f"({size - 8} bytes): truncated or corrupt"
        )
    if n > MAX_HEADER_BYTES:
        raise _Invalid(f"its header length {n} is over {MAX_HEADER_BYTES} bytes")
    return n


def _outer_header(raw: bytes) -> tuple[dict, str]:
    """The safetensors header's tensor entries and sklottery's header (text)."""
    outer = _json(raw, "its safetensors header")
    if not isinstance(outer, dict):
        raise _Invalid("its safetensors header is not a JSON object")
    meta = outer.pop("__metadata__", None)
    if not isinstance(meta, dict) or not isinstance(meta.get(_METADATA_KEY), str):
        raise _Invalid(
            f"it is a safetensors file without sklottery's header (metadata key "
            f"{_METADATA_KEY!r})"
        )
    return outer, meta[_METADATA_KEY]


def _entry(key, entry, data_len: int) -> tuple[tuple[int, ...], str, int, int]:
    """``(shape, dtype, begin, end)`` of one safetensors entry, checked."""
    if not isinstance(entry, dict) or set(entry) != {
        "dtype", "shape", "data_offsets",
    }:
        raise _Invalid(
            f"safetensors entry {_short(key)} must have exactly 'dtype', "
            "'shape' and 'data_offsets'"
        )
    dtype = _BY_CODE.get(entry["dtype"])
    if dtype is None:
        raise _Invalid(
            f"safetensors entry {_short(key)} has unsupported dtype "
            f"{_short(entry['dtype'])}"
        )
    shape = _shape(entry["shape"], f"safetensors entry {_short(key)} 'shape'")
    offsets = entry["data_offsets"]
    ordered = (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(_is_int(o) for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    )
    if ordered and offsets[1] > data_len:
        raise _Invalid(
            f"it is truncated or corrupt: safetensors entry {_short(key)} ends "
            f"at data byte {offsets[1]}, but only {data_len} data bytes follow "
            "the header"
        )
    if not ordered:
        raise _Invalid(
            f"safetensors entry {_short(key)} 'data_offsets' "
            f"{_short(offsets)} must be [begin, end] within the "
            f"{data_len} data bytes"
        )
    nbytes = math.prod(shape) * _DTYPES[dtype][2]
    if offsets[1] - offsets[0] != nbytes:
        raise _Invalid(
            f"safetensors entry {_short(key)}: shape {_short(shape)} of "
            f"{dtype} needs {nbytes} bytes; its byte range holds "
            f"{offsets[1] - offsets[0]}"
        )
    return shape, dtype, offsets[0], offsets[1]


def _check_tiling(entries, data_len: int) -> None:
    """The byte ranges must tile the data exactly (no overlap, no gap)."""
    end = 0
    for _, _, begin, stop in sorted(entries, key=lambda e: (e[2], e[3])):
        if begin != end:
            raise _Invalid("the tensors' byte ranges overlap or leave gaps")
        end = stop
    if end != data_len:
        raise _Invalid(
            f"the tensors' byte ranges cover {end} bytes; the file holds "
            f"{data_len} after the header"
        )


