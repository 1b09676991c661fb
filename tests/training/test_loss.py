"""The sample-weighted loss (sklottery.training._loss)."""

import pytest
import torch

from sklottery.training import SampleWeightedLoss


def test_integer_weights_count_a_sample_that_many_times():
    torch.manual_seed(0)
    logits, y = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    w = torch.tensor([1.0, 2.0, 0.0, 3.0, 1.0])
    repeated = w.long()
    expected = torch.nn.functional.cross_entropy(
        logits.repeat_interleave(repeated, dim=0), y.repeat_interleave(repeated)
    )
    loss = SampleWeightedLoss(torch.nn.CrossEntropyLoss())
    assert torch.allclose(loss(logits, (y, w)), expected)
    assert torch.equal(loss(logits, y), torch.nn.functional.cross_entropy(logits, y))
    total = SampleWeightedLoss(torch.nn.CrossEntropyLoss(reduction="sum"))
    assert torch.allclose(total(logits, (y, w)), expected * w.sum())
    assert loss(logits, (y, torch.zeros(5))) == 0  # a batch of zero weights


def test_weighted_regression_loss_averages_over_outputs():
    pred, y = torch.zeros(2, 2), torch.tensor([[1.0, 3.0], [2.0, 2.0]])
    loss = SampleWeightedLoss(torch.nn.MSELoss())
    # per-sample losses 5 and 4; weights 3 and 1
    assert loss(pred, (y, torch.tensor([3.0, 1.0]))) == pytest.approx(19 / 4)


def test_log_input_is_what_a_classifier_applies_before_nll():
    proba = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    y, w = torch.tensor([0, 1]), torch.ones(2)
    loss = SampleWeightedLoss(torch.nn.NLLLoss(), log_input=True)
    expected = torch.nn.functional.nll_loss(torch.log(proba), y)
    assert torch.allclose(loss(proba, (y, w)), expected)


def test_the_criterion_must_reduce_by_mean_or_sum():
    with pytest.raises(ValueError, match="reduction='mean' or 'sum'"):
        SampleWeightedLoss(torch.nn.MSELoss(reduction="none"))
    assert SampleWeightedLoss(torch.nn.MSELoss()).criterion.reduction == "mean"
