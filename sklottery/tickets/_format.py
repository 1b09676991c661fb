"""The ticket format: its constants and dtypes, :class:`Ticket`, the path rule,
and the checks of sklottery's header (see :mod:`sklottery.tickets`)."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..pruning import unwrap_compiled

FORMAT_NAME = "sklottery-ticket"
#: 3: safetensors whose header carries the SHA-256 of the tensor data
#: (``data_sha256``, always written); 2: safetensors without it (the first
#: 0.2 development files, still read); 1: numpy .npz (0.1.0, still read).
FORMAT_VERSION = 3
LEGACY_VERSION = 1
#: The safetensors versions read; only :data:`FORMAT_VERSION` is written.
SAFETENSORS_VERSIONS = (2, FORMAT_VERSION)
#: The header field holding the SHA-256 (hex) of the data section.
DIGEST_FIELD = "data_sha256"
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


def _state(module) -> dict[str, torch.Tensor]:
    if isinstance(module, dict):
        return dict(module)
    module = unwrap_compiled(module)  # a compiled module's names lack _orig_mod.
    state = dict(module.named_parameters())
    state.update(module.named_buffers())
    return state


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (tuple, np.ndarray)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


# -- errors, and the checks of a header ------------------------------------------
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


def _check_header(header, versions: tuple[int, ...]) -> dict:
    """The checked sklottery header of a file of one of ``versions`` (what its
    container holds); `_Invalid` naming the field otherwise."""
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise _Invalid(f"its header does not name the format {FORMAT_NAME!r}")
    got = header.get("version")
    if not _is_int(got) or got not in versions:
        if _is_int(got) and got in (LEGACY_VERSION, *SAFETENSORS_VERSIONS):
            raise _Invalid(
                f"header field 'version' is {got}, but the file is "
                + ("a numpy .npz archive" if versions == (LEGACY_VERSION,)
                   else "a safetensors file")
            )
        raise _Invalid(
            f"format version {_short(got)} is not supported; this sklottery reads "
            f"versions {LEGACY_VERSION} (.npz) and "
            f"{', '.join(map(str, SAFETENSORS_VERSIONS))} (safetensors)"
        )
    version = got
    for key, kind in _HEADER_KINDS.items():
        if not isinstance(header.get(key), kind):
            raise _Invalid(f"header field {key!r} must be a {kind.__name__}")
    allowed = set(_HEADER_KINDS) | ({"estimator"} if version >= 2 else set())
    if version >= 3:  # the digest is required from version 3 on
        allowed.add(DIGEST_FIELD)
        digest = header.get(DIGEST_FIELD)
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise _Invalid(
                f"header field {DIGEST_FIELD!r} must be the SHA-256 of the tensor "
                f"data, 64 lowercase hex digits; got {_short(digest)}"
            )
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


_HEX64 = re.compile("[0-9a-f]{64}")


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


class _Parsed(NamedTuple):
    """sklottery's checked header and what it implies."""

    header: dict
    specs: list[_Spec]
    extras: list[dict]
    #: every tensor array of the ticket (not the extra arrays): key -> (shape, dtype)
    expected: dict[str, tuple[tuple, str]]


def _parse_header(raw: bytes, what: str, versions: tuple[int, ...]) -> _Parsed:
    """Parse and check sklottery's JSON header (``what`` names it in errors)
    of a file of one of ``versions``."""
    header = _check_header(_json(raw, what), versions)
    specs = _specs(header)
    return _Parsed(
        header, specs, _extra_specs(header, header["version"]),
        _expected(specs, header["rewind_point"]),
    )


def _check_names(have, implied, what: str) -> None:
    """`_Invalid` unless a file holds exactly the ``what`` (tensors, arrays)
    its header implies."""
    have, implied = set(have), set(implied)
    missing = sorted(implied - have)
    if missing:
        raise _Invalid(f"{what} {_short(missing, 200)} are missing")
    if have != implied:
        raise _Invalid(
            f"it holds {what} the header does not describe: "
            + _short(sorted(have - implied), 200)
        )
