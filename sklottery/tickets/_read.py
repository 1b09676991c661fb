"""Reading ticket files, bounded and strict: opening only regular files and
binary file objects, every format through the same steps
(:func:`_read_ticket`) -- safetensors in :mod:`._safetensors`, sklottery
0.1.0's ``.npz`` archives in :mod:`._npz` -- and fitting a ticket to a
network."""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..pruning import find_prunable, load_values
from ._format import (
    _BY_TORCH,
    _DTYPES,
    _NUMPY,
    Ticket,
    _describe,
    _fail,
    _Invalid,
    _parse_header,
    _Parsed,
    _short,
    _Spec,
    _state,
    ticket_path,
)
from ._npz import _ZIP_ERRORS, _ZIP_MAGIC, _open_npz
from ._safetensors import _SafetensorsTicket


# -- the steps of reading a ticket, in every format ------------------------------
def _read_ticket(fmt, resolve) -> Ticket:
    """Read a ticket through one format's reader ``fmt``: :class:`_SafetensorsTicket`
    or :class:`._npz._NpzTicket`.

    ``fmt.header()`` checks the file's layout and returns sklottery's raw
    header and its name in messages; ``fmt.check_tensors(parsed)`` checks the
    file holds exactly the tensors the header implies; ``fmt.verify(parsed)``
    checks the tensor data against the header's digest (where the format
    has one); ``resolve(header, specs)`` gives the network to check them
    against (or None); ``fmt.read(parsed, module)`` reads them, as ``(get,
    get_extra)``.
    """
    parsed = _parse_header(*fmt.header(), fmt.versions)
    fmt.check_tensors(parsed)
    fmt.verify(parsed)
    module = resolve(parsed.header, parsed.specs)
    if module is not None:
        _check_against_module(parsed.specs, module)
    # everything declared is consistent and within the file: read the data
    get, get_extra = fmt.read(parsed, module)
    return _build(parsed, get, get_extra)


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


def _build(parsed: _Parsed, get, get_extra) -> Ticket:
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
    if header["version"] >= 2 and header["estimator"] is not None:
        estimator = header["estimator"]["class"]
        state = header["estimator"]["state"]
    return Ticket(
        values, masks, rewind, header["rounds"], header["info"], arrays,
        estimator, state,
    )


# -- opening a file, and fitting a ticket to a network ---------------------------
def _check_file_arg(file) -> None:
    """``TypeError`` naming ``file`` unless it is a path or a file object."""
    if not isinstance(file, (str, os.PathLike)) and not callable(
        getattr(file, "read", None)
    ):
        raise TypeError(
            "file must be a path (str or os.PathLike) or a binary file object "
            f"with a read() method; got {type(file).__name__}"
        )


def _open_regular(path: Path):
    """Open ``path`` for reading only if it is a regular file: a FIFO, a
    device or a socket (which could block or never end) is refused without
    waiting for it (it is opened non-blocking, then checked)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                 | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(
                f"{_describe(path)} is not a regular file (a FIFO, device or "
                "socket): a ticket file is read from a regular file or a "
                "binary file object"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def _open(file):
    """``(file handle, size, close?)`` of a path or a binary file object."""
    _check_file_arg(file)
    target = ticket_path(file)
    if isinstance(target, Path):
        given = Path(os.fspath(file))
        if not target.exists() and target != given:
            # PATH itself, then what 0.1.0 wrote for it
            for other in (given, Path(os.fspath(file) + ".npz")):
                if other.is_file():
                    target = other
                    break
        fh, size = _open_regular(target)  # FileNotFoundError etc. as they are
        return fh, size, True
    try:
        start = target.tell()
        target.seek(0, io.SEEK_END)
        size = target.tell() - start
        target.seek(start)
    except (AttributeError, OSError, ValueError):
        data = target.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(_TEXT_MODE.format(type(data).__name__)) from None
        return io.BytesIO(data), len(data), True
    return target, size, False


_TEXT_MODE = "file must be opened in binary mode ('rb'); its read() gave {}"


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
        if not isinstance(magic, (bytes, bytearray)):
            raise TypeError(_TEXT_MODE.format(type(magic).__name__))
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
