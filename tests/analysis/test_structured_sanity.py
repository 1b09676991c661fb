"""sanity_checks of a structured ticket (granularity="neuron"/"channel"): the
controls are over units -- every variant keeps the ticket's weights and units
per layer, the shuffled and random controls pick whole units, inverted keeps
each layer's lowest-ranked units (l1_norm, bn_scale)."""

import pytest
import torch
from skorch.dataset import ValidSplit
from torch import nn

import sklottery.analysis._sanity as sanity_module
from sklottery import sanity_checks
from sklottery.analysis._sanity import CONTROLS
from tests.conftest import make_tiny_net

pytestmark = [
    pytest.mark.lottery(granularity="neuron", n_rounds=2, prune_rate=0.3),
    pytest.mark.filterwarnings("ignore:the ticket .* does not beat"),
]

N_IN, H1, H2, N_OUT = 64, 20, 10, 10


class UserNet(nn.Module):
    def __init__(self, hidden_units=(H1, H2)):
        super().__init__()
        self.l1 = nn.Linear(N_IN, hidden_units[0])
        self.l2 = nn.Linear(*hidden_units)
        self.out = nn.Linear(hidden_units[1], N_OUT)

    def forward(self, x):
        return self.out(torch.relu(self.l2(torch.relu(self.l1(x)))))


class ConvBN(nn.Module):
    def __init__(self, hidden_units=(8,)):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.out = nn.Linear(8 * 16, N_OUT)

    def forward(self, x):
        return self.out(torch.flatten(self.pool(torch.relu(self.bn(self.conv(x)))), 1))


def net_of(module, **kw):
    net = make_tiny_net(max_epochs=2, train_split=ValidSplit(4),
                        module__hidden_units=kw.pop("hidden", (H1, H2)), **kw)
    return net.set_params(module=module)


def capture_inversion(monkeypatch, record):
    """Keep the per-weight scores sanity_checks ranks "inverted" by, and the
    BatchNorm scales of the network they were computed on."""
    real = sanity_module._inversion_scores

    def spy(estimator, setup, seed):
        scores = real(estimator, setup, seed)
        record["scores"] = {n: s.clone() for n, s in scores.items()}
        record["gammas"] = {
            n: m.weight.detach().clone()
            for n, m in setup.net.module_.named_modules()
            if isinstance(m, nn.BatchNorm2d)
        }
        return scores

    monkeypatch.setattr(sanity_module, "_inversion_scores", spy)


@pytest.fixture(scope="module")
def ticket(make_clf, digits_120):
    return make_clf(net_of(UserNet), strategy="l1_norm").fit(*digits_120)


@pytest.fixture(scope="module")
def checked(ticket, digits_120):
    record = {}
    with pytest.MonkeyPatch.context() as mp:
        capture_inversion(mp, record)
        frame, masks = sanity_checks(ticket, *digits_120, n_repeats=2, random_state=0,
                                     return_masks=True)
    return frame, masks, record


def counts(masks):
    return {n: int(m.sum()) for n, m in masks.items()}


def units(masks):
    """Kept units of l1 and l2: rows with any weight kept."""
    return masks["l1.weight"].any(1), masks["l2.weight"].any(1)


def assert_whole_units(masks):
    """Every hidden row is all kept or all pruned, and the consumers'
    columns follow: the masks of whole units."""
    k1, k2 = units(masks)
    assert torch.equal(masks["l1.weight"], k1[:, None].expand(H1, N_IN))
    assert torch.equal(masks["l2.weight"], k2[:, None] & k1[None, :])
    assert torch.equal(masks["out.weight"], k2[None, :].expand(N_OUT, H2))


def test_the_ticket_is_structured(ticket):
    # 20 -> 14 -> 10 and 10 -> 7 -> 5 units
    assert ticket.rounds_["n_units"].tolist() == [30, 21, 15]
    assert counts(ticket.masks_) == {"l1.weight": 10 * 64, "l2.weight": 5 * 10,
                                     "out.weight": 10 * 5}
    assert_whole_units(ticket.masks_)


def test_every_variant_keeps_the_tickets_weights_and_units(ticket, checked):
    frame, masks, _ = checked
    assert set(masks) == {(v, r) for v in ("ticket", *CONTROLS) for r in (0, 1)}
    assert len(frame) == 10
    expected = counts(ticket.masks_)
    ticket_units = [int(k.sum()) for k in units(ticket.masks_)]
    for key, variant in masks.items():
        assert counts(variant) == expected, key
        assert [int(k.sum()) for k in units(variant)] == ticket_units == [10, 5], key
        for name, m in variant.items():
            assert m.dtype == torch.bool and m.shape == ticket.masks_[name].shape
    assert (frame["n_weights"] == sum(expected.values())).all()
    assert frame["weights_remaining"].nunique() == 1


def test_ticket_and_reinit_use_the_tickets_masks(ticket, checked):
    frame, masks, _ = checked
    for r in (0, 1):
        for variant in ("ticket", "reinit"):
            for name, m in masks[(variant, r)].items():
                assert torch.equal(m, ticket.masks_[name]), (variant, r, name)
    init = dict(zip(frame["variant"], frame["init"]))
    assert init == {"ticket": "ticket", "reinit": "fresh", "shuffle": "ticket",
                    "inverted": "ticket", "random": "fresh"}


def test_shuffled_and_random_controls_pick_whole_units(ticket, checked):
    _, masks, _ = checked
    chosen = []
    for r in (0, 1):
        for variant in ("shuffle", "random", "inverted"):
            assert_whole_units(masks[(variant, r)])
        for variant in ("shuffle", "random"):
            k1, k2 = units(masks[(variant, r)])
            chosen.append((tuple(k1.tolist()), tuple(k2.tolist())))
    # random draws: not the ticket's units, and another draw every time
    t1, t2 = units(ticket.masks_)
    assert (tuple(t1.tolist()), tuple(t2.tolist())) not in chosen
    assert len(set(chosen)) == 4


def test_inverted_keeps_the_lowest_ranked_units_by_l1_norm(ticket, checked):
    _, masks, record = checked
    scores = record["scores"]
    assert set(scores) == set(ticket.masks_)
    assert all(bool((s >= 0).all()) for s in scores.values())  # |w|
    for layer, k in (("l1.weight", 10), ("l2.weight", 5)):
        unit_score = scores[layer].to(torch.float64).sum(1)  # a unit: its own row
        lowest = torch.argsort(unit_score, stable=True)[:k].sort().values
        for r in (0, 1):
            kept = masks[("inverted", r)][layer].any(1).nonzero().squeeze(1)
            assert kept.tolist() == lowest.tolist(), (layer, r)
            # every unit it keeps ranks below every unit it prunes
            gone = unit_score[~masks[("inverted", r)][layer].any(1)]
            assert unit_score[kept].max() <= gone.min()


def test_inverted_bn_scale_keeps_the_smallest_gammas(make_clf, digits_120, monkeypatch):
    X, y = digits_120
    images = X.reshape(-1, 1, 8, 8)
    est = make_clf(net_of(ConvBN, hidden=(8,)), granularity="channel",
                   strategy="bn_scale", prune_rate=0.25).fit(images, y)
    assert est.rounds_["n_units"].tolist() == [8, 6, 4]
    record = {}
    capture_inversion(monkeypatch, record)
    frame, masks = sanity_checks(est, images, y, variants=["inverted", "shuffle"],
                                 random_state=0, return_masks=True)
    assert frame["variant"].tolist() == ["ticket", "shuffle", "inverted"]
    gamma = record["gammas"]["bn"].abs()
    lowest = torch.argsort(gamma, stable=True)[:4].sort().values
    for variant in ("inverted", "shuffle"):
        channels = masks[(variant, 0)]["conv.weight"].flatten(1)
        keep = channels.any(1)
        assert (channels.all(1) == keep).all()  # whole filters
        assert int(keep.sum()) == 4
        out = masks[(variant, 0)]["out.weight"].reshape(N_OUT, 8, 16)
        assert torch.equal(out, keep[None, :, None].expand(N_OUT, 8, 16))
        if variant == "inverted":
            assert keep.nonzero().squeeze(1).tolist() == lowest.tolist()
    assert (frame["n_weights"] == sum(int(m.sum()) for m in est.masks_.values())).all()
