"""to_compact() and to_sparse() of tickets in user modules (layers named l1, l2,
out and a custom forward, so only tracing knows the dataflow): the units they
remove, counted exactly, and outputs allclose to the masked ``net_.module_``;
granularity="weight" tickets with whole units pruned by hand too."""

import pytest
import torch
from torch import nn

from sklottery.export import SparseLinear
from tests.conftest import make_tiny_net

pytestmark = pytest.mark.lottery(n_rounds=1, prune_rate=0.2)

N_IN, H1, H2, N_OUT = 64, 20, 10, 10


class UserNet(nn.Module):
    def __init__(self, hidden_units=(H1, H2)):
        super().__init__()
        self.l1 = nn.Linear(N_IN, hidden_units[0])
        self.l2 = nn.Linear(*hidden_units)
        self.out = nn.Linear(hidden_units[1], N_OUT)

    def forward(self, x):
        h = torch.relu(self.l1(x))
        return self.out(torch.relu(self.l2(h)))


def user_net():
    net = make_tiny_net(max_epochs=2, module__hidden_units=(H1, H2))
    return net.set_params(module=UserNet)


def assert_same_outputs(small, est, X):
    module = est.net_.module_.eval()
    with torch.no_grad():
        x = torch.as_tensor(X)
        expected, got = module(x), small(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def dead_by_columns(masks):
    """Units whose consumer columns are all pruned: what tracing removes."""
    return {"l1": int((~masks["l2.weight"].any(0)).sum()),
            "l2": int((~masks["out.weight"].any(0)).sum())}


def shapes(module):
    return {n: tuple(p.shape) for n, p in module.named_parameters()}


@pytest.fixture(scope="module")
def structured(make_clf, digits_120):
    """A neuron ticket: 20 -> 16 -> 13 and 10 -> 8 -> 6 units."""
    return make_clf(user_net(), granularity="neuron", n_rounds=2).fit(*digits_120)


@pytest.fixture(scope="module")
def hand_pruned(make_clf, digits_120):
    """A weight ticket (one round at 20%: no unit dead by chance) with units
    pruned whole by hand: l1's 1, 5 and 7 (rows and consumer columns), l2's 0
    and 3 (consumer columns only), and l1's 10 without inputs (only its row:
    it still feeds l2 its constant relu(bias))."""
    est = make_clf(user_net(), granularity="weight").fit(*digits_120)
    assert dead_by_columns(est.masks_) == {"l1": 0, "l2": 0}
    masks, module = est.masks_, est.net_.module_
    with torch.no_grad():
        for j in (1, 5, 7):
            masks["l1.weight"][j] = False
            masks["l2.weight"][:, j] = False
        for k in (0, 3):
            masks["out.weight"][:, k] = False
        masks["l1.weight"][10] = False
        for name, p in module.named_parameters():
            if name in masks:
                p.mul_(masks[name])
    return est


def test_to_compact_of_a_structured_ticket(structured, digits_120):
    X, _ = digits_120
    assert structured.rounds_["n_units"].tolist() == [30, 24, 19]
    small = structured.to_compact()
    assert small.removed_units == {"l1": 7, "l2": 4}
    assert small.removed_units == dead_by_columns(structured.masks_)
    assert shapes(small) == {
        "l1.weight": (13, N_IN), "l1.bias": (13,), "l2.weight": (6, 13),
        "l2.bias": (6,), "out.weight": (N_OUT, 6), "out.bias": (N_OUT,),
    }
    assert isinstance(small, UserNet) and not small.training
    assert not any(p.requires_grad for p in small.parameters())
    # every weight it keeps is one the ticket keeps
    assert sum(int(torch.count_nonzero(p)) for n, p in small.named_parameters()
               if n.endswith("weight")) == structured.rounds_["n_weights"].iloc[-1]
    assert_same_outputs(small, structured, X)
    # the fitted module is left as it was
    assert shapes(structured.net_.module_)["l1.weight"] == (H1, N_IN)
    # another X traces the same
    assert shapes(structured.to_compact(X[10:12])) == shapes(small)


def test_to_sparse_of_a_structured_ticket(structured, digits_120):
    X, _ = digits_120
    exported = structured.to_sparse(layout="dense")
    assert exported.removed_units == {"l1": 7, "l2": 4}
    rows = {r["name"]: r for r in exported.sparse_layouts}
    assert rows["l1"]["original_shape"] == (H1, N_IN)
    assert rows["l1"]["shape"] == (13, N_IN)
    assert rows["l2"]["removed_units"] == 4 and rows["out"]["removed_units"] == 0
    assert rows["out"]["shape"] == (N_OUT, 6)
    assert_same_outputs(exported, structured, X)
    for layout in ("sparse", "auto"):
        assert_same_outputs(structured.to_sparse(layout=layout), structured, X)
    # compacted, a structured ticket has no zero weight left: "sparse" (which
    # forces CSR on layers with a zero) keeps every layer dense
    stored = structured.to_sparse(layout="sparse")
    assert [r["density"] for r in stored.sparse_layouts] == [1.0, 1.0, 1.0]
    assert [r["layout"] for r in stored.sparse_layouts] == ["dense"] * 3
    assert not any(isinstance(m, SparseLinear) for m in stored.modules())


def test_weight_ticket_with_units_pruned_by_hand(hand_pruned, digits_120):
    X, _ = digits_120
    masks = hand_pruned.masks_
    # the unit without inputs is not removed: its columns are still read
    assert dead_by_columns(masks) == {"l1": 3, "l2": 2}
    small = hand_pruned.to_compact()
    assert small.removed_units == {"l1": 3, "l2": 2}
    assert shapes(small)["l1.weight"] == (17, N_IN)
    assert shapes(small)["l2.weight"] == (8, 17)
    assert shapes(small)["out.weight"] == (N_OUT, 8)
    assert_same_outputs(small, hand_pruned, X)
    exported = hand_pruned.to_sparse()
    assert exported.removed_units == {"l1": 3, "l2": 2}
    assert {r["name"]: r["removed_units"] for r in exported.sparse_layouts} == {
        "l1": 3, "l2": 2, "out": 0}
    assert_same_outputs(exported, hand_pruned, X)
    # CSR on the smaller layers: still the same outputs
    stored = hand_pruned.to_sparse(layout="sparse")
    assert stored.removed_units == {"l1": 3, "l2": 2}
    assert isinstance(stored.l1, SparseLinear) and isinstance(stored.l2, SparseLinear)
    assert stored.l1.out_features == 17 and stored.l2.in_features == 17
    assert_same_outputs(stored, hand_pruned, X)


def test_untouched_weight_ticket_removes_nothing(make_clf, digits_120):
    X, _ = digits_120
    est = make_clf(user_net(), granularity="weight").fit(*digits_120)
    small = est.to_compact()
    assert small.removed_units == {"l1": 0, "l2": 0}
    assert shapes(small) == shapes(est.net_.module_)
    assert_same_outputs(small, est, X)
    assert est.to_sparse().removed_units == {"l1": 0, "l2": 0}


def test_loaded_ticket_compacts_with_or_without_X(structured, make_clf, digits_120,
                                                  tmp_path):
    X, _ = digits_120
    structured.save_ticket(tmp_path / "ticket")
    loaded = make_clf(user_net(), granularity="neuron", n_rounds=2).load_ticket(
        tmp_path / "ticket")
    small = loaded.to_compact(X)
    assert small.removed_units == {"l1": 7, "l2": 4}
    assert shapes(small) == shapes(structured.to_compact())
    assert_same_outputs(small, loaded, X)
    assert_same_outputs(small, structured, X)
    # without X a loaded ticket traces rows of zeros of the input's shape
    # (load_ticket keeps those); the same compact module
    untraced = loaded.to_compact()
    assert untraced.removed_units == small.removed_units
    assert shapes(untraced) == shapes(small)
    assert_same_outputs(untraced, loaded, X)
    assert loaded.to_sparse().removed_units == {"l1": 7, "l2": 4}


def test_to_compact_without_rows_to_trace_needs_X(structured, digits_120):
    """An estimator holding no rows to trace (e.g. unpickled from an older
    version) is told to pass X."""
    import copy

    X, _ = digits_120
    est = copy.deepcopy(structured)
    del est._example_rows
    with pytest.raises(ValueError, match=r"to_compact\(X\)"):
        est.to_compact()
    assert est.to_compact(X).removed_units == {"l1": 7, "l2": 4}
