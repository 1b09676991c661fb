"""The sample-weighted loss: a net's own criterion with each sample weighted."""

from __future__ import annotations

import torch

from ._finite import takes_log_of_output

__all__ = ["SampleWeightedLoss", "weighted_criterion"]


class SampleWeightedLoss(torch.nn.Module):
    """The net's criterion with each sample's loss weighted.

    Targets ``(y, w)`` (training batches of a
    :class:`~sklottery.training.WeightedDataset`) give the weighted mean
    ``sum_i(w_i * l_i) / sum_i(w_i)`` over the batch, ``l_i`` the criterion's
    unreduced loss of sample ``i`` (averaged over its outputs) -- the
    convention of torch's class weights: an integer weight counts a sample
    that many times, a zero weight removes it (a batch of zero weights has
    loss 0). ``reduction="sum"`` gives ``sum_i(w_i * l_i)``. Plain targets
    give the criterion's own loss. ``log_input`` applies what
    ``NeuralNetClassifier.get_loss`` applies before an ``NLLLoss``.
    """

    def __init__(self, criterion, log_input=False):
        super().__init__()
        if getattr(criterion, "reduction", None) not in ("mean", "sum"):
            raise ValueError(
                "sample_weight needs the net's criterion to be a torch loss with "
                "reduction='mean' or 'sum' (it weights each sample's unreduced "
                f"loss); got {type(criterion).__name__}"
            )
        self.criterion = criterion
        self.log_input = log_input

    def forward(self, y_pred, y_true):
        weights = None
        if isinstance(y_true, (tuple, list)):
            y_true, weights = y_true
        if self.log_input:
            y_pred = torch.log(y_pred + torch.finfo(y_pred.dtype).eps)
        if weights is None:
            return self.criterion(y_pred, y_true)
        reduction = self.criterion.reduction
        self.criterion.reduction = "none"
        try:
            loss = self.criterion(y_pred, y_true)
        finally:
            self.criterion.reduction = reduction
        loss = loss.reshape(len(weights), -1).mean(dim=1)
        weights = weights.to(device=loss.device, dtype=loss.dtype)
        total = (loss * weights).sum()
        if reduction == "sum":
            return total
        return total / weights.sum().clamp(min=torch.finfo(loss.dtype).tiny)


def weighted_criterion(net) -> SampleWeightedLoss:
    """The net's initialized criterion as a :class:`SampleWeightedLoss`
    (a classifier's ``NLLLoss`` gets the log its ``get_loss`` applies)."""
    return SampleWeightedLoss(net.criterion_, log_input=takes_log_of_output(net))
