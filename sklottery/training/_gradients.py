"""The loss gradients that gradient pruning strategies (``"snip"``, ...) and
data-driven pruning at initialization need: the net's own loss on a few
seeded training batches."""

from __future__ import annotations

import torch

__all__ = ["gradient_function", "loss_batches"]


def loss_batches(net, X, y, *, max_batches=10, seed=0):
    """``(loss_fn, batches)``: the net's own loss (``net.get_loss``, eval mode)
    as ``loss_fn(module, batch)``, and up to ``max_batches`` training batches
    of ``net.batch_size`` drawn once, in a seeded random order."""
    n = len(X)
    bs = n if net.batch_size in (None, -1) else min(int(net.batch_size), n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    batches = [
        (X[idx], y[idx])
        for idx in (order[i : i + bs] for i in range(0, min(n, bs * max_batches), bs))
    ]

    def loss_fn(module, batch):
        Xb, yb = batch
        return net.get_loss(net.infer(Xb), yb, X=Xb, training=False)

    return loss_fn, batches


def gradient_function(net, pruner, X, y, *, max_batches=10, seed=0):
    """``grad_fn() -> {name: mean dL/dw}`` for gradient strategies (``"snip"``).

    The loss is the net's own loss (``net.get_loss``), averaged over up to
    ``max_batches`` training batches of ``net.batch_size`` drawn once, in a
    seeded random order, so every call uses the same batches
    (:func:`loss_batches`).
    """
    loss_fn, batches = loss_batches(net, X, y, max_batches=max_batches, seed=seed)
    return lambda: pruner.gradients(loss_fn, batches)
