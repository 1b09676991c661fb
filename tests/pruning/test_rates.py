"""One rule for rates: base rates in (0, 1), a tensor's or a group's in [0, 1)."""

import pytest
from torch import nn

from sklottery import Pruner
from sklottery.pruning.rates import check_prune_rate, check_rate


def _net():
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))


@pytest.mark.parametrize("rate", [0, 0.0, 1.0, -0.1])
def test_the_base_rate_is_in_the_open_unit_interval(rate):
    with pytest.raises(ValueError, match=r"prune_rate must be in \(0, 1\)"):
        Pruner(_net(), prune_rate=rate)
    with pytest.raises(ValueError, match=r"target_sparsity must be in \(0, 1\)"):
        Pruner(_net(), target_sparsity=rate, n_rounds=2)


def test_rate_errors_name_the_parameter():
    with pytest.raises(TypeError, match=r"prune_rate must be a float in \(0, 1\)"):
        Pruner(_net(), prune_rate="0.2")
    with pytest.raises(ValueError, match=r"my_rate must be in \[0, 1\)"):
        check_rate(1.0, "my_rate")
    assert check_prune_rate(0.25) == 0.25


def test_a_tensor_rate_of_zero_leaves_it_unpruned():
    pruner = Pruner(_net(), prune_rate=0.5, layer_rates={"0": 0.0},
                    type_rates={"linear": 0.5})
    pruner.prune()
    assert pruner.n_kept() == {"0.weight": 24, "2.weight": 9}
    assert check_rate(0, "layer_rates['0']") == 0.0


# -- schedule="linear": a fraction of the original weights per prune -----------------
def test_of_original_counts_are_exact_per_prune():
    from sklottery.pruning.rates import kept_of_original, n_to_prune_of_original

    # 10% of 235 = 23.5 per round: round k keeps 235 - round(23.5 k), halves up
    expected = [235, 211, 188, 164, 141, 117, 94, 70, 47, 23, 1]
    assert [kept_of_original(235, 0.1, k) for k in range(11)] == expected
    alive, seen = 235, [235]
    for _ in range(10):
        alive -= n_to_prune_of_original(alive, 235, 0.1)
        seen.append(alive)
    assert seen == expected
    # from any count on the way (a resumed fit), the next count of the schedule
    assert n_to_prune_of_original(200, 235, 0.1) == 12  # down to 188
    assert n_to_prune_of_original(1, 235, 0.1) == 0
    assert n_to_prune_of_original(235, 235, 0.0) == 0


def test_linear_target_sparsity_is_spread_evenly():
    from sklottery.pruning.rates import resolve_rate

    assert resolve_rate(None, 0.9, 9, "linear") == pytest.approx(0.1)
    assert resolve_rate(None, 0.36, 2) == pytest.approx(0.2)
