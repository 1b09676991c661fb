"""Reading ticket files, bounded and strict: safetensors, and sklottery
0.1.0's ``.npz`` archives through the same checks."""

from __future__ import annotations

import io
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..pruning.masks import load_values
from ._format import (
    _BY_CODE,
    _BY_TORCH,
    _DTYPES,
    _METADATA_KEY,
    _NUMPY,
    FORMAT_VERSION,
    LEGACY_MAX_RATIO,
    LEGACY_VERSION,
    MAX_HEADER_BYTES,
    Ticket,
    _build,
    _check_against_module,
    _check_header,
    _expected,
    _extra_specs,
    _fail,
    _Invalid,
    _is_int,
    _json,
    _shape,
    _short,
    _Spec,
    _specs,
    _state,
    ticket_path,
)


# -- loading: safetensors ------------------------------------------------------
def _read_exact(fh, n: int, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise _Invalid(f"it is truncated ({what}: {len(data)} of {n} bytes)")
    return data


def _load_safetensors(fh, size: int, resolve) -> Ticket:
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
    outer = _json(_read_exact(fh, n, "header"), "its safetensors header")
    if not isinstance(outer, dict):
        raise _Invalid("its safetensors header is not a JSON object")
    meta = outer.pop("__metadata__", None)
    if not isinstance(meta, dict) or not isinstance(meta.get(_METADATA_KEY), str):
        raise _Invalid(
            f"it is a safetensors file without sklottery's header (metadata key "
            f"{_METADATA_KEY!r})"
        )
    data_len = size - 8 - n
    entries = {}
    for key, entry in outer.items():
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
        if (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(_is_int(o) for o in offsets)
            and 0 <= offsets[0] <= offsets[1]
            and offsets[1] > data_len
        ):
            raise _Invalid(
                f"it is truncated or corrupt: safetensors entry {_short(key)} ends "
                f"at data byte {offsets[1]}, but only {data_len} data bytes follow "
                "the header"
            )
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(_is_int(o) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_len
        ):
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
        entries[key] = (shape, dtype, offsets[0], offsets[1])
    # the byte ranges must tile the data exactly (no overlap, no gap)
    end = 0
    for _, _, begin, stop in sorted(entries.values(), key=lambda e: (e[2], e[3])):
        if begin != end:
            raise _Invalid("the tensors' byte ranges overlap or leave gaps")
        end = stop
    if end != data_len:
        raise _Invalid(
            f"the tensors' byte ranges cover {end} bytes; the file holds "
            f"{data_len} after the header"
        )
    header = _check_header(
        _json(meta[_METADATA_KEY].encode("utf-8"), "sklottery's header"),
        FORMAT_VERSION,
    )
    specs = _specs(header)
    extras = _extra_specs(header, FORMAT_VERSION)
    expected = _expected(specs, header["rewind_point"])
    for e in extras:
        if e["kind"] == "numeric":
            key = f"x.{e['name']}"
            if key not in entries:
                raise _Invalid(f"extra array {e['name']!r} is missing")
            expected[key] = entries[key][:2]
    if set(entries) != set(expected):
        missing = sorted(set(expected) - set(entries))
        if missing:
            raise _Invalid(f"tensors {_short(missing, 200)} are missing")
        raise _Invalid(
            "it holds tensors the header does not describe: "
            + _short(sorted(set(entries) - set(expected)), 200)
        )
    for key, (shape, dtype) in expected.items():
        if entries[key][:2] != (shape, dtype):
            raise _Invalid(
                f"tensor {key!r} is {entries[key][1]} of shape "
                f"{_short(entries[key][0])}; the header implies {dtype} of shape "
                f"{_short(shape)}"
            )
    module = resolve(header, specs)
    if module is not None:
        _check_against_module(specs, module)
    # everything declared is consistent and within the file: read the data
    data = _read_exact(fh, data_len, "tensor data")

    def get(key):
        shape, dtype, begin, stop = entries[key]
        return np.frombuffer(data, dtype=_NUMPY[dtype], count=math.prod(shape),
                             offset=begin)

    def get_extra(e):
        if e["kind"] == "str":
            arr = np.array(e["values"], dtype=str).reshape(e["shape"])
            return arr.astype(object) if e["object"] else arr
        key = f"x.{e['name']}"
        shape, dtype = entries[key][:2]
        return np.array(get(key), copy=True).reshape(shape)

    return _build(header, FORMAT_VERSION, specs, extras, get, get_extra)


# -- loading: sklottery 0.1.0's .npz -------------------------------------------
def _npy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dtype, shape):
    """Read one .npy member whose declared size was already bounded.

    ``dtype``/``shape`` None accept any (numeric, bool or str) array.
    """
    try:
        return _npy_read(zf, info, dtype, shape)
    except _Invalid:
        raise
    except ValueError as exc:  # numpy's checks of the .npy header
        raise _Invalid(f"member {info.filename!r}: {exc}") from None


def _npy_read(zf, info, dtype, shape):
    with zf.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            got_shape, fortran, got_dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            got_shape, fortran, got_dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise _Invalid(f"member {info.filename!r} has npy version {version}")
        name = info.filename[:-4]
        if got_dtype.hasobject or got_dtype.kind not in "biufcU" or got_dtype.fields:
            raise _Invalid(
                f"array {name!r} has dtype {got_dtype} (object arrays are never "
                "loaded)"
            )
        if dtype is not None and got_dtype != np.dtype(dtype):
            raise _Invalid(
                f"array {name!r} has dtype {got_dtype}; expected {np.dtype(dtype)}"
            )
        if shape is not None and tuple(got_shape) != tuple(shape):
            raise _Invalid(
                f"array {name!r} has shape {tuple(got_shape)}; expected "
                f"{tuple(shape)}"
            )
        nbytes = math.prod(got_shape) * got_dtype.itemsize
        if fp.tell() + nbytes != info.file_size:
            raise _Invalid(
                f"array {name!r}: its header declares {nbytes} data bytes but the "
                f"zip member holds {info.file_size - fp.tell()}"
            )
        raw = fp.read(nbytes)
        if len(raw) != nbytes:
            raise _Invalid(f"array {name!r} is truncated")
        arr = np.frombuffer(raw, dtype=got_dtype).reshape(
            got_shape, order="F" if fortran else "C"
        )
        return np.ascontiguousarray(arr)


def _load_npz(fh, size: int, resolve) -> Ticket:
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError, OverflowError, struct.error) as exc:
        raise _Invalid(f"it is truncated or corrupt ({type(exc).__name__}: {exc})")
    with zf:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            if info.flag_bits & 0x1:
                raise _Invalid(f"zip member {info.filename!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise _Invalid(
                    f"zip member {info.filename!r} uses compression method "
                    f"{info.compress_type}; only stored and deflated are read"
                )
            if not info.filename.endswith(".npy") or info.filename in members:
                raise _Invalid(f"unexpected zip member {_short(info.filename)}")
            members[info.filename] = info
        head = members.get("header.npy")
        if head is None:
            raise _Invalid("its 'header' array is missing")
        if head.file_size > MAX_HEADER_BYTES + 4096 or head.file_size > (
            LEGACY_MAX_RATIO * size + 2**20
        ):
            raise _Invalid(
                f"its 'header' array declares {head.file_size} bytes: too large"
            )
        raw = _npy_member(zf, head, None, None)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise _Invalid("its 'header' array is not uint8 bytes")
        header = _check_header(_json(raw.tobytes(), "its header"), LEGACY_VERSION)
        specs = _specs(header)
        extras = _extra_specs(header, LEGACY_VERSION)
        expected = _expected(specs, header["rewind_point"])
        names = {f"{k}.npy" for k in expected} | {"header.npy"}
        names |= {f"x.{e['name']}.npy" for e in extras}
        if set(members) != names:
            missing = sorted(n[:-4] for n in names - set(members))
            if missing:
                raise _Invalid(f"arrays {_short(missing, 200)} are missing")
            raise _Invalid(
                "it holds arrays the header does not describe: "
                + _short(sorted(n[:-4] for n in set(members) - names), 200)
            )
        module = resolve(header, specs)
        if module is not None:
            _check_against_module(specs, module)
        # each member's declared size against what the header implies, and
        # all of them against the file, before anything is decompressed
        npy_header = 65536 + 12
        for key, (shape, dtype) in expected.items():
            info = members[f"{key}.npy"]
            nbytes = math.prod(shape) * np.dtype(_NUMPY[dtype]).itemsize
            if not nbytes < info.file_size <= nbytes + npy_header:
                raise _Invalid(
                    f"zip member {info.filename!r} declares {info.file_size} bytes; "
                    f"the header implies {nbytes} data bytes"
                )
        for e in extras:
            info = members[f"x.{e['name']}.npy"]
            if info.file_size > LEGACY_MAX_RATIO * max(info.compress_size, 1) + 2**16:
                raise _Invalid(
                    f"zip member {info.filename!r} declares {info.file_size} bytes "
                    f"from {info.compress_size}: not a plain array"
                )
        total = sum(i.file_size for i in members.values())
        if module is None and total > LEGACY_MAX_RATIO * size + 2**20:
            raise _Invalid(
                f"its arrays declare {total} bytes uncompressed, over "
                f"{LEGACY_MAX_RATIO} times the file's {size} bytes; pass the "
                "network (module=...) to check them against it"
            )
        arrays = {}
        for key, (shape, dtype) in expected.items():
            arrays[key] = _npy_member(
                zf, members[f"{key}.npy"], _NUMPY[dtype].replace("<", "="), shape
            )
        for e in extras:
            arrays[f"x.{e['name']}"] = _npy_member(
                zf, members[f"x.{e['name']}.npy"], None, None
            )

    def get(key):
        arr = arrays[key]
        return arr.view(np.uint16) if arr.dtype == np.dtype("<u2") else arr

    def get_extra(e):
        return arrays[f"x.{e['name']}"]

    return _build(header, LEGACY_VERSION, specs, extras, get, get_extra)


_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    struct.error,
)


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
        if magic == b"PK\x03\x04":
            return _load_npz(fh, size, resolve)
        return _load_safetensors(fh, size, resolve)
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
