"""What a lottery records: one :class:`RoundRecord` per round, the
:class:`LotteryResult` of a fit and the :class:`LotteryState` a warm start
resumes from -- each built in one place (:func:`make_record`,
:func:`make_result`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from skorch.history import History

from ..training import last_value, round_cost

__all__ = [
    "LotteryResult",
    "LotteryState",
    "RoundRecord",
    "make_record",
    "make_result",
    "records_frame",
    "unit_totals",
]


@dataclass
class RoundRecord:
    """One row of ``rounds_``.

    ``untrained_score`` is the score of the masked, rewound network before the
    round trains (the "supermask" score of Zhou et al. 2019; the dense
    initialization for round 0), NaN unless ``score_untrained=True``;
    ``ticket_epoch`` is the early-bird epoch of round 0 (NaN otherwise).
    ``train_macs``: multiply-adds of the round's training with the layouts
    used (:func:`~sklottery.pruning.sparse_training.train_macs`), summed
    over rounds in ``cumulative_macs``; ``sparse_layers``: those trained sparse.
    ``units_remaining`` and ``n_units``: the fraction and number of prunable
    units kept by a structured fit (``granularity="neuron"``; NaN otherwise).
    """

    round: int
    weights_remaining: float
    n_weights: int
    epochs: int
    train_loss: float
    valid_loss: float
    score: float
    score_on: str
    wall_time: float
    untrained_score: float = math.nan
    ticket_epoch: float = math.nan
    train_macs: float = math.nan
    cumulative_macs: float = math.nan
    sparse_layers: str = ""
    units_remaining: float = math.nan
    n_units: float = math.nan

    @classmethod
    def from_dict(cls, row: dict) -> RoundRecord:
        """A record from a ``rounds_`` row or a ticket file's round record
        (extra columns such as ``selected`` are ignored)."""
        return cls(**{f.name: row[f.name] for f in fields(cls) if f.name in row})


def unit_totals(pruner) -> dict:
    """The unit columns of a structured ``pruner``'s record (none for a
    pruner of weights, or no pruner)."""
    if pruner is None or not getattr(pruner, "structured", False):
        return {}
    counts = pruner.unit_counts().values()
    kept, total = sum(k for k, _ in counts), sum(n for _, n in counts)
    return {"n_units": kept, "units_remaining": kept / total}


def make_record(round_, masks, history, data, *, score, wall_time, layouts=(),
                previous=None, **extra) -> RoundRecord:
    """The record of round ``round_``: the weights ``masks`` keep (a dict of
    boolean tensors), the round's skorch ``history`` (a History or its list
    form), its ``score`` on ``data.eval_on``, its cost with ``layouts`` after
    ``previous`` (the last round's record), and ``extra`` columns (the unit
    columns: :func:`unit_totals`)."""
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.count_nonzero()) for m in masks.values())
    if not isinstance(history, History):
        history = History(history)
    epochs = len(history)
    return RoundRecord(
        round=round_,
        weights_remaining=kept / total,
        n_weights=kept,
        epochs=epochs,
        train_loss=last_value(history, "train_loss"),
        valid_loss=last_value(history, "valid_loss"),
        score=float(score),
        score_on=data.eval_on,
        wall_time=wall_time,
        **extra,
        **round_cost(data, list(layouts), epochs, previous),
    )


def records_frame(records, selected_round):
    """``rounds_``: one row per record, with the ``selected`` column."""
    import pandas as pd

    frame = pd.DataFrame.from_records([asdict(r) for r in records])
    if records:
        frame["selected"] = frame["round"] == selected_round
    return frame


@dataclass
class LotteryState:
    """Where a lottery stands after a fit: what a warm start resumes from.

    ``values`` are the module's tensors in the selected round, ``masks`` its
    masks, ``rewind_point`` what survivors rewind to, ``round_start`` the
    weights the selected round started from (None when that is the masked
    rewind point), ``history`` its skorch history and ``final_lrs`` the
    learning rates its training ended with.
    """

    records: list[RoundRecord]
    selected_round: int
    # the selected round's tensors
    values: dict
    masks: dict
    rewind_point: dict
    round_start: dict | None = None
    history: History | None = None
    final_lrs: list | None = None

    @property
    def current(self) -> RoundRecord:
        """The selected round's record."""
        return next(r for r in self.records if r.round == self.selected_round)


@dataclass
class LotteryResult:
    """What a lottery gives besides the net (which holds the selected round).

    ``interrupted`` is True when the user pressed Ctrl-C after round 0: the
    lottery stopped after the last completed round (``records[-1]``).
    """

    records: list[RoundRecord]
    selected_round: int
    masks: dict
    rewind_point: dict
    round_start: dict | None
    sparsity: float
    layers: object
    interrupted: bool = False


def _cpu(state):
    # CPU tensors so pickling works anywhere (no copy on the CPU)
    return None if state is None else {n: t.detach().cpu() for n, t in state.items()}


def make_result(records, selected_round, pruner, *, rewind_point=None,
                interrupted=False) -> LotteryResult:
    """The result of a lottery whose ``pruner`` holds the selected round's
    masks; ``rewind_point`` defaults to the pruner's."""
    start = None if pruner.round_start_is_rewind_point else pruner.round_start
    return LotteryResult(
        records=records,
        selected_round=selected_round,
        masks=_cpu(pruner.masks),
        rewind_point=_cpu(pruner.rewind_point if rewind_point is None
                          else rewind_point),
        round_start=_cpu(start),
        sparsity=pruner.sparsity(),
        layers=pruner.layer_table(),
        interrupted=bool(interrupted),
    )
