"""Edge-popup: learn a supermask over frozen random weights (torch only).

Ramanujan et al. (2020), "What's Hidden in a Randomly Weighted Neural
Network?": every prunable weight gets a real-valued score; the forward pass
uses, in each layer, the weights whose ``|score|`` is among the ``k``
largest (``k`` = density x the layer's size) and zeros elsewhere; the
backward pass sends the gradient of the masked weight straight through the
top-k to the scores (:class:`TopKMask`). The weights themselves never
change: only which of them are used does (:func:`frozen_init` draws them,
and :meth:`EdgePopup.unwrap` zeroes the pruned ones, through
:mod:`sklottery.pruning.masks`).

* :func:`n_kept` and :func:`top_k_mask` -- the top-k mask;
* :class:`TopKMask` -- the autograd function (straight-through estimator);
* :func:`frozen_init` -- the random weights (``"kaiming_normal"`` or
  ``"signed_constant"``, Ramanujan et al. 2020; Zhou et al. 2019's signed
  constants) and :func:`score_init` -- the scores' Kaiming-uniform start;
* :class:`EdgePopup` -- a module wrapper that freezes a network, holds the
  scores and runs the masked forward pass; :meth:`EdgePopup.unwrap` gives
  the plain network back with its pruned weights exactly 0.0.

This mirrors the reference implementation (``GetSubnet``,
``SupermaskConv``/``SupermaskLinear`` of allenai/hidden-networks) for any
layer sklottery can prune, through :func:`torch.func.functional_call`
instead of replaced layer classes.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from .masks import apply_masks, load_values
from .scope import n_to_prune
from .targets import (
    PrunableTensor,
    find_prunable,
    require_prunable,
    unwrap_compiled,
)

__all__ = [
    "SCOPES",
    "WEIGHT_INITS",
    "EdgePopup",
    "TopKMask",
    "check_density",
    "fan_in",
    "frozen_init",
    "n_kept",
    "score_init",
    "top_k_mask",
]

#: How the frozen weights are drawn (see :func:`frozen_init`).
WEIGHT_INITS = ("signed_constant", "kaiming_normal")
#: ``"layer"``: top-k in each tensor (the paper); ``"global"``: over all of them.
SCOPES = ("layer", "global")


def n_kept(numel: int, density: float) -> int:
    """Weights a tensor of ``numel`` keeps at ``density``: ``numel -
    round((1 - density) * numel)`` (halves pruned), at least one -- the
    counting rule of every sklottery prune
    (:func:`~sklottery.pruning.scope.n_to_prune`).

    >>> n_kept(10, 0.5), n_kept(7, 0.5), n_kept(3, 0.01)
    (5, 3, 1)
    """
    density = check_density(density)
    return int(numel) - n_to_prune(int(numel), 1.0 - density)


def check_density(density) -> float:
    """``density`` as a float in (0, 1] (a bool is not a number)."""
    if isinstance(density, bool) or not isinstance(density, numbers.Real):
        raise TypeError(f"density must be a float in (0, 1]; got {density!r}")
    if not 0.0 < float(density) <= 1.0:
        raise ValueError(f"density must be in (0, 1]; got {density!r}")
    return float(density)


def top_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of the ``k`` largest entries of ``scores``, same shape.

    Exactly ``min(k, numel)`` entries are True; equal scores are broken by
    position (the earlier entry is kept), so the mask is deterministic.
    """
    flat = scores.detach().reshape(-1)
    n = flat.numel()
    if k >= n:
        return torch.ones(scores.shape, dtype=torch.bool, device=flat.device)
    if k <= 0:
        return torch.zeros(scores.shape, dtype=torch.bool, device=flat.device)
    # the k-th largest value by selection (linear time; a full sort costs
    # five times more on every training step), then the ties at it by position
    threshold = flat.kthvalue(n - k + 1).values
    mask = flat > threshold
    missing = k - int(torch.count_nonzero(mask))
    if missing > 0:
        mask[torch.nonzero(flat == threshold).reshape(-1)[:missing]] = True
    return mask.reshape(scores.shape)


class TopKMask(torch.autograd.Function):
    """``TopKMask.apply(scores, k)``: forward the 0/1 mask of the ``k``
    largest ``scores`` (in the scores' dtype); backward the incoming
    gradient unchanged (the straight-through estimator of edge-popup, the
    reference code's ``GetSubnet``)."""

    @staticmethod
    def forward(ctx, scores, k):
        """The 0/1 mask of the ``k`` largest ``scores``."""
        return top_k_mask(scores, int(k)).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad):
        """The gradient, straight through to the scores (none for ``k``)."""
        return grad, None


def fan_in(shape) -> int:
    """The fan-in of a weight of ``shape`` as torch's initializers count it
    (``shape[1] * prod(shape[2:])``; a 1-d tensor's own size)."""
    if len(shape) < 2:
        return int(math.prod(shape))
    return int(shape[1] * math.prod(shape[2:]))


@torch.no_grad()
def frozen_init(
    module: nn.Module,
    weight_init: str,
    *,
    density: float = 1.0,
    scale_fan: bool = False,
    generator: torch.Generator | None = None,
    targets: list[PrunableTensor] | None = None,
) -> None:
    """Draw the frozen weights of a supermask network in place.

    Each prunable weight gets ``std = sqrt(2 / fan)``, the Kaiming-normal
    standard deviation for ReLU with ``fan = fan_in`` (``density * fan_in``
    with ``scale_fan``: the fan the kept weights see, the paper's "scaled"
    variant). ``"kaiming_normal"``: ``N(0, std^2)``; ``"signed_constant"``:
    ``+-std`` with a random sign (Ramanujan et al.'s signed Kaiming
    constant; Zhou et al.'s signed constants). The biases of the prunable
    layers are set to 0.0 (the papers' networks have none); every other
    tensor keeps the module's own initialization.
    """
    if weight_init not in WEIGHT_INITS:
        raise ValueError(
            f"weight_init must be one of {list(WEIGHT_INITS)}; got {weight_init!r}"
        )
    density = check_density(density)
    params = dict(module.named_parameters())
    for t in targets if targets is not None else find_prunable(module):
        w = params[t.name]
        fan = fan_in(w.shape) * (density if scale_fan else 1.0)
        std = math.sqrt(2.0 / fan)
        draw = torch.randn(w.shape, generator=generator, dtype=w.dtype)
        if weight_init == "signed_constant":
            draw = torch.where(draw < 0, -1.0, 1.0).to(w.dtype)
        values = {t.name: draw * std}
        bias = f"{t.module_name}.bias" if t.module_name else "bias"
        if bias in params:
            values[bias] = torch.zeros_like(params[bias])
        load_values(module, values)


def score_init(shape, *, dtype=torch.float32, generator=None) -> torch.Tensor:
    """Scores of a weight of ``shape``: uniform in ``+-1/sqrt(fan_in)``, what
    the reference code's ``kaiming_uniform_(scores, a=sqrt(5))`` draws."""
    bound = 1.0 / math.sqrt(max(fan_in(shape), 1))
    return (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * bound


class EdgePopup(nn.Module):
    """A network whose prunable weights are frozen and masked by learned scores.

    Parameters
    ----------
    module : torch.nn.Module
        The network; every parameter is frozen (``requires_grad=False``)
        and never written while it is wrapped.
    density : float in (0, 1]
        Fraction of the weights kept (top-k of ``|score|``).
    scope : {"layer", "global"}, default="layer"
        ``"layer"`` keeps :func:`n_kept` weights of every tensor (the
        paper); ``"global"`` keeps the same total over all tensors, ranked
        together.
    generator : torch.Generator, optional
        Randomness of the scores (:func:`score_init`).

    Attributes
    ----------
    module : torch.nn.Module
    targets : list of PrunableTensor
        The masked tensors (found before freezing).
    scores : torch.nn.ParameterList
        One score tensor per target: the only trainable parameters.
    k : list of int
        Weights kept per target (``scope="layer"``), or the total kept
        (``scope="global"``, one entry).
    """

    def __init__(self, module: nn.Module, density: float, *, scope: str = "layer",
                 generator: torch.Generator | None = None):
        super().__init__()
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {list(SCOPES)}; got {scope!r}")
        self.module = module = unwrap_compiled(module)
        self.density = check_density(density)
        self.scope = scope
        self.targets = require_prunable(module)
        for p in module.parameters():
            p.requires_grad_(False)
        params = dict(module.named_parameters())
        self.scores = nn.ParameterList(
            nn.Parameter(
                score_init(t.shape, dtype=params[t.name].dtype, generator=generator)
                .to(params[t.name].device)
            )
            for t in self.targets
        )
        sizes = [t.numel for t in self.targets]
        self.k = (
            [n_kept(n, self.density) for n in sizes]
            if scope == "layer"
            else [n_kept(sum(sizes), self.density)]
        )

    @property
    def names(self) -> list[str]:
        """The masked tensors' names in ``module.named_parameters()``."""
        return [t.name for t in self.targets]

    def _soft_masks(self) -> list[torch.Tensor]:
        """The masks as 0/1 tensors that pass gradients to the scores."""
        if self.scope == "layer":
            return [TopKMask.apply(s.abs(), k) for s, k in zip(self.scores, self.k)]
        flat = torch.cat([s.abs().reshape(-1) for s in self.scores])
        joint = TopKMask.apply(flat, self.k[0])
        parts = joint.split([s.numel() for s in self.scores])
        return [part.reshape(s.shape) for part, s in zip(parts, self.scores)]

    def masks(self) -> dict[str, torch.Tensor]:
        """The current masks (True = kept), as the forward pass uses them."""
        with torch.no_grad():
            return {n: m.bool() for n, m in zip(self.names, self._soft_masks())}

    def forward(self, *args, **kwargs):
        params = dict(self.module.named_parameters())
        masked = {
            n: params[n] * m for n, m in zip(self.names, self._soft_masks())
        }
        return torch.func.functional_call(self.module, masked, args, kwargs)

    def unwrap(self) -> tuple[nn.Module, dict[str, torch.Tensor]]:
        """The plain network with its pruned weights set to exactly 0.0 and
        every parameter trainable again, and the masks."""
        masks = self.masks()
        apply_masks(self.module, masks)
        for p in self.module.parameters():
            p.requires_grad_(True)
        return self.module, masks
