"""Reading ticket files, bounded and strict: every format through the same
steps (:func:`_read_ticket`), safetensors here and sklottery 0.1.0's ``.npz``
archives in :mod:`._npz`; and fitting a ticket to a network."""

from __future__ import annotations

import io
import math
import os
import struct
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..pruning import find_prunable, load_values
from ._format import (
    _BY_CODE,
    _BY_TORCH,
    _DTYPES,
    _METADATA_KEY,
    _NUMPY,
    FORMAT_VERSION,
    MAX_HEADER_BYTES,
    Ticket,
    _check_names,
    _fail,
    _Invalid,
    _is_int,
    _json,
    _parse_header,
    _Parsed,
    _shape,
    _short,
    _Spec,
    _state,
    ticket_path,
)
from ._npz import _ZIP_ERRORS, _ZIP_MAGIC, _open_npz


# -- the steps of reading a ticket, in every format ------------------------------
def _read_ticket(fmt, resolve) -> Ticket:
    """Read a ticket through one format's reader ``fmt``: :class:`_SafetensorsTicket`
    or :class:`._npz._NpzTicket`.

    ``fmt.header()`` checks the file's layout and returns sklottery's raw
    header and its name in messages; ``fmt.check_tensors(parsed)`` checks the
    file holds exactly the tensors the header implies; ``resolve(header,
    specs)`` gives the network to check them against (or None);
    ``fmt.read(parsed, module)`` reads them, as ``(get, get_extra)``.
    """
    parsed = _parse_header(*fmt.header(), fmt.version)
    fmt.check_tensors(parsed)
    module = resolve(parsed.header, parsed.specs)
    if module is not None:
        _check_against_module(parsed.specs, module)
    # everything declared is consistent and within the file: read the data
    get, get_extra = fmt.read(parsed, module)
    return _build(parsed, fmt.version, get, get_extra)


def _check_against_module(specs: list[_Spec], module: nn.Module) -> None:
    """`check_compatible` on the header alone, before any tensor is read."""
    state = _state(module)
    have = {s.name: s for s in specs}
    problems = []
    missing = sorted(set(state) - set(have))
    extra = sorted(set(have) - set(state))
    if missing:
        problems.append(f"tensors missing from the ticket: {missing}")
    if extra:
        problems.append(f"tensors the network does not have: {_short(extra, 200)}")
    for s in specs:
        if s.name not in state:
            continue
        t = state[s.name]
        dtype = _DTYPES[s.dtype][0]
        if tuple(t.shape) != s.shape:
            problems.append(
                f"{s.name!r}: ticket shape {_short(s.shape)}, network "
                f"{tuple(t.shape)}"
            )
        elif t.dtype != dtype:
            problems.append(f"{s.name!r}: ticket dtype {dtype}, network {t.dtype}")
    if not problems:
        prunable = {t.name for t in find_prunable(module)}
        masked = {s.name for s in specs if s.masked}
        if masked != prunable:
            problems.append(
                f"the ticket prunes {sorted(masked)} but the network's prunable "
                f"tensors are {sorted(prunable)}"
            )
    if problems:
        raise ValueError(
            f"the ticket does not fit this {type(module).__name__}: "
            + "; ".join(problems)
        )


def _to_torch(arr: np.ndarray, dtype: str) -> torch.Tensor:
    t = torch.from_numpy(arr)
    if dtype == "bfloat16":
        t = t.view(torch.bfloat16)
    return t


def _finite(name: str, t: torch.Tensor, what: str) -> None:
    if (t.is_floating_point() or t.is_complex()) and not bool(
        torch.isfinite(t).all()
    ):
        raise _Invalid(f"{what} of {name!r} holds NaN or infinite values")


def _unpack(get, prefix: str, s: _Spec, what: str):
    """Dense tensor (and mask) of one saved tensor from validated arrays."""
    if not s.masked:
        arr = np.array(get(f"{prefix}.dense"), copy=True).reshape(s.shape)
        t = _to_torch(arr, s.dtype)
        _finite(s.name, t, what)
        return t, None
    bits = get(f"{prefix}.bits")
    unpacked = np.unpackbits(bits)
    if unpacked[s.numel :].any():
        raise _Invalid(f"the mask bits of {s.name!r} have set padding bits")
    flat = unpacked[: s.numel].astype(bool)
    del unpacked
    kept = int(np.count_nonzero(flat))
    if kept != s.n_kept:
        raise _Invalid(
            f"the mask of {s.name!r} keeps {kept} weights; header field "
            f"'n_kept' says {s.n_kept}"
        )
    values = get(f"{prefix}.values")
    dense = np.zeros(s.numel, dtype=np.dtype(_NUMPY[s.dtype]))
    dense[flat] = values
    t = _to_torch(dense.reshape(s.shape), s.dtype)
    _finite(s.name, t, what)
    return t, torch.from_numpy(flat.reshape(s.shape))


def _build(parsed: _Parsed, version: int, get, get_extra) -> Ticket:
    """The :class:`Ticket` from the checked header and the validated arrays."""
    header, specs, extras = parsed.header, parsed.specs, parsed.extras
    values: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    rewind = {} if header["rewind_point"] else None
    for s in specs:
        values[s.name], mask = _unpack(get, f"t{s.index}", s, "the values")
        if mask is not None:
            masks[s.name] = mask
        if rewind is not None:
            rewind[s.name], _ = _unpack(get, f"r{s.index}", s, "the rewind point")
    arrays = {e["name"]: get_extra(e) for e in extras}
    estimator, state = None, {}
    if version >= 2 and header["estimator"] is not None:
        estimator = header["estimator"]["class"]
        state = header["estimator"]["state"]
    return Ticket(
        values, masks, rewind, header["rounds"], header["info"], arrays,
        estimator, state,
    )


# -- safetensors -----------------------------------------------------------------
def _read_exact(fh, n: int, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise _Invalid(f"it is truncated ({what}: {len(data)} of {n} bytes)")
    return data


class _SafetensorsTicket:
    """The steps of reading a safetensors ticket: its whole layout is checked
    before sklottery's header is read, and both before any tensor."""

    version = FORMAT_VERSION

    def __init__(self, fh, size: int):
        self.fh, self.size = fh, size
        self.data_len = 0
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

    def read(self, parsed: _Parsed, module):
        data = _read_exact(self.fh, self.data_len, "tensor data")
        entries = self.entries

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


# -- opening a file, and fitting a ticket to a network ---------------------------
def _open(file):
    """``(file handle, size, close?)`` of a path or a binary file object."""
    target = ticket_path(file)
    if isinstance(target, Path):
        given = Path(os.fspath(file))
        if not target.exists() and target != given:
            # PATH itself, then what 0.1.0 wrote for it
            for other in (given, Path(os.fspath(file) + ".npz")):
                if other.is_file():
                    target = other
                    break
        fh = open(target, "rb")  # FileNotFoundError / IsADirectoryError as is
        return fh, os.fstat(fh.fileno()).st_size, True
    try:
        start = target.tell()
        target.seek(0, io.SEEK_END)
        size = target.tell() - start
        target.seek(start)
    except (AttributeError, OSError, ValueError):
        data = target.read()
        return io.BytesIO(data), len(data), True
    return target, size, False


def load_ticket(file, module: nn.Module | None = None) -> Ticket:
    """Read and validate a ticket file; no network is touched.

    Parameters
    ----------
    file : str, os.PathLike or binary file object
        A path without a suffix is read as ``PATH.safetensors``
        (:func:`ticket_path`, what :func:`save_ticket` writes) if that
        exists, else as ``PATH`` itself, else as ``PATH.npz`` (what 0.1.0
        wrote).
    module : torch.nn.Module, optional
        The network the ticket is for. Its tensors' names, shapes and dtypes
        are checked against the header before any tensor data is read, which
        bounds what loading allocates by the network's own size. The module
        is not changed (use :func:`apply_ticket` for that).

    Returns
    -------
    Ticket

    Raises
    ------
    ValueError
        If the file is truncated or corrupt, is not a ticket file, has an
        unsupported format version, any field is inconsistent with the file
        or the others (the message names it), a value is NaN or infinite, or
        the ticket does not fit ``module``.
    FileNotFoundError, IsADirectoryError, PermissionError
        If the path cannot be opened.
    """
    return _load(file, lambda header, specs: module)


def _load(file, resolve) -> Ticket:
    """`load_ticket`, with ``resolve(header, specs)`` called on the checked
    header before any tensor is read: it returns the module to check the
    ticket against (or None) and may raise `_Invalid`."""
    fh, size, close = _open(file)
    try:
        start = fh.tell()
        magic = fh.read(4)
        fh.seek(start)
        if magic == _ZIP_MAGIC:
            with _open_npz(fh, size) as npz:
                return _read_ticket(npz, resolve)
        return _read_ticket(_SafetensorsTicket(fh, size), resolve)
    except _Invalid as exc:
        raise _fail(file, str(exc)) from None
    except _ZIP_ERRORS as exc:
        raise _fail(
            file, f"it is truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from None
    except OSError as exc:  # zip members that fail to decompress
        if isinstance(exc, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise
        raise _fail(
            file, f"it is truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from None
    finally:
        if close:
            fh.close()


def check_compatible(ticket: Ticket, module: nn.Module) -> None:
    """Raise ``ValueError`` unless ``ticket`` fits ``module`` exactly.

    Names, shapes and dtypes of every parameter and buffer must match, and
    the pruned tensors must be exactly the module's prunable tensors.
    """
    specs = [
        _Spec(i, n, tuple(v.shape), _BY_TORCH[v.dtype], n in ticket.masks, None)
        for i, (n, v) in enumerate(ticket.values.items())
    ]
    _check_against_module(specs, module)


def apply_ticket(ticket: Ticket, module: nn.Module) -> dict[str, torch.Tensor]:
    """Load ``ticket``'s values into ``module`` after checking it fits.

    Everything is validated first (:func:`check_compatible`), so a mismatch
    leaves the module untouched.

    Returns
    -------
    dict of str to bool tensor
        The masks, on the devices of their parameters.
    """
    check_compatible(ticket, module)
    state = _state(module)
    masks = {n: m.to(state[n].device) for n, m in ticket.masks.items()}
    load_values(
        module, {n: v.to(state[n].device) for n, v in ticket.values.items()}, masks
    )
    return masks
