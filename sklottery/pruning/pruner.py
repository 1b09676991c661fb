"""`Pruner`: lottery-ticket pruning over any torch module, for your own loop.

The building block behind :class:`~sklottery.LotteryTicketClassifier`, and the
counterpart of the Keras pruner's ``calc_prune_mask``/``apply_pruning`` and of
the Julia library's ``prune!``/``rewind!``/``pruneandrewind!``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .gradients import loss_gradients
from .masks import (
    MaskedPoint,
    apply_masks,
    load_values,
    set_rescale,
    snapshot,
)
from .pruner_at_init import AtInitVerbs
from .pruner_checks import (
    all_kept,
    check_keep_trained,
    check_masks,
    check_module,
    check_rescale,
    check_rewind_point,
    make_generator,
    resolve_score,
)
from .pruner_sparse import SparseTrainingVerbs
from .pruner_units import UnitVerbs, structured_setup
from .rewind import check_rewind, fresh_values, rewind_values
from .scope import (
    compound_rate,
    make_plan,
    masks_from_scores,
    resolve_rate,
)
from .sparse_training import check_sparse_training
from .stats import layer_stats, layer_table
from .strategies import compute_scores, needs_grad
from .targets import require_prunable
from .units import check_granularity

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Pruner", "layer_stats", "layer_table", "loss_gradients"]


class Pruner(AtInitVerbs, SparseTrainingVerbs, UnitVerbs):
    """Iterative pruning (any strategy, scope, schedule) with rewinding.

    On construction the module's current parameters and buffers are recorded
    as the *rewind point* (its initialization, for a fresh module) and as the
    *round start* (the ``w_init`` the pruning strategy compares against).

    Parameters
    ----------
    module : torch.nn.Module
        The network. Its prunable tensors are found by layer type (see
        :func:`~sklottery.pruning.find_prunable`).
    strategy : str or callable, default="large_final"
        The pruning strategy (Zhou et al.'s *mask criterion*): a name of
        :data:`~sklottery.pruning.strategies.STRATEGIES` (Zhou et al. 2019,
        Table 1; ``"snip"``, Lee et al. 2019), an alias
        (``"smallest_weights"``, ``"smallest_weights_global"``) or a callable
        ``f(w_init, w_final, **kwargs) -> scores`` (highest kept).
    prune_rate : float in (0, 1) or None, default=None
        Fraction of the *remaining* weights pruned by each :meth:`prune`;
        ``None`` means 0.2, or the rate derived from ``target_sparsity``
        (in (0, 1) too). To leave tensors unpruned, ``exclude`` them or give
        them a rate of 0 in ``layer_rates``/``type_rates``.
    target_sparsity : float or None, default=None
        Sparsity to reach after ``n_rounds`` prunes; the per-round rate is
        ``1 - (1 - target_sparsity) ** (1 / n_rounds)``. Exclusive with
        ``prune_rate`` (see :func:`~sklottery.pruning.scope.resolve_rate`).
    n_rounds : int or None, default=None
        The number of iterative prunes; needed by ``target_sparsity`` and by
        ``schedule="oneshot"``.
    schedule : {"iterative", "oneshot", "linear"}, default="iterative"
        ``"oneshot"`` makes one :meth:`prune` remove what ``n_rounds``
        iterative prunes would (Frankle & Carbin 2019 compare both).
        ``"linear"`` reads the rates as fractions of the *original* weights:
        prune ``k`` keeps ``n - round(k * rate * n)`` of a group's ``n``
        weights (Chen et al. 2020: 10% of the original per round), and
        ``target_sparsity`` gives the rate ``target_sparsity / n_rounds``.
    scope : {"layer", "global"} or list of (layers, rate), default="layer"
        Which tensors are ranked together; see :mod:`sklottery.pruning.scope`.
    output_rate_factor : float or None, default=0.5
        The output layer (the last prunable layer) is pruned at
        ``rate * output_rate_factor``, as in Frankle & Carbin (2019).
        ``None`` or ``1.0`` treats it like every other layer.
    layer_rates : dict of str to float, optional
        Per-layer rates overriding the base rate (layer or parameter names).
    exclude : str or list of str, optional
        Layers never pruned: names, glob patterns (``"*.embeddings.*"``) or
        ``"re:<regex>"`` (see :mod:`sklottery.pruning.patterns`).
    include : str or list of str, optional
        Only the prunable tensors these names or patterns match are pruned
        (``exclude`` then removes some of them), e.g. ``include="encoder.*"``.
    keep_trained : str or list of str, optional
        Parameters and buffers (names or patterns, ``"classifier.*"``) that
        :meth:`rewind` leaves at their trained values, whatever ``rewind``
        says (BERT-Tickets rewind the body only, not the head). Their pruned
        weights are still zeroed.
    type_rates : dict of str to float, optional
        Per-round rates by layer type (``"linear"``, ``"conv"``, ``"rnn"``,
        ``"embedding"``, ``"bilinear"``, ``"attention"``), e.g. ``{"conv":
        0.1, "linear": 0.2}``; the output layer gets its type's rate times
        ``output_rate_factor`` and ``layer_rates`` win over them (see
        :mod:`sklottery.pruning.kinds`).
    rewind : str or int, default="init"
        What :meth:`rewind` loads: ``"init"``, an int (late rewinding: the
        rewind point is moved by :meth:`set_rewind_point` or a
        :class:`RewindCheckpoint` callback), ``"reinit"``, ``"reshuffle"``,
        ``"signed_constant"``, ``"none"`` or ``"lr"``; see
        :mod:`sklottery.pruning.rewind`. ``"none"`` and ``"lr"`` keep the
        trained weights; the learning-rate handling is the training loop's.
    rescale : bool, default=False
        Scale each pruned layer's weight contribution by ``total / kept`` in
        the forward pass (see :func:`~sklottery.pruning.masks.set_rescale`).
    masks : dict of str to bool tensor, optional
        Start from these masks (e.g. a saved ticket) instead of all-kept.
    random_state : int, optional
        Seed for random criteria, reshuffling and re-initialization.
    sparse_training : {"auto", True, False}, default="auto"
        How :meth:`begin_sparse_training` trains pruned ``nn.Linear`` and
        ``nn.Bilinear`` layers:
        with their surviving weights only (``True``), dense with masks
        (``False``), or per layer whichever is faster (``"auto"``); see
        :mod:`sklottery.pruning.sparse_training`. With a structured
        ``granularity``, anything but ``False`` trains every round on a
        physically smaller copy of the layers (:mod:`sklottery.pruning.shrink`).
    granularity : {"weight", "neuron", "channel"}, default="weight"
        Single weights, or whole units (``"channel"`` is a synonym): output
        neurons, conv filters, RNN hidden units (all gates), attention heads,
        found by tracing the module (:mod:`sklottery.pruning.graph`). Rates,
        scopes and schedules then count units; ``strategy`` may also be
        ``"l1_norm"``, ``"l2_norm"`` or ``"bn_scale"``
        (:mod:`sklottery.pruning.units`).
    example_inputs : tensor, tuple or dict, optional
        One batch as the module takes it; needed to trace the module when
        ``granularity`` is not ``"weight"``.

    Attributes
    ----------
    targets : list of PrunableTensor
    plan : list of (names, rate)
        The groups each :meth:`prune` ranks, with their rates.
    rate : float
        The base per-round rate (``prune_rate`` or derived).
    masks : dict of str to bool tensor
        Current masks, True = kept, keyed like ``module.named_parameters()``.
    rewind_point : dict of str to tensor
        The initialization (or late-rewinding state) rewinds start from.
    round_start : dict of str to tensor
        ``w_init`` for the strategy: the prunable tensors' values at the
        start of the current round (updated by :meth:`rewind` and
        :meth:`set_rewind_point`).
    training_layouts : list of dict
        The last :meth:`begin_sparse_training`'s per-layer decisions.

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
        prune_rate: float | None = None,
        target_sparsity: float | None = None,
        n_rounds: int | None = None,
        schedule: str = "iterative",
        scope="layer",
        output_rate_factor: float | None = 0.5,
        layer_rates: dict | None = None,
        exclude=None,
        type_rates: dict | None = None,
        rewind="init",
        rescale: bool = False,
        masks: dict | None = None,
        random_state: int | None = None,
        sparse_training="auto",
        include=None,
        keep_trained=None,
        granularity="weight",
        example_inputs=None,
    ):
        compiled = check_module(module) is not module  # a torch.compile wrapper
        self.module = module = check_module(module)
        self.targets = require_prunable(module)
        self.strategy = strategy
        self.granularity = check_granularity(granularity)
        self.score_fn, scope = resolve_score(strategy, scope, self.granularity)
        self.rate = resolve_rate(prune_rate, target_sparsity, n_rounds, schedule)
        self.plan = make_plan(
            self.targets, prune_rate=self.rate, scope=scope, schedule=schedule,
            n_rounds=n_rounds, output_rate_factor=output_rate_factor,
            layer_rates=layer_rates, exclude=exclude, type_rates=type_rates,
            include=include,
        )
        self.schedule = schedule
        #: names of the tensors :meth:`rewind` keeps trained
        self.keep_trained = check_keep_trained(keep_trained, module)
        # the base rate of one prune of :attr:`plan` (prune_at_init's density)
        self._plan_rate = (
            compound_rate(self.rate, n_rounds) if schedule == "oneshot" else self.rate
        )
        #: the unit graph and the plan over its groups (structured only)
        self.graph, self.unit_plan = structured_setup(
            module, example_inputs, self.plan, strategy=strategy,
            rescale=rescale, granularity=self.granularity,
        )
        self.rewind_mode = check_rewind(rewind)
        self.rescale = check_rescale(
            rescale, self.plan, self.targets, compiled=compiled
        )
        self.sparse_training = check_sparse_training(sparse_training)
        self._sparse_at: dict[int, dict[str, float]] = {}
        self.training_layouts: list = []
        self._rescale_handles: dict = {}
        self._masks: dict = {}
        params = dict(module.named_parameters())
        if masks is None:
            masks = all_kept(self.targets, params)
        self.masks = check_masks(self.targets, masks, params)
        self.rewind_point = snapshot(module)
        self._round_start = None  # None: the masked rewind point
        self.generator = make_generator(random_state)

    @property
    def masks(self) -> dict:
        """Current masks, True = kept. Assigning new masks also updates the
        rescaling hooks (``rescale=True``); it does not zero weights (see
        :meth:`apply`)."""
        return self._masks

    @masks.setter
    def masks(self, masks: dict) -> None:
        self._masks = masks
        if self.rescale:
            self._update_rescale()

    def set_masks(self, masks: dict) -> None:
        """Replace the masks after checking their names, dtypes and shapes
        (moved to the parameters' devices); weights are not zeroed (see
        :meth:`apply`)."""
        self._check_dense("set_masks")
        params = dict(self.module.named_parameters())
        self.masks = check_masks(self.targets, masks, params)

    @property
    def needs_grad(self) -> bool:
        """True if the strategy needs ``grad=`` (e.g. ``"snip"``)."""
        return needs_grad(self.score_fn)

    # -- the verbs ---------------------------------------------------------
    def compute_masks(
        self, round_start: dict | None = None, *, generator=None, **strategy_kwargs
    ) -> dict:
        """New masks from the current weights, without changing anything.

        ``round_start`` holds the ``w_init`` tensors given to the strategy
        (default: :attr:`round_start`, the current round's start). Extra
        keywords (``grad=``) reach the strategy; ``generator`` replaces the
        pruner's own for random criteria.
        """
        self._check_dense("compute_masks")
        params = dict(self.module.named_parameters())
        names = list(self.masks)
        if round_start is None and self._round_start is None:
            # the masked rewind point, built tensor by tensor as the strategy
            # reads it: never a whole copy of the weights at once
            start = MaskedPoint(self.rewind_point, self.masks)
        else:
            given = self.round_start if round_start is None else round_start
            start = {n: given[n].detach() for n in names}
        generator = self.generator if generator is None else generator
        if self.graph is not None:
            return self._unit_masks_from(start, params, generator, **strategy_kwargs)
        scores = compute_scores(
            self.score_fn,
            start,
            {n: params[n].detach() for n in names},
            generator=generator,
            **strategy_kwargs,
        )
        return masks_from_scores(
            scores, self.masks, self.plan, of_original=self.schedule == "linear"
        )

    def prune(self, round_start: dict | None = None, **strategy_kwargs) -> dict:
        """Prune one step: update :attr:`masks` and zero the pruned weights."""
        self.masks = self.compute_masks(round_start, **strategy_kwargs)
        self.apply()
        return self.masks

    def apply(self) -> None:
        """Zero every pruned weight in place (layers training sparse, between
        :meth:`begin_sparse_training` and :meth:`end_sparse_training`, hold
        no pruned weights and are skipped)."""
        swapped = self._swapped_weights()
        apply_masks(
            self.module, {n: m for n, m in self.masks.items() if n not in swapped}
        )

    def rewind_values(self) -> dict:
        """The values :meth:`rewind` would load for :attr:`rewind_mode`."""
        mode = self.rewind_mode
        fresh = None
        if mode == "reinit":
            seed = int(torch.randint(2**31 - 1, (1,), generator=self.generator))
            fresh = fresh_values(self.module, seed)
        current = snapshot(self.module) if mode in ("none", "lr") else {}
        values = rewind_values(
            mode,
            point=self.rewind_point,
            current=current,
            masks=self.masks,
            generator=self.generator,
            fresh=fresh,
        )
        if self.keep_trained and not current:
            values.update(snapshot(self.module, self.keep_trained))
        return values

    def rewind(self, values: dict | None = None) -> None:
        """Load the rewind mode's values (or ``values``), then apply the masks.

        The loaded prunable tensors become :attr:`round_start`, the ``w_init``
        of the next :meth:`prune`.
        """
        self._check_dense("rewind")
        values = self.rewind_values() if values is None else values
        load_values(self.module, values, self.masks)
        if all(values.get(n) is self.rewind_point.get(n) for n in self.masks):
            # the round starts from the rewind point itself (masked): keep no
            # copy of it -- :attr:`round_start` rebuilds it when asked, which
            # saves one copy of the weights for the whole round
            self._round_start = None
        else:
            self._round_start = snapshot(self.module, list(self.masks))

    @property
    def round_start(self) -> dict:
        """``w_init`` of the next :meth:`prune`: the values the current round
        started from (prunable tensors only)."""
        if self._round_start is None:
            # exactly what load_values + apply_masks left in the module
            return dict(MaskedPoint(self.rewind_point, self.masks))
        return self._round_start

    @round_start.setter
    def round_start(self, values: dict | None) -> None:
        """Set ``w_init`` of the next prune; ``None`` = the masked rewind point."""
        self._round_start = values

    @property
    def round_start_is_rewind_point(self) -> bool:
        """True when the round started from the masked rewind point itself
        (then :attr:`round_start` is rebuilt on demand and nothing is stored).

        A caller that keeps a round to come back to later (round selection,
        ``warm_start``) keeps :attr:`round_start` only when this is False, and
        assigns it back, so the next prune compares against the weights that
        round really started from -- for ``reinit``, ``reshuffle``,
        ``signed_constant``, ``none`` and ``lr`` those are not the rewind point.
        """
        return self._round_start is None

    def prune_and_rewind(self, **strategy_kwargs) -> dict:
        """:meth:`prune` then :meth:`rewind` -- one lottery-ticket round's cut."""
        self.prune(**strategy_kwargs)
        self.rewind()
        return self.masks

    def set_rewind_point(self, values: dict | None = None) -> None:
        """Make the module's current state (or ``values``) the rewind point.

        It becomes the :attr:`round_start` too: late rewinding (Frankle et al.
        2020) treats the state after epoch k as the ticket's initialization.
        ``values`` are checked first: the module's parameter and buffer names
        and shapes, every prunable tensor among them.
        """
        self._check_dense("set_rewind_point")
        if values is None:
            self.rewind_point = snapshot(self.module)
        else:
            self.rewind_point = check_rewind_point(
                values, self.module, list(self.masks)
            )
        self._round_start = None

    @torch.no_grad()
    def _update_rescale(self) -> None:
        self._rescale_handles = set_rescale(
            self.module, self.targets, self.masks, self._rescale_handles
        )

    def remove_rescaling(self) -> None:
        """Remove this pruner's rescaling hooks from the module (a pruner used
        for one retraining or evaluation only)."""
        for handle in self._rescale_handles.values():
            handle.remove()
        self._rescale_handles = {}

    def gradients(self, loss_fn, batches) -> dict[str, torch.Tensor]:
        """Mean gradient of a loss w.r.t. each prunable tensor, for ``"snip"``.

        ``loss_fn(module, batch)`` returns a scalar loss; it is evaluated on
        each of ``batches`` with the module in eval mode (so normalization
        statistics are not updated). Parameters' ``.grad`` are untouched.
        """
        return loss_gradients(self.module, list(self.masks), loss_fn, batches)

    # -- reporting ---------------------------------------------------------
    def n_kept(self) -> dict[str, int]:
        return {n: int(torch.count_nonzero(m)) for n, m in self.masks.items()}

    def sparsity(self) -> float:
        """Fraction of prunable weights that are pruned."""
        total = sum(m.numel() for m in self.masks.values())
        return 1.0 - sum(self.n_kept().values()) / total

    def layer_stats(self) -> list[dict]:
        """One dict per prunable tensor: name, kind, shape, kept, total,
        sparsity (:func:`~sklottery.pruning.stats.layer_stats`; torch only)."""
        return layer_stats(self.targets, self.masks, self._tensor_units())

    def layer_table(self) -> pd.DataFrame:
        """:meth:`layer_stats` as a pandas DataFrame, for display (pandas is
        imported when this is called: :func:`~sklottery.pruning.stats.layer_table`)."""
        return layer_table(self.targets, self.masks, self._tensor_units())
