"""skorch's ``compile=True``: names are the uncompiled module's, masks exact.

skorch wraps ``module_`` in ``torch.compile`` (an ``OptimizedModule`` whose
tensors are named ``_orig_mod.<name>``). The fits here use the fast
``"eager"`` backend with ``fullgraph=True`` (a graph break in the forward
pass is an error) where names and hooks are checked, and torch's default
inductor backend once, for exact zeros and a graph that sees every in-place
mask and rewind (PyTorch issues #111966 and #117265: hooks and module
changes ignored after compiling).
"""

import io

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from sklottery import LotteryTicketClassifier, SupermaskClassifier
from sklottery.pruning import Pruner, find_prunable, snapshot, unwrap_compiled
from tests.conftest import make_tiny_net

PREFIX = "_orig_mod."


def _compile_failure(backend: str) -> str:
    """Why ``torch.compile`` with ``backend`` cannot run here ("" if it can)."""
    try:
        module = torch.compile(torch.nn.Linear(3, 2), backend=backend)
        module(torch.zeros(2, 3))
    except Exception as exc:  # noqa: BLE001 - any failure means: skip
        return f"torch.compile(backend={backend!r}) fails here: {exc!r}"[:300]
    return ""


def _needs(backend: str):
    reason = _compile_failure(backend)
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=96, n_features=6, n_informative=4, random_state=0
    )
    return X.astype(np.float32), y.astype(np.int64)


def _net(compiled: bool, backend: str = "eager", **kwargs):
    options = {"compile": compiled}
    if compiled and backend != "inductor":
        options.update(compile__backend=backend, compile__fullgraph=True)
    return make_tiny_net(max_epochs=2, batch_size=32, **{**options, **kwargs})


def _clf(compiled: bool, backend: str = "eager", net_options=None, **params):
    net = _net(compiled, backend, **(net_options or {}))
    return LotteryTicketClassifier(
        net, n_rounds=3, prune_rate=0.5, random_state=0, **params
    )


def _eager_agrees(clf, X):
    """The compiled module's outputs equal the uncompiled module's, holding
    the very same weights: no stale graph ignores an in-place change."""
    compiled = clf.net_.module_
    assert type(compiled).__name__ == "OptimizedModule"
    eager = unwrap_compiled(compiled)
    x = torch.as_tensor(X)
    with torch.no_grad():
        compiled.eval()
        got = compiled(x)
        want = eager(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def _assert_exact_zeros(clf):
    params = dict(unwrap_compiled(clf.net_.module_).named_parameters())
    assert set(clf.masks_) <= set(params)
    for name, mask in clf.masks_.items():
        pruned = params[name].detach()[~mask.to(params[name].device)]
        assert pruned.numel() > 0
        assert torch.count_nonzero(pruned) == 0, name


def test_unwrap_compiled_and_pruner_names():
    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    compiled = torch.compile(module, backend="eager")
    assert unwrap_compiled(compiled) is module
    assert unwrap_compiled(module) is module
    assert [t.name for t in find_prunable(compiled)] == ["0.weight", "1.weight"]
    assert list(snapshot(compiled)) == list(snapshot(module))
    pruner = Pruner(compiled, prune_rate=0.5)
    assert pruner.module is module
    assert list(pruner.masks) == ["0.weight", "1.weight"]


def test_compile_names_identical_to_uncompiled(data):
    _needs("eager")
    X, y = data
    plain = _clf(False).fit(X, y)
    comp = _clf(True).fit(X, y)
    assert type(comp.net_.module_).__name__ == "OptimizedModule"
    assert list(comp.masks_) == list(plain.masks_) == [
        "hidden.0.weight", "output.weight"
    ]
    assert comp.layers_["name"].tolist() == plain.layers_["name"].tolist()
    assert not any(PREFIX in str(n) for n in comp.layers_["name"])
    np.testing.assert_array_equal(comp.rounds_["n_weights"], plain.rounds_["n_weights"])
    np.testing.assert_array_equal(
        comp.rounds_["weights_remaining"], plain.rounds_["weights_remaining"]
    )
    np.testing.assert_array_equal(comp.layers_["kept"], plain.layers_["kept"])
    assert not any(PREFIX in n for n in comp.rewind_point_)
    # the eager backend computes what the uncompiled module computes
    for name in plain.masks_:
        assert torch.equal(comp.masks_[name], plain.masks_[name]), name
    _assert_exact_zeros(comp)
    _eager_agrees(comp, X)
    np.testing.assert_allclose(comp.transform(X), plain.transform(X), rtol=1e-5)


def test_compile_inductor_exact_zeros_after_rounds(data):
    _needs("inductor")
    X, y = data
    clf = _clf(True, backend="inductor").fit(X, y)
    assert list(clf.masks_) == ["hidden.0.weight", "output.weight"]
    assert clf.sparsity_ > 0.5
    _assert_exact_zeros(clf)
    _eager_agrees(clf, X)
    # every round's rewind and masks reached the compiled graph: its
    # predictions are those of the uncompiled module with the same weights
    eager = unwrap_compiled(clf.net_.module_)
    with torch.no_grad():
        eager.eval()
        want = eager(torch.as_tensor(X)).argmax(1).numpy()
    np.testing.assert_array_equal(clf.predict(X), want)


@pytest.mark.parametrize("saved_compiled", [True, False])
def test_ticket_interchangeable_between_compiled_and_uncompiled(data, saved_compiled):
    _needs("eager")
    X, y = data
    fitted = _clf(saved_compiled).fit(X, y)
    buf = io.BytesIO()
    fitted.save_ticket(buf)
    buf.seek(0)
    loaded = _clf(not saved_compiled).load_ticket(buf)
    assert (type(loaded.net_.module_).__name__ == "OptimizedModule") is (
        not saved_compiled
    )
    assert list(loaded.masks_) == list(fitted.masks_)
    for name, mask in fitted.masks_.items():
        assert torch.equal(loaded.masks_[name].cpu(), mask.cpu())
    np.testing.assert_allclose(
        loaded.predict_proba(X), fitted.predict_proba(X), rtol=1e-5, atol=1e-6
    )
    _assert_exact_zeros(loaded)


@pytest.mark.filterwarnings("ignore:Dynamo does not know how to trace")
def test_compile_sparse_training_layer_swaps(data):
    _needs("eager")
    X, y = data
    plain = _clf(False, sparse_training=True).fit(X, y)
    # the sparse layers' autograd functions are a graph break (they run
    # eager, between compiled graphs): no fullgraph
    comp = _clf(
        True, sparse_training=True, net_options={"compile__fullgraph": False}
    ).fit(X, y)
    assert comp.rounds_["sparse_layers"].iloc[-1] != ""
    assert list(comp.masks_) == list(plain.masks_)
    _assert_exact_zeros(comp)
    _eager_agrees(comp, X)
    np.testing.assert_allclose(
        comp.predict_proba(X), plain.predict_proba(X), rtol=1e-4, atol=1e-5
    )


def test_compile_refuses_rescale(data):
    X, y = data
    with pytest.raises(ValueError, match=r"rescale=True.*compile"):
        _clf(True, rescale=True).fit(X, y)


def test_compile_supermask_names(data):
    _needs("eager")
    X, y = data
    clf = SupermaskClassifier(
        _net(True, compile__fullgraph=False), density=0.5, random_state=0
    ).fit(X, y)
    assert type(clf.net_.module_).__name__ == "OptimizedModule"
    assert list(clf.masks_) == ["hidden.0.weight", "output.weight"]
    assert list(clf.scores_) == ["hidden.0.weight", "output.weight"]
    _assert_exact_zeros(clf)
    _eager_agrees(clf, X)
