"""Which round becomes the fitted model: the last, the best, or the ticket.

:class:`RoundSelector` watches the rounds as they finish and keeps the
weights of the round it would pick -- at most one copy at a time, replaced
when a better candidate comes, never one per round -- so choosing a round
costs one extra copy of the weights, not ``n_rounds + 1``, and of a pruned
round's surviving weights only (plus its masks). The same copy is
what a fit falls back to when the user interrupts a round (Ctrl-C): with
``select="last"`` it is the last completed round.

A large copy is kept in an anonymous temporary file
(:func:`~sklottery.lottery._memory.spill`) rather than in the process's memory: it is
read back only if the fit falls back to it or selects it, and while the
next round trains it would sit on top of that round's peak (a dense copy
after round 0).
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

from ..pruning.masks import load_survivors, survivors
from ._memory import spill, unspill

__all__ = ["RoundSelector"]


class _Candidate(NamedTuple):
    """The kept round: its number, score and (unless it is the final round,
    whose state stays in the net) a copy of its state. Replaced as a whole, so
    an interrupt can never leave a half-updated candidate."""

    round: int
    score: float
    state: dict | None = None
    masks: dict | None = None
    history: object = None
    round_start: dict | None = None


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
        self.dense_score = None
        self._kept: _Candidate | None = None

    @property
    def round(self) -> int | None:
        """The selected round so far."""
        return None if self._kept is None else self._kept.round

    def _qualifies(self, record) -> bool:
        score = record.score
        if self.select == "last" or self._kept is None:
            return True
        if self.select == "best":
            if math.isnan(score):
                return False
            return math.isnan(self._kept.score) or score >= self._kept.score
        # ticket: rounds only get sparser, so the latest qualifying one wins
        return score >= self.dense_score - self.tol

    def update(self, record, net, pruner) -> None:
        """Consider a completed round; ``net`` and ``pruner`` hold its state."""
        if record.round == 0:
            self.dense_score = record.score
        if not self._qualifies(record):
            return
        if record.round == self.final_round:
            self._kept = _Candidate(record.round, record.score)
            return
        # drop the previous copy before making the next: one copy at most.
        # "last" keeps a copy too: if the user interrupts the next round, the
        # fit falls back to this one (the last completed round)
        previous, self._kept = self._kept, None
        del previous
        # the mask tensors themselves: a pruner replaces its masks, it never
        # changes them in place
        masks = dict(pruner.masks)
        self._kept = _Candidate(
            record.round,
            record.score,
            # the masked tensors as their survivors only: the copy shrinks
            # with the ticket
            spill(survivors(net.module_, masks)),
            masks,
            copy.deepcopy(net.history),
            _keep_round_start(pruner),
        )

    def restore(self, net, pruner) -> None:
        """Put the selected round's weights, masks and history back in place."""
        kept = self._kept
        if kept is None or kept.state is None:
            return
        pruner.masks = kept.masks
        load_survivors(net.module_, unspill(kept.state), pruner.masks)
        pruner.round_start = kept.round_start
        net.history = kept.history
        self._kept = _Candidate(kept.round, kept.score)


def _keep_round_start(pruner) -> dict | None:
    """A copy of the round's start (the strategy's ``w_init``) when it is not
    the masked rewind point, sharing the tensors that are the rewind point's
    own (they do not change)."""
    if pruner.round_start_is_rewind_point:
        return None
    point = pruner.rewind_point
    return {
        n: t if t is point.get(n) else t.detach().clone()
        for n, t in pruner.round_start.items()
    }
