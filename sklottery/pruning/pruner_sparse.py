"""The sparse-training verbs of :class:`~sklottery.Pruner`:
:meth:`~sklottery.Pruner.begin_sparse_training` and
:meth:`~sklottery.Pruner.end_sparse_training`, as a mixin the Pruner inherits.

The swaps themselves are :mod:`sklottery.pruning.sparse_training`'s and
:mod:`sklottery.pruning.sparse_linear`'s; this keeps the Pruner's record of
them (:attr:`~sklottery.Pruner.training_layouts`, the densities at which
layers measured faster sparse) and refuses the verbs that need dense layers
while layers train sparse.
"""

from __future__ import annotations

from .shrink import to_shrunk_training
from .sparse_linear import sparse_training_layers, to_dense
from .sparse_training import to_sparse_training
from .units import unit_keep

__all__ = ["SparseTrainingVerbs"]


class SparseTrainingVerbs:
    """Mixin of :class:`~sklottery.Pruner`; needs ``module``, ``masks``,
    ``sparse_training``, ``training_layouts`` and ``_sparse_at``."""

    def begin_sparse_training(
        self, batch_size: int, *, measure: bool | None = None, measure_fn=None
    ) -> list[dict]:
        """Swap pruned ``nn.Linear`` layers for sparse-training twins, per
        :attr:`sparse_training`, before a round's optimizer is built
        (``measure``: time, by default only with ``"timed"``; ``"auto"``
        decides by the calibrated rule, deterministically).

        The swapped layers hold their surviving weights only (the optimizer
        built next sees those); :meth:`end_sparse_training` puts the dense
        layers back. Between the two, only training (and :meth:`apply`, for
        the layers left dense) may run: the other verbs raise. Returns (and
        keeps in :attr:`training_layouts`) the per-layer decisions of
        :func:`~sklottery.pruning.sparse_training.choose_training_layouts`.
        """
        self._check_dense("begin_sparse_training")
        if getattr(self, "graph", None) is not None:
            # structured: train physically smaller layers (False: masked)
            self.training_layouts = (
                [] if self.sparse_training is False else to_shrunk_training(
                    self.module, self.graph, unit_keep(self.graph, self.masks)
                )
            )
            return self.training_layouts
        # densities at which layers measured faster sparse, per batch size:
        # below them a later round trains sparse without timing again
        won = self._sparse_at.setdefault(batch_size, {})
        self.training_layouts = to_sparse_training(
            self.module,
            self.masks,
            mode=self.sparse_training,
            batch_size=batch_size,
            measure=measure,
            measure_fn=measure_fn,
            sparse_at=won,
        )
        for row in self.training_layouts:
            if row["reason"] == "measured" and row["layout"] == "sparse":
                won[row["param"]] = max(won.get(row["param"], 0.0), row["density"])
        return self.training_layouts

    def end_sparse_training(self) -> list[str]:
        """Put back the dense layers of :meth:`begin_sparse_training` (the
        same ``nn.Linear`` and ``weight`` objects, holding the trained
        survivors and exact zeros); returns the names of the layers put back."""
        return to_dense(self.module)

    def _swapped_weights(self) -> set[str]:
        """The weights of the layers training sparse (they hold no pruned
        weights)."""
        layers = tuple(f"{n}." for n in sparse_training_layers(self.module))
        return {n for n in self.masks if layers and n.startswith(layers)}

    def _check_dense(self, verb: str) -> None:
        swapped = sparse_training_layers(self.module)
        if swapped:
            raise RuntimeError(
                f"Pruner.{verb}: layers {swapped} are training sparse; call "
                "end_sparse_training() first"
            )
