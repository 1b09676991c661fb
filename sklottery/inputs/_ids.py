"""Whether integer ``X`` is token ids or numbers: the net's module says so."""

from __future__ import annotations

import torch
from torch import nn

from ..pruning.rng import forked

__all__ = ["ID_LAYERS", "first_layer", "integer_input", "takes_ids"]

#: The layers that take token ids.
ID_LAYERS = (nn.Embedding, nn.EmbeddingBag)


def first_layer(module: nn.Module) -> nn.Module | None:
    """The first layer ``module`` registers: the first of ``module.modules()``
    (``module`` itself, then its submodules in the order they were set) with
    weights of its own, or that is an ``Embedding``/``EmbeddingBag``. None
    for a module with no weights."""
    for m in module.modules():
        own = next(m.parameters(recurse=False), None)
        if isinstance(m, ID_LAYERS) or own is not None:
            return m
    return None


def takes_ids(module) -> bool:
    """Whether ``module`` (a class or an instance) takes integer ``X`` as int64
    token ids rather than as numbers.

    A module says so by a ``takes_ids`` attribute (``True`` or ``False``;
    the networks of :mod:`sklottery.modules` have one: only
    :class:`~sklottery.EmbeddingNet` takes ids). Without one: an
    ``Embedding`` or ``EmbeddingBag`` takes ids, and an instance takes them
    when its first layer (:func:`first_layer`) is one. A class without the
    attribute is not instantiated here: False (:func:`integer_input` builds
    one to look).
    """
    declared = getattr(module, "takes_ids", None)
    if declared is not None:
        return bool(declared)
    if isinstance(module, type):
        return issubclass(module, ID_LAYERS)
    if isinstance(module, nn.Module):
        return isinstance(first_layer(module), ID_LAYERS)
    return False


def integer_input(net) -> str:
    """What integer ``X`` is for the estimator parameter ``net``: ``"ids"``
    (int64 token ids) when the net's module takes ids
    (:func:`takes_ids`: its ``takes_ids`` attribute, an
    :class:`~sklottery.EmbeddingNet`, or an ``Embedding``/``EmbeddingBag``
    as its first layer), else ``"float"`` numbers -- also for ``net=None``,
    whose default network for an integer table is an :class:`~sklottery.MLP`.

    A module class with no ``takes_ids`` attribute is built once from the
    net's ``module__`` parameters (on torch's ``meta`` device, else on the CPU
    with torch's generator left as it was) to look at its first layer; one
    that cannot be built that way takes numbers.
    """
    if net is None:
        return "float"
    module = getattr(net, "module", None)
    if isinstance(module, type) and getattr(module, "takes_ids", None) is None:
        module = _instance(module, net)
    return "ids" if module is not None and takes_ids(module) else "float"


def _instance(cls, net):
    """``cls`` built as skorch builds the net's module, or None."""
    try:
        kwargs = net.get_params_for("module")
    except AttributeError:
        kwargs = {}
    for where in (torch.device("meta"), torch.device("cpu")):
        try:
            with forked(), where:
                return cls(**kwargs)
        except Exception:  # noqa: BLE001 -- any failure: look no further
            continue
    return None
