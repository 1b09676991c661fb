"""Estimator-level options of issue 3: untrained (supermask) score, snip,
target sparsity and one-shot schedule, rescaling, early-bird tickets, and
their reachability from GridSearchCV."""

import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from sklottery import MLP, LotteryTicketClassifier, Pruner
from sklottery.pruning import find_prunable, set_rescale

X, Y = make_classification(240, 10, n_informative=6, n_classes=3, random_state=1)
X = X.astype(np.float32)


class Log(list):
    def __deepcopy__(self, memo):
        return self


class BeginStates(Callback):
    def __init__(self, log):
        self.log = log

    def on_train_begin(self, net, **kwargs):
        self.log.append(copy.deepcopy(net.module_.state_dict()))


def make_net(max_epochs=3, callbacks=None, lr=0.05, **kw):
    return NeuralNetClassifier(
        MLP, module__hidden_units=(16,), criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam, lr=lr, max_epochs=max_epochs, batch_size=60,
        train_split=None, verbose=0, callbacks=callbacks, **kw,
    )


def accuracy_of(module, state):
    module = copy.deepcopy(module)
    module.load_state_dict(state)
    with torch.no_grad():
        pred = module(torch.from_numpy(X)).argmax(1).numpy()
    return float(np.mean(pred == Y))


@pytest.mark.parametrize("rewind", ["init", "signed_constant", "none"])
def test_untrained_score_is_the_score_before_each_round_trains(rewind):
    log = Log()
    net = make_net(callbacks=[("begin", BeginStates(log))])
    clf = LotteryTicketClassifier(
        net, n_rounds=2, prune_rate=0.5, rewind=rewind,
        strategy="large_final_same_sign", random_state=0,
    ).fit(X, Y)
    assert len(log) == 3
    expected = [accuracy_of(clf.net_.module_, state) for state in log]
    assert clf.rounds_["untrained_score"].tolist() == pytest.approx(expected)
    assert clf.rounds_["ticket_epoch"].isna().all()


def test_snip_masks_follow_weight_times_gradient():
    torch.manual_seed(0)
    lin = nn.Linear(4, 3, bias=False)
    pruner = Pruner(lin, strategy="snip", prune_rate=0.5, output_rate_factor=None)
    x = torch.tensor([[1.0, 2.0, -1.0, 0.5], [0.0, 1.0, 3.0, -2.0]])
    grad = pruner.gradients(lambda m, b: m(b).sum(), [x])
    # d/dW sum(x W^T) = column sums of x, for every output row
    assert torch.allclose(grad["weight"], x.sum(0).expand(3, 4))
    assert lin.weight.grad is None  # .grad untouched
    saliency = (lin.weight.detach() * grad["weight"]).abs().reshape(-1)
    pruner.prune(grad=grad)
    expected = torch.ones(12, dtype=torch.bool)
    expected[saliency.argsort()[:6]] = False
    assert torch.equal(pruner.masks["weight"].reshape(-1), expected)


def test_snip_in_the_estimator():
    snip = LotteryTicketClassifier(make_net(), n_rounds=1, prune_rate=0.5,
                                   strategy="snip", random_state=0).fit(X, Y)
    mag = LotteryTicketClassifier(make_net(), n_rounds=1, prune_rate=0.5,
                                  random_state=0).fit(X, Y)
    assert snip.layers_["kept"].tolist() == mag.layers_["kept"].tolist()
    name = "hidden.0.weight"
    assert not torch.equal(snip.masks_[name], mag.masks_[name])


def test_target_sparsity_and_oneshot_in_the_estimator():
    clf = LotteryTicketClassifier(make_net(max_epochs=1), n_rounds=3,
                                  target_sparsity=0.488, output_rate_factor=None,
                                  random_state=0).fit(X, Y)
    # 160 + 48 weights, 20% a round: 160 -> 128 -> 102 -> 82, 48 -> 38 -> 30 -> 24
    assert clf.rounds_["n_weights"].tolist() == [208, 166, 132, 106]
    one = LotteryTicketClassifier(make_net(max_epochs=1), n_rounds=3,
                                  target_sparsity=0.488, output_rate_factor=None,
                                  schedule="oneshot", random_state=0).fit(X, Y)
    assert one.rounds_["round"].tolist() == [0, 1]
    # one prune of 48.8%: 160 -> 82, 48 -> 25 (counts rounded once, not thrice)
    assert one.rounds_["n_weights"].tolist() == [208, 107]
    with pytest.raises(ValueError, match="either prune_rate .* or target_sparsity"):
        LotteryTicketClassifier(prune_rate=0.2, target_sparsity=0.9).fit(X, Y)
    with pytest.raises(ValueError, match=r"valid schedules are \['iterative'"):
        LotteryTicketClassifier(schedule="gradual").fit(X, Y)
    with pytest.raises(ValueError, match="target_sparsity needs n_rounds >= 1"):
        LotteryTicketClassifier(n_rounds=0, target_sparsity=0.5).fit(X, Y)


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 2)
        self.convt = nn.ConvTranspose1d(3, 2, 2)
        self.emb = nn.EmbeddingBag(5, 4, mode="sum")
        self.bil = nn.Bilinear(4, 4, 3)
        self.lin = nn.Linear(3, 2)


def test_rescale_hook_scales_the_weight_part_once():
    torch.manual_seed(0)
    m = Mixed()
    pruner = Pruner(m, prune_rate=0.5, rescale=True, output_rate_factor=None)
    pruner.prune()
    stored = {n: p.detach().clone() for n, p in m.named_parameters()}
    twin = copy.deepcopy(m)  # same weights, hooks copied too: remove them
    for sub in twin.modules():
        sub._forward_hooks.clear()
    with torch.no_grad():
        for t in find_prunable(twin):
            w = dict(twin.named_parameters())[t.name]
            w.mul_(t.numel / int(pruner.masks[t.name].sum()))
    x4 = torch.randn(2, 2, 3, 3)
    x3 = torch.randn(2, 3, 4)
    idx = torch.tensor([[0, 1], [3, 4]])
    a, b = torch.randn(2, 4), torch.randn(2, 4)
    for _ in range(3):  # repeated forwards never compound the factor
        with torch.no_grad():
            assert torch.allclose(m.conv(x4), twin.conv(x4), atol=1e-6)
            assert torch.allclose(m.conv(x4[0]), twin.conv(x4[0]), atol=1e-6)
            assert torch.allclose(m.convt(x3), twin.convt(x3), atol=1e-6)
            assert torch.allclose(m.emb(idx), twin.emb(idx), atol=1e-6)
            assert torch.allclose(m.bil(a, b), twin.bil(a, b), atol=1e-6)
            assert torch.allclose(m.lin(a[:, :3]), twin.lin(a[:, :3]), atol=1e-6)
    for n, p in m.named_parameters():
        assert torch.equal(p.detach(), stored[n])  # stored weights unchanged
    # a second prune replaces the hooks (one per layer), with the new factor
    pruner.prune()
    assert len(m.conv._forward_hooks) == 1
    hook = next(iter(m.conv._forward_hooks.values()))
    assert hook.scale == 24 / int(pruner.masks["conv.weight"].sum())


def test_rescale_in_the_estimator_and_pickle():
    clf = LotteryTicketClassifier(make_net(), n_rounds=2, prune_rate=0.5,
                                  rescale=True, random_state=0).fit(X, Y)
    module = clf.net_.module_
    layer = module.hidden[0]
    kept = int(clf.masks_["hidden.0.weight"].sum())
    x = torch.from_numpy(X[:5])
    with torch.no_grad():
        manual = nn.functional.linear(x, layer.weight * (160 / kept), layer.bias)
        assert torch.allclose(layer(x), manual, atol=1e-6)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    # and the selected round's hooks follow the restored masks
    best = LotteryTicketClassifier(make_net(), n_rounds=2, prune_rate=0.5,
                                   rescale=True, select="best",
                                   random_state=0).fit(X, Y)
    hook = next(iter(best.net_.module_.hidden[0]._forward_hooks.values()), None)
    kept = int(best.masks_["hidden.0.weight"].sum())
    assert (hook is None) == (kept == 160)
    if hook is not None:
        assert hook.scale == 160 / kept


def test_rescale_rejects_unsupported_layers():
    lstm = nn.Sequential(nn.LSTM(3, 4))
    match = r"rescale=True supports .*'linear'.*weight_ih"
    with pytest.raises(ValueError, match=match):
        Pruner(lstm, rescale=True)
    net = nn.ModuleDict({"rnn": nn.GRU(3, 4), "out": nn.Linear(4, 2)})
    Pruner(net, rescale=True, exclude=["rnn"])  # excluded: fine
    half = torch.arange(36).reshape(12, 3) < 18
    with pytest.raises(ValueError, match="supports layers of kind"):
        set_rescale(net, find_prunable(net), {"rnn.weight_ih_l0": half})
    with pytest.raises(TypeError, match="rescale must be True or False"):
        LotteryTicketClassifier(rescale="yes").fit(X, Y)


def test_early_bird_stops_the_dense_round_when_masks_settle():
    net = make_net(max_epochs=40, lr=0.01)
    clf = LotteryTicketClassifier(
        net, n_rounds=1, prune_rate=0.5,
        early_bird={"threshold": 0.02, "patience": 3}, random_state=0,
    ).fit(X, Y)
    epochs0 = int(clf.rounds_["epochs"].iloc[0])
    # masks moved early on (no stop at the first possible epoch, 4), then settled
    assert 4 < epochs0 < 40
    assert clf.rounds_["ticket_epoch"].iloc[0] == epochs0
    assert np.isnan(clf.rounds_["ticket_epoch"].iloc[1])
    assert clf.rounds_["epochs"].iloc[1] == 40  # later rounds train fully
    # the same run without early-bird trains round 0 to the end
    full = LotteryTicketClassifier(make_net(max_epochs=40, lr=0.01), n_rounds=1,
                                   prune_rate=0.5, random_state=0).fit(X, Y)
    assert full.rounds_["epochs"].iloc[0] == 40


def test_early_bird_history_and_errors():
    from sklottery.rounds import EarlyBird, StopRound

    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    pruner = Pruner(model, prune_rate=0.5)

    class FakeNet:
        def __init__(self):
            from skorch.history import History
            self.history = History()

    fake = FakeNet()
    bird = EarlyBird(pruner, threshold=0.5, patience=2).initialize()
    fake.history.new_epoch()
    bird.on_epoch_end(fake)  # first masks: nothing to compare yet
    fake.history.new_epoch()
    bird.on_epoch_end(fake)
    assert fake.history[-1, "mask_distance"] == 0.0
    fake.history.new_epoch()
    with pytest.raises(StopRound):
        bird.on_epoch_end(fake)
    assert bird.epoch_ == 3
    with pytest.raises(ValueError, match="deterministic mask criterion"):
        LotteryTicketClassifier(early_bird=True, strategy="random").fit(X, Y)
    with pytest.raises(ValueError, match=r"valid keys are \['patience', 'threshold'\]"):
        LotteryTicketClassifier(early_bird={"tresh": 0.1}).fit(X, Y)
    with pytest.raises(TypeError, match="early_bird must be"):
        LotteryTicketClassifier(early_bird="yes").fit(X, Y)


def test_grid_search_reaches_the_new_options():
    grid = [
        {"strategy": ["movement", "snip", "large_final_same_sign"],
         "rewind": [1, "reshuffle"]},
        {"schedule": ["oneshot"], "target_sparsity": [0.7], "rescale": [True, False]},
        {"early_bird": [0.2], "rewind": ["lr", "reinit"]},
    ]
    clf = LotteryTicketClassifier(make_net(max_epochs=2), n_rounds=2, random_state=0)
    search = GridSearchCV(clf, grid, cv=2, error_score="raise").fit(X, Y)
    res = search.cv_results_
    assert len(res["params"]) == 6 + 2 + 2
    assert np.isfinite(res["mean_test_score"]).all()
    for key, value in search.best_params_.items():
        assert search.best_estimator_.get_params()[key] == value
