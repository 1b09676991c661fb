"""Learned supermasks: `SupermaskClassifier` and `SupermaskRegressor`.

The estimators freeze a network at a random initialization and learn only
which weights to keep, with edge-popup (Ramanujan et al. 2020; the maths is
:mod:`sklottery.pruning.edge_popup`). Everything around the training --
input validation, the default network for the input's shape, the fitted
net, ``predict``/``transform``, the CSR export (:meth:`to_sparse`) and
ticket files (:meth:`save_ticket`/:meth:`load_ticket`) -- is the lottery
estimators' own (:class:`~sklottery.estimators._base.BaseLotteryTicket`): after ``fit``
``net_.module_`` holds the frozen weights times the mask (exact zeros
elsewhere) and ``masks_`` are ordinary sklottery masks.
"""

from __future__ import annotations

import torch
from sklearn.base import ClassifierMixin, RegressorMixin

from ..config import SUPERMASK_CONSTRAINTS
from ..lottery import (
    RoundPlan,
    deferred_interrupt,
    make_record,
    make_result,
    prepare,
    run_round,
    seeded,
)
from ..pruning import Pruner, snapshot, unwrap_compiled
from ..pruning.edge_popup import EdgePopup, frozen_init
from ..training import forward_macs_of
from ._base import BaseLotteryTicket
from ._lottery import LotteryTicketClassifier, LotteryTicketRegressor
from ._task import REGRESSION

__all__ = ["SupermaskClassifier", "SupermaskRegressor"]


class _BaseSupermask(BaseLotteryTicket):
    """Shared machinery of the supermask estimators (not used directly)."""

    _parameter_constraints: dict = dict(SUPERMASK_CONSTRAINTS)
    # what the lottery machinery reads of its own parameters: a supermask
    # has one round, no forward rescaling and nothing to select
    rescale = False
    select = "last"

    def __init__(
        self,
        net=None,
        *,
        density=0.5,
        weight_init="signed_constant",
        scope="layer",
        scale_fan=False,
        inference="dense",
        random_state=None,
    ):
        self.net = net
        self.density = density
        self.weight_init = weight_init
        self.scope = scope
        self.scale_fan = scale_fan
        self.inference = inference
        self.random_state = random_state

    def _pruner_options(self) -> dict:
        """The :class:`~sklottery.Pruner` a loaded ticket is described by."""
        return {"scope": self.scope}

    def fit(self, X, y, sample_weight=None):
        """Learn a supermask of ``density`` over a frozen random network.

        The net's optimizer, learning rate, batch size and ``max_epochs``
        train the scores; the weights never change.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...), sparse matrix or tensor
            Tables, images, sequences, token ids (user guide: "Inputs").
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples' losses.

        Returns
        -------
        self
        """
        # net=None: the lottery estimators' default network for the input
        # (a LeNet-300-100-shaped MLP for tables) whose scores train with
        # Adam at lr 0.01 (batch 60, 10 epochs)
        prep = prepare(self, X, y, sample_weight, task=self._task, lottery=False,
                       default_changes={"lr": 0.01})
        net, data = prep.net, prep.data
        with seeded(state=prep.rng_state):
            data.macs = forward_macs_of(net, data.X_train)
            # the uncompiled module (skorch's compile=True wraps it): the
            # wrapper is compiled around EdgePopup while the scores train
            compiled = net.module_
            module = unwrap_compiled(compiled)
            generator = torch.Generator().manual_seed(prep.seed)
            frozen_init(module, self.weight_init, density=float(self.density),
                        scale_fan=bool(self.scale_fan), generator=generator)
            init = snapshot(module)
            popup = EdgePopup(module, float(self.density), scope=self.scope,
                              generator=generator)
            net.module_ = net.torch_compile(popup, name="module")
            try:
                outcome = run_round(net, None, data, RoundPlan(round=0, record=False),
                                    score=None)
            finally:
                with deferred_interrupt():
                    scores = {
                        n: s.detach().cpu().clone()
                        for n, s in zip(popup.names, popup.scores)
                    }
                    _, masks = popup.unwrap()
                    net.module_ = compiled
                    net.initialize_optimizer()
        if outcome.interrupted:
            raise KeyboardInterrupt
        pruner = Pruner(net.module_, masks=masks, **self._pruner_options())
        record = make_record(
            0, masks, net.history, data,
            score=data.score(self._task.score, net),
            wall_time=outcome.wall_time,
        )
        result = make_result([record], 0, pruner, rewind_point=init)
        with deferred_interrupt():
            self._set_fitted(prep, result)
            self.scores_ = scores
        return self


_PARAMETERS = """\
    net : skorch.{net} or None, default=None
        The network, uninitialized; cloned, never changed; tunable as
        ``net__<name>``. Its optimizer, ``lr``, ``batch_size``,
        ``max_epochs``, callbacks and ``train_split`` train the *scores*.
        ``None`` builds the lottery estimators' default network for the
        input's shape ({default}) with Adam at lr 0.01, batch 60, 10
        epochs, no validation split. Ramanujan et al. train the scores with
        SGD (momentum 0.9) and a cosine schedule.
    density : float in (0, 1], default=0.5
        Fraction of each prunable tensor kept: the ``numel -
        round((1 - density) * numel)`` weights with the largest ``|score|``
        (at least one). Ramanujan et al. find 0.3-0.7 best.
    weight_init : {{"signed_constant", "kaiming_normal"}}, \
default="signed_constant"
        The frozen weights of every prunable layer: ``+-sqrt(2 / fan_in)``
        with random signs (the signed Kaiming constant of Ramanujan et al.;
        the signed constants of Zhou et al.), or Kaiming normal
        ``N(0, 2 / fan_in)``. The biases of those layers are 0.0 (the
        papers' networks have none); other tensors (normalization layers)
        keep the module's initialization. All stay frozen.
    scope : {{"layer", "global"}}, default="layer"
        ``"layer"``: the top-k of every tensor (the paper); ``"global"``:
        the same total kept over all tensors, ranked together.
    scale_fan : bool, default=False
        Draw the weights for the fan the kept weights see, ``density *
        fan_in`` (the paper's "scaled" initializations), so that a layer's
        outputs keep the variance of a dense layer's; ``False`` uses
        ``fan_in``. For classification ``True`` is better: on MNIST
        (LeNet-300-100, density 0.5, signed constants, 20 epochs) the
        scaled weights reach 97.0% test accuracy and the unscaled 94.8%
        (``benchmarks/RESULTS.md``). A regressor's outputs cannot be
        rescaled by a mask, and the unscaled weights fit scikit-learn's
        standardized test targets where the scaled ones do not.
    inference : {{"dense", "sparse"}}, default="dense"
        As for :class:`LotteryTicketClassifier`: ``"sparse"`` predicts
        through the CSR export made at the end of ``fit``.
    random_state : int, RandomState or None, default=None
        Seeds the weights, the scores and the shuffling; the same value
        gives identical masks and predictions on CPU.
"""

_ATTRIBUTES = """\
    net_ : skorch.{net}
        The fitted net: ``net_.module_`` holds the frozen weights times the
        mask (kept weights bit-identical to the initialization, the others
        exactly 0.0); an :class:`~sklottery.ApplyMasks` callback keeps the
        mask if it is trained further.
    masks_ : dict of str to bool tensor
        The learned supermask, keyed like ``net_.module_.named_parameters()``;
        True = kept.
    scores_ : dict of str to tensor
        The learned scores (same keys).
    sparsity_ : float
        Fraction of the weights in ``masks_`` that are pruned.
    rewind_point_ : dict of str to tensor
        The frozen initialization, every tensor of the module, dense.
    layers_ : pandas.DataFrame
        One row per masked tensor: ``name``, ``kind``, ``shape``, ``kept``,
        ``total``, ``sparsity``.
    rounds_ : pandas.DataFrame
        One row (round 0, the score training) with the columns of
        :class:`LotteryTicketClassifier`'s ``rounds_``: ``weights_remaining``,
        ``epochs``, losses, ``score``, ``wall_time``, ...
    selected_round_ : int
        0.
    interrupted_ : bool
        False (an interrupted fit raises ``KeyboardInterrupt``).
    n_features_in_ : int
        Columns of a 2-D ``X``; absent after a fit on images or sequences.
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
"""

_REFERENCES = """\
    References
    ----------
    V. Ramanujan, M. Wortsman, A. Kembhavi, A. Farhadi and M. Rastegari,
    "What's Hidden in a Randomly Weighted Neural Network?", CVPR 2020.

    H. Zhou, J. Lan, R. Liu and J. Yosinski, "Deconstructing Lottery Tickets:
    Zeros, Signs, and the Supermask", NeurIPS 2019.
"""


class SupermaskClassifier(ClassifierMixin, _BaseSupermask):
    __doc__ = (
        """Learn a supermask -- which weights to keep -- over frozen random weights.

    Edge-popup (Ramanujan et al. 2020): the network is initialized once
    (``weight_init``) and frozen; every prunable weight gets a score, each
    layer's forward pass uses the weights with the top ``density`` of
    ``|score|``, and the scores learn through a straight-through gradient.
    The weights stay bit-identical to the initialization; only the mask is
    learned. The fitted estimator is an sklottery ticket: ``masks_``,
    :meth:`to_sparse`, :meth:`save_ticket` and :meth:`transform` work as for
    :class:`LotteryTicketClassifier`.

    Parameters
    ----------
"""
        + _PARAMETERS.format(net="NeuralNetClassifier", default="cross-entropy")
        + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
"""
        + _ATTRIBUTES.format(net="NeuralNetClassifier")
        + """
    See Also
    --------
    LotteryTicketClassifier : train the weights, then prune (the lottery).

"""
        + _REFERENCES
        + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklottery import SupermaskClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SupermaskClassifier(density=0.5, random_state=0).fit(X, y)
    >>> clf.layers_["kept"].tolist()
    [600, 15000, 150]
    >>> clf.predict(X[:3]).shape
    (3,)
    """
    )

    predict_proba = LotteryTicketClassifier.predict_proba
    predict = LotteryTicketClassifier.predict


class SupermaskRegressor(RegressorMixin, _BaseSupermask):
    __doc__ = (
        """Learn a supermask over frozen random weights, for regression.

    The regression counterpart of :class:`SupermaskClassifier` (edge-popup,
    Ramanujan et al. 2020): float32 targets, one or several; a 1-d ``y`` is
    predicted 1-d; ``score`` and ``rounds_["score"]`` are R².

    Parameters
    ----------
"""
        + _PARAMETERS.format(net="NeuralNetRegressor", default="mean squared error")
        + """
    Attributes
    ----------
"""
        + _ATTRIBUTES.format(net="NeuralNetRegressor")
        + """
    See Also
    --------
    SupermaskClassifier : the same for classification.

"""
        + _REFERENCES
    )

    _task = REGRESSION
    predict = LotteryTicketRegressor.predict

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

