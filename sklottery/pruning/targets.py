"""Which tensors of a module are prunable, found by what the layers are.

Layers are recognised with ``isinstance`` against torch's layer families, so
subclasses of a supported layer are found too (the Keras pruner matched class
names and missed them). Biases and normalization parameters are never
prunable.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["PrunableTensor", "find_prunable"]

#: Layer families whose tensors are pruned by default. Values are the kind
#: reported in tables.
_WEIGHT_LAYERS: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.Linear, "linear"),
    (nn.Bilinear, "bilinear"),
    (nn.modules.conv._ConvNd, "conv"),
    (nn.Embedding, "embedding"),
    (nn.EmbeddingBag, "embedding"),
)


@dataclass(frozen=True)
class PrunableTensor:
    """A prunable parameter: its full name, owning module name and layer kind."""

    name: str
    module_name: str
    kind: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


def _layer_tensors(module: nn.Module) -> list[tuple[str, str]]:
    """(local parameter name, kind) pairs of one layer, without recursion."""
    for cls, kind in _WEIGHT_LAYERS:
        if isinstance(module, cls):
            return [("weight", kind)]
    if isinstance(module, nn.RNNBase):
        return [
            (name, "rnn")
            for name, _ in module.named_parameters(recurse=False)
            if name.startswith(("weight_ih_l", "weight_hh_l"))
        ]
    if isinstance(module, nn.MultiheadAttention):
        # ``out_proj`` is a Linear subclass and is found as its own layer.
        return [
            (name, "attention")
            for name in (
                "in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"
            )
            if getattr(module, name, None) is not None
        ]
    return []


def find_prunable(module: nn.Module) -> list[PrunableTensor]:
    """List the prunable tensors of ``module`` in registration order.

    The last entry is the output layer (the last prunable layer registered).
    Parameters shared between layers are listed once.
    """
    found: list[PrunableTensor] = []
    seen: set[int] = set()
    for module_name, sub in module.named_modules():
        for local, kind in _layer_tensors(sub):
            param = getattr(sub, local)
            if param is None or not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            full = f"{module_name}.{local}" if module_name else local
            found.append(PrunableTensor(full, module_name, kind, tuple(param.shape)))
    return found
