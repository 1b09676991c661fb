"""Structured tickets in the estimators (granularity="neuron"/"channel"): exact
units per round, the masks and zeros of a pruned unit, shrunk rounds against
masked ones, the sklearn machinery (select, warm start, pickle, clone, search,
pipelines), Ctrl-C in a shrunk round, ticket files, conv/BatchNorm and GRU
nets, rates, the refusals and the dense-round cache."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback
from torch import nn

from sklottery.pruning.graph import GraphError
from sklottery.pruning.shrink import ShrunkLayer
from sklottery.pruning.swap import sparse_training_layers
from tests.conftest import make_tiny_net, make_tiny_regressor_net

pytestmark = pytest.mark.lottery(granularity="neuron", prune_rate=0.2)

N_IN, H1, H2, N_CLASSES = 64, 20, 10, 10  # digits through UserNet


# -- nets: every module takes ``hidden_units`` (the tiny nets pass it) ---------------
class UserNet(nn.Module):
    """Named layers and a custom forward: no Sequential to read the dataflow
    from, the units are found by tracing."""

    def __init__(self, hidden_units=(H1, H2), n_in=N_IN, n_out=N_CLASSES):
        super().__init__()
        a, b = hidden_units
        self.l1 = nn.Linear(n_in, a)
        self.l2 = nn.Linear(a, b)
        self.out = nn.Linear(b, n_out)

    def forward(self, x):
        h = torch.relu(self.l1(x))
        return self.out(torch.relu(self.l2(h)))


class Untraceable(UserNet):
    def forward(self, x):
        h = self.l1(x)
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            h = torch.relu(h)
        return self.out(torch.relu(self.l2(h)))


class ConvBN(nn.Module):
    """Conv2d-BN-ReLU-pool-flatten-Linear on 8x8 digits."""

    def __init__(self, hidden_units=(8,)):
        super().__init__()
        (c,) = hidden_units
        self.conv = nn.Conv2d(1, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)
        self.pool = nn.MaxPool2d(2)
        self.out = nn.Linear(c * 4 * 4, N_CLASSES)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn(self.conv(x))))
        return self.out(torch.flatten(x, 1))


class GRUNet(nn.Module):
    def __init__(self, hidden_units=(12,)):
        super().__init__()
        (h,) = hidden_units
        self.rnn = nn.GRU(4, h, batch_first=True)
        self.out = nn.Linear(h, 3)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.out(y[:, -1])


class Shapes(Callback):
    """Records the parameter shapes (and values) every round trains with; a
    class-level log, since the fit deep-copies its callbacks."""

    seen: list = []

    def on_train_begin(self, net, **kwargs):
        params = net.module_.named_parameters()
        Shapes.seen.append({n: tuple(p.shape) for n, p in params})

    def on_train_end(self, net, **kwargs):
        Shapes.ended.append(
            {n: p.detach().clone() for n, p in net.module_.named_parameters()}
        )


Shapes.ended = []


class Interrupt(Callback):
    """Ctrl-C at the end of training batch ``at`` (counted over the fit); keeps
    the swapped layers seen at that moment."""

    count = 0
    swapped: list = []

    def __init__(self, at=None):
        self.at = at

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            Interrupt.count += 1
            if Interrupt.count == self.at:
                Interrupt.swapped = sparse_training_layers(net.module_)
                raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        Interrupt.epochs += 1


Interrupt.epochs = 0


def user_net(module=UserNet, hidden=(H1, H2), callbacks=(), **kw):
    """The tiny classifier net (2 epochs, batches of 64) around ``module``."""
    net = make_tiny_net(max_epochs=kw.pop("max_epochs", 2), module__hidden_units=hidden,
                        callbacks=[("shapes", Shapes()), *callbacks], **kw)
    return net.set_params(module=module)


def expected_units(sizes, rate, n_rounds, expected_kept):
    """Units kept per layer and round: n - round(rate * n), never the last one."""
    return expected_kept(list(sizes), [rate] * len(sizes), n_rounds)


def user_weights(k1, k2):
    return N_IN * k1 + k1 * k2 + k2 * N_CLASSES


def assert_unit_masks(masks, module, keep1, keep2):
    """UserNet's masks and weights: pruned units lose their rows and their
    consumers' columns (exact zeros there); kept units keep every weight."""
    assert torch.equal(masks["l1.weight"], keep1[:, None].expand(H1, N_IN))
    assert torch.equal(masks["l2.weight"], keep2[:, None] & keep1[None, :])
    assert torch.equal(masks["out.weight"], keep2[None, :].expand(N_CLASSES, H2))
    params = dict(module.named_parameters())
    for name, mask in masks.items():
        w = params[name].detach()
        assert w.shape == mask.shape
        assert int(torch.count_nonzero(w[~mask])) == 0, name
        assert int(torch.count_nonzero(w[mask])) == int(mask.sum()), name


def units_of(masks):
    """UserNet's kept units, read from the masks (a row kept at all)."""
    return masks["l1.weight"].any(1), masks["l2.weight"].any(1)


def without(frame, *cols):
    return frame.drop(columns=["wall_time", *cols])


# -- the reference fits ---------------------------------------------------------------
@pytest.fixture(scope="module")
def shrunk_fit(make_clf, digits_120):
    Shapes.seen, Shapes.ended = [], []
    est = make_clf(user_net(), n_rounds=3).fit(*digits_120)
    return est, list(Shapes.seen)


@pytest.fixture(scope="module")
def masked_fit(make_clf, digits_120):
    Shapes.seen = []
    est = make_clf(user_net(), n_rounds=3, sparse_training=False).fit(*digits_120)
    return est, list(Shapes.seen)


# -- counts -------------------------------------------------------------------------
def test_units_per_round_are_exact(shrunk_fit, expected_kept):
    est, _ = shrunk_fit
    kept = expected_units((H1, H2), 0.2, 3, expected_kept)
    assert kept == [[20, 10], [16, 8], [13, 6], [10, 5]]
    r = est.rounds_
    assert r["n_units"].tolist() == [a + b for a, b in kept] == [30, 24, 19, 15]
    assert r["units_remaining"].tolist() == pytest.approx(
        [(a + b) / 30 for a, b in kept])
    assert r["n_weights"].tolist() == [user_weights(a, b) for a, b in kept]
    assert r["weights_remaining"].tolist() == pytest.approx(
        [user_weights(a, b) / user_weights(H1, H2) for a, b in kept])
    layers = est.layers_.set_index("name")
    assert layers.loc["l1.weight", "units_kept"] == 10
    assert layers.loc["l1.weight", "units"] == 20
    assert layers.loc["l2.weight", "units_kept"] == 5
    assert layers.loc["l2.weight", "units"] == 10
    # the output layer's units (the classes) are never pruned
    assert np.isnan(layers.loc["out.weight", "units_kept"])
    assert np.isnan(layers.loc["out.weight", "units"])
    assert layers["kept"].tolist() == [64 * 10, 10 * 5, 10 * 5]
    keep1, keep2 = units_of(est.masks_)
    assert int(keep1.sum()) == 10 and int(keep2.sum()) == 5


def test_pruned_units_lose_rows_and_consumer_columns(shrunk_fit):
    est, _ = shrunk_fit
    module = est.net_.module_
    assert list(est.masks_) == ["l1.weight", "l2.weight", "out.weight"]
    # the original shapes, the original layer objects
    assert type(module.l1) is nn.Linear and type(module.out) is nn.Linear
    assert module.l1.weight.shape == (H1, N_IN)
    assert module.l2.weight.shape == (H2, H1)
    assert module.out.weight.shape == (N_CLASSES, H2)
    assert sparse_training_layers(module) == []
    keep1, keep2 = units_of(est.masks_)
    assert_unit_masks(est.masks_, module, keep1, keep2)
    for gone in (~keep1).nonzero().squeeze(1).tolist():
        assert not est.masks_["l1.weight"][gone].any()
        assert not est.masks_["l2.weight"][:, gone].any()
    for gone in (~keep2).nonzero().squeeze(1).tolist():
        assert not est.masks_["l2.weight"][gone].any()
        assert not est.masks_["out.weight"][:, gone].any()


def test_rounds_train_physically_smaller_layers(shrunk_fit, masked_fit, expected_kept):
    _, shrunk = shrunk_fit
    _, masked = masked_fit
    kept = expected_units((H1, H2), 0.2, 3, expected_kept)
    assert len(shrunk) == len(masked) == 4
    full = {"l1.weight": (H1, N_IN), "l2.weight": (H2, H1),
            "out.weight": (N_CLASSES, H2)}
    assert {n: s for n, s in shrunk[0].items() if n in full} == full  # dense round 0
    for (k1, k2), seen in zip(kept[1:], shrunk[1:]):
        assert {n: s for n, s in seen.items() if n.endswith("weight")} == {
            "l1.inner.weight": (k1, N_IN),
            "l2.inner.weight": (k2, k1),
            "out.inner.weight": (N_CLASSES, k2),
        }
        assert seen["l1.inner.bias"] == (k1,) and seen["out.inner.bias"] == (N_CLASSES,)
    for seen in masked:  # sparse_training=False: dense with masks every round
        assert {n: s for n, s in seen.items() if n in full} == full


def test_shrunk_and_masked_fits_agree(shrunk_fit, masked_fit, digits_120):
    X, _ = digits_120
    a, _ = shrunk_fit
    b, _ = masked_fit
    assert a.masks_.keys() == b.masks_.keys()
    for name in a.masks_:
        assert torch.equal(a.masks_[name], b.masks_[name]), name
    assert a.rounds_["n_units"].tolist() == b.rounds_["n_units"].tolist()
    np.testing.assert_allclose(a.rounds_["train_loss"], b.rounds_["train_loss"],
                               rtol=1e-4)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-5)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    for (na, pa), (nb, pb) in zip(a.net_.module_.named_parameters(),
                                  b.net_.module_.named_parameters()):
        assert na == nb
        torch.testing.assert_close(pa, pb, atol=1e-5, rtol=1e-4)
    # the smaller rounds cost fewer multiply-adds; the masked ones do not shrink
    macs_a, macs_b = a.rounds_["train_macs"].tolist(), b.rounds_["train_macs"].tolist()
    assert macs_a[0] == macs_b[0] and macs_b == [macs_b[0]] * 4
    assert macs_a == sorted(macs_a, reverse=True) and macs_a[3] < macs_a[0]


# -- select, warm start, pickle, clone, search, pipeline --------------------------
@pytest.mark.filterwarnings("ignore:select='best' without a validation split")
def test_select_best_keeps_the_best_rounds_units(make_clf, digits_120, expected_kept):
    X, y = digits_120
    net = user_net(max_epochs=6, lr=0.05)
    best = make_clf(net, n_rounds=3, select="best").fit(X, y)
    scores = best.rounds_["score"].tolist()
    # the highest score, ties to the sparser round; a pruned round in this setup
    chosen = max(i for i, s in enumerate(scores) if s == max(scores))
    assert best.selected_round_ == chosen >= 1
    assert best.rounds_["selected"].tolist() == [i == chosen for i in range(4)]
    # the ticket is that round's: its units, masks and weights
    (k1, k2) = expected_units((H1, H2), 0.2, 3, expected_kept)[chosen]
    layers = best.layers_.set_index("name")
    assert layers.loc["l1.weight", "units_kept"] == k1
    assert layers.loc["l2.weight", "units_kept"] == k2
    kept_share = user_weights(k1, k2) / user_weights(H1, H2)
    assert best.sparsity_ == pytest.approx(1 - kept_share)
    one = make_clf(user_net(max_epochs=6, lr=0.05), n_rounds=chosen).fit(X, y)
    for name, mask in one.masks_.items():
        assert torch.equal(best.masks_[name], mask), name
    np.testing.assert_array_equal(best.predict_proba(X), one.predict_proba(X))
    assert_unit_masks(best.masks_, best.net_.module_, *units_of(best.masks_))


def test_warm_start_continues_the_unit_counts(make_clf, digits_120, expected_kept):
    X, y = digits_120
    est = make_clf(user_net()).fit(X, y)
    first = est.rounds_.copy()
    masks = {n: m.clone() for n, m in est.masks_.items()}
    assert first["n_units"].tolist() == [30, 24, 19]
    est.set_params(warm_start=True, n_rounds=4).fit(X, y)
    kept = expected_units((H1, H2), 0.2, 4, expected_kept)
    assert est.rounds_["round"].tolist() == [0, 1, 2, 3, 4]
    assert est.rounds_["n_units"].tolist() == [a + b for a, b in kept] == [
        30, 24, 19, 15, 12]
    assert without(est.rounds_.iloc[:3], "selected").equals(without(first, "selected"))
    layers = est.layers_.set_index("name")
    assert layers.loc["l1.weight", "units_kept"] == kept[-1][0] == 8
    assert layers.loc["l2.weight", "units_kept"] == kept[-1][1] == 4
    for name, mask in est.masks_.items():  # masks only shrink
        assert not (mask & ~masks[name]).any(), name
    assert_unit_masks(est.masks_, est.net_.module_, *units_of(est.masks_))


def test_pickle_round_trip(shrunk_fit, digits_120):
    X, _ = digits_120
    est, _ = shrunk_fit
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    assert back.granularity == "neuron"
    assert back.rounds_["n_units"].tolist() == est.rounds_["n_units"].tolist()
    for name, mask in est.masks_.items():
        assert torch.equal(back.masks_[name], mask)
    assert back.to_compact().removed_units == {"l1": 10, "l2": 5}


def test_clone_keeps_granularity_and_refits_the_same(shrunk_fit, digits_120):
    est, _ = shrunk_fit
    fresh = clone(est)
    assert fresh.get_params()["granularity"] == "neuron"
    assert fresh.get_params()["prune_rate"] == 0.2
    assert not hasattr(fresh, "masks_") and not hasattr(fresh, "rounds_")
    fresh.fit(*digits_120)
    for name, mask in est.masks_.items():
        assert torch.equal(fresh.masks_[name], mask), name
    assert without(fresh.rounds_).equals(without(est.rounds_))


def test_grid_search_over_granularity(make_clf, digits_120):
    X, y = digits_120
    search = GridSearchCV(make_clf(user_net(), n_rounds=1),
                          {"granularity": ["weight", "neuron"]}, cv=2).fit(X, y)
    assert list(search.cv_results_["param_granularity"]) == ["weight", "neuron"]
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert best.granularity == search.best_params_["granularity"]
    if best.granularity == "neuron":
        assert best.rounds_["n_units"].tolist() == [30, 24]
    else:
        assert best.rounds_["n_units"].isna().all()
        assert "units_kept" not in best.layers_.columns


def test_inside_a_pipeline(make_clf, digits_120):
    X, y = digits_120
    pipe = make_pipeline(StandardScaler(), make_clf(user_net())).fit(X, y)
    est = pipe[-1]
    assert est.rounds_["n_units"].tolist() == [30, 24, 19]
    assert pipe.predict(X).shape == y.shape
    assert 0.0 <= pipe.score(X, y) <= 1.0
    assert_unit_masks(est.masks_, est.net_.module_, *units_of(est.masks_))


# -- Ctrl-C inside a shrunk round ---------------------------------------------------
BATCHES_PER_ROUND = 4  # 120 rows in batches of 64, 2 epochs


def test_ctrl_c_in_a_shrunk_round_restores_the_module(make_clf, digits_120):
    X, y = digits_120
    reference = make_clf(user_net(callbacks=[("stop", Interrupt())]), n_rounds=1)
    reference.fit(X, y)
    Interrupt.count, Interrupt.swapped = 0, []
    at = 2 * BATCHES_PER_ROUND + 2  # the second batch of round 2
    est = make_clf(user_net(callbacks=[("stop", Interrupt(at))]), n_rounds=3)
    with pytest.warns(RuntimeWarning, match=r"after round 1 completed.*keeps round 1"):
        est.fit(X, y)
    assert Interrupt.count == at
    assert Interrupt.swapped == ["l1", "l2", "out"]  # it stopped a shrunk round
    assert est.interrupted_ is True
    assert est.rounds_["round"].tolist() == [0, 1]
    assert est.rounds_["n_units"].tolist() == [30, 24]
    module = est.net_.module_
    assert sparse_training_layers(module) == []
    assert not any(isinstance(m, ShrunkLayer) for m in module.modules())
    assert {n: tuple(p.shape) for n, p in module.named_parameters()} == {
        "l1.weight": (H1, N_IN), "l1.bias": (H1,), "l2.weight": (H2, H1),
        "l2.bias": (H2,), "out.weight": (N_CLASSES, H2), "out.bias": (N_CLASSES,),
    }
    # exactly round 1's ticket
    for name, mask in reference.masks_.items():
        assert torch.equal(est.masks_[name], mask), name
    np.testing.assert_array_equal(est.predict_proba(X), reference.predict_proba(X))
    assert_unit_masks(est.masks_, module, *units_of(est.masks_))
    # a warm start resumes the counts where they were
    est.set_params(warm_start=True).fit(X, y)
    assert est.interrupted_ is False
    assert est.rounds_["n_units"].tolist() == [30, 24, 19, 15]


# -- ticket files -------------------------------------------------------------------
def test_ticket_save_load_predicts_the_same(shrunk_fit, make_clf, digits_120, tmp_path):
    X, _ = digits_120
    est, _ = shrunk_fit
    est.save_ticket(tmp_path / "structured")
    loaded = make_clf(user_net(), n_rounds=3).load_ticket(tmp_path / "structured")
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    for name, mask in est.masks_.items():
        assert torch.equal(loaded.masks_[name], mask), name
    assert loaded.rounds_["n_units"].tolist() == [30, 24, 19, 15]
    assert loaded.layers_["units_kept"].tolist()[:2] == [10, 5]
    assert_unit_masks(loaded.masks_, loaded.net_.module_, *units_of(loaded.masks_))


# -- other layer types ------------------------------------------------------------
def test_conv_bn_channels_by_bn_scale(make_clf, digits_120, expected_kept):
    X, y = digits_120
    images = X.reshape(-1, 1, 8, 8)
    Shapes.seen, Shapes.ended = [], []
    net = user_net(ConvBN, hidden=(8,))
    est = make_clf(net, granularity="channel", strategy="bn_scale", prune_rate=0.25
                   ).fit(images, y)
    kept = [k for (k,) in expected_kept([8], [0.25], 2)]
    assert kept == [8, 6, 4]
    assert est.rounds_["n_units"].tolist() == kept
    assert est.layers_.set_index("name").loc["conv.weight", "units_kept"] == 4
    # each round trained 6, then 4 channels (conv, BatchNorm and the columns
    # of the flattened 4x4 maps)
    for k, seen in zip(kept[1:], Shapes.seen[1:]):
        assert seen["conv.inner.weight"] == (k, 1, 3, 3)
        assert seen["bn.inner.weight"] == (k,)
        assert seen["out.inner.weight"] == (N_CLASSES, 16 * k)
    # bn_scale: each prune keeps the channels with the largest |gamma| of the
    # round just trained
    gamma0 = Shapes.ended[0]["bn.weight"].abs()
    first = torch.sort(torch.argsort(gamma0, descending=True)[:6]).values
    gamma1 = Shapes.ended[1]["bn.inner.weight"].abs()  # channels `first`, in order
    second = torch.sort(first[torch.argsort(gamma1, descending=True)[:4]]).values
    channels = est.masks_["conv.weight"].flatten(1)
    keep = channels.any(1)
    assert (channels.all(1) == keep).all()
    assert keep.nonzero().squeeze(1).tolist() == second.tolist()
    # the flattened consumer columns of a pruned channel go too
    out = est.masks_["out.weight"].reshape(N_CLASSES, 8, 16)
    assert torch.equal(out, keep[None, :, None].expand(N_CLASSES, 8, 16))
    module = est.net_.module_
    assert module.conv.weight.shape == (8, 1, 3, 3)
    assert int(torch.count_nonzero(module.conv.weight[~keep])) == 0
    small = est.to_compact()
    assert small.conv.out_channels == 4 and small.bn.num_features == 4
    assert small.out.in_features == 64 and small.removed_units == {"conv": 4}
    with torch.no_grad():
        x = torch.as_tensor(images[:16])
        torch.testing.assert_close(small(x), module.eval()(x), atol=1e-5, rtol=1e-5)


RNG = np.random.default_rng(0)
SEQ = RNG.normal(size=(96, 5, 4)).astype(np.float32)
SEQ_Y = (SEQ[:, :, 0].sum(1) > 0).astype(np.int64) + (SEQ[:, :, 1].sum(1) > 1)


def test_gru_hidden_units_across_gates(make_clf, expected_kept):
    Shapes.seen = []
    est = make_clf(user_net(GRUNet, hidden=(12,)), prune_rate=0.25).fit(SEQ, SEQ_Y)
    kept = [k for (k,) in expected_kept([12], [0.25], 2)]
    assert kept == [12, 9, 7]
    assert est.rounds_["n_units"].tolist() == kept
    assert Shapes.seen[2]["rnn.inner.weight_hh_l0"] == (3 * 7, 7)
    masks = est.masks_
    keep = masks["rnn.weight_hh_l0"].any(0)  # a hidden unit's column
    assert int(keep.sum()) == 7
    gates = keep.repeat(3)  # rows r, z, n of every unit
    assert torch.equal(masks["rnn.weight_ih_l0"], gates[:, None].expand(36, 4))
    assert torch.equal(masks["rnn.weight_hh_l0"], gates[:, None] & keep[None, :])
    assert torch.equal(masks["out.weight"], keep[None, :].expand(3, 12))
    rnn = est.net_.module_.rnn
    assert rnn.weight_hh_l0.shape == (36, 12) and rnn.hidden_size == 12
    for name, mask in masks.items():
        w = dict(est.net_.module_.named_parameters())[name]
        assert int(torch.count_nonzero(w[~mask])) == 0, name
    small = est.to_compact()
    assert small.rnn.hidden_size == 7 and small.removed_units == {"rnn": 5}
    with torch.no_grad():
        x = torch.as_tensor(SEQ[:8])
        torch.testing.assert_close(small(x), est.net_.module_.eval()(x),
                                   atol=1e-5, rtol=1e-5)


# -- rates --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, units",
    [
        ({"type_rates": {"linear": 0.5}}, [(20, 10), (10, 5), (5, 2)]),
        ({"layer_rates": {"l1": 0.5, "l2.weight": 0.1}}, [(20, 10), (10, 9), (5, 8)]),
    ],
    ids=["type_rates", "layer_rates"],
)
def test_rates_count_units(make_clf, digits_120, params, units):
    est = make_clf(user_net(), **params).fit(*digits_120)
    assert est.rounds_["n_units"].tolist() == [a + b for a, b in units]
    assert est.rounds_["n_weights"].tolist() == [user_weights(a, b) for a, b in units]
    layers = est.layers_.set_index("name")
    assert layers.loc["l1.weight", "units_kept"] == units[-1][0]
    assert layers.loc["l2.weight", "units_kept"] == units[-1][1]


def test_global_scope_keeps_a_unit_in_every_layer(make_clf, digits_120):
    est = make_clf(user_net(), n_rounds=3, scope="global").fit(*digits_120)
    assert est.rounds_["n_units"].tolist()[:2] == [30, 24]  # 20% of all units
    layers = est.layers_.set_index("name")
    # a ranking across layers may take a layer down to one unit, never to 0
    assert layers.loc["l1.weight", "units_kept"] >= 1
    assert layers.loc["l2.weight", "units_kept"] >= 1
    assert (est.rounds_["n_units"] >= 2).all()
    kept = est.masks_["out.weight"].any(dim=0).sum()
    assert int(kept) == layers.loc["l2.weight", "units_kept"]


# -- refusals ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, match",
    [
        ({"granularity": "bogus"}, "granularity"),
        ({"granularity": "weight", "strategy": "l1_norm"}, "l1_norm"),
        ({"granularity": "weight", "strategy": "l2_norm"}, "l2_norm"),
        ({"granularity": "weight", "strategy": "bn_scale"}, "bn_scale"),
        ({"schedule": "at_init", "strategy": "snip"}, "at_init.*granularity='neuron'"),
        ({"rescale": True}, "rescale=True.*granularity='neuron'"),
        ({"granularity": "channel", "rescale": True}, "granularity='channel'"),
        ({"strategy": "bn_scale"}, "bn_scale.*BatchNorm"),  # UserNet has none
    ],
    ids=["bogus", "l1_weight", "l2_weight", "bn_weight", "at_init", "rescale",
         "rescale_channel", "bn_without_bn"],
)
def test_refused_at_fit(make_clf, digits_120, params, match):
    est = make_clf(user_net(), **params)
    with pytest.raises(ValueError, match=match):
        est.fit(*digits_120)
    assert not hasattr(est, "rounds_")


def test_untraceable_module_is_refused_naming_the_trace(make_clf, digits_120):
    est = make_clf(user_net(Untraceable))
    with pytest.raises(GraphError) as info:
        est.fit(*digits_120)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "cannot trace Untraceable" in message and "control flow" in message
    assert "granularity='weight'" in message
    assert not hasattr(est, "rounds_")
    # weights need no trace
    fitted = make_clf(user_net(Untraceable), granularity="weight").fit(*digits_120)
    assert fitted.rounds_["n_units"].isna().all()


# -- the regressor and the cache ---------------------------------------------------
def test_regressor(make_reg, regression_data, expected_kept):
    X, y = regression_data
    net = make_tiny_regressor_net(max_epochs=10, module__hidden_units=(H1, H2))
    net.set_params(module=UserNet, module__n_in=6, module__n_out=1)
    reg = make_reg(net).fit(X, y)
    kept = expected_units((H1, H2), 0.2, 2, expected_kept)
    assert reg.rounds_["n_units"].tolist() == [30, 24, 19]
    assert reg.rounds_["n_weights"].tolist() == [6 * a + a * b + b for a, b in kept]
    pred = reg.predict(X)
    assert pred.shape == (160,) and np.isfinite(pred).all()
    small = reg.to_compact()
    assert small.removed_units == {"l1": 7, "l2": 4}
    with torch.no_grad():
        x = torch.as_tensor(X)
        torch.testing.assert_close(small(x), reg.net_.module_.eval()(x),
                                   atol=1e-5, rtol=1e-5)


def test_dense_round_cache_serves_a_structured_fit(make_clf, digits_120, shrunk_fit,
                                                   tmp_path):
    X, y = digits_120
    ref, _ = shrunk_fit
    counting = [("stop", Interrupt())]
    # round 0 is cached by a fit of weights: pruning parameters are not its key
    make_clf(user_net(callbacks=counting), n_rounds=1, granularity="weight",
             memory=str(tmp_path)).fit(X, y)
    Interrupt.epochs = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        est = make_clf(user_net(callbacks=counting), n_rounds=3,
                       memory=str(tmp_path)).fit(X, y)
    assert Interrupt.epochs == 3 * 2  # rounds 1-3 only: round 0 came from the cache
    assert est.rounds_["n_units"].tolist() == [30, 24, 19, 15]
    assert without(est.rounds_.iloc[1:]).equals(without(ref.rounds_.iloc[1:]))
    for name, mask in ref.masks_.items():
        assert torch.equal(est.masks_[name], mask), name
    np.testing.assert_array_equal(est.predict_proba(X), ref.predict_proba(X))


def test_warm_start_cannot_change_the_granularity(make_clf, digits_120):
    est = make_clf(user_net(), n_rounds=1).fit(*digits_120)
    est.set_params(warm_start=True, n_rounds=2, granularity="weight")
    with pytest.raises(ValueError, match="granularity='weight' cannot continue"):
        est.fit(*digits_120)


def test_a_structured_ticket_loads_only_into_a_structured_estimator(
    make_clf, digits_120, tmp_path
):
    est = make_clf(user_net(), n_rounds=1).fit(*digits_120)
    est.save_ticket(tmp_path / "t.safetensors")
    other = make_clf(user_net(), n_rounds=1, granularity="weight")
    with pytest.raises(ValueError, match="granularity=neuron"):
        other.load_ticket(tmp_path / "t.safetensors")
