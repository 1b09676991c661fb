"""The edge-popup maths: top-k masks, the straight-through gradient, the
frozen initializations and the wrapper module."""

import math

import pytest
import torch
from torch import nn

from sklottery.pruning.edge_popup import (
    EdgePopup,
    TopKMask,
    frozen_init,
    n_kept,
    score_init,
    top_k_mask,
)


def small_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 10), nn.ReLU(), nn.Linear(10, 3))


class TestTopK:
    def test_keeps_exactly_the_k_largest(self):
        scores = torch.tensor([[0.3, -2.0, 1.5], [0.1, 0.9, -0.2]])
        mask = top_k_mask(scores, 2)
        assert mask.dtype == torch.bool and mask.shape == scores.shape
        assert mask.tolist() == [[False, False, True], [False, True, False]]

    @pytest.mark.parametrize("k", [0, 1, 7, 12, 50])
    def test_count(self, k):
        scores = torch.randn(3, 4)
        assert int(top_k_mask(scores, k).sum()) == min(k, 12)

    @pytest.mark.parametrize("k", [1, 10, 333, 999])
    def test_same_as_a_stable_sort_with_many_ties(self, k):
        scores = torch.randint(0, 5, (1000,)).float()
        expected = torch.zeros(1000, dtype=torch.bool)
        expected[torch.argsort(scores, descending=True, stable=True)[:k]] = True
        assert torch.equal(top_k_mask(scores, k), expected)

    def test_ties_keep_the_earlier_position(self):
        assert top_k_mask(torch.ones(5), 2).tolist() == [True, True, False, False,
                                                         False]

    @pytest.mark.parametrize(
        "numel, density, kept", [(10, 0.5, 5), (7, 0.5, 3), (3, 0.01, 1), (9, 1.0, 9)]
    )
    def test_n_kept(self, numel, density, kept):
        assert n_kept(numel, density) == kept

    @pytest.mark.parametrize("density", [0.0, 1.5, -0.1])
    def test_n_kept_refuses_bad_density(self, density):
        with pytest.raises(ValueError, match=r"density must be in \(0, 1\]"):
            n_kept(10, density)

    def test_straight_through_gradient(self):
        scores = torch.randn(4, 5, requires_grad=True)
        weights = torch.randn(4, 5)
        upstream = torch.randn(4, 5)
        mask = TopKMask.apply(scores, 6)
        assert int(mask.sum()) == 6
        (weights * mask * upstream).sum().backward()
        # the gradient of the masked weight, times the weight, for every score
        # -- the pruned ones included
        torch.testing.assert_close(scores.grad, weights * upstream)


class TestInit:
    def test_signed_constant_is_plus_minus_kaiming_std(self):
        net = small_net()
        frozen_init(net, "signed_constant", generator=torch.Generator().manual_seed(0))
        for layer in (net[0], net[2]):
            std = math.sqrt(2.0 / layer.in_features)
            values = layer.weight.abs().unique()
            torch.testing.assert_close(values, torch.tensor([std]))
            assert (layer.weight > 0).any() and (layer.weight < 0).any()
            assert not layer.bias.any()

    def test_kaiming_normal_std_and_scale_fan(self):
        layer = nn.Linear(400, 300)
        frozen_init(layer, "kaiming_normal", generator=torch.Generator().manual_seed(0))
        assert abs(layer.weight.std().item() / math.sqrt(2 / 400) - 1) < 0.02
        frozen_init(layer, "signed_constant", density=0.5, scale_fan=True)
        assert layer.weight.abs().max().item() == pytest.approx(math.sqrt(2 / 200))

    def test_bad_weight_init(self):
        with pytest.raises(ValueError, match="weight_init must be one of"):
            frozen_init(small_net(), "xavier")

    def test_score_init_bound(self):
        s = score_init((50, 16), generator=torch.Generator().manual_seed(0))
        assert s.abs().max() <= 0.25 and s.abs().max() > 0.2


class TestEdgePopup:
    @pytest.mark.parametrize("scope", ["layer", "global"])
    def test_counts_and_frozen_weights(self, scope):
        net = small_net()
        before = {n: p.detach().clone() for n, p in net.named_parameters()}
        popup = EdgePopup(net, 0.3, scope=scope, generator=torch.Generator())
        assert [p.requires_grad for p in popup.parameters()].count(True) == 2
        masks = popup.masks()
        if scope == "layer":
            assert [int(m.sum()) for m in masks.values()] == [18, 9]
        else:
            assert sum(int(m.sum()) for m in masks.values()) == n_kept(90, 0.3)
        opt = torch.optim.SGD(popup.parameters(), lr=1.0, momentum=0.9)
        X, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
        for _ in range(5):
            opt.zero_grad()
            nn.functional.cross_entropy(popup(X), y).backward()
            opt.step()
        assert any(not torch.equal(masks[n], m) for n, m in popup.masks().items())
        for n, p in net.named_parameters():
            assert torch.equal(p, before[n])

    def test_forward_is_the_masked_network(self):
        net = small_net()
        popup = EdgePopup(net, 0.5)
        X = torch.randn(8, 6)
        out = popup(X)
        module, masks = popup.unwrap()
        assert module is net and all(p.requires_grad for p in net.parameters())
        torch.testing.assert_close(net(X), out)
        for name, m in masks.items():
            w = dict(net.named_parameters())[name]
            assert not w[~m].any()

    def test_scores_get_the_gradient(self):
        popup = EdgePopup(small_net(), 0.5)
        X, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
        nn.functional.cross_entropy(popup(X), y).backward()
        for s in popup.scores:
            assert s.grad is not None and s.grad.abs().sum() > 0

    def test_nothing_to_mask(self):
        with pytest.raises(ValueError, match="no prunable tensors"):
            EdgePopup(nn.ReLU(), 0.5)

    def test_bad_scope(self):
        with pytest.raises(ValueError, match="scope must be one of"):
            EdgePopup(small_net(), 0.5, scope="row")


@pytest.mark.parametrize("density", [True, False, "0.5", None])
def test_density_is_a_number(density):
    with pytest.raises(TypeError, match="density must be a float"):
        n_kept(10, density)
    with pytest.raises(TypeError, match="density must be a float"):
        EdgePopup(torch.nn.Linear(3, 2), density)
