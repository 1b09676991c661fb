"""Writing ticket files: safetensors, survivors and mask bits only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ._format import (
    _BY_TORCH,
    _DTYPES,
    _EXTRA_NUMPY,
    FORMAT_NAME,
    FORMAT_VERSION,
    _state,
    ticket_path,
)
from ._read import _check_file_arg
from ._safetensors import _safetensors_bytes


# -- saving ------------------------------------------------------------------
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


def _write(
    file, module, masks, *, rounds, rewind_point, info, arrays, estimator
) -> Path | None:
    _check_file_arg(file)
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
            spec["n_kept"] = int(torch.count_nonzero(mask))
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
    data = _safetensors_bytes(tensors, header)
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
    options = {"rewind_point": rewind_point, "info": info, "arrays": arrays}
    return _write(file, module, masks, rounds=rounds, estimator=None, **options)
