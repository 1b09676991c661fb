"""Sparse training of pruned Linear layers (issue 11): the layer, the layout
decisions, the swap at round boundaries, cost columns and cheap scoring."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback
from torch import nn

from sklottery import LotteryTicketClassifier, Pruner
from sklottery.pruning.sparse_linear import (
    SparseTrainingLinear,
    sparse_training_layers,
    to_dense,
)
from sklottery.pruning.sparse_training import (
    choose_training_layouts,
    forward_macs,
    rule_training_layout,
    to_sparse_training,
    train_macs,
)
from tests.conftest import make_tiny_net as tiny_net
from tests.conftest import train_side_by_side


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X[:200] / 16.0).astype(np.float32), y[:200]


def _masked_mlp(seed=0, density=0.4):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(12, 20), nn.ReLU(inplace=True), nn.Linear(20, 6))
    masks = {
        "0.weight": torch.rand(20, 12, generator=gen) < density,
        "2.weight": torch.rand(6, 20, generator=gen) < density,
    }
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name in masks:
                p.mul_(masks[name])
    return net, masks


OPTIMIZERS = [
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    (torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.01}),
    (torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    (torch.optim.RMSprop, {"lr": 0.01}),
    (torch.optim.Adagrad, {"lr": 0.1}),
]


@pytest.mark.parametrize("opt_cls,kwargs", OPTIMIZERS)
def test_sparse_and_masked_dense_training_agree(opt_cls, kwargs):
    dense, masks = _masked_mlp()
    sparse = copy.deepcopy(dense)
    to_sparse_training(sparse, masks, mode=True, batch_size=8)
    assert sparse_training_layers(sparse) == ["0", "2"]
    x = torch.randn(8, 12, generator=torch.Generator().manual_seed(1))
    train_side_by_side(dense, sparse, masks, opt_cls, kwargs, x)
    assert to_dense(sparse) == ["0", "2"]
    for (name, p), q in zip(dense.named_parameters(), sparse.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6, msg=name)
    for name, mask in masks.items():
        weight = dict(sparse.named_parameters())[name]
        assert torch.count_nonzero(weight[~mask]) == 0  # exact zeros


def test_swap_keeps_objects_state_dict_and_optimizer_holds_survivors_only():
    net, masks = _masked_mlp()
    layer, weight, bias = net[0], net[0].weight, net[0].bias
    before = {k: v.clone() for k, v in net.state_dict().items()}
    to_sparse_training(net, masks, mode=True, batch_size=4)
    twin = net[0]
    assert isinstance(twin, SparseTrainingLinear) and twin.bias is bias
    assert twin.values.numel() == int(masks["0.weight"].sum())
    # nn.Linear's keys and values, pruned entries zero
    state = net.state_dict()
    assert set(state) == set(before)
    for key, value in before.items():
        torch.testing.assert_close(state[key], value)
    opt = torch.optim.Adam(net.parameters())
    n_opt = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n_opt == sum(int(m.sum()) for m in masks.values()) + 20 + 6
    to_dense(net)
    assert net[0] is layer and net[0].weight is weight
    torch.testing.assert_close(net.state_dict()["0.weight"], before["0.weight"])


def test_pruner_verbs_refuse_while_layers_train_sparse():
    net, masks = _masked_mlp()
    pruner = Pruner(net, masks=masks, sparse_training=True, output_rate_factor=None)
    rows = pruner.begin_sparse_training(batch_size=8)
    assert [r["layout"] for r in rows] == ["sparse", "sparse"]
    assert pruner.training_layouts is rows
    with pytest.raises(RuntimeError, match="end_sparse_training"):
        pruner.prune()
    with pytest.raises(RuntimeError, match="end_sparse_training"):
        pruner.rewind()
    assert pruner.end_sparse_training() == ["0", "2"]
    pruner.prune()  # dense again
    with pytest.raises(ValueError, match="sparse_training must be"):
        Pruner(net, sparse_training="yes")


def test_layout_decisions():
    # the rule: big layers at low density, never a 10-unit output or tiny layer
    assert rule_training_layout((4096, 4096), 0.02, 256) == "sparse"
    assert rule_training_layout((4096, 4096), 0.5, 256) == "dense"
    assert rule_training_layout((10, 4096), 0.02, 256) == "dense"
    assert rule_training_layout((4096, 4096), 0.02, 4) == "dense"
    net, masks = _masked_mlp()
    rows = choose_training_layouts(net, masks, mode="auto", batch_size=8)
    assert [(r["layout"], r["reason"]) for r in rows] == [("dense", "rule")] * 2
    rows = choose_training_layouts(net, masks, mode=False, batch_size=8)
    assert {r["layout"] for r in rows} == {"dense"}
    # the measured path, with a timing function given
    big = nn.Sequential(nn.Linear(512, 512))
    mask = torch.rand(512, 512, generator=torch.Generator().manual_seed(0)) < 0.2
    for timing, layout in (((1.0, 0.5), "sparse"), ((1.0, 0.95), "dense")):
        rows = choose_training_layouts(
            big, {"0.weight": mask}, mode="timed", batch_size=64,
            measure_fn=lambda *a, t=timing: t,
        )
        assert (rows[0]["layout"], rows[0]["reason"]) == (layout, "measured")
    rows = choose_training_layouts(
        big, {"0.weight": mask}, mode="timed", batch_size=64, measure=False
    )
    assert rows[0]["layout"] == "dense"  # 20% > the rule's 5%
    with pytest.raises(ValueError, match="batch_size"):
        choose_training_layouts(big, {"0.weight": mask}, batch_size=0)


def test_measuring_leaves_torch_generator_alone():
    big = nn.Sequential(nn.Linear(512, 512))
    mask = torch.rand(512, 512) < 0.2
    state = torch.get_rng_state()
    choose_training_layouts(big, {"0.weight": mask}, mode="timed", batch_size=32)
    assert torch.equal(torch.get_rng_state(), state)


def test_macs():
    net, masks = _masked_mlp()
    macs = forward_macs(net, torch.zeros(1, 12))
    assert macs == {"0": (1, 240), "2": (1, 120)}
    rows = [{"name": "0", "layout": "sparse", "nnz": 50}]
    assert train_macs(macs, rows, 10) == 3 * 10 * (50 + 120)
    conv = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(4 * 36, 3))
    assert forward_macs(conv, torch.zeros(1, 2, 8, 8)) == {
        "0": (36, 4 * 2 * 9), "2": (1, 144 * 3)
    }


# -- the estimators -------------------------------------------------------------
LAYOUTS = []


class LayoutSpy(Callback):
    """Per round, in ``LAYOUTS``: the module's Linear layer types and the
    optimizer's size (module-level: skorch clones its callbacks)."""

    def on_train_begin(self, net, **kwargs):
        kinds = [type(m).__name__ for m in net.module_.modules()
                 if isinstance(m, (nn.Linear, SparseTrainingLinear))]
        size = sum(p.numel() for g in net.optimizer_.param_groups for p in g["params"])
        LAYOUTS.append((kinds, size))


def _fit(X, y, sparse_training, callbacks=None, **kw):
    net = tiny_net(max_epochs=2, module__hidden_units=(24,), callbacks=callbacks)
    params = {"n_rounds": 2, "prune_rate": 0.5, "random_state": 0, **kw}
    return LotteryTicketClassifier(
        net, sparse_training=sparse_training, **params
    ).fit(X, y)


def test_false_reproduces_the_fit_before_sparse_training(digits):
    X, y = digits
    clf = _fit(X, y, False, score_untrained=True)
    # figures of the same fit before issue 11 (main at 07b7d81)
    assert clf.rounds_["n_weights"].tolist() == [1776, 948, 519]
    assert clf.rounds_["score"].tolist() == pytest.approx([0.725, 0.76, 0.755])
    assert clf.rounds_["untrained_score"].tolist() == pytest.approx(
        [0.1, 0.315, 0.42]
    )
    assert clf.rounds_["train_loss"].tolist() == pytest.approx(
        [1.7946831750869752, 1.6891291809082032, 1.721701030731201], rel=1e-6
    )
    weight = clf.net_.module_.hidden[0].weight.detach().double().sum()
    assert float(weight) == pytest.approx(24.045052560977638, rel=1e-6)
    assert (clf.rounds_["sparse_layers"] == "").all()
    # "auto" on a net this small trains dense: bit for bit the same fit
    auto = _fit(X, y, "auto", score_untrained=True)
    for p, q in zip(clf.net_.module_.parameters(), auto.net_.module_.parameters()):
        assert torch.equal(p, q)


def test_sparse_fit_agrees_with_dense_and_switches_at_round_boundaries(digits):
    X, y = digits
    dense = _fit(X, y, False)
    LAYOUTS.clear()
    sparse = _fit(X, y, True, callbacks=[("spy", LayoutSpy())])
    log = list(LAYOUTS)
    # round 0 dense; rounds 1 and 2 train both layers on survivors only
    assert [kinds for kinds, _ in log] == [
        ["Linear", "Linear"],
        ["SparseTrainingLinear", "SparseTrainingLinear"],
        ["SparseTrainingLinear", "SparseTrainingLinear"],
    ]
    n_bias = 24 + 10
    assert [size for _, size in log][1:] == [
        n + n_bias for n in sparse.rounds_["n_weights"].tolist()[1:]
    ]
    assert sparse.rounds_["sparse_layers"].tolist() == [
        "", "hidden.0,output", "hidden.0,output"
    ]
    # the fitted net is dense and its optimizer holds the dense parameters
    assert not sparse_training_layers(sparse.net_.module_)
    opt_params = {id(p) for g in sparse.net_.optimizer_.param_groups
                  for p in g["params"]}
    assert opt_params == {id(p) for p in sparse.net_.module_.parameters()}
    for name in dense.masks_:
        assert torch.equal(dense.masks_[name], sparse.masks_[name])
    for p, q in zip(dense.net_.module_.parameters(), sparse.net_.module_.parameters()):
        torch.testing.assert_close(q, p, rtol=1e-4, atol=1e-5)
    # cost: round 0 dense; sparse rounds count survivors for both layers
    d, s = dense.rounds_, sparse.rounds_
    assert s["train_macs"][0] == d["train_macs"][0] == 3 * 2 * len(X) * (
        64 * 24 + 24 * 10
    )
    assert (d["train_macs"] == d["train_macs"][0]).all()
    expected = [3 * 2 * len(X) * n for n in s["n_weights"][1:]]
    assert s["train_macs"][1:].tolist() == expected
    assert s["cumulative_macs"].tolist() == np.cumsum(s["train_macs"]).tolist()
    assert s["untrained_score"].isna().all()  # opt-in


@pytest.mark.parametrize("opt_cls,kwargs", OPTIMIZERS[::2] + [OPTIMIZERS[3]])
def test_exact_zeros_under_sparse_training(digits, opt_cls, kwargs):
    X, y = digits
    net = tiny_net(max_epochs=1, optimizer=opt_cls, **{f"optimizer__{k}": v
                                                        for k, v in kwargs.items()})
    clf = LotteryTicketClassifier(
        net, n_rounds=2, prune_rate=0.5, sparse_training=True, random_state=0
    ).fit(X, y)
    params = dict(clf.net_.module_.named_parameters())
    for name, mask in clf.masks_.items():
        assert torch.count_nonzero(params[name][~mask]) == 0
        assert torch.count_nonzero(params[name][mask]) > 0


def test_pickle_tickets_select_and_warm_start_under_sparse_training(digits):
    X, y = digits
    with pytest.warns(UserWarning, match="without a validation split"):
        clf = _fit(X, y, True, n_rounds=1, select="best")
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))
    buf = io.BytesIO()
    clf.save_ticket(buf, rewind_point=True)
    buf.seek(0)
    loaded = clone(clf).load_ticket(buf)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    # warm start: one more sparse round from the selected one
    clf.set_params(n_rounds=2, warm_start=True, select="last").fit(X, y)
    assert clf.rounds_["round"].tolist() == [0, 1, 2]
    assert clf.rounds_["sparse_layers"].iloc[-1] == "hidden.0,output"
    cum = clf.rounds_["cumulative_macs"]
    assert cum.iloc[-1] == cum.iloc[-2] + clf.rounds_["train_macs"].iloc[-1]
    assert not sparse_training_layers(clf.net_.module_)


EPOCHS = []


class Interrupt(Callback):
    """Presses Ctrl-C at the end of the ``at``-th epoch of the process."""

    def __init__(self, at):
        self.at = at

    def on_epoch_end(self, net, **kwargs):
        EPOCHS.append(1)
        if len(EPOCHS) == self.at:
            raise KeyboardInterrupt


def test_ctrl_c_during_a_sparse_round_keeps_the_last_completed_round(digits):
    X, y = digits
    reference = _fit(X, y, True, n_rounds=1)
    EPOCHS.clear()
    with pytest.warns(RuntimeWarning, match="interrupted"):
        clf = _fit(X, y, True, n_rounds=3, callbacks=[("stop", Interrupt(2 + 2 + 1))])
    assert clf.interrupted_ and clf.rounds_["round"].tolist() == [0, 1]
    assert not sparse_training_layers(clf.net_.module_)
    for p, q in zip(reference.net_.module_.parameters(), clf.net_.module_.parameters()):
        assert torch.equal(p, q)
    params = dict(clf.net_.module_.named_parameters())
    for name, mask in clf.masks_.items():
        assert torch.count_nonzero(params[name][~mask]) == 0


def test_bad_parameters(digits):
    X, y = digits
    for name, value in (("sparse_training", "yes"), ("score_untrained", "no")):
        with pytest.raises(ValueError, match=name):
            LotteryTicketClassifier(**{name: value}).fit(X, y)


def test_plot_score_against_cumulative_cost():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from sklottery.plotting import plot_rounds

    table = pd.DataFrame({
        "weights_remaining": [1.0, 0.5, 0.25],
        "score": [0.9, 0.91, 0.9],
        "cumulative_macs": [3e9, 4.5e9, 5.3e9],
    })
    ax = plot_rounds(table, x="cumulative_macs", baseline=True)
    assert list(ax.get_lines()[0].get_xdata()) == [3e9, 4.5e9, 5.3e9]
    assert list(ax.get_lines()[1].get_ydata()) == [0.9, 0.9]  # round 0
    assert "multiply-adds" in ax.get_xlabel()
    assert ax.get_xscale() == "linear"


def test_fallback_copy_holds_survivors_only():
    from sklottery.pruning.masks import load_survivors, survivors

    net, masks = _masked_mlp()
    copy_ = survivors(net, masks)
    assert copy_["0.weight"].numel() == int(masks["0.weight"].sum())
    assert copy_["0.bias"].shape == (20,)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    load_survivors(net, copy_, masks)
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key])


def test_regressor_and_rescale_under_sparse_training(digits):
    from sklottery import LotteryTicketRegressor
    from tests.conftest import make_tiny_regressor_net as tiny_regressor_net

    X, y = digits
    target = (y / 9.0).astype(np.float32)
    fits = [
        LotteryTicketRegressor(
            tiny_regressor_net(max_epochs=2), n_rounds=2, prune_rate=0.5,
            rescale=True, sparse_training=mode, random_state=0,
        ).fit(X, target)
        for mode in (False, True)
    ]
    dense, sparse = fits
    assert sparse.rounds_["sparse_layers"].iloc[-1] == "hidden.0,output"
    np.testing.assert_allclose(sparse.predict(X), dense.predict(X), atol=1e-4)
    params = dict(sparse.net_.module_.named_parameters())
    for name, mask in sparse.masks_.items():
        assert torch.count_nonzero(params[name][~mask]) == 0


def test_sparse_at_skips_the_timing_of_a_large_layer():
    layer = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 4))
    gen = torch.Generator().manual_seed(0)
    mask = torch.rand(512, 512, generator=gen) < 0.1
    timed = []

    def measure(lin, m, batch_size, repeats):
        timed.append(1)
        return 1.0, 0.5

    masks = {"0.weight": mask}
    (row,) = choose_training_layouts(
        layer, masks, mode="timed", batch_size=64, measure_fn=measure
    )
    assert (row["layout"], row["reason"], len(timed)) == ("sparse", "measured", 1)
    (row,) = choose_training_layouts(
        layer, masks, mode="timed", batch_size=64, measure_fn=measure,
        sparse_at={"0.weight": row["density"]},
    )  # fmt: skip
    assert (row["layout"], row["reason"], len(timed)) == (
        "sparse", "sparse at a higher density", 1,
    )  # fmt: skip
    # the pruner remembers it from round to round
    pruner = Pruner(layer, masks={"0.weight": mask, "2.weight": torch.ones(4, 512,
                    dtype=torch.bool)}, output_rate_factor=None,
                    sparse_training="timed")  # fmt: skip
    pruner.begin_sparse_training(64, measure_fn=measure)
    pruner.end_sparse_training()
    assert pruner._sparse_at == {64: {"0.weight": row["density"]}}
    pruner.begin_sparse_training(64, measure_fn=measure)
    pruner.end_sparse_training()
    assert len(timed) == 2  # not timed again at the same density


# -- issue 19: "auto" is deterministic -------------------------------------------
def _noisy_timer(seed):
    """A stand-in for the timing harness (``layouts.timed``): runs the call,
    returns a random duration (timing noise, heavy-tailed)."""
    rng = np.random.default_rng(seed)

    def timed(fn, device, calls=1):
        for _ in range(calls):
            fn()
        return float(rng.lognormal(0.0, 2.0))

    return timed


def _fit_under_noise(monkeypatch, X, y, noise_seed, sparse_training="auto", **kw):
    from sklottery.pruning import layouts

    monkeypatch.setattr(layouts, "timed", _noisy_timer(noise_seed))
    # 64-512-256-10: "hidden.2" (256x512, 2**17 weights) is at 20% density in
    # round 1 and 4% in round 2, where timing used to decide
    net = tiny_net(max_epochs=1, module__hidden_units=(512, 256))
    return LotteryTicketClassifier(
        net, n_rounds=2, prune_rate=0.8, output_rate_factor=None,
        sparse_training=sparse_training, random_state=0, **kw,
    ).fit(X, y)


def test_auto_is_bit_identical_under_timing_noise(digits, monkeypatch):
    X, y = digits
    fits = [_fit_under_noise(monkeypatch, X, y, seed) for seed in (0, 1, 2)]
    first = fits[0]
    # the calibrated rule decides: hidden.2 trains sparse at 4% (round 2) only
    assert first.rounds_["sparse_layers"].tolist() == ["", "", "hidden.2"]
    for other in fits[1:]:
        assert (
            other.rounds_["sparse_layers"].tolist()
            == first.rounds_["sparse_layers"].tolist()
        )
        assert first.masks_.keys() == other.masks_.keys()
        for name, mask in first.masks_.items():
            assert torch.equal(mask, other.masks_[name])
        np.testing.assert_array_equal(other.predict_proba(X), first.predict_proba(X))


def test_timed_is_the_explicit_request_for_timing(digits, monkeypatch):
    from sklottery.pruning import layouts

    calls = []
    monkeypatch.setattr(
        layouts, "timed", lambda fn, device, calls_=1: calls.append(1) or 1.0
    )
    net = nn.Sequential(nn.Linear(512, 256))
    mask = torch.rand(256, 512, generator=torch.Generator().manual_seed(0)) < 0.2
    rows = choose_training_layouts(net, {"0.weight": mask}, batch_size=64)
    assert (rows[0]["layout"], rows[0]["reason"], calls) == ("dense", "rule", [])
    rows = choose_training_layouts(
        net, {"0.weight": mask}, mode="timed", batch_size=64
    )
    assert rows[0]["reason"] == "measured" and calls
    pruner = Pruner(net, masks={"0.weight": mask}, sparse_training="timed")
    assert pruner.sparse_training == "timed"
    clf = LotteryTicketClassifier(tiny_net(), sparse_training="timed")
    assert clf.get_params()["sparse_training"] == "timed"
