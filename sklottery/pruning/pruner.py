"""`Pruner`: lottery-ticket pruning over any torch module, for your own loop.

The building block behind :class:`~sklottery.LotteryTicketClassifier`, and the
counterpart of the Keras pruner's ``calc_prune_mask``/``apply_pruning`` and of
the Julia library's ``prune!``/``rewind!``/``pruneandrewind!``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from .criteria import compute_scores, resolve_criterion
from .masks import ApplyMasks, apply_masks, load_values, snapshot
from .scope import make_plan, masks_from_scores
from .targets import find_prunable

__all__ = ["Pruner"]


class Pruner:
    """Iterative magnitude (or any criterion) pruning with rewinding.

    On construction the module's current parameters and buffers are recorded
    as the *rewind point* (its initialization, for a fresh module).

    Parameters
    ----------
    module : torch.nn.Module
        The network. Its prunable tensors are found by layer type (see
        :func:`~sklottery.pruning.find_prunable`).
    strategy : str or callable, default="large_final"
        The mask criterion; see :mod:`sklottery.pruning.criteria`.
    prune_rate : float, default=0.2
        Fraction of the *remaining* weights pruned by each :meth:`prune`.
    scope : {"layer", "global"} or list of (layers, rate), default="layer"
        Which tensors are ranked together; see :mod:`sklottery.pruning.scope`.
    output_rate_factor : float or None, default=0.5
        The output layer (the last prunable layer) is pruned at
        ``prune_rate * output_rate_factor``, as in Frankle & Carbin (2019).
        ``None`` or ``1.0`` treats it like every other layer.
    layer_rates : dict of str to float, optional
        Per-layer rates overriding ``prune_rate`` (layer or parameter names).
    exclude : list of str, optional
        Layers never pruned.
    masks : dict of str to bool tensor, optional
        Start from these masks (e.g. a saved ticket) instead of all-kept.
    random_state : int, optional
        Seed for random criteria.

    Attributes
    ----------
    targets : list of PrunableTensor
    masks : dict of str to bool tensor
        Current masks, True = kept, keyed like ``module.named_parameters()``.
    rewind_point : dict of str to tensor
        The values :meth:`rewind` restores.

    Examples
    --------
    >>> import torch
    >>> from sklottery import Pruner
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
    ...                           torch.nn.Linear(8, 2))
    >>> pruner = Pruner(net, prune_rate=0.5)
    >>> _ = pruner.prune_and_rewind()
    >>> {name: int(m.sum()) for name, m in pruner.masks.items()}
    {'0.weight': 16, '2.weight': 12}
    >>> round(pruner.sparsity(), 4)
    0.4167
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        strategy="large_final",
        prune_rate: float = 0.2,
        scope="layer",
        output_rate_factor: float | None = 0.5,
        layer_rates: dict | None = None,
        exclude=None,
        masks: dict | None = None,
        random_state: int | None = None,
    ):
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"module must be a torch.nn.Module; got {type(module).__name__}"
            )
        self.module = module
        self.targets = find_prunable(module)
        if not self.targets:
            raise ValueError(
                f"{type(module).__name__} has no prunable tensors: sklottery prunes "
                "the weights of Linear, Bilinear, Conv*, ConvTranspose*, RNN/LSTM/GRU, "
                "Embedding and MultiheadAttention layers"
            )
        self.criterion, forced_scope = resolve_criterion(strategy)
        if forced_scope is not None:
            if scope not in ("layer", forced_scope):
                raise ValueError(
                    f"strategy={strategy!r} implies scope={forced_scope!r}; "
                    f"it cannot be combined with scope={scope!r}"
                )
            scope = forced_scope
        self.plan = make_plan(
            self.targets,
            prune_rate=prune_rate,
            scope=scope,
            output_rate_factor=output_rate_factor,
            layer_rates=layer_rates,
            exclude=exclude,
        )
        params = dict(module.named_parameters())
        if masks is None:
            masks = {
                t.name: torch.ones(
                    t.shape, dtype=torch.bool, device=params[t.name].device
                )
                for t in self.targets
            }
        self.masks = self._checked_masks(masks, params)
        self.rewind_point = snapshot(module)
        self.generator = torch.Generator().manual_seed(
            int(np.random.SeedSequence(random_state).generate_state(1)[0])
        )

    def _checked_masks(self, masks, params):
        expected = {t.name: t.shape for t in self.targets}
        if set(masks) != set(expected):
            raise ValueError(
                f"masks must have exactly the keys {sorted(expected)}; "
                f"got {sorted(masks)}"
            )
        out = {}
        for name, m in masks.items():
            m = torch.as_tensor(m)
            if m.dtype != torch.bool or tuple(m.shape) != expected[name]:
                raise ValueError(
                    f"mask for {name!r} must be a bool tensor of shape "
                    f"{expected[name]}; got {m.dtype} {tuple(m.shape)}"
                )
            out[name] = m.to(params[name].device)
        return out

    # -- the three verbs -------------------------------------------------
    def compute_masks(self, reference: dict | None = None, **criterion_kwargs) -> dict:
        """New masks from the current weights, without changing anything.

        ``reference`` holds the ``w_init`` tensors given to the criterion
        (default: the rewind point). Extra keywords reach the criterion.
        """
        reference = self.rewind_point if reference is None else reference
        params = dict(self.module.named_parameters())
        names = list(self.masks)
        scores = compute_scores(
            self.criterion,
            {n: reference[n].detach() for n in names},
            {n: params[n].detach() for n in names},
            generator=self.generator,
            **criterion_kwargs,
        )
        return masks_from_scores(scores, self.masks, self.plan)

    def prune(self, reference: dict | None = None, **criterion_kwargs) -> dict:
        """Prune one step: update :attr:`masks` and zero the pruned weights."""
        self.masks = self.compute_masks(reference, **criterion_kwargs)
        self.apply()
        return self.masks

    def apply(self) -> None:
        """Zero every pruned weight in place."""
        apply_masks(self.module, self.masks)

    def rewind(self, values: dict | None = None) -> None:
        """Restore the rewind point (or ``values``), then apply the masks."""
        load_values(
            self.module, self.rewind_point if values is None else values, self.masks
        )

    def prune_and_rewind(self, **criterion_kwargs) -> dict:
        """:meth:`prune` then :meth:`rewind` -- one lottery-ticket round's cut."""
        self.prune(**criterion_kwargs)
        self.rewind()
        return self.masks

    def set_rewind_point(self, values: dict | None = None) -> None:
        """Make the module's current state (or ``values``) the rewind point."""
        self.rewind_point = snapshot(self.module) if values is None else values

    # -- reporting ---------------------------------------------------------
    def n_kept(self) -> dict[str, int]:
        return {n: int(m.sum()) for n, m in self.masks.items()}

    def sparsity(self) -> float:
        """Fraction of prunable weights that are pruned."""
        total = sum(m.numel() for m in self.masks.values())
        return 1.0 - sum(self.n_kept().values()) / total

    def layer_table(self) -> pd.DataFrame:
        """One row per prunable tensor: name, kind, shape, kept, total, sparsity."""
        return layer_table(self.targets, self.masks)

    def callback(self) -> ApplyMasks:
        """A skorch callback keeping this pruner's masks exact during training."""
        return ApplyMasks(self)


def layer_table(targets, masks) -> pd.DataFrame:
    rows = []
    for t in targets:
        kept = int(masks[t.name].sum())
        rows.append(
            {
                "name": t.name,
                "kind": t.kind,
                "shape": t.shape,
                "kept": kept,
                "total": t.numel,
                "sparsity": 1.0 - kept / t.numel,
            }
        )
    return pd.DataFrame(
        rows, columns=["name", "kind", "shape", "kept", "total", "sparsity"]
    )
