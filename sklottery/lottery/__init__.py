"""The lottery of a fit: one preamble, one round, the loop, results and selection.

:func:`prepare` is the preamble of every fit; :func:`run_round` the only
way a round trains; :func:`run_lottery` the loop of rounds; the records and
results are built by :func:`make_record` and :func:`make_result`.
"""

from ..pruning.rng import RNG_LOCK, seeded
from ._dense import DenseRound, cached_dense_round, dense_round, module_code
from ._interrupt import deferred_interrupt
from ._loop import MASKS_CALLBACK, at_init_options, run_lottery
from ._memory import (
    SPILL_BYTES,
    TRIM_BYTES,
    Spilled,
    n_bytes,
    return_freed_memory,
    spill,
    unspill,
)
from ._prepare import (
    Prepared,
    build_net,
    check_params,
    draw_seed,
    prepare,
    pruner_options,
)
from ._progress import RoundProgress
from ._results import (
    LotteryResult,
    LotteryState,
    RoundRecord,
    make_record,
    make_result,
    records_frame,
)
from ._retrain import Retraining, evaluate, train_from
from ._round import OUTPUTS_CALLBACK, RoundOutcome, RoundPlan, run_round
from ._selection import RoundSelector

__all__ = [
    "MASKS_CALLBACK",
    "OUTPUTS_CALLBACK",
    "RNG_LOCK",
    "SPILL_BYTES",
    "TRIM_BYTES",
    "DenseRound",
    "LotteryResult",
    "LotteryState",
    "Prepared",
    "Retraining",
    "RoundOutcome",
    "RoundPlan",
    "RoundProgress",
    "RoundRecord",
    "RoundSelector",
    "Spilled",
    "at_init_options",
    "build_net",
    "cached_dense_round",
    "check_params",
    "deferred_interrupt",
    "dense_round",
    "draw_seed",
    "evaluate",
    "make_record",
    "make_result",
    "module_code",
    "n_bytes",
    "prepare",
    "pruner_options",
    "records_frame",
    "return_freed_memory",
    "run_lottery",
    "run_round",
    "seeded",
    "spill",
    "train_from",
    "unspill",
]
