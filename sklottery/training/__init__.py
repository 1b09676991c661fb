"""Training with skorch: every call into skorch, wrapped once; data split,
scores, sample-weighted loss, batch loading and the mask callbacks.

The uses of skorch's private API, each with its reason, are listed in
:mod:`sklottery.training._skorch`.
"""

from ._callbacks import (
    ApplyMasks,
    EarlyBird,
    RewindCheckpoint,
    StopRound,
    parameter_state,
)
from ._cost import forward_macs_of, round_cost, training_batch_size
from ._dict import DictRows, batch_to, call_module, dict_as_kwargs
from ._finite import FiniteLoss
from ._gradients import gradient_function, loss_batches
from ._loader import (
    SUPPORTED_OPTIONS,
    SparseRows,
    TensorLoader,
    WeightedDataset,
    as_rows,
    take_rows,
)
from ._loss import SampleWeightedLoss
from ._net import (
    check_batches,
    check_device,
    check_fit,
    check_training_options,
    initialize_lazy,
    initialize_net,
)
from ._round import (
    last_value,
    rebuild_optimizer,
    release_optimizer,
    round_checkpoints,
    train_round,
)
from ._scores import FROM_PREDICTIONS, ValidationOutputs, accuracy, r2
from ._skorch import (
    accelerator_of,
    clone_net,
    deliberate_stop,
    install_round_callbacks,
    predict_nonlinearity,
    prepare_accelerated,
)
from ._split import FixedValidation, RoundData, seed_train_split, split_data

__all__ = [
    "FROM_PREDICTIONS",
    "SUPPORTED_OPTIONS",
    "ApplyMasks",
    "DictRows",
    "EarlyBird",
    "FiniteLoss",
    "FixedValidation",
    "RewindCheckpoint",
    "RoundData",
    "SampleWeightedLoss",
    "SparseRows",
    "StopRound",
    "TensorLoader",
    "ValidationOutputs",
    "WeightedDataset",
    "accelerator_of",
    "accuracy",
    "as_rows",
    "batch_to",
    "check_batches",
    "check_device",
    "check_fit",
    "call_module",
    "check_training_options",
    "clone_net",
    "deliberate_stop",
    "dict_as_kwargs",
    "forward_macs_of",
    "gradient_function",
    "initialize_lazy",
    "initialize_net",
    "install_round_callbacks",
    "last_value",
    "loss_batches",
    "parameter_state",
    "predict_nonlinearity",
    "prepare_accelerated",
    "r2",
    "rebuild_optimizer",
    "release_optimizer",
    "round_checkpoints",
    "round_cost",
    "seed_train_split",
    "split_data",
    "take_rows",
    "train_round",
    "training_batch_size",
]
