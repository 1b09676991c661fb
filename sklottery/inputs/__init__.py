"""Validation of ``X``, ``y`` and ``sample_weight``; writes nothing on an estimator.
"""

from ._validation import (
    InputInfo,
    as_info,
    check_X,
    check_X_y,
    check_forward,
    check_module_input,
    check_network,
    check_sample_weight,
    embedding_vocabulary,
    input_state,
    integer_input,
    ticket_input,
)

__all__ = [
    "InputInfo",
    "as_info",
    "check_X",
    "check_X_y",
    "check_forward",
    "check_module_input",
    "check_network",
    "check_sample_weight",
    "embedding_vocabulary",
    "input_state",
    "integer_input",
    "ticket_input",
]
