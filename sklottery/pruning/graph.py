"""Which slices of which tensors make up one unit: the dependency graph of a
module, found by tracing it with ``torch.fx``.

A *unit* is one output neuron of a ``Linear``, one filter (output channel) of
a convolution, one hidden unit of an RNN/GRU/LSTM (all its gates, all its
layers and directions at once) or one head of a ``MultiheadAttention``.
Removing it removes slices of several tensors: the producer's rows (and
bias), the following BatchNorm's entries, and the input columns of every
layer that reads it -- after a flatten, the block of columns of each of its
positions; after a concatenation, at its offset. Units tied together by a
residual add (or any elementwise op between two layers' outputs) form one
*space*: a channel is removed from all its producers at once.

:func:`trace_units` traces the module symbolically (``torch.fx``), runs the
example inputs through it for shapes, and follows each tensor's feature
dimension through the graph (:mod:`~sklottery.pruning.graph_rules`). The
result is a :class:`UnitGraph`: one :class:`UnitGroup` per prunable space,
each a list of :class:`Entry` ``(tensor, dim, positions)``.

A space is *fixed* -- never pruned -- where its values reach something whose
result would change if a unit went: the network's output, a LayerNorm or
softmax over the features, a reduction over them, the embedding dimension of
an attention layer, or an operation the graph does not know
(``UnitGraph.fixed`` says why for each). A module that cannot be traced
(data-dependent Python control flow, ...) raises :class:`GraphError` naming
the failing operation.

Why our own tracer and not Torch-Pruning's DepGraph: see
``benchmarks/results/depgraph.md`` and ``docs/structured.rst``. This module
imports torch only and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from .targets import find_prunable, unwrap_compiled

__all__ = ["Entry", "GraphError", "UnitGraph", "UnitGroup", "trace_units"]


class GraphError(ValueError):
    """A module whose units cannot be traced (the message names the op)."""


@dataclass
class Entry:
    """The slices of one tensor that belong to the units of a group.

    ``positions[j]`` are the indices along ``dim`` of tensor ``name`` (a
    parameter or buffer name of the module) that unit ``j`` owns. ``role`` is
    ``"producer"`` (the unit's own rows: weights, biases, gates),
    ``"consumer"`` (input columns of a layer reading it) or ``"follower"``
    (per-channel normalization entries).
    """

    name: str
    dim: int
    positions: torch.Tensor
    role: str


@dataclass
class UnitGroup:
    """One prunable space: ``size`` units of ``kind`` (``"neuron"``,
    ``"channel"``, ``"hidden"``, ``"head"``, ``"embedding"``), named after
    its first producer layer, with the :class:`Entry` list of every tensor
    slice a unit owns and the normalization layers (``norms``) on it."""

    name: str
    kind: str
    size: int
    entries: list[Entry] = field(default_factory=list)
    norms: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)

    def of_role(self, role: str) -> list[Entry]:
        return [e for e in self.entries if e.role == role]


@dataclass
class UnitGraph:
    """The prunable ``groups`` of a module, the ``fixed`` spaces' reasons
    (first producer layer -> why it is never pruned) and the leaf ``layers``
    whose tensors a group slices (module name -> layer), and the names of
    the module's prunable ``targets``."""

    groups: list[UnitGroup]
    fixed: dict[str, str]
    layers: dict[str, nn.Module]
    targets: set = field(default_factory=set)

    def group(self, name: str) -> UnitGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(name)


class _Space:
    """A union-find node: ``size`` units, producer layer names, entries."""

    def __init__(self, size: int, kind: str, owner: str | None):
        self.size, self.kind = size, kind
        self.parent = self
        self.entries: list[Entry] = []
        self.owners: list[str] = [owner] if owner else []
        self.norms: list[str] = []
        self.fixed = "" if owner else "an input of the network"

    def root(self) -> _Space:
        node = self
        while node.parent is not node:
            node.parent = node.parent.parent
            node = node.parent
        return node


def union(a: _Space, b: _Space, where: str) -> None:
    """Tie two spaces: a unit goes from both or neither."""
    a, b = a.root(), b.root()
    if a is b:
        return
    if a.size != b.size:
        raise GraphError(
            f"{where} ties {a.size} units of {a.owners or 'an input'} to {b.size} "
            f"of {b.owners or 'an input'}"
        )
    b.parent = a
    a.entries += b.entries
    a.owners += [o for o in b.owners if o not in a.owners]
    a.norms += b.norms
    a.fixed = a.fixed or b.fixed


def fix(space: _Space, why: str) -> None:
    root = space.root()
    if not root.fixed:
        root.fixed = why


def trace_units(module: nn.Module, example_inputs) -> UnitGraph:
    """Trace ``module`` (any ``torch.fx``-traceable module) and return its
    :class:`UnitGraph`.

    ``example_inputs`` is one batch as the module takes it: a tensor, a
    tuple of positional tensors or a dict of keyword tensors (a couple of
    rows is enough; they give the shapes of a flatten). The module is run
    once in eval mode, without gradients, and left as it was.

    Raises
    ------
    GraphError
        If the module cannot be traced, naming the failing operation.
    """
    from .graph_rules import propagate  # the rules import this module's types

    module = unwrap_compiled(module)
    args, kwargs = _as_call(example_inputs)
    try:
        gm = fx.GraphModule(module, _Tracer().trace(module))
    except Exception as exc:  # noqa: BLE001 -- any tracing failure, reworded
        raise GraphError(
            f"cannot trace {type(module).__name__} with torch.fx to find its units "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "structured pruning needs a module without data-dependent Python "
            "control flow -- use granularity='weight', or exclude the part that "
            "cannot be traced into a traceable submodule"
        ) from None
    inputs = _placeholder_values(gm, args, kwargs)
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            ShapeProp(gm).propagate(*inputs)
    except Exception as exc:  # noqa: BLE001
        raise GraphError(
            f"running the traced {type(module).__name__} on example_inputs "
            f"failed: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        module.train(was_training)
    targets = {t.name for t in find_prunable(module)}
    spaces, layers = propagate(gm, targets)
    graph = _collect(spaces, layers)
    graph.targets = targets
    return graph


class _Tracer(fx.Tracer):
    """torch.fx's tracer, with every layer the rules know kept whole (a
    user's subclass of ``nn.Linear`` too, not traced into)."""

    def is_leaf_module(self, m, qualname):
        from .graph_rules import KNOWN_LAYERS

        return isinstance(m, KNOWN_LAYERS) or super().is_leaf_module(m, qualname)


def _as_call(example_inputs):
    if isinstance(example_inputs, dict):
        return (), dict(example_inputs)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs), {}
    return (example_inputs,), {}


def _placeholder_values(gm, args, kwargs) -> list:
    """The example values in the order of the traced graph's placeholders
    (defaults for the ones not given)."""
    values, i = [], 0
    for node in gm.graph.nodes:
        if node.op != "placeholder":
            continue
        if node.target in kwargs:
            values.append(kwargs[node.target])
        elif i < len(args):
            values.append(args[i])
            i += 1
        elif node.args:
            values.append(node.args[0])
        else:
            raise GraphError(f"example_inputs gives no value for input {node.target!r}")
    return values


def _collect(spaces: list[_Space], layers: dict) -> UnitGraph:
    roots: list[_Space] = []
    for s in spaces:
        r = s.root()
        if r not in roots:
            roots.append(r)
    groups, fixed, used = [], {}, {}
    for r in roots:
        if not r.owners:
            continue
        order = {n: i for i, n in enumerate(layers)}
        r.owners.sort(key=lambda n: order.get(n, len(order)))
        r.norms.sort(key=lambda n: order.get(n, len(order)))  # graph order
        name = r.owners[0]
        if r.fixed:
            fixed[name] = r.fixed
            continue
        if not any(e.role == "producer" for e in r.entries):
            continue
        touched = []
        for e in r.entries:
            layer = _owner_layer(e.name, layers)
            if layer not in touched:
                touched.append(layer)
        groups.append(
            UnitGroup(name, r.kind, r.size, list(r.entries), list(r.norms), touched)
        )
        for layer in touched:
            used[layer] = layers[layer]
    order = {n: i for i, n in enumerate(layers)}
    groups.sort(key=lambda g: order[g.name])
    return UnitGraph(groups, fixed, used)


def _owner_layer(tensor_name: str, layers: dict) -> str:
    """The leaf layer (module name) owning a tensor name."""
    best = ""
    for name in layers:
        if tensor_name.startswith(f"{name}.") and len(name) >= len(best):
            best = name
    return best
