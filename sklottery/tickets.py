"""Ticket files: a pruned network saved small and loaded safely.

A ticket file is a numpy ``.npz`` archive (zip, deflate-compressed) read with
``allow_pickle=False``, so loading one can never execute code. It holds

* per pruned tensor: its mask packed as bits (:func:`numpy.packbits`, one bit
  per weight) and the surviving values only, in row-major order of the mask;
* every other parameter and buffer (biases, normalization statistics) dense;
* optionally the survivors of the rewind point (what ``warm_start`` needs to
  continue pruning);
* a JSON header: format name and version, each tensor's name, shape, dtype
  and kept count, the round history and free metadata (an estimator's
  classes, sizes and so on).

At 90% sparsity a float32 ticket holds at most about 13% of the dense weights'
bytes -- 10% of the values plus 1/32 for the mask bits -- and the compressed
archive measured 10.1-10.4% (see ``benchmarks/RESULTS.md``).

:func:`load_ticket` validates the whole file -- format, version, every
array's dtype and length, the mask bit counts -- before returning anything,
and :func:`apply_ticket` checks that names, shapes and dtypes match the
network before it changes a single tensor. A truncated or corrupt file, a
file with wrong dtypes and a mismatched network all give a ``ValueError``
that says what is wrong; nothing is ever half-applied.

References
----------
J. Frankle and M. Carbin, "The Lottery Ticket Hypothesis: Finding Sparse,
Trainable Neural Networks", ICLR 2019 (a ticket is a mask plus the weights).
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .pruning.masks import load_values
from .pruning.targets import find_prunable

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "Ticket",
    "apply_ticket",
    "check_compatible",
    "load_ticket",
    "read_estimator_ticket",
    "save_estimator_ticket",
    "save_ticket",
]

FORMAT_NAME = "sklottery-ticket"
FORMAT_VERSION = 1

_DTYPES = {
    torch.float16: "float16",
    torch.float32: "float32",
    torch.float64: "float64",
    torch.complex64: "complex64",
    torch.complex128: "complex128",
    torch.uint8: "uint8",
    torch.int8: "int8",
    torch.int16: "int16",
    torch.int32: "int32",
    torch.int64: "int64",
    torch.bool: "bool",
}
_TORCH_DTYPES = {v: k for k, v in _DTYPES.items()}


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
    """

    values: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    rewind_point: dict[str, torch.Tensor] | None = None
    rounds: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def specs(self) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        return {n: (tuple(v.shape), v.dtype) for n, v in self.values.items()}


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
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
        return _DTYPES[t.dtype]
    except KeyError:
        raise ValueError(
            f"cannot save {name!r}: dtype {t.dtype} is not supported in ticket files; "
            f"supported dtypes are {sorted(_TORCH_DTYPES)}"
        ) from None


def _pack(prefix: str, value: torch.Tensor, mask: torch.Tensor | None, out: dict):
    arr = value.detach().cpu().contiguous().numpy()
    if mask is None:
        out[f"{prefix}.dense"] = arr
        return
    flat = mask.detach().cpu().reshape(-1).numpy().astype(bool)
    out[f"{prefix}.bits"] = np.packbits(flat)
    out[f"{prefix}.values"] = arr.reshape(-1)[flat]


def save_ticket(
    file,
    module: nn.Module,
    masks: dict[str, torch.Tensor],
    *,
    rounds=(),
    rewind_point: dict[str, torch.Tensor] | None = None,
    info: dict | None = None,
    arrays: dict[str, np.ndarray] | None = None,
) -> None:
    """Write ``module``'s ticket to ``file`` (a path or a binary file object).

    Parameters
    ----------
    file : str, os.PathLike or file object
        Written as an ``.npz`` archive (numpy adds ``.npz`` to a path without it).
    module : torch.nn.Module
        The pruned network; every parameter and buffer is saved.
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
        Extra numeric or string arrays (no object arrays), returned as
        :attr:`Ticket.arrays`.
    """
    state = _state(module)
    unknown = set(masks) - set(state)
    if unknown:
        raise ValueError(
            f"masks for tensors the module does not have: {sorted(unknown)}"
        )
    out: dict[str, np.ndarray] = {}
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
        _pack(f"t{i}", value, mask, out)
        if rewind_point is not None:
            if name not in rewind_point:
                raise ValueError(f"rewind_point has no value for {name!r}")
            _pack(f"r{i}", rewind_point[name].to(value.dtype), mask, out)
    for key, arr in (arrays or {}).items():
        arr = np.asarray(arr)
        if arr.dtype.kind not in "biufcU":
            raise ValueError(
                f"arrays[{key!r}] has dtype {arr.dtype}; only numeric, bool and str "
                "arrays can be saved (a ticket file never holds pickled objects)"
            )
        out[f"x.{key}"] = arr
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "tensors": specs,
        "rewind_point": rewind_point is not None,
        "rounds": list(rounds),
        "info": dict(info or {}),
        "arrays": sorted((arrays or {}).keys()),
    }
    text = json.dumps(header, default=_json_default)
    out["header"] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    np.savez_compressed(file, **out)


# -- loading -----------------------------------------------------------------
def _fail(file, why: str):
    return ValueError(f"{_describe(file)} is not a valid sklottery ticket file: {why}")


def _describe(file) -> str:
    if isinstance(file, (str, os.PathLike)):
        return repr(os.fspath(file))
    return f"file object {getattr(file, 'name', type(file).__name__)!r}"


def _read_arrays(file) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(file, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            loaded = None
        else:
            with loaded:
                return {key: loaded[key] for key in loaded.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except ValueError as exc:
        raise _fail(file, f"it could not be read ({exc})") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as exc:
        raise _fail(
            file, f"it is truncated or corrupt ({type(exc).__name__}: {exc})"
        ) from exc
    raise _fail(file, "it is a single .npy array, not an .npz archive")


def _header(file, arrays) -> dict:
    raw = arrays.get("header")
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise _fail(file, "its 'header' array is missing or not uint8 bytes")
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(file, f"its header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise _fail(file, f"its header does not name the format {FORMAT_NAME!r}")
    if header.get("version") != FORMAT_VERSION:
        raise _fail(
            file,
            f"format version {header.get('version')!r} is not supported; this "
            f"sklottery reads version {FORMAT_VERSION}",
        )
    for key, kind in (
        ("tensors", list),
        ("rounds", list),
        ("info", dict),
        ("arrays", list),
        ("rewind_point", bool),
    ):
        if not isinstance(header.get(key), kind):
            raise _fail(file, f"header field {key!r} must be a {kind.__name__}")
    return header


def _check_spec(file, i, spec) -> tuple[str, tuple[int, ...], str, bool, int | None]:
    try:
        name, shape, dtype, masked = (
            spec[k] for k in ("name", "shape", "dtype", "masked")
        )
        ok = (
            isinstance(name, str)
            and isinstance(shape, list)
            and all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
            )
            and dtype in _TORCH_DTYPES
            and isinstance(masked, bool)
        )
        n_kept = spec.get("n_kept") if masked else None
        if masked and not (isinstance(n_kept, int) and not isinstance(n_kept, bool)):
            ok = False
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise _fail(file, f"tensor entry {i} of the header is malformed: {spec!r}")
    return name, tuple(shape), dtype, masked, n_kept


def _array(file, arrays, key, name, dtype, shape):
    arr = arrays.get(key)
    if arr is None:
        raise _fail(file, f"array {key!r} for {name!r} is missing")
    if arr.dtype != np.dtype(dtype):
        raise _fail(
            file, f"array {key!r} for {name!r} has dtype {arr.dtype}; expected {dtype}"
        )
    if arr.shape != shape:
        raise _fail(
            file, f"array {key!r} for {name!r} has shape {arr.shape}; expected {shape}"
        )
    return arr


def _unpack(file, arrays, prefix, name, shape, dtype, masked, n_kept):
    """Dense tensor (and mask) of one saved tensor, validated."""
    numel = math.prod(shape)
    if not masked:
        arr = _array(file, arrays, f"{prefix}.dense", name, dtype, shape)
        return torch.from_numpy(np.array(arr, copy=True)), None
    bits = _array(file, arrays, f"{prefix}.bits", name, "uint8", ((numel + 7) // 8,))
    unpacked = np.unpackbits(bits)
    if unpacked[numel:].any():
        raise _fail(file, f"the mask bits of {name!r} have set padding bits")
    flat = unpacked[:numel].astype(bool)
    if int(flat.sum()) != n_kept:
        raise _fail(
            file,
            f"the mask of {name!r} keeps {int(flat.sum())} weights; "
            f"the header says {n_kept}",
        )
    values = _array(file, arrays, f"{prefix}.values", name, dtype, (n_kept,))
    dense = np.zeros(numel, dtype=np.dtype(dtype))
    dense[flat] = values
    return (
        torch.from_numpy(dense.reshape(shape)),
        torch.from_numpy(flat.reshape(shape).copy()),
    )


def load_ticket(file) -> Ticket:
    """Read and validate a ticket file; no network is touched.

    Parameters
    ----------
    file : str, os.PathLike or file object

    Returns
    -------
    Ticket

    Raises
    ------
    ValueError
        If the file is truncated or corrupt, is not a ticket file, has an
        unsupported format version, or any array has the wrong dtype or size.
    FileNotFoundError
        If there is no such file.
    """
    arrays = _read_arrays(file)
    header = _header(file, arrays)
    values: dict[str, torch.Tensor] = {}
    masks: dict[str, torch.Tensor] = {}
    rewind: dict[str, torch.Tensor] | None = {} if header["rewind_point"] else None
    expected_keys = {"header"}
    for i, spec in enumerate(header["tensors"]):
        name, shape, dtype, masked, n_kept = _check_spec(file, i, spec)
        if name in values:
            raise _fail(file, f"tensor {name!r} appears twice in the header")
        suffixes = ("bits", "values") if masked else ("dense",)
        prefixes = ["t", "r"] if rewind is not None else ["t"]
        expected_keys.update(f"{p}{i}.{s}" for p in prefixes for s in suffixes)
        values[name], mask = _unpack(
            file, arrays, f"t{i}", name, shape, dtype, masked, n_kept
        )
        if mask is not None:
            masks[name] = mask
        if rewind is not None:
            rewind[name], _ = _unpack(
                file, arrays, f"r{i}", name, shape, dtype, masked, n_kept
            )
    extras = {}
    for key in header["arrays"]:
        if not isinstance(key, str) or f"x.{key}" not in arrays:
            raise _fail(file, f"extra array {key!r} is missing")
        extras[key] = arrays[f"x.{key}"]
        expected_keys.add(f"x.{key}")
    unknown = set(arrays) - expected_keys
    if unknown:
        raise _fail(
            file, f"it holds arrays the header does not describe: {sorted(unknown)}"
        )
    if not all(isinstance(r, dict) for r in header["rounds"]):
        raise _fail(file, "the round history must be a list of records")
    return Ticket(values, masks, rewind, header["rounds"], header["info"], extras)


def check_compatible(ticket: Ticket, module: nn.Module) -> None:
    """Raise ``ValueError`` unless ``ticket`` fits ``module`` exactly.

    Names, shapes and dtypes of every parameter and buffer must match, and
    the pruned tensors must be exactly the module's prunable tensors.
    """
    state = _state(module)
    problems = []
    missing = sorted(set(state) - set(ticket.values))
    extra = sorted(set(ticket.values) - set(state))
    if missing:
        problems.append(f"tensors missing from the ticket: {missing}")
    if extra:
        problems.append(f"tensors the network does not have: {extra}")
    for name, (shape, dtype) in ticket.specs.items():
        if name not in state:
            continue
        have = state[name]
        if tuple(have.shape) != shape:
            problems.append(
                f"{name!r}: ticket shape {shape}, network {tuple(have.shape)}"
            )
        elif have.dtype != dtype:
            problems.append(f"{name!r}: ticket dtype {dtype}, network {have.dtype}")
    prunable = {t.name for t in find_prunable(module)}
    if not problems and set(ticket.masks) != prunable:
        problems.append(
            f"the ticket prunes {sorted(ticket.masks)} but the network's prunable "
            f"tensors are {sorted(prunable)}"
        )
    if problems:
        raise ValueError(
            f"the ticket does not fit this {type(module).__name__}: "
            + "; ".join(problems)
        )


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


# -- fitted estimators -------------------------------------------------------
_ESTIMATOR_ARRAYS = ("classes_", "feature_names_in_")


def _savable(value: np.ndarray, attr: str) -> tuple[np.ndarray, bool]:
    """``(array, was_object)``: object arrays of str are saved as str arrays."""
    arr = np.asarray(value)
    if arr.dtype.kind != "O":
        return arr, False
    if all(isinstance(v, str) for v in arr.ravel()):
        return arr.astype(str), True
    raise ValueError(
        f"cannot save {attr} of dtype object holding non-str values in a ticket "
        "file (which never holds pickled objects); use numeric or str labels"
    )


def save_estimator_ticket(
    file,
    module: nn.Module,
    masks: dict,
    *,
    estimator: str,
    state: dict,
    arrays: dict,
    rounds: list,
    rewind_point: dict | None = None,
) -> None:
    """Save a fitted estimator's ticket: its module and masks, ``state`` (the
    JSON fields :func:`read_estimator_ticket` checks), label ``arrays`` and
    round records."""
    info = {"estimator": estimator, **state, "object_arrays": []}
    saved = {}
    for attr, value in arrays.items():
        if attr not in _ESTIMATOR_ARRAYS:
            raise ValueError(f"unexpected estimator array {attr!r}")
        saved[attr], was_object = _savable(value, attr)
        if was_object:
            info["object_arrays"].append(attr)
    save_ticket(
        file,
        module,
        masks,
        rounds=rounds,
        rewind_point=rewind_point,
        info=info,
        arrays=saved,
    )


def read_estimator_ticket(file, estimator: str) -> tuple[Ticket, dict]:
    """Load and validate a ticket saved from an estimator of class ``estimator``.

    Returns the ticket (its ``arrays`` restored to the estimator's attribute
    types) and its checked ``info``.
    """
    ticket = load_ticket(file)
    info = ticket.info
    if info.get("estimator") is None:
        raise _fail(file, "it was not saved from a sklottery estimator")
    if info["estimator"] != estimator:
        raise ValueError(
            f"the ticket in {_describe(file)} was saved from a {info['estimator']}; "
            f"it cannot be loaded into a {estimator}"
        )
    info.setdefault("rescale", False)  # files written before it was recorded
    kinds = {
        "n_features_in": int,
        "n_outputs": int,
        "n_features_out": int,
        "output_layer": str,
        "selected_round": int,
        "interrupted": bool,
        "rescale": bool,
        "object_arrays": list,
    }
    for key, kind in kinds.items():
        if not isinstance(info.get(key), kind) or (
            kind is int and isinstance(info[key], bool)
        ):
            raise _fail(file, f"its estimator field {key!r} must be a {kind.__name__}")
    unknown = set(ticket.arrays) - set(_ESTIMATOR_ARRAYS)
    if unknown:
        raise _fail(file, f"unexpected estimator arrays {sorted(unknown)}")
    for attr in info["object_arrays"]:
        if attr in ticket.arrays:
            ticket.arrays[attr] = ticket.arrays[attr].astype(object)
    if not ticket.rounds:
        raise _fail(file, "its round history is empty")
    return ticket, info
