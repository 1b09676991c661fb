"""Reading sklottery 0.1.0's tickets: numpy ``.npz`` archives (format version
1), through the same checks as safetensors files, every zip member's
declared size bounded before it is decompressed."""

from __future__ import annotations

import contextlib
import math
import struct
import zipfile
import zlib

import numpy as np

from ._format import (
    _NUMPY,
    LEGACY_MAX_RATIO,
    LEGACY_VERSION,
    MAX_HEADER_BYTES,
    _check_names,
    _Invalid,
    _Parsed,
    _short,
)

#: The start of a zip file (and so of a 0.1.0 ticket).
_ZIP_MAGIC = b"PK\x03\x04"
#: What reading a corrupt zip archive raises.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    struct.error,
)
# the largest .npy header in front of a member's data
_NPY_HEADER = 65536 + 12


@contextlib.contextmanager
def _open_npz(fh, size: int):
    """The :class:`_NpzTicket` of an open ``.npz`` file, closed on exit."""
    try:
        zf = zipfile.ZipFile(fh)
    except (*_ZIP_ERRORS, OSError, ValueError) as exc:
        raise _Invalid(f"it is truncated or corrupt ({type(exc).__name__}: {exc})")
    with zf:
        yield _NpzTicket(zf, size)


class _NpzTicket:
    """The steps of reading a 0.1.0 ticket (see ``_read._read_ticket``)."""

    versions = (LEGACY_VERSION,)

    def __init__(self, zf: zipfile.ZipFile, size: int):
        self.zf, self.size = zf, size
        self.members: dict[str, zipfile.ZipInfo] = {}

    def header(self) -> tuple[bytes, str]:
        """Check the members, then read the raw 'header' array."""
        self.members = _members(self.zf)
        head = self.members.get("header.npy")
        if head is None:
            raise _Invalid("its 'header' array is missing")
        if head.file_size > MAX_HEADER_BYTES + 4096 or head.file_size > (
            LEGACY_MAX_RATIO * self.size + 2**20
        ):
            raise _Invalid(
                f"its 'header' array declares {head.file_size} bytes: too large"
            )
        raw = _npy_member(self.zf, head, None, None)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise _Invalid("its 'header' array is not uint8 bytes")
        return raw.tobytes(), "its header"

    def check_tensors(self, parsed: _Parsed) -> None:
        """The members are exactly the arrays the header implies."""
        implied = {*parsed.expected, "header"}
        implied |= {f"x.{e['name']}" for e in parsed.extras}
        _check_names({n[:-4] for n in self.members}, implied, "arrays")

    def verify(self, parsed: _Parsed) -> None:
        """Nothing: 0.1.0's files carry no digest."""

    def read(self, parsed: _Parsed, module):
        """Bound every member's size, then read them: ``(get, get_extra)``."""
        self._check_sizes(parsed, module)
        arrays = {}
        for key, (shape, dtype) in parsed.expected.items():
            arrays[key] = _npy_member(
                self.zf, self.members[f"{key}.npy"], _NUMPY[dtype].replace("<", "="),
                shape,
            )
        for e in parsed.extras:
            key = f"x.{e['name']}"
            arrays[key] = _npy_member(self.zf, self.members[f"{key}.npy"], None, None)

        def get(key):
            arr = arrays[key]
            return arr.view(np.uint16) if arr.dtype == np.dtype("<u2") else arr

        def get_extra(e):
            return arrays[f"x.{e['name']}"]

        return get, get_extra

    def _check_sizes(self, parsed: _Parsed, module) -> None:
        """Each member's declared size against what the header implies, and
        all of them against the file, before anything is decompressed."""
        for key, (shape, dtype) in parsed.expected.items():
            info = self.members[f"{key}.npy"]
            nbytes = math.prod(shape) * np.dtype(_NUMPY[dtype]).itemsize
            if not nbytes < info.file_size <= nbytes + _NPY_HEADER:
                raise _Invalid(
                    f"zip member {info.filename!r} declares {info.file_size} bytes; "
                    f"the header implies {nbytes} data bytes"
                )
        for e in parsed.extras:
            info = self.members[f"x.{e['name']}.npy"]
            if info.file_size > LEGACY_MAX_RATIO * max(info.compress_size, 1) + 2**16:
                raise _Invalid(
                    f"zip member {info.filename!r} declares {info.file_size} bytes "
                    f"from {info.compress_size}: not a plain array"
                )
        total = sum(i.file_size for i in self.members.values())
        if module is None and total > LEGACY_MAX_RATIO * self.size + 2**20:
            raise _Invalid(
                f"its arrays declare {total} bytes uncompressed, over "
                f"{LEGACY_MAX_RATIO} times the file's {self.size} bytes; pass the "
                "network (module=...) to check them against it"
            )


def _members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The archive's members: plain or deflated ``.npy`` files, each once."""
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
    return members


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
