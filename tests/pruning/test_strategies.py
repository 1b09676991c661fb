"""Each pruning strategy on hand-made tensors gives exactly the expected mask."""

import pytest
import torch

from sklottery.pruning import STRATEGIES, compute_scores, masks_from_scores
from sklottery.pruning.strategies import needs_grad, resolve_strategy

W_INIT = torch.tensor([0.5, -0.1, 0.3, -0.4, 0.2, -0.6])
W_FINAL = torch.tensor([0.2, -0.7, -0.3, -0.05, 0.9, 0.6])


def mask_for(strategy, n_prune, w_init=W_INIT, w_final=W_FINAL, **kw):
    score_fn, _ = resolve_strategy(strategy)
    scores = compute_scores(score_fn, {"w": w_init}, {"w": w_final}, **kw)
    ones = {"w": torch.ones_like(w_final, dtype=torch.bool)}
    rate = n_prune / w_final.numel()
    return masks_from_scores(scores, ones, [(["w"], rate)])["w"].tolist()


# Kept (True) after pruning 3 of 6 weights.
EXPECTED = {
    # |w_f| = .2 .7 .3 .05 .9 .6 -> keep .7 .9 .6
    "large_final": [False, True, False, False, True, True],
    "small_final": [True, False, True, True, False, False],
    # |w_i| = .5 .1 .3 .4 .2 .6 -> keep .5 .4 .6
    "large_init": [True, False, False, True, False, True],
    "small_init": [False, True, True, False, True, False],
    # |w_f| - |w_i| = -.3 .6 0 -.35 .7 0 -> keep .6 .7 and the later 0 (index 5)
    "magnitude_increase": [False, True, False, False, True, True],
    # |w_f - w_i| = .3 .6 .6 .35 .7 1.2 -> keep .7 1.2 and one .6; the earlier
    # .6 (index 1) is pruned first on the tie
    "movement": [False, False, True, False, True, True],
    # sign(w_i) w_f = .2 .7 -.3 .05 .9 -.6 -> keep .7 .9 .2
    "large_final_same_sign": [True, True, False, False, True, False],
    # -sign(w_i) w_f = -.2 -.7 .3 -.05 -.9 .6 -> keep .3 .6 -.05
    "large_final_diff_sign": [False, False, True, True, False, True],
}


@pytest.mark.parametrize("strategy", sorted(EXPECTED))
def test_strategy_exact_mask(strategy):
    assert mask_for(strategy, 3) == EXPECTED[strategy]


def test_large_init_large_final_uses_one_scaled_threshold():
    w_i = torch.tensor([1.0, 1.0, 0.1, 0.1])
    w_f = torch.tensor([2.0, 0.2, 2.0, 0.2])
    # alpha = mean|w_i| / mean|w_f| = 0.55 / 1.1 = 0.5
    # min(alpha|w_f|, |w_i|) = 1.0 0.1 0.1 0.1 -> only index 0 is large in both
    expected = [True, False, False, False]
    assert mask_for("large_init_large_final", 3, w_i, w_f) == expected
    # -max(alpha|w_f|, |w_i|) = -1 -1 -1 -0.1 -> index 3 is small in both
    expected = [False, False, False, True]
    assert mask_for("small_init_small_final", 3, w_i, w_f) == expected


def test_ties_are_broken_by_position():
    w = torch.ones(5)
    # all scores equal: the first weights are pruned first
    assert mask_for("large_final", 2, w, w) == [False, False, True, True, True]


def test_random_is_reproducible_and_uses_generator():
    w = torch.arange(1.0, 101.0)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = mask_for("random", 50, w, w, generator=g1)
    b = mask_for("random", 50, w, w, generator=g2)
    assert a == b and sum(a) == 50
    assert a != mask_for("large_final", 50, w, w)


def test_snip_is_abs_weight_times_grad():
    grad = torch.tensor([1.0, 0.1, -2.0, 10.0, 0.0, -1.0])
    # |w_f * g| = .2 .07 .6 .5 0 .6 -> keep .6 (2) .5 (3) .6 (5)
    assert mask_for("snip", 3, grad={"w": grad}) == [
        False, False, True, True, False, True
    ]
    assert needs_grad(STRATEGIES["snip"]) and not needs_grad(STRATEGIES["large_final"])
    with pytest.raises(ValueError, match="needs gradients"):
        mask_for("snip", 3)


def test_user_callable_with_two_arguments():
    # keep the weights closest to 0.3 after training
    def near(w_i, w_f):
        return -(w_f - 0.3).abs()

    assert mask_for(near, 3) == [True, False, False, True, False, True]


def test_aliases_and_unknown_names():
    assert resolve_strategy("smallest_weights") == (STRATEGIES["large_final"], None)
    assert resolve_strategy("smallest_weights_global") == (
        STRATEGIES["large_final"], "global"
    )
    with pytest.raises(ValueError, match="valid strategies are.*large_final_same_sign"):
        resolve_strategy("biggest")


def test_already_pruned_weights_are_not_ranked_again():
    scores = {"w": torch.tensor([5.0, 1.0, 2.0, 3.0])}
    masks = {"w": torch.tensor([False, True, True, True])}
    # 3 alive, rate 1/3 -> one more pruned: the lowest alive score (index 1)
    out = masks_from_scores(scores, masks, [(["w"], 1 / 3)])["w"].tolist()
    assert out == [False, False, True, True]


def test_every_builtin_is_documented_and_returns_shape():
    for name, fn in STRATEGIES.items():
        assert fn.__doc__ and ("Zhou" in fn.__doc__ or "Frankle" in fn.__doc__
                               or "Lee" in fn.__doc__), name
        kw = {"grad": torch.ones(2, 3)} if name == "snip" else {}
        assert fn(torch.randn(2, 3), torch.randn(2, 3), **kw).shape == (2, 3)


def test_scores_and_masks_are_pure():
    torch.manual_seed(0)
    w_init = {"a": torch.randn(4, 5)}
    w_final = {"a": torch.randn(4, 5)}
    before = (w_init["a"].clone(), w_final["a"].clone())
    score_fn, _ = resolve_strategy("large_final")
    scores = compute_scores(score_fn, w_init, w_final)
    masks = {"a": torch.ones(4, 5, dtype=torch.bool)}
    new = masks_from_scores(scores, masks, [(["a"], 0.5)])
    assert torch.equal(w_init["a"], before[0]) and torch.equal(w_final["a"], before[1])
    assert bool(masks["a"].all())  # the input masks are not modified
    assert int(new["a"].sum()) == 10


def test_unknown_strategy_lists_the_valid_ones():
    match = r"valid strategies are \['large_final', .*'movement', 'random'"
    with pytest.raises(ValueError, match=match):
        resolve_strategy("biggest")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda w: w.to(torch.complex64), "complex64"),
        (lambda w: (w * 100).to(torch.int64), "int64"),
        (lambda w: w > 0, "bool"),
        (lambda w: torch.full_like(w, float("inf")), "non-finite"),
        (lambda w: torch.full_like(w, float("nan")), "non-finite"),
    ],
    ids=["complex", "int", "bool", "inf", "nan"],
)
def test_scores_that_are_not_real_finite_floats(make, match):
    # never silently made real or ranked as they come (issue 19)
    def mine(w_init, w_final):
        return make(w_final)

    with pytest.raises(ValueError, match=rf"strategy mine .*{match}.*'w'"):
        mask_for(mine, 3)


def test_float16_scores_are_ranked():
    assert mask_for(lambda a, b: b.abs().half(), 3) == EXPECTED["large_final"]
