"""Pruning at initialization as a verb of :class:`~sklottery.Pruner`:
:meth:`~sklottery.Pruner.prune_at_init`, as a mixin the Pruner inherits.

The scores and their schedule are :mod:`sklottery.pruning.at_init`'s; the
counts are the Pruner's :attr:`~sklottery.Pruner.plan`, stretched by
:func:`~sklottery.pruning.plan.target_plan`.
"""

from __future__ import annotations

from .at_init import at_init_masks, check_at_init_strategy
from .plan import target_plan

__all__ = ["AtInitVerbs"]


class AtInitVerbs:
    """Mixin of :class:`~sklottery.Pruner`; needs ``module``, ``strategy``,
    ``plan``, ``masks``, ``generator``, ``_plan_rate``, :meth:`apply` and
    ``_check_dense``."""

    def prune_at_init(
        self,
        strategy=None,
        *,
        density: float | None = None,
        n_rounds: int | None = None,
        batches=None,
        loss_fn=None,
        iterations: int | None = None,
        input_shape=None,
        temperature: float = 200.0,
    ) -> dict:
        """Prune at initialization: masks from the current weights, before
        any training, then zero the pruned weights.

        The scores are those of :mod:`sklottery.pruning.at_init` (SNIP, GraSP,
        SynFlow, random, or a magnitude strategy evaluated on the current
        weights); the counts are :attr:`plan`'s, so ``scope``, ``layer_rates``,
        ``type_rates``, ``exclude`` and the output layer's rate apply as in
        iterative pruning. How much is pruned (each from :attr:`masks`):

        * neither ``density`` nor ``n_rounds``: one :meth:`prune` of
          :attr:`plan` (with ``schedule="oneshot"`` the whole amount of
          ``n_rounds`` iterative rounds, as the estimators' ``"at_init"``);
        * ``n_rounds``: what ``n_rounds`` iterative prunes of :attr:`plan`
          remove (:func:`~sklottery.pruning.scope.compound_plan`);
        * ``density``: the tensors pruned at the base rate keep ``density`` of
          their weights; the others keep their rate's ratio to it
          (:func:`~sklottery.pruning.scope.scaled_plan`).

        Parameters
        ----------
        strategy : str or callable, optional
            Default: the pruner's own ``strategy``. See
            :func:`~sklottery.pruning.at_init.at_init_strategies`.
        density : float in (0, 1], optional
        n_rounds : int >= 1, optional
        batches : iterable, optional
            A few training batches, needed by ``"snip"`` and ``"grasp"`` (the
            only data they use).
        loss_fn : callable or torch loss module, optional
            ``loss_fn(module, batch) -> scalar``, or a loss module applied as
            ``loss(module(X), y)``; needed by ``"snip"`` and ``"grasp"``.
        iterations : int >= 1, optional
            Prune steps (exponential schedule): 100 for ``"synflow"``, 1 else.
        input_shape : tuple of int, optional
            ``"synflow"``: one sample's shape (inferred for a first Linear).
        temperature : float > 0, default=200.0
            ``"grasp"``: the output is divided by it before the loss.

        Returns
        -------
        dict of str to bool tensor
            The new :attr:`masks`.
        """
        self._check_dense("prune_at_init")
        if getattr(self, "graph", None) is not None:
            raise ValueError(
                "prune_at_init ranks single weights (SNIP, GraSP, SynFlow); it "
                "cannot prune a granularity='neuron' pruner's units"
            )
        strategy = check_at_init_strategy(
            self.strategy if strategy is None else strategy
        )
        plan = target_plan(self.plan, self._plan_rate, density=density,
                           n_rounds=n_rounds)
        self.masks = at_init_masks(
            self.module,
            strategy,
            plan,
            self.masks,
            batches=batches,
            loss_fn=loss_fn,
            iterations=iterations,
            generator=self.generator,
            input_shape=input_shape,
            temperature=temperature,
        )
        self.apply()
        return self.masks
