"""The loss gradients of gradient strategies (sklottery.training._gradients)."""

import torch

from sklottery import Pruner
from sklottery.training import gradient_function, loss_batches


def test_gradient_function_uses_the_same_seeded_batches(net, data):
    X, y = map(torch.as_tensor, data)
    pruner = Pruner(net.module_, strategy="snip", prune_rate=0.5)
    grad_fn = gradient_function(net, pruner, X, y, max_batches=2, seed=4)
    a, b = grad_fn(), grad_fn()
    assert set(a) == set(pruner.masks)
    for name in a:
        assert torch.equal(a[name], b[name])
        assert a[name].shape == pruner.masks[name].shape
    other = gradient_function(net, pruner, X, y, max_batches=2, seed=5)()
    assert not torch.equal(a["hidden.0.weight"], other["hidden.0.weight"])
    # all batches (3 of 64 rows): the mean gradient of the net's own loss
    X, y = X[:192], y[:192]
    everything = gradient_function(net, pruner, X, y, max_batches=100, seed=0)()
    net.module_.zero_grad()
    loss = net.get_loss(net.infer(X), y, X=X, training=False)
    loss.backward()
    w = dict(net.module_.named_parameters())["output.weight"]
    assert torch.allclose(everything["output.weight"], w.grad, atol=1e-5)


def test_loss_batches_are_distinct_seeded_rows_of_the_batch_size(net, data):
    X, y = map(torch.as_tensor, data)
    ids = torch.arange(len(X))  # as targets: which rows each batch holds
    _, batches = loss_batches(net, X, ids, max_batches=3, seed=1)
    assert [len(b) for _, b in batches] == [64, 64, 64]
    seen = torch.cat([b for _, b in batches])
    assert len(set(seen.tolist())) == 192  # drawn without replacement
    assert torch.equal(torch.cat([Xb for Xb, _ in batches]), X[seen])
    _, again = loss_batches(net, X, ids, max_batches=3, seed=1)
    assert torch.equal(torch.cat([b for _, b in again]), seen)
    assert not torch.equal(seen, torch.arange(192))  # a random order
    loss_fn, batches = loss_batches(net, X, y, max_batches=1)
    Xb, yb = batches[0]
    expected = net.get_loss(net.infer(Xb), yb, X=Xb, training=False)
    assert torch.equal(loss_fn(net.module_, batches[0]), expected)
