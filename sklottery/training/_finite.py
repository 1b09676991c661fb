"""No round trains on from a diverged net: a NaN or infinite training loss
is an error, naming the round, the epoch and the likely cause.

:func:`~sklottery.training.train_round` adds :class:`FiniteLoss` to every
round it trains (round 0, rounds 1..n, the supermask, retraining, the
stability analysis' copies): a net whose loss went NaN keeps "training" and
ends with NaN weights, a chance accuracy and NaN or negative
``predict_proba`` -- a wrong result, not a warning's worth. The one cause
that shows before the loss does is checked on a round's first batch: a
``NeuralNetClassifier`` with an ``NLLLoss`` takes the log of the module's
output (skorch's ``get_loss``), so the output must be probabilities; a
module returning logits (skorch's default criterion left on a linear output
layer) gives log of negatives, NaN.
"""

from __future__ import annotations

import math

import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback

__all__ = ["FINITE_CALLBACK", "FiniteLoss", "takes_log_of_output"]

#: Name of the round's callback checking the training loss.
FINITE_CALLBACK = "sklottery_finite_loss"

# a softmax output may exceed 1 by a rounding error
_ABOVE_ONE = 1e-4


def takes_log_of_output(net) -> bool:
    """True if the net's loss is ``NLLLoss`` of the log of the module's output
    (``NeuralNetClassifier.get_loss``), which must then be probabilities."""
    return isinstance(net, NeuralNetClassifier) and isinstance(
        getattr(net, "criterion_", None), torch.nn.NLLLoss
    )


def _where(round_, epoch, batch) -> str:
    which = (
        f"round {round_}" if round_ is not None
        else "a training outside the lottery's rounds (retraining, stability "
        "analysis)"
    )
    return f"{which}, epoch {epoch}, batch {batch}"


class FiniteLoss(Callback):
    """skorch callback raising ``ValueError`` at the first training
    batch whose loss is NaN or infinite, naming ``round_`` (None: a training
    outside the lottery's numbering), the epoch and the batch.

    With ``check_probabilities`` (a classifier's ``NLLLoss``, see
    :func:`takes_log_of_output`) the module's output on the round's first
    training batch must lie in [0, 1]; otherwise it raises ``ValueError``
    (the module returns logits or log-probabilities).
    """

    def __init__(self, round_=None, check_probabilities=False):
        self.round_ = round_
        self.check_probabilities = check_probabilities

    def initialize(self):
        self.outputs_checked_ = not self.check_probabilities
        return self

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if not training:
            return
        batches = net.history[-1]["batches"]
        where = _where(self.round_, len(net.history), len(batches))
        if not self.outputs_checked_:
            self.outputs_checked_ = True
            _check_probabilities(y_pred, where)
        loss = batches[-1].get("train_loss")
        if loss is not None and not math.isfinite(loss):
            raise ValueError(
                f"the training loss is {loss} in {where} (NaN or inf: training "
                "diverged), and the net would give a wrong result. Likely "
                "causes: a learning rate too "
                f"high for this net (lr={_lr(net)}); a criterion that does not "
                "fit the module's output (a NeuralNetClassifier with skorch's "
                "default NLLLoss needs probabilities: on logits use "
                "criterion=torch.nn.CrossEntropyLoss); NaN or inf in X or y"
            )


def _lr(net) -> str:
    """The learning rate(s) the round's optimizer trains at."""
    lrs = sorted({float(g["lr"]) for g in net.optimizer_.param_groups})
    return ", ".join(f"{lr:g}" for lr in lrs)


def _check_probabilities(y_pred, where) -> None:
    if not isinstance(y_pred, torch.Tensor) or not y_pred.is_floating_point():
        return
    with torch.no_grad():
        low, high = float(y_pred.min()), float(y_pred.max())
    if low < 0 or high > 1 + _ABOVE_ONE:
        raise ValueError(
            "the net is a NeuralNetClassifier with criterion NLLLoss (skorch's "
            "default), which takes the log of the module's output, but the "
            f"module's output is not probabilities (values from {low:.4g} to "
            f"{high:.4g} in {where}): the log of a negative is NaN. A module "
            "returning logits needs criterion=torch.nn.CrossEntropyLoss (or "
            "end the module with a Softmax)"
        )
