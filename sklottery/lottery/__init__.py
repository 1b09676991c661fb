"""The lottery of a fit: one preamble, one round, the loop, results and selection.
"""

from ._dense import (
    DenseRound,
    cached_dense_round,
    dense_round,
    module_code,
)
from ._loop import (
    LotteryResult,
    LotteryState,
    RoundRecord,
    run_lottery,
)
from ._memory import (
    SPILL_BYTES,
    Spilled,
    n_bytes,
    spill,
    unspill,
)
from ._progress import (
    RoundProgress,
)
from ._retrain import (
    Retraining,
    evaluate,
    prepare,
    train_from,
)
from ._selection import (
    RoundSelector,
)

__all__ = [
    "DenseRound",
    "LotteryResult",
    "LotteryState",
    "Retraining",
    "RoundProgress",
    "RoundRecord",
    "RoundSelector",
    "SPILL_BYTES",
    "Spilled",
    "cached_dense_round",
    "dense_round",
    "evaluate",
    "module_code",
    "n_bytes",
    "prepare",
    "run_lottery",
    "spill",
    "train_from",
    "unspill",
]
