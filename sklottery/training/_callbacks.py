"""skorch callbacks of a lottery-ticket fit, usable with any skorch net.

* :class:`ApplyMasks` keeps pruned weights exactly zero after every
  optimizer step (the masks come from a :class:`~sklottery.Pruner` or a
  dict).
* :class:`RewindCheckpoint` moves the pruner's rewind point to the state
  after epoch ``k`` of the dense round (late rewinding, Frankle et al. 2020).
* :class:`EarlyBird` stops the dense round once the masks of the first prune
  settle (You et al. 2020), raising :class:`StopRound`.

The tensors themselves are changed by :mod:`sklottery.pruning` (masks,
rewinds); these classes only decide *when*, from skorch's events.
"""

from __future__ import annotations

import torch
from skorch.callbacks import Callback

from ..pruning import Pruner, mask_distance
from ..pruning.masks import DeviceMasks

__all__ = [
    "ApplyMasks",
    "EarlyBird",
    "RewindCheckpoint",
    "StopRound",
    "parameter_state",
]


def parameter_state(module) -> tuple:
    """What changes whenever a parameter of ``module`` does: each parameter's
    identity, storage and in-place version counter (torch bumps it on every
    in-place change, ``optimizer.step`` and ``load_state_dict`` included).
    Equal states mean the same weights, without reading them."""
    return tuple((id(p), p.data_ptr(), p._version) for p in module.parameters())


class StopRound(KeyboardInterrupt):
    """Raised by a callback to end the current round's training on purpose.

    It derives from ``KeyboardInterrupt`` because that is how skorch lets a
    callback stop ``fit_loop`` (skorch's own ``EarlyStopping`` raises a plain
    ``KeyboardInterrupt``). :func:`train_round` tells such deliberate stops
    apart from a user's Ctrl-C.
    """


class ApplyMasks(Callback):
    """skorch callback that keeps pruned weights exactly zero during training.

    After every optimizer step (``on_batch_end`` of a training batch) and at
    the start and end of training, each pruned weight is set to 0.0 in place.
    This holds for every optimizer -- momentum, Adam's moments and decoupled
    weight decay included -- because the mask is applied after the step.

    Parameters
    ----------
    masks : dict of str to bool tensor, or object with a ``masks`` attribute
        Masks keyed by ``module_.named_parameters()`` names (True = kept). A
        :class:`~sklottery.Pruner` may be passed; its current masks are used.
    """

    def __init__(self, masks):
        self.masks = masks

    def _current(self):
        masks = getattr(self.masks, "masks", self.masks)
        if not isinstance(masks, dict):
            raise TypeError(
                "ApplyMasks needs a dict of masks or a Pruner; got "
                f"{type(masks).__name__}"
            )
        return masks

    def on_train_begin(self, net, **kwargs):
        self.device_masks_ = DeviceMasks(net.module_, self._current())
        self._apply(net)

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            self._apply(net)

    def on_train_end(self, net, **kwargs):
        # again only if something changed the weights since the last step
        # (e.g. EarlyStopping(load_best=True)): an idle in-place multiply
        # would tell observers of the weights that they changed
        if parameter_state(net.module_) != self.applied_:
            self._apply(net)
        del self.device_masks_

    def _apply(self, net):
        self.device_masks_.apply()
        self.applied_ = parameter_state(net.module_)


class RewindCheckpoint(Callback):
    """skorch callback setting the pruner's rewind point after epoch ``epoch``.

    Late rewinding (Frankle et al. 2020, "Stabilizing the Lottery Ticket
    Hypothesis"): add it to the dense round only; it fires once, at the end
    of the epoch whose number (1-based, ``len(net.history)``) is ``epoch``.
    ``epoch=0`` keeps the initialization.

    Attributes
    ----------
    done_ : bool
        Whether the rewind point was set.
    """

    def __init__(self, pruner: Pruner, epoch: int):
        self.pruner = pruner
        self.epoch = epoch

    def initialize(self):
        self.done_ = self.epoch == 0
        return self

    def on_epoch_end(self, net, **kwargs):
        if not self.done_ and len(net.history) == self.epoch:
            self.pruner.set_rewind_point()
            self.done_ = True


class EarlyBird(Callback):
    """skorch callback drawing an early-bird ticket (You et al. 2020).

    At the end of every epoch it computes the masks the pruner's next
    :meth:`~sklottery.Pruner.prune` would give, records their normalized
    Hamming distance to the previous epoch's masks in the history
    (``mask_distance``), and stops training (:class:`StopRound`) once that
    distance has stayed below ``threshold`` for ``patience`` consecutive
    epochs -- the masks have settled, so the ticket can be drawn without
    finishing dense training. You et al. (2020), "Drawing Early-Bird
    Tickets", use a queue of 5 masks and ``threshold=0.1``.

    Parameters
    ----------
    pruner : Pruner
    threshold : float, default=0.1
    patience : int, default=4
    grad_fn : callable, optional
        ``grad_fn() -> {name: grad}`` for gradient criteria (``"snip"``).

    Attributes
    ----------
    epoch_ : int or None
        The epoch (1-based) at which the ticket was drawn; None if training
        ended first.
    """

    def __init__(self, pruner, threshold=0.1, patience=4, grad_fn=None):
        self.pruner = pruner
        self.threshold = threshold
        self.patience = patience
        self.grad_fn = grad_fn

    def initialize(self):
        self.previous_ = None
        self.streak_ = 0
        self.epoch_ = None
        return self

    def on_epoch_end(self, net, **kwargs):
        extra = {"grad": self.grad_fn()} if self.grad_fn is not None else {}
        # a fixed generator: random criteria must not consume the pruner's draws
        masks = self.pruner.compute_masks(
            generator=torch.Generator().manual_seed(0), **extra
        )
        if self.previous_ is not None:
            distance = mask_distance(self.previous_, masks)
            net.history.record("mask_distance", distance)
            self.streak_ = self.streak_ + 1 if distance < self.threshold else 0
        self.previous_ = masks
        if self.streak_ >= self.patience:
            self.epoch_ = len(net.history)
            raise StopRound(f"early-bird ticket drawn at epoch {self.epoch_}")
