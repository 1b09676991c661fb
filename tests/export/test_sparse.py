"""Sparse export: equivalence per layer type, layout choice, module hygiene."""

import copy
import pickle

import pytest
import torch
from torch import nn

from sklottery import MLP, Pruner
from sklottery.export import SparseLinear, to_sparse


def _pruned(module, rate=0.9):
    """Prune ``module`` once at ``rate`` (every prunable tensor) in place."""
    pruner = Pruner(module, prune_rate=rate, output_rate_factor=None)
    pruner.prune()
    return pruner.masks


def _check_equivalent(module, *inputs, layout="sparse", structured=True):
    masks = _pruned(module)
    exported = to_sparse(module, masks, layout=layout, structured=structured)
    module.eval()
    with torch.no_grad():
        expected = module(*inputs)
        got = exported(*inputs)
    if isinstance(expected, tuple):  # RNNs, attention: compare the main output
        expected, got = expected[0], got[0]
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
    return exported, masks


class TestEquivalence:
    def test_mlp_linear_layers_become_csr(self):
        module = MLP(20, 5, hidden_units=(32, 16))
        # without the removal of dead units: every kept weight is stored
        exported, masks = _check_equivalent(
            module, torch.randn(7, 20), structured=False
        )
        names = [n for n, m in exported.named_modules() if isinstance(m, SparseLinear)]
        assert names == ["hidden.0", "hidden.2", "output"]
        for name in names:
            layer = exported.get_submodule(name)
            assert layer.weight.layout == torch.sparse_csr
            assert layer.nnz == int(masks[f"{name}.weight"].sum())

    def test_linear_without_bias_and_3d_input(self):
        module = nn.Sequential(nn.Linear(12, 9, bias=False), nn.Tanh(), nn.Linear(9, 4))
        exported, _ = _check_equivalent(module, torch.randn(3, 5, 12))
        assert isinstance(exported[0], SparseLinear) and exported[0].bias is None

    def test_module_that_is_a_linear_layer(self):
        exported, _ = _check_equivalent(nn.Linear(10, 6), torch.randn(4, 10))
        assert isinstance(exported, SparseLinear)

    @pytest.mark.parametrize(
        "conv, shape",
        [
            (nn.Conv1d(3, 6, 3), (2, 3, 10)),
            (nn.Conv2d(3, 6, 3), (2, 3, 8, 8)),
            (nn.Conv3d(2, 4, 2), (2, 2, 4, 4, 4)),
            (nn.ConvTranspose2d(3, 4, 3), (2, 3, 5, 5)),
        ],
    )
    def test_conv_stays_dense_with_zeros(self, conv, shape):
        module = nn.Sequential(conv, nn.ReLU(), nn.Flatten())
        x = torch.randn(*shape)
        with torch.no_grad():
            n_out = module(x).shape[1]
        module.append(nn.Linear(n_out, 3))
        exported, masks = _check_equivalent(module, x)
        assert type(exported[0]) is type(conv)
        assert torch.equal(exported[0].weight == 0, ~masks["0.weight"])
        assert isinstance(exported[3], SparseLinear)

    def test_bilinear(self):
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.bil = nn.Bilinear(5, 4, 6)
                self.head = nn.Linear(6, 2)

            def forward(self, a, b):
                return self.head(self.bil(a, b))

        exported, _ = _check_equivalent(Net(), torch.randn(3, 5), torch.randn(3, 4))
        assert isinstance(exported.bil, nn.Bilinear)
        assert isinstance(exported.head, SparseLinear)

    @pytest.mark.parametrize("embedding", [nn.Embedding(30, 8), nn.EmbeddingBag(30, 8)])
    def test_embedding(self, embedding):
        module = nn.Sequential(embedding, nn.Flatten(), nn.LazyLinear(3))
        idx = torch.randint(0, 30, (4, 5))
        with torch.no_grad():
            module(idx)  # materialize the lazy layer
        exported, _ = _check_equivalent(module, idx)
        assert type(exported[0]) is type(embedding)
        assert isinstance(exported[2], SparseLinear)

    @pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
    def test_recurrent(self, cls):
        exported, masks = _check_equivalent(
            cls(6, 8, num_layers=2, batch_first=True), torch.randn(3, 5, 6)
        )
        assert isinstance(exported, cls)
        assert torch.equal(exported.weight_hh_l1 == 0, ~masks["weight_hh_l1"])

    def test_multihead_attention_keeps_out_proj_dense(self):
        mha = nn.MultiheadAttention(8, 2, batch_first=True)
        x = torch.randn(2, 5, 8)
        mha.eval()
        masks = _pruned(mha)
        exported = to_sparse(mha, masks, layout="sparse")
        # MultiheadAttention reads out_proj.weight itself: it must stay a Linear
        assert type(exported.out_proj) is type(mha.out_proj)
        assert exported.sparse_layouts == []
        with torch.no_grad():
            assert torch.allclose(exported(x, x, x)[0], mha(x, x, x)[0], atol=1e-6)

    def test_overridden_linear_forward_is_left_alone(self):
        class Scaled(nn.Linear):
            def forward(self, x):
                return 2.0 * super().forward(x)

        module = nn.Sequential(Scaled(6, 4), nn.Linear(4, 2))
        exported, _ = _check_equivalent(module, torch.randn(3, 6))
        assert type(exported[0]) is Scaled
        assert isinstance(exported[1], SparseLinear)

    def test_original_is_untouched_and_export_is_inference_only(self):
        module = MLP(10, 3, hidden_units=(8,))
        before = copy.deepcopy(module.state_dict())
        masks = {
            n: torch.rand(p.shape) < 0.5
            for n, p in module.named_parameters()
            if n.endswith("weight")
        }
        exported = to_sparse(module, masks, layout="sparse")
        for name, value in module.state_dict().items():
            assert torch.equal(value, before[name])
        assert not exported.training
        assert not any(p.requires_grad for p in exported.parameters())

    def test_pickle_and_deepcopy_of_export(self):
        module = MLP(10, 3, hidden_units=(8,))
        exported, _ = _check_equivalent(module, torch.randn(2, 10))
        x = torch.randn(4, 10)
        for clone in (pickle.loads(pickle.dumps(exported)), copy.deepcopy(exported)):
            with torch.no_grad():
                assert torch.equal(clone(x), exported(x))


class TestEstimator:
    def test_to_sparse_and_sparse_inference(self, digits, tiny_net):
        import numpy as np

        from sklottery import LotteryTicketClassifier

        X, y = digits[0][:200], digits[1][:200]
        clf = LotteryTicketClassifier(
            tiny_net(), n_rounds=3, prune_rate=0.5, random_state=0
        ).fit(X, y)
        exported = clf.to_sparse(layout="sparse")
        assert isinstance(exported.hidden[0], SparseLinear)
        # weights of removed dead units are gone; every other kept one is stored
        assert exported.hidden[0].nnz <= int(clf.masks_["hidden.0.weight"].sum())
        assert exported.removed_units.keys() == {"hidden.0"}
        removed = exported.removed_units["hidden.0"]
        assert exported.hidden[0].out_features == 16 - removed
        with torch.no_grad():
            logits = exported(torch.from_numpy(X))
        expected = clf.net_.forward(X)
        assert torch.allclose(logits, expected, atol=1e-5)
        dense_proba = clf.predict_proba(X)
        # the estimator predicts with its export when inference="sparse"
        clf.set_params(inference="sparse")
        np.testing.assert_allclose(clf.predict_proba(X), dense_proba, atol=1e-6)
        assert (
            clf.predict(X).tolist()
            == clf.set_params(inference="dense").predict(X).tolist()
        )
        sparse_clf = LotteryTicketClassifier(
            tiny_net(), n_rounds=3, prune_rate=0.5, random_state=0, inference="sparse"
        ).fit(X, y)
        assert isinstance(sparse_clf.sparse_module_, nn.Module)
        np.testing.assert_allclose(sparse_clf.predict_proba(X), dense_proba, atol=1e-6)


def test_rescale_hooks_are_carried_over():
    torch.manual_seed(0)
    module = MLP(12, 3, hidden_units=(10,))
    pruner = Pruner(module, prune_rate=0.5, output_rate_factor=None, rescale=True)
    pruner.prune()
    exported = to_sparse(module, pruner.masks, layout="sparse")
    assert isinstance(exported.hidden[0], SparseLinear)
    assert len(exported.hidden[0]._forward_hooks) == 1
    x = torch.randn(5, 12)
    with torch.no_grad():
        assert torch.allclose(exported(x), module(x), atol=1e-5)
        # the hooks matter: without them the outputs differ
        exported.hidden[0]._forward_hooks.clear()
        assert not torch.allclose(exported(x), module(x), atol=1e-3)


# -- issue 19: a deterministic export, built once ---------------------------------
def test_default_export_never_times(monkeypatch):
    from sklottery.pruning import layouts

    def noisy(*args, **kwargs):
        raise AssertionError("the default export must not time")

    monkeypatch.setattr(layouts, "timed", noisy)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 4))
    masks = _pruned(module, rate=0.9)  # 2**18 weights at 10%: timed before
    exported = to_sparse(module, masks)
    assert [r["layout"] for r in exported.sparse_layouts] == ["dense", "dense"]
    with pytest.raises(AssertionError, match="must not time"):
        to_sparse(module, masks, measure=True)


def test_sparse_inference_exports_once_and_again_after_a_change(
    digits, tiny_net, monkeypatch
):
    import numpy as np

    from sklottery import LotteryTicketClassifier
    from sklottery.estimators import _inference

    exports = []

    def counting(*args, **kwargs):
        exports.append(1)
        return to_sparse(*args, **kwargs)

    monkeypatch.setattr(_inference, "to_sparse", counting)
    X, y = digits[0][:120], digits[1][:120]
    clf = LotteryTicketClassifier(
        tiny_net(max_epochs=1), n_rounds=1, prune_rate=0.5, random_state=0
    ).fit(X, y)
    dense = clf.predict_proba(X)
    clf.set_params(inference="sparse")
    first = [clf.predict_proba(X) for _ in range(3)]
    assert len(exports) == 1  # built on first use, then kept
    module = clf.sparse_module_
    clf.predict(X)
    assert clf.sparse_module_ is module and len(exports) == 1
    for proba in first:
        np.testing.assert_allclose(proba, dense, atol=1e-6)
    # new masks (new tensors): exported again, once
    clf.masks_ = {k: v.clone() for k, v in clf.masks_.items()}
    clf.predict(X)
    clf.predict(X)
    assert len(exports) == 2 and clf.sparse_module_ is not module
    # a fit with inference="sparse" exports once; predictions reuse it
    clf.fit(X, y)
    assert len(exports) == 3
    clf.predict(X)
    assert len(exports) == 3
    # an unpickled estimator predicts the same (exporting once more)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert len(exports) == 4
