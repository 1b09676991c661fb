"""Ticket files: a pruned network saved small and loaded safely.

A ticket file is a `safetensors <https://huggingface.co/docs/safetensors>`_
file: an 8-byte little-endian header length, a JSON header naming every
tensor's dtype, shape and byte range, then the raw tensor bytes. No pickle,
no compression, nothing that runs code. A ticket holds

* per pruned tensor: its mask packed as bits (:func:`numpy.packbits`, one bit
  per weight, ``t<i>.bits``) and the surviving values only, in row-major order
  of the mask (``t<i>.values``);
* every other parameter and buffer (biases, normalization statistics) dense
  (``t<i>.dense``);
* optionally the survivors of the rewind point (``r<i>.*``, what
  ``warm_start`` needs to continue pruning);
* small extra arrays such as class labels (numeric ones as ``x.<name>``
  tensors, text ones inside the header);
* sklottery's own JSON header, in the safetensors metadata under the key
  ``"sklottery"``: format name and version, each tensor's name, shape, dtype
  and kept count, the round history, free ``info`` and, for a fitted
  estimator, its class name and state.

The default suffix is ``.safetensors``: ``save_ticket("t")`` writes
``t.safetensors`` and ``load_ticket("t")`` reads it (or, if there is no
``t.safetensors``, the file ``t`` itself, or 0.1.0's ``t.npz``). A path with
any suffix is used as given; the format is recognised from the content, not
the name.

Loading is bounded and strict. The header length is checked against the
file's real size (and :data:`MAX_HEADER_BYTES`) before the header is read,
every declared shape times its dtype size against the tensor's byte range,
and the byte ranges against the file, before any tensor is read; the header's
nesting depth is limited. A file of ``S`` bytes therefore never makes the
loader allocate more than a few times ``S`` plus the dense network it
describes -- and when a ``module`` is given, the tensors' names, shapes and
dtypes are checked against it before any tensor data is read. Every problem
is a ``ValueError`` naming the file and the field; nothing is ever
half-applied.

Tickets written by sklottery 0.1.0 (numpy ``.npz`` archives, format
version 1) still load, through the same checks: each zip member's declared
uncompressed size is bounded by what the header implies before it is
decompressed, and encrypted members or unsupported compression methods are
refused with a ``ValueError``.

References
----------
J. Frankle and M. Carbin, "The Lottery Ticket Hypothesis: Finding Sparse,
Trainable Neural Networks", ICLR 2019 (a ticket is a mask plus the weights).
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .pruning.masks import load_values
from .pruning.targets import find_prunable

__all__ = [
    "DEFAULT_SUFFIX",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MAX_HEADER_BYTES",
    "STATE_FIELDS",
    "Ticket",
    "apply_ticket",
    "check_compatible",
    "load_ticket",
    "read_estimator_ticket",
    "save_ticket",
    "ticket_path",
    "save_estimator_ticket",
]

FORMAT_NAME = "sklottery-ticket"
#: 2: safetensors (sklottery >= 0.2); 1: numpy .npz (0.1.0, still read).
FORMAT_VERSION = 2
LEGACY_VERSION = 1
DEFAULT_SUFFIX = ".safetensors"
#: The largest header (safetensors JSON, or 0.1.0's header array) read.
MAX_HEADER_BYTES = 16 * 2**20
#: The deepest nesting of lists and dicts accepted in a header.
MAX_DEPTH = 32
#: The most dimensions a tensor may declare.
MAX_NDIM = 32
#: 0.1.0 .npz files: without a network to check against, all members may
#: decompress to at most this many times the file size (plus 1 MiB). Real
#: tickets measured 1.3x (90% sparse) to 8.9x (99.9%); a zip bomb is ~1000x.
LEGACY_MAX_RATIO = 64
_METADATA_KEY = "sklottery"

# sklottery dtype name -> (torch dtype, safetensors code, item size)
_DTYPES: dict[str, tuple[torch.dtype, str, int]] = {
    "float16": (torch.float16, "F16", 2),
    "bfloat16": (torch.bfloat16, "BF16", 2),
    "float32": (torch.float32, "F32", 4),
    "float64": (torch.float64, "F64", 8),
    "complex64": (torch.complex64, "C64", 8),
    "uint8": (torch.uint8, "U8", 1),
    "int8": (torch.int8, "I8", 1),
    "int16": (torch.int16, "I16", 2),
    "int32": (torch.int32, "I32", 4),
    "int64": (torch.int64, "I64", 8),
    "bool": (torch.bool, "BOOL", 1),
}
_BY_TORCH = {v[0]: k for k, v in _DTYPES.items()}
_BY_CODE = {v[1]: k for k, v in _DTYPES.items()}
# numpy dtypes the raw bytes are read as (bfloat16 through uint16)
_NUMPY = {
    "float16": "<f2",
    "bfloat16": "<u2",
    "float32": "<f4",
    "float64": "<f8",
    "complex64": "<c8",
    "uint8": "u1",
    "int8": "i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
    "bool": "?",
}
# extra numeric arrays (numpy dtype -> sklottery dtype name)
_EXTRA_NUMPY = {
    "float16": "float16",
    "float32": "float32",
    "float64": "float64",
    "complex64": "complex64",
    "uint8": "uint8",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
    "bool": "bool",
}


@dataclass
class Ticket:
    """The validated content of a ticket file (CPU tensors).

    Attributes
    ----------
    values : dict of str to tensor
        Every parameter and buffer, dense, pruned weights exactly 0.0.
    masks : dict of str to bool tensor
        True = kept, for each pruned tensor.
    rewind_point : dict of str to tensor or None
        The values survivors rewind to (pruned entries 0.0), if saved.
    rounds : list of dict
        The round history, one record per round.
    info : dict
        Free JSON metadata given to :func:`save_ticket`.
    arrays : dict of str to ndarray
        Extra arrays given to :func:`save_ticket` (e.g. class labels).
    estimator : str or None
        The class name of the estimator the ticket was saved from
        (:func:`save_estimator_ticket`), else None.
    state : dict
        That estimator's state (see :func:`read_estimator_ticket`); empty
        for a plain ticket.
    """

    values: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    rewind_point: dict[str, torch.Tensor] | None = None
    rounds: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    estimator: str | None = None
    state: dict = field(default_factory=dict)

    @property
    def specs(self) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        """``{name: (shape, dtype)}`` of every tensor."""
        return {n: (tuple(v.shape), v.dtype) for n, v in self.values.items()}


def ticket_path(file):
    """The path a ticket is saved to / loaded from.

    A path whose file name has no suffix gets :data:`DEFAULT_SUFFIX`
    (``"t"`` -> ``"t.safetensors"``); any other path (an existing directory
    too, which saving then refuses) and file objects are returned unchanged.
    """
    if isinstance(file, (str, os.PathLike)):
        path = Path(os.fspath(file))
        if path.name and not path.suffix and not path.is_dir():
            return path.with_name(path.name + DEFAULT_SUFFIX)
        return path
    return file


# -- saving ------------------------------------------------------------------
def _state(module) -> dict[str, torch.Tensor]:
    if isinstance(module, dict):
        return dict(module)
    state = dict(module.named_parameters())
    state.update(module.named_buffers())
    return state


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, np.ndarray)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _dtype_name(name: str, t: torch.Tensor) -> str:
    try:
        return _BY_TORCH[t.dtype]
    except KeyError:
        raise ValueError(
            f"cannot save {name!r}: dtype {t.dtype} is not supported in ticket files; "
            f"supported dtypes are {sorted(_DTYPES)}"
        ) from None


def _check_finite(what: str, t: torch.Tensor) -> None:
    if (t.is_floating_point() or t.is_complex()) and not bool(
        torch.isfinite(t).all()
    ):
        raise ValueError(
            f"cannot save {what}: it holds NaN or infinite values (did training "
            "diverge?)"
        )


def _pack(prefix: str, value: torch.Tensor, mask, out: dict) -> None:
    value = value.detach().cpu()
    if mask is None:
        out[f"{prefix}.dense"] = value.contiguous().clone()
        return
    flat = mask.detach().cpu().reshape(-1).numpy().astype(bool)
    out[f"{prefix}.bits"] = torch.from_numpy(np.packbits(flat))
    out[f"{prefix}.values"] = value.reshape(-1)[torch.from_numpy(flat)].clone()


def _extra(key, arr, tensors: dict, specs: list) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"extra array names must be non-empty str; got {key!r}")
    arr = np.asarray(arr)
    was_object = arr.dtype.kind == "O"
    if was_object:
        if not all(isinstance(v, str) for v in arr.ravel()):
            raise ValueError(
                f"arrays[{key!r}] has dtype object holding non-str values; only "
                "numeric, bool and str arrays can be saved (a ticket file never "
                "holds pickled objects)"
            )
        arr = arr.astype(str)
    if arr.dtype.kind == "U":
        specs.append(
            {
                "name": key,
                "kind": "str",
                "object": was_object,
                "shape": list(arr.shape),
                "values": arr.ravel().tolist(),
            }
        )
        return
    name = _EXTRA_NUMPY.get(arr.dtype.name)
    if name is None:
        raise ValueError(
            f"arrays[{key!r}] has dtype {arr.dtype}; only numeric, bool and str "
            "arrays can be saved (a ticket file never holds pickled objects)"
        )
    arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
    tensors[f"x.{key}"] = torch.from_numpy(arr.copy())
    specs.append({"name": key, "kind": "numeric", "object": False})


def _safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict) -> bytes:
    """The safetensors serialization of ``tensors`` (little-endian, byte
    ranges in name order, header padded with spaces to 8 bytes)."""
    header: dict = {"__metadata__": metadata}
    chunks, offset = [], 0
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        name = _BY_TORCH[t.dtype]
        arr = (t.view(torch.uint16) if name == "bfloat16" else t).numpy()
        raw = arr.astype(np.dtype(_NUMPY[name]), copy=False).tobytes()
        header[key] = {
            "dtype": _DTYPES[name][1],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def _write(
    file, module, masks, *, rounds, rewind_point, info, arrays, estimator
) -> Path | None:
    state = _state(module)
    unknown = set(masks) - set(state)
    if unknown:
        raise ValueError(
            f"masks for tensors the module does not have: {sorted(unknown)}"
        )
    tensors: dict[str, torch.Tensor] = {}
    specs = []
    for i, (name, value) in enumerate(state.items()):
        mask = masks.get(name)
        if mask is not None and (
            mask.dtype != torch.bool or tuple(mask.shape) != tuple(value.shape)
        ):
            raise ValueError(
                f"mask for {name!r} must be a bool tensor of shape "
                f"{tuple(value.shape)}; got {mask.dtype} {tuple(mask.shape)}"
            )
        spec = {
            "name": name,
            "shape": [int(s) for s in value.shape],
            "dtype": _dtype_name(name, value),
            "masked": mask is not None,
        }
        if mask is not None:
            spec["n_kept"] = int(mask.sum())
        specs.append(spec)
        _check_finite(repr(name), value)
        _pack(f"t{i}", value, mask, tensors)
        if rewind_point is not None:
            if name not in rewind_point:
                raise ValueError(f"rewind_point has no value for {name!r}")
            start = rewind_point[name].detach().cpu().to(value.dtype)
            if tuple(start.shape) != tuple(value.shape):
                raise ValueError(
                    f"rewind_point[{name!r}] has shape {tuple(start.shape)}; "
                    f"expected {tuple(value.shape)}"
                )
            _check_finite(f"the rewind point of {name!r}", start)
            _pack(f"r{i}", start, mask, tensors)
    extras: list[dict] = []
    for key, arr in (arrays or {}).items():
        _extra(key, arr, tensors, extras)
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "tensors": specs,
        "rewind_point": rewind_point is not None,
        "rounds": list(rounds),
        "info": dict(info or {}),
        "arrays": extras,
        "estimator": estimator,
    }
    text = json.dumps(header, default=_json_default)
    if len(text.encode("utf-8")) > MAX_HEADER_BYTES // 2:
        raise ValueError(
            f"the ticket's header (round history, info, text arrays) would take "
            f"{len(text)} bytes; at most {MAX_HEADER_BYTES // 2} are allowed"
        )
    data = _safetensors_bytes(tensors, {_METADATA_KEY: text})
    target = ticket_path(file)
    if isinstance(target, Path):
        if target.is_dir():
            raise IsADirectoryError(f"{target} is a directory, not a ticket file")
        target.write_bytes(data)
        return target
    target.write(data)
    return None


def save_ticket(
    file,
    module,
    masks: dict[str, torch.Tensor],
    *,
    rounds=(),
    rewind_point: dict[str, torch.Tensor] | None = None,
    info: dict | None = None,
    arrays: dict[str, np.ndarray] | None = None,
) -> Path | None:
    """Write ``module``'s ticket to ``file`` (a path or a binary file object).

    Parameters
    ----------
    file : str, os.PathLike or binary file object
        A path without a suffix gets ``.safetensors`` (:func:`ticket_path`).
    module : torch.nn.Module or dict of str to tensor
        The pruned network (every parameter and buffer is saved), or its
        tensors by name.
    masks : dict of str to bool tensor
        The pruned tensors' masks (True = kept), keyed like
        ``module.named_parameters()``. Only their surviving values are saved.
    rounds : sequence of dict, default=()
        The round history (JSON-serializable records).
    rewind_point : dict of str to tensor, optional
        Values survivors rewind to, saved as survivors too (doubles the size).
    info : dict, optional
        Free JSON-serializable metadata, returned as :attr:`Ticket.info`.
    arrays : dict of str to ndarray, optional
        Small extra numeric, bool or str arrays (object arrays of str are
        restored as object arrays), returned as :attr:`Ticket.arrays`.

    Returns
    -------
    pathlib.Path or None
        The path written (with its suffix), or None for a file object.

    Raises
    ------
    ValueError
        For masks that do not fit the module, unsupported dtypes, NaN or
        infinite values, object arrays holding non-str values.
    """
    return _write(
        file,
        module,
        masks,
        rounds=rounds,
        rewind_point=rewind_point,
        info=info,
        arrays=arrays,
        estimator=None,
    )


# -- loading: helpers ----------------------------------------------------------
def _describe(file) -> str:
    if isinstance(file, (str, os.PathLike)):
        return repr(os.fspath(file))
    return f"file object {getattr(file, 'name', type(file).__name__)!r}"


class _Invalid(ValueError):
    """A problem with the file; the loader adds the file's name."""


def _fail(file, why: str) -> ValueError:
    return ValueError(f"{_describe(file)} is not a valid sklottery ticket file: {why}")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _depth_ok(obj, limit: int = MAX_DEPTH) -> bool:
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            items = item.values()
        elif isinstance(item, list):
            items = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((v, depth + 1) for v in items)
    return True


def _json(raw: bytes, what: str):
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Invalid(f"{what} is not valid JSON ({exc})") from None
    except RecursionError:
        raise _Invalid(f"{what} is nested too deeply") from None
    if not _depth_ok(obj):
        raise _Invalid(f"{what} is nested deeper than {MAX_DEPTH} levels")
    return obj


def _shape(value, what: str) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or len(value) > MAX_NDIM
        or not all(_is_int(s) and s >= 0 for s in value)
    ):
        raise _Invalid(
            f"{what} must be a list of at most {MAX_NDIM} non-negative ints; "
            f"got {_short(value)}"
        )
    return tuple(value)


def _short(value, n: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


_HEADER_KINDS = {
    "format": str,
    "version": int,
    "tensors": list,
    "rewind_point": bool,
    "rounds": list,
    "info": dict,
    "arrays": list,
}


def _check_header(header, version: int) -> dict:
    """The checked sklottery header; `_Invalid` naming the field otherwise."""
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise _Invalid(f"its header does not name the format {FORMAT_NAME!r}")
    got = header.get("version")
    if got != version:
        if got in (FORMAT_VERSION, LEGACY_VERSION):
            raise _Invalid(
                f"header field 'version' is {got}, but the file is "
                + ("a numpy .npz archive" if version == 1 else "a safetensors file")
            )
        raise _Invalid(
            f"format version {_short(got)} is not supported; this sklottery reads "
            f"versions {LEGACY_VERSION} (.npz) and {FORMAT_VERSION} (safetensors)"
        )
    for key, kind in _HEADER_KINDS.items():
        if not isinstance(header.get(key), kind):
            raise _Invalid(f"header field {key!r} must be a {kind.__name__}")
    allowed = set(_HEADER_KINDS) | ({"estimator"} if version >= 2 else set())
    unknown = set(header) - allowed
    if unknown:
        raise _Invalid(f"unknown header fields {sorted(unknown)}")
    if version >= 2:
        est = header.get("estimator")
        if est is not None and not (
            isinstance(est, dict)
            and set(est) == {"class", "state"}
            and isinstance(est["class"], str)
            and isinstance(est["state"], dict)
        ):
            raise _Invalid(
                "header field 'estimator' must be null or {'class': str, "
                "'state': dict}"
            )
    if not all(isinstance(r, dict) for r in header["rounds"]):
        raise _Invalid("header field 'rounds' must be a list of records (dicts)")
    return header


@dataclass(frozen=True)
class _Spec:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    masked: bool
    n_kept: int | None

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def _specs(header) -> list[_Spec]:
    specs, names = [], set()
    for i, spec in enumerate(header["tensors"]):
        what = f"header field 'tensors'[{i}]"
        if not isinstance(spec, dict):
            raise _Invalid(f"{what} must be a dict; got {_short(spec)}")
        keys = {"name", "shape", "dtype", "masked"}
        if spec.get("masked") is True:
            keys.add("n_kept")
        if set(spec) != keys:
            raise _Invalid(
                f"{what} must have exactly the keys {sorted(keys)}; got "
                f"{_short(sorted(map(str, spec)))}"
            )
        name, dtype, masked = spec["name"], spec["dtype"], spec["masked"]
        if not isinstance(name, str) or not name:
            raise _Invalid(f"{what} 'name' must be a non-empty str")
        if name in names:
            raise _Invalid(f"tensor {name!r} appears twice in the header")
        names.add(name)
        shape = _shape(spec["shape"], f"{what} 'shape' of {name!r}")
        if dtype not in _DTYPES:
            raise _Invalid(
                f"{what} 'dtype' of {name!r} is {_short(dtype)}; expected one of "
                f"{sorted(_DTYPES)}"
            )
        if not isinstance(masked, bool):
            raise _Invalid(f"{what} 'masked' of {name!r} must be a bool")
        n_kept = None
        if masked:
            n_kept = spec["n_kept"]
            if not _is_int(n_kept) or not 0 <= n_kept <= math.prod(shape):
                raise _Invalid(
                    f"{what} 'n_kept' of {name!r} must be an int in "
                    f"[0, {math.prod(shape)}]; got {_short(n_kept)}"
                )
        specs.append(_Spec(i, name, shape, dtype, masked, n_kept))
    return specs


def _extra_specs(header, version: int) -> list[dict]:
    out, names = [], set()
    for i, entry in enumerate(header["arrays"]):
        what = f"header field 'arrays'[{i}]"
        if version == LEGACY_VERSION:
            if not isinstance(entry, str) or not entry:
                raise _Invalid(f"{what} must be a non-empty str")
            entry = {"name": entry, "kind": "npy", "object": False}
        else:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise _Invalid(f"{what} must be a dict with a str 'name'")
            kind = entry.get("kind")
            keys = (
                {"name", "kind", "object", "shape", "values"}
                if kind == "str"
                else {"name", "kind", "object"}
            )
            if kind not in ("str", "numeric") or set(entry) != keys:
                raise _Invalid(
                    f"{what} must have 'kind' 'str' or 'numeric' and exactly the "
                    f"keys {sorted(keys)}"
                )
            if not isinstance(entry["object"], bool) or not entry["name"]:
                raise _Invalid(f"{what} 'object' must be a bool, 'name' non-empty")
            if kind == "str":
                shape = _shape(entry["shape"], f"{what} 'shape'")
                values = entry["values"]
                if not isinstance(values, list) or not all(
                    isinstance(v, str) for v in values
                ):
                    raise _Invalid(f"{what} 'values' must be a list of str")
                if len(values) != math.prod(shape):
                    raise _Invalid(
                        f"{what} has {len(values)} values; its shape {shape} "
                        f"needs {math.prod(shape)}"
                    )
        if entry["name"] in names:
            raise _Invalid(f"extra array {entry['name']!r} appears twice")
        names.add(entry["name"])
        out.append(entry)
    return out


def _expected(specs: list[_Spec], rewind: bool) -> dict[str, tuple[tuple, str]]:
    """Every tensor array the header implies: ``{key: (shape, dtype)}``."""
    out = {}
    for s in specs:
        for p in ("t", "r") if rewind else ("t",):
            if s.masked:
                out[f"{p}{s.index}.bits"] = (((s.numel + 7) // 8,), "uint8")
                out[f"{p}{s.index}.values"] = ((s.n_kept,), s.dtype)
            else:
                out[f"{p}{s.index}.dense"] = (s.shape, s.dtype)
    return out


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


def _build(header, version, specs, extras, get, get_extra) -> Ticket:
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


# -- fitted estimators ---------------------------------------------------------
#: The fields of an estimator's ``state``: name -> (type, required). Files of
#: sklottery 0.1.0 lack ``rescale`` (then False) and ``y_1d``.
STATE_FIELDS: dict[str, tuple[type, bool]] = {
    "n_features_in": (int, True),
    "n_outputs": (int, True),
    "n_features_out": (int, True),
    "output_layer": (str, True),
    "selected_round": (int, True),
    "interrupted": (bool, True),
    "rescale": (bool, False),
    "y_1d": (bool, False),
}
#: The arrays an estimator's ticket may hold.
ESTIMATOR_ARRAYS = ("classes_", "feature_names_in_")
#: The fields every round record must have: name -> kind ("int": an int
#: >= 0, "number": an int or float, NaN allowed, "str").
ROUND_FIELDS: dict[str, str] = {
    "round": "int",
    "weights_remaining": "number",
    "n_weights": "int",
    "epochs": "int",
    "train_loss": "number",
    "valid_loss": "number",
    "score": "number",
    "score_on": "str",
    "wall_time": "number",
}


def save_estimator_ticket(
    file,
    module,
    masks: dict[str, torch.Tensor],
    *,
    estimator: str,
    state: dict,
    rounds,
    arrays: dict[str, np.ndarray] | None = None,
    rewind_point: dict[str, torch.Tensor] | None = None,
    info: dict | None = None,
) -> Path | None:
    """Write a fitted estimator's ticket from plain values.

    Parameters
    ----------
    file : str, os.PathLike or binary file object
    module : torch.nn.Module or dict of str to tensor
        The fitted network holding the selected round (or its tensors).
    masks : dict of str to bool tensor
    estimator : str
        The estimator's class name; :func:`read_estimator_ticket` only reads
        the file back for the same name.
    state : dict
        The estimator's fitted fields, JSON values; see :data:`STATE_FIELDS`.
    rounds : sequence of dict
        The round records (``rounds_.to_dict("records")``); each needs
        :data:`ROUND_FIELDS`.
    arrays : dict of str to ndarray, optional
        ``classes_`` and/or ``feature_names_in_`` (object arrays of str are
        restored as object arrays).
    rewind_point : dict of str to tensor, optional
        What ``warm_start`` rewinds survivors to.
    info : dict, optional
        Free JSON metadata (the command line keeps its summary there).

    Returns
    -------
    pathlib.Path or None
        The path written, or None for a file object.
    """
    # plain JSON values (numpy scalars become ints and floats)
    rounds = json.loads(json.dumps(list(rounds), default=_json_default))
    state = json.loads(json.dumps(dict(state), default=_json_default))
    arrays = dict(arrays or {})
    try:
        _check_state(state, rounds, list(masks))
        _check_arrays(estimator, state, arrays)
    except _Invalid as exc:
        raise ValueError(f"cannot save the ticket: {exc}") from None
    return _write(
        file,
        module,
        masks,
        rounds=rounds,
        rewind_point=rewind_point,
        info=info,
        arrays=arrays,
        estimator={"class": estimator, "state": dict(state)},
    )


def _check_state(state, rounds, masked) -> dict:
    """Validate an estimator's state and rounds; `_Invalid` naming the field."""
    if not isinstance(state, dict):
        raise _Invalid("the estimator state must be a dict")
    unknown = set(state) - set(STATE_FIELDS)
    if unknown:
        raise _Invalid(f"unknown estimator state fields {sorted(map(str, unknown))}")
    for key, (kind, required) in STATE_FIELDS.items():
        if key not in state:
            if required:
                raise _Invalid(f"estimator state field {key!r} is missing")
            continue
        value = state[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _Invalid(
                f"estimator state field {key!r} must be a {kind.__name__}; got "
                f"{_short(value)}"
            )
    for key in ("n_features_in", "n_outputs", "n_features_out"):
        if state[key] < 1:
            raise _Invalid(
                f"estimator state field {key!r} must be >= 1; got {state[key]}"
            )
    # the output layer is the last pruned layer (the last masked tensor)
    if not masked:
        raise _Invalid("an estimator's ticket must prune at least one tensor")
    last = masked[-1]
    last_layer = last.rsplit(".", 1)[0] if "." in last else ""
    if state["output_layer"] != last_layer:
        raise _Invalid(
            f"estimator state field 'output_layer' is {state['output_layer']!r}; "
            f"the last pruned layer is {last_layer!r}"
        )
    # rounds
    if not rounds:
        raise _Invalid("the round history is empty")
    seen = []
    for i, record in enumerate(rounds):
        if not isinstance(record, dict):
            raise _Invalid(f"round record {i} must be a dict")
        for key, kind in ROUND_FIELDS.items():
            if key not in record:
                raise _Invalid(f"round record {i} has no field {key!r}")
            value = record[key]
            ok = (
                isinstance(value, str)
                if kind == "str"
                else _is_int(value) and value >= 0
                if kind == "int"
                else isinstance(value, (int, float)) and not isinstance(value, bool)
            )
            if not ok:
                want = {"str": "a str", "int": "an int >= 0", "number": "a number"}
                raise _Invalid(
                    f"round record {i} field {key!r} must be {want[kind]}; got "
                    f"{_short(value)}"
                )
        for key, value in record.items():
            if isinstance(value, (dict, list)):
                raise _Invalid(
                    f"round record {i} field {str(key)!r} must be a number, str, "
                    "bool or null"
                )
        r = record["round"]
        if seen and r <= seen[-1]:
            raise _Invalid(
                f"round record {i} field 'round' is {r}; rounds must increase"
            )
        seen.append(r)
        w = record["weights_remaining"]
        if not 0 <= w <= 1:
            raise _Invalid(
                f"round record {i} field 'weights_remaining' must be in [0, 1]; "
                f"got {_short(w)}"
            )
    if state["selected_round"] not in seen:
        raise _Invalid(
            f"estimator state field 'selected_round' is {state['selected_round']}, "
            f"which is not among the rounds {_short(seen)}"
        )
    return state


def _check_arrays(estimator: str, state: dict, arrays: dict) -> None:
    """Validate an estimator's label arrays against its state."""
    unknown = set(arrays) - set(ESTIMATOR_ARRAYS)
    if unknown:
        raise _Invalid(f"unexpected estimator arrays {sorted(unknown)}")
    classes = arrays.get("classes_")
    if classes is None and estimator.endswith("Classifier"):
        raise _Invalid(f"a {estimator} ticket needs the array 'classes_'")
    if classes is not None:
        _labels(np.asarray(classes), "classes_", state["n_outputs"], "n_outputs")
        if state["n_outputs"] < 2:
            raise _Invalid("array 'classes_' must hold at least 2 classes")
    names = arrays.get("feature_names_in_")
    if names is not None:
        names = np.asarray(names)
        if names.dtype.kind not in "UO":
            raise _Invalid("array 'feature_names_in_' must hold str")
        _labels(names, "feature_names_in_", state["n_features_in"], "n_features_in")


def _labels(arr: np.ndarray, name: str, n: int, field_name: str) -> None:
    if arr.ndim != 1:
        raise _Invalid(f"array {name!r} must be 1-d; got shape {arr.shape}")
    if len(arr) != n:
        raise _Invalid(
            f"array {name!r} has {len(arr)} entries; estimator state field "
            f"{field_name!r} is {n}"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise _Invalid(f"array {name!r} holds NaN or infinite values")
    if arr.dtype.kind == "O" and not all(isinstance(v, str) for v in arr):
        raise _Invalid(f"array {name!r} must hold str, not objects")
    if len(np.unique(arr.astype(str) if arr.dtype.kind == "O" else arr)) != len(arr):
        raise _Invalid(f"array {name!r} holds duplicated entries")


def read_estimator_ticket(file, estimator: str, module=None) -> tuple[Ticket, dict]:
    """Load and validate a ticket saved from an estimator of class ``estimator``.

    Parameters
    ----------
    file : str, os.PathLike or binary file object
    estimator : str
        The class name of the estimator loading it; a ticket saved from
        another class is refused.
    module : torch.nn.Module or callable, optional
        The network to check the ticket against before its tensors are read
        (shapes, dtypes, prunable tensors, the output layer and an
        ``nn.Linear`` output layer's ``in_features`` against
        ``n_features_out``), or a callable ``module(state)`` that builds it
        from the checked state (called only once the header is valid and
        ``n_features_in``/``n_outputs`` are at most the number of values the
        file describes). Not changed.

    Returns
    -------
    ticket : Ticket
        ``ticket.arrays`` holds ``classes_``/``feature_names_in_`` with their
        saved types.
    state : dict
        The checked :data:`STATE_FIELDS` (``rescale`` False for 0.1.0 files).

    Raises
    ------
    ValueError
        Naming the file and the field, for everything :func:`load_ticket`
        refuses and for: another estimator class or a plain ticket; a state
        field missing, unknown, of the wrong type, or ``< 1`` where it counts
        something; an ``output_layer`` that is not the last pruned layer; a
        ``selected_round`` that is not among the rounds; round records
        without :data:`ROUND_FIELDS` or of the wrong types, rounds not
        increasing or ``weights_remaining`` outside [0, 1]; ``classes_`` not
        1-d, not ``n_outputs`` long, duplicated, NaN, or missing from a
        classifier's ticket; ``feature_names_in_`` not ``n_features_in``
        distinct str.
    """
    found = {}

    def resolve(header, specs):
        name, state, info, objects = _estimator_part(header)
        if name != estimator:
            raise _Invalid(
                f"it was saved from a {name}; it cannot be loaded into a {estimator}"
            )
        masked = [s.name for s in specs if s.masked]
        state = _check_state(state, header["rounds"], masked)
        # a network built from these counts is never larger than the file's
        # tensors (every input feature and output has at least one weight)
        total = sum(s.numel for s in specs)
        for key in ("n_features_in", "n_outputs", "n_features_out"):
            if state[key] > total:
                raise _Invalid(
                    f"estimator state field {key!r} is {state[key]}, more than the "
                    f"{total} values of all the ticket's tensors"
                )
        found.update(state=state, info=info, objects=objects, name=name)
        net = module
        if callable(module) and not isinstance(module, nn.Module):
            net = module(dict(state, rescale=state.get("rescale", False)))
        if net is not None:
            _check_against_module(specs, net)
            _check_output_layer(state, net)
        return net

    ticket = _load(file, resolve)
    try:
        for attr in found["objects"]:
            if attr in ticket.arrays:
                if ticket.arrays[attr].dtype.kind != "U":
                    raise _Invalid(f"array {attr!r} listed as object must hold str")
                ticket.arrays[attr] = ticket.arrays[attr].astype(object)
        _check_arrays(estimator, found["state"], ticket.arrays)
    except _Invalid as exc:
        raise _fail(file, str(exc)) from None
    ticket.estimator, ticket.state, ticket.info = (
        found["name"], found["state"], found["info"],
    )
    state = dict(found["state"])
    state.setdefault("rescale", False)
    return ticket, state


def _check_output_layer(state: dict, module: nn.Module) -> None:
    name = state["output_layer"]
    try:
        layer = module.get_submodule(name)
    except AttributeError:
        raise _Invalid(
            f"estimator state field 'output_layer' {name!r} is not a layer of the "
            "network"
        ) from None
    prunable = find_prunable(module)
    if not prunable or prunable[-1].module_name != name:
        raise _Invalid(
            f"estimator state field 'output_layer' {name!r} is not the network's "
            "output layer (its last prunable layer)"
        )
    if isinstance(layer, nn.Linear) and layer.in_features != state["n_features_out"]:
        raise _Invalid(
            f"estimator state field 'n_features_out' is {state['n_features_out']}; "
            f"the output layer {name!r} takes {layer.in_features}"
        )


def _estimator_part(header: dict) -> tuple[str, dict, dict, list]:
    """``(class name, state, info, object arrays)`` of an estimator's ticket;
    0.1.0 kept the estimator's fields in ``info``."""
    est = header.get("estimator")
    if est is not None:
        return est["class"], est["state"], header["info"], []
    if header["version"] != LEGACY_VERSION:
        raise _Invalid("it was not saved from a sklottery estimator")
    info = dict(header["info"])
    if "estimator" not in info:
        raise _Invalid("it was not saved from a sklottery estimator")
    name = info.pop("estimator")
    if not isinstance(name, str):
        raise _Invalid("info field 'estimator' must be a str")
    objects = info.pop("object_arrays", [])
    if not isinstance(objects, list) or not all(
        isinstance(o, str) and o in ESTIMATOR_ARRAYS for o in objects
    ):
        raise _Invalid(
            f"info field 'object_arrays' must list some of {list(ESTIMATOR_ARRAYS)}"
        )
    state = {k: info.pop(k) for k in list(info) if k in STATE_FIELDS}
    return name, state, info, objects
