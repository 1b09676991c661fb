"""Every careless input of issue 13 gets a clear error (or a warning where the
fit is legal but useless), matched on its message; parametrized and lazy
layers are pruned; skorch's Checkpoint keeps one file per round; the round-0
cache misses after the module's code is edited."""

import importlib
import sys
import warnings

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Checkpoint, TrainEndCheckpoint
from torch import nn

from sklottery import LotteryTicketClassifier, LotteryTicketRegressor
from sklottery.lottery import dense_round, draw_seed
from sklottery.training import RoundData
from sklottery.training._net import initialize_net


class Two(nn.Module):
    def __init__(self, n_in=64):
        super().__init__()
        self.a = nn.Linear(n_in, 12)
        self.b = nn.Linear(12, 10)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class WeightNormed(Two):
    def __init__(self):
        super().__init__()
        self.a = nn.utils.parametrizations.weight_norm(nn.Linear(64, 12))


class SpectralNormed(Two):
    def __init__(self):
        super().__init__()
        self.a = nn.utils.parametrizations.spectral_norm(nn.Linear(64, 12))


class Lazy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.LazyLinear(12)
        self.drop = nn.Dropout(0.2)
        self.b = nn.Linear(12, 10)

    def forward(self, x):
        return self.b(self.drop(torch.relu(self.a(x))))


def _net(module=Two, **kwargs):
    params = {"max_epochs": 2, "lr": 0.05, "train_split": None, "verbose": 0,
              "criterion": nn.CrossEntropyLoss, "optimizer": torch.optim.Adam}
    params.update(kwargs)
    return NeuralNetClassifier(module, **params)


def _fit(digits_120, net=None, **params):
    X, y = digits_120
    params = {"n_rounds": 1, "random_state": 0, **params}
    return LotteryTicketClassifier(net if net is not None else _net(), **params).fit(
        X, y
    )


# -- parameters ----------------------------------------------------------------
def test_layer_rates_as_a_list(digits_120):
    with pytest.raises(ValueError, match="'layer_rates' parameter .* 'dict'"):
        _fit(digits_120, layer_rates=[0.1])


def test_exclude_as_an_int(digits_120):
    with pytest.raises(ValueError, match="'exclude' parameter .* 'str'"):
        _fit(digits_120, exclude=5)


def test_excluding_every_layer_is_nothing_to_prune(digits_120):
    with pytest.raises(ValueError, match="nothing left to prune: exclude=.*a.weight"):
        _fit(digits_120, exclude=["a", "b"])


def test_pruner_alone_checks_layer_rates_and_exclude_types():
    from sklottery import Pruner

    with pytest.raises(TypeError, match="layer_rates must be a dict"):
        Pruner(Two(), prune_rate=0.2, layer_rates=[0.1])
    with pytest.raises(TypeError, match="exclude must be a str or a list of str"):
        Pruner(Two(), prune_rate=0.2, exclude=5)


def test_batch_size_zero(digits_120):
    with pytest.raises(ValueError, match="batch_size must be a positive int.*=0"):
        _fit(digits_120, _net(batch_size=0))


def test_drop_last_with_a_batch_larger_than_the_data(digits_120):
    net = _net(batch_size=500, iterator_train__drop_last=True)
    with pytest.raises(ValueError, match="drop_last=True with batch_size=500 larger "
                       "than the 120 training rows"):
        _fit(digits_120, net)
    # legal: a batch that fits
    _fit(digits_120, _net(batch_size=50, iterator_train__drop_last=True))


def test_a_diverging_net_says_training_diverged(digits_120):
    net = _net(lr=1e30, optimizer=torch.optim.SGD)
    with pytest.raises(ValueError, match="NaN or inf: training diverged"):
        _fit(digits_120, net)


def test_device_cuda_without_a_gpu(digits_120, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    calls = []
    monkeypatch.setattr(
        NeuralNetClassifier, "initialize", lambda self: calls.append(1)
    )
    with pytest.raises(ValueError, match="device='cuda', but CUDA is not available"):
        _fit(digits_120, _net(device="cuda"))
    assert not calls  # before any work


@pytest.mark.parametrize("labels", ["numbers", "strings"])
def test_y_with_none(digits_120, labels):
    X, y = digits_120
    y = y.astype(object) if labels == "numbers" else np.array(
        [f"c{v}" for v in y], dtype=object
    )
    y[[3, 7]] = None
    with pytest.raises(ValueError, match=r"y contains 2 missing value\(s\) \(None\)"):
        LotteryTicketClassifier(_net(), n_rounds=1).fit(X, y)
    with pytest.raises(ValueError, match=r"y contains 2 missing value"):
        LotteryTicketRegressor(n_rounds=1).fit(X, list(y))


def test_rounds_that_prune_nothing_warn(digits_120):
    X, y = digits_120
    est = LotteryTicketClassifier(
        _net(max_epochs=1), target_sparsity=0.99, n_rounds=300,
        output_rate_factor=None, random_state=0,
    )
    with pytest.warns(UserWarning, match=r"rounds to 0 for .*b\.weight \(rate "
                      r"0\.01523: pruned for 77 rounds only, sparsity 0\.733\)"):
        est.fit(X[:40], y[:40])
    # the warning said what happens: b stops at 73% instead of 99%
    assert 1 - est.masks_["b.weight"].float().mean() == pytest.approx(0.733, abs=1e-3)


# -- parametrized and lazy layers ------------------------------------------------
def test_weight_norm_is_refused_clearly(digits_120):
    with pytest.raises(ValueError, match="cannot prune layer 'a' exactly: it is "
                       "weight-normalized"):
        _fit(digits_120, _net(WeightNormed))


def test_weight_norm_excluded_is_legal(digits_120):
    est = _fit(digits_120, _net(WeightNormed), exclude="a")
    assert est.masks_["a.parametrizations.weight.original1"].all()
    assert not est.masks_["b.weight"].all()
    assert torch.isfinite(est.net_.module_.a.weight).all()


def test_spectral_norm_is_pruned_through_its_parametrization(digits_120):
    est = _fit(digits_120, _net(SpectralNormed), prune_rate=0.5)
    name = "a.parametrizations.weight.original"
    mask = est.masks_[name]
    assert (~mask).sum() > 0
    weight = est.net_.module_.a.weight.detach()  # what the layer computes with
    assert torch.all(weight[~mask] == 0)
    assert torch.all(weight[mask] != 0)


def test_lazy_modules_are_initialized_on_a_first_batch(digits_120):
    X, y = digits_120
    est = _fit(digits_120, _net(Lazy), prune_rate=0.5)
    mask = est.masks_["a.weight"]
    assert mask.shape == (12, 64)
    assert (~mask).sum() == 12 * 64 // 2
    assert torch.all(est.net_.module_.a.weight.detach()[~mask] == 0)
    assert est.predict(X).shape == y.shape
    # the rewind point is the initialization the dense round trained from:
    # round 0 materializes the lazy layer exactly as fit does
    spec = _net(Lazy, max_epochs=0)
    seed = draw_seed(est.random_state)
    torch.manual_seed(seed)
    net = initialize_net(spec, torch.from_numpy(X))
    y_t = torch.from_numpy(y.astype(np.int64))
    data = RoundData(torch.from_numpy(X), y_t, torch.from_numpy(X), y_t, "train")
    dense = dense_round(_net(Lazy, max_epochs=0), data, seed=seed)
    assert torch.equal(dense.trained["a.weight"], net.module_.a.weight.detach())
    assert torch.equal(est.rewind_point_["a.weight"], dense.trained["a.weight"])


def test_lazy_module_ticket_round_trip(digits_120, tmp_path):
    X, _ = digits_120
    est = _fit(digits_120, _net(Lazy), prune_rate=0.5)
    est.save_ticket(tmp_path / "t.npz")
    loaded = LotteryTicketClassifier(_net(Lazy), n_rounds=1, prune_rate=0.5)
    loaded.load_ticket(tmp_path / "t.npz")
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


# -- skorch callbacks over rounds ---------------------------------------------------
def test_select_ticket_without_a_validation_split_warns(digits_120):
    with pytest.warns(UserWarning, match="select='ticket' without a validation "
                      "split: rounds are judged by their score on the training"):
        _fit(digits_120, select="ticket")


def test_checkpoint_gets_one_file_per_round(digits_120, tmp_path):
    X, y = digits_120
    cp = Checkpoint(monitor=None, dirname=str(tmp_path), fn_prefix="ck_",
                    f_optimizer=None, f_criterion=None, f_history=None)
    end = TrainEndCheckpoint(dirname=str(tmp_path), f_optimizer=None,
                             f_criterion=None, f_history=None)
    net = _net(callbacks=[("cp", cp), ("end", end)])
    est = LotteryTicketClassifier(net, n_rounds=2, prune_rate=0.6, select="best",
                                  tol=1.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(X, y)
    names = sorted(p.name for p in tmp_path.iterdir())
    for k in range(3):
        assert f"ck_round{k}_params.pt" in names
        assert f"train_end_round{k}_params.pt" in names
    assert "ck_params.pt" not in names
    # the selected round's file holds the fitted (selected) weights
    selected = est.selected_round_
    saved = torch.load(tmp_path / f"ck_round{selected}_params.pt")
    for name, value in est.net_.module_.state_dict().items():
        assert torch.equal(saved[name], value), name
    # the fitted net's callbacks have the user's prefixes back
    callbacks = dict(est.net_.callbacks_)
    assert callbacks["cp"].fn_prefix == "ck_"
    assert callbacks["end"].checkpoint_.fn_prefix == "train_end_"


# -- the round-0 cache --------------------------------------------------------------
_SOURCE = '''
import torch
from torch import nn


class Edited(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(64, 12)
        self.b = nn.Linear(12, 10)

    def forward(self, x):
        return self.b(ACT(self.a(x)))
'''


def _edited_module(tmp_path, act):
    path = tmp_path / "sklottery_edited_mod.py"
    path.write_text(_SOURCE.replace("ACT", act))
    if "sklottery_edited_mod" in sys.modules:
        module = importlib.reload(sys.modules["sklottery_edited_mod"])
    else:
        module = importlib.import_module("sklottery_edited_mod")
    return module.Edited


def test_memory_cache_misses_after_the_module_is_edited(
    digits_120, tmp_path, monkeypatch
):
    X, y = digits_120
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cache = tmp_path / "cache"

    def fit(memory):
        est = LotteryTicketClassifier(
            _net(Edited, max_epochs=3), n_rounds=1, memory=memory, random_state=0
        )
        return est.fit(X, y).rounds_.loc[0, "score"]

    try:
        Edited = _edited_module(tmp_path, "torch.relu")
        relu = fit(str(cache))
        Edited = _edited_module(tmp_path, "torch.sigmoid")
        cached = fit(str(cache))
        uncached = fit(None)
    finally:
        sys.modules.pop("sklottery_edited_mod", None)
    assert cached == uncached
    assert relu != uncached  # the edit changes round 0 (the test can fail)
