"""What training costs with the layouts used: multiply-adds per layer.

:func:`forward_macs` counts one forward pass, layer by layer;
:func:`train_macs` the training of a round with its layouts (the
``train_macs`` of ``rounds_``). Public path:
:mod:`sklottery.pruning.sparse_training`. This module imports torch only.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .rng import forked
from .sparse_linear import SparseTrainingBilinear, SparseTrainingLinear
from .targets import unwrap_compiled

__all__ = ["forward_macs", "train_macs"]


@torch.no_grad()
def forward_macs(module: nn.Module, x) -> dict[str, tuple[int, int]]:
    """Dense multiply-adds of one forward pass on ``x``, layer by layer.

    Counts ``Linear``, ``Bilinear`` and convolution layers (the layers whose
    cost scales with their weights); other layers (recurrent, attention,
    embeddings, normalization) are not counted. The module runs once in eval
    mode, without gradients and without touching torch's random generator.

    Returns
    -------
    dict of str to (int, int)
        ``{module name: (positions, macs per position)}`` where a position is
        one output vector (one per row for a Linear layer on 2-d input, one
        per output pixel for a convolution); a sparse Linear layer costs
        ``nnz`` per position instead of ``in * out``.
    """
    module = unwrap_compiled(module)  # hooks on a compiled graph are not run
    counts: dict[str, list[int]] = {}

    def hook(name):
        def run(mod, args, out):
            if isinstance(mod, (nn.Bilinear, SparseTrainingBilinear)):
                per = mod.in1_features * mod.in2_features * mod.out_features
                positions = out.numel() // max(1, mod.out_features)
            elif isinstance(mod, (nn.Linear, SparseTrainingLinear)):
                per = mod.in_features * mod.out_features
                positions = out.numel() // max(1, mod.out_features)
            else:  # convolution: out is (N, C_out, *spatial) or (C_out, *spatial)
                kernel = math.prod(mod.kernel_size)
                per = mod.out_channels * (mod.in_channels // mod.groups) * kernel
                positions = out.numel() // max(1, mod.out_channels)
            entry = counts.setdefault(name, [0, per])
            entry[0] += int(positions)

        return run

    kinds = (nn.Linear, SparseTrainingLinear, nn.Bilinear, nn.modules.conv._ConvNd)
    handles = [
        m.register_forward_hook(hook(name))
        for name, m in module.named_modules()
        if isinstance(m, kinds)
    ]
    was_training = module.training
    module.eval()
    try:
        with forked():
            module(x)
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    return {n: (p, per) for n, (p, per) in counts.items()}


def train_macs(macs: dict, layouts, n_samples: int) -> int:
    """Multiply-adds of training on ``n_samples`` rows with the layouts used.

    A training step costs three products per layer (forward, input gradient,
    weight gradient): ``3 * positions * in * out`` per row dense (masked
    layers too: a mask does not make a dense product cheaper) and
    ``3 * positions * nnz`` sparse. Bias additions, activations and the
    optimizer step are not counted.

    Parameters
    ----------
    macs : dict
        :func:`forward_macs` per sample (``positions`` for one row).
    layouts : list of dict
        The round's :func:`choose_training_layouts` rows (``name``,
        ``layout``, ``nnz``); layers not in it trained dense.
    n_samples : int
        Rows trained on: training samples times epochs.

    Examples
    --------
    >>> train_macs({"0": (1, 784 * 300)}, [], 60)
    42336000
    >>> train_macs({"0": (1, 784 * 300)},
    ...            [{"name": "0", "layout": "sparse", "nnz": 4704}], 60)
    846720
    """
    sparse = {
        r["name"]: r.get("sparse_macs", r["nnz"])
        for r in layouts
        if r["layout"] == "sparse"
    }
    # a structured round's shrunk layers cost their kept fraction
    shrunk = {r["name"]: r["fraction"] for r in layouts if r["layout"] == "shrunk"}
    per_sample = sum(
        positions * sparse.get(name, per * shrunk.get(name, 1.0))
        for name, (positions, per) in macs.items()
    )
    return 3 * int(n_samples) * int(per_sample)
