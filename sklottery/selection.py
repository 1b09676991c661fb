"""Which round becomes the fitted model: the last, the best, or the ticket.

:class:`RoundSelector` watches the rounds as they finish and keeps the
weights of the round it would pick -- at most one copy at a time, replaced
when a better candidate comes, never one per round -- so choosing a round
costs one extra state dict of memory, not ``n_rounds + 1``. The same copy is
what a fit falls back to when the user interrupts a round (Ctrl-C): with
``select="last"`` it is the last completed round.
"""

from __future__ import annotations

import copy
import math

from .pruning.masks import load_values, snapshot

__all__ = ["SELECT_MODES", "RoundSelector"]

SELECT_MODES = ("last", "best", "ticket")


class RoundSelector:
    """Pick a round by its validation score as rounds complete.

    Parameters
    ----------
    select : {"last", "best", "ticket"}
        ``"last"``: the last completed round. ``"best"``: the round with the
        highest score (ties go to the sparser, later round). ``"ticket"``:
        the sparsest round whose score is at least the dense round's score
        minus ``tol`` -- the "winning ticket" of Frankle & Carbin (2019),
        which matches the dense network's accuracy with a fraction of its
        weights. Round 0 always qualifies.
    tol : float
        Allowed drop below the dense round's score, in the score's units.
    final_round : int
        The last round that will run; its state is the net's own at the end,
        so it is never copied.
    """

    def __init__(self, select: str, tol: float, final_round: int):
        self.select = select
        self.tol = tol
        self.final_round = final_round
        self.round = None
        self.score = None
        self.dense_score = None
        self._state = self._masks = self._history = self._reference = None

    def _qualifies(self, record) -> bool:
        score = record["score"]
        if self.select == "last" or self.round is None:
            return True
        if self.select == "best":
            if math.isnan(score):
                return False
            return math.isnan(self.score) or score >= self.score
        # ticket: rounds only get sparser, so the latest qualifying one wins
        return score >= self.dense_score - self.tol

    def update(self, record: dict, net, pruner) -> None:
        """Consider a completed round; ``net`` and ``pruner`` hold its state."""
        if record["round"] == 0:
            self.dense_score = record["score"]
        if not self._qualifies(record):
            return
        self.round, self.score = record["round"], record["score"]
        # drop the previous copy before making the next: one copy at most
        self._state = self._masks = self._history = self._reference = None
        # "last" keeps a copy too: if the user interrupts the next round, the
        # fit falls back to this one (the last completed round)
        if record["round"] != self.final_round:
            self._state = snapshot(net.module_)
            self._masks = {n: m.clone() for n, m in pruner.masks.items()}
            self._history = copy.deepcopy(net.history_)
            self._reference = _keep_reference(pruner)

    def restore(self, net, pruner) -> None:
        """Put the selected round's weights, masks and history back in place."""
        if self._state is None:
            return
        pruner.masks = self._masks
        load_values(net.module_, self._state, pruner.masks)
        pruner.reference = self._reference
        net.history_ = self._history
        self._state = self._masks = self._history = self._reference = None


def _keep_reference(pruner) -> dict | None:
    """A copy of the round's stored start (the criteria's ``w_init``), sharing
    the tensors that are the rewind point's own (they do not change)."""
    ref = pruner.stored_reference()
    if ref is None:
        return None
    point = pruner.rewind_point
    return {n: t if t is point.get(n) else t.detach().clone() for n, t in ref.items()}
