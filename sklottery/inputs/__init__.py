"""Validation of ``X``, ``y`` and ``sample_weight``; writes nothing on an estimator.

:func:`check_X`/:func:`check_X_y` take every input form the estimators
accept and return what the network receives with an :class:`InputInfo`;
in ``fit`` what is learnt from ``X`` comes back in the ``learnt`` dict
(:data:`LEARNT_FROM_X`), for the estimator to set once its fit succeeds.
:func:`check_network` checks the network's side before training.
"""

from ._dict import check_dict, is_dict_input, sample_input
from ._ids import ID_LAYERS, first_layer, integer_input, takes_ids
from ._info import (
    FIELD_DTYPES,
    INPUT_KINDS,
    InputInfo,
    as_info,
    fitted_info,
    input_state,
    kind_of,
    ticket_input,
)
from ._network import (
    check_forward,
    check_module_input,
    check_network,
    embedding_vocabulary,
)
from ._validation import (
    LEARNT_FROM_X,
    check_no_missing_targets,
    check_sample_weight,
    check_X,
    check_X_y,
)

__all__ = [
    "FIELD_DTYPES",
    "ID_LAYERS",
    "INPUT_KINDS",
    "LEARNT_FROM_X",
    "InputInfo",
    "as_info",
    "check_X",
    "check_X_y",
    "check_dict",
    "check_forward",
    "check_module_input",
    "check_no_missing_targets",
    "check_network",
    "check_sample_weight",
    "embedding_vocabulary",
    "first_layer",
    "fitted_info",
    "input_state",
    "integer_input",
    "is_dict_input",
    "kind_of",
    "sample_input",
    "takes_ids",
    "ticket_input",
]
