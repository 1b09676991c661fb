"""The lottery-ticket estimators: `LotteryTicketClassifier` and
`LotteryTicketRegressor` (their shared machinery is ``BaseLotteryTicket``)."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin

from ._base import BaseLotteryTicket
from ._task import REGRESSION

__all__ = ["LotteryTicketClassifier", "LotteryTicketRegressor"]


class LotteryTicketClassifier(ClassifierMixin, BaseLotteryTicket):
    """Find a sparse winning ticket inside a skorch classifier.

    ``fit`` runs the iterative rounds of Frankle & Carbin (2019): train the
    dense network to completion (round 0); then, ``n_rounds`` times, prune
    ``prune_rate`` of the remaining weights by the mask criterion, rewind the
    surviving weights to their initial values and retrain. Predictions use
    the final ticket.

    Parameters
    ----------
    net : skorch.NeuralNetClassifier or None, default=None
        The network, uninitialized. It is cloned; the object passed is never
        changed. Its own parameters are tunable as ``net__<name>``. ``None``
        builds a network for the input's shape (Adam, lr=1.2e-3, batch 60,
        10 epochs, no validation split): :class:`~sklottery.MLP`
        (LeNet-300-100 shaped) for tables and sparse matrices,
        :class:`~sklottery.ConvNet` for images ``(n, C, H, W)``,
        :class:`~sklottery.RecurrentNet` for sequences ``(n, T, F)`` and
        :class:`~sklottery.EmbeddingNet` for integer token ids ``(n, T)``.
        The modules of :mod:`sklottery.modules` get their input and output
        sizes from the data.
    n_rounds : int, default=5
        Number of pruning rounds after the dense round 0.
    prune_rate : float in (0, 1) or None, default=None
        Fraction of the *remaining* weights pruned in each round. ``None``
        means 0.2 (Frankle & Carbin 2019), or the rate derived from
        ``target_sparsity``; giving both is an error.
    target_sparsity : float in (0, 1) or None, default=None
        Sparsity every tensor pruned at the base rate reaches after
        ``n_rounds`` rounds: the per-round rate is ``1 - (1 -
        target_sparsity) ** (1 / n_rounds)``. The output layer keeps its
        per-round rate ``rate * output_rate_factor`` (it ends denser), and
        ``layer_rates`` stay per-round rates.
    schedule : {"iterative", "oneshot", "linear", "at_init"}, default="iterative"
        ``"linear"`` prunes a fixed fraction of the *original* weights each
        round: round ``k`` keeps ``n - round(k * rate * n)`` of a tensor's
        ``n`` (Chen et al. 2020: 10% per round); ``target_sparsity`` then
        gives the rate ``target_sparsity / n_rounds``. ``"oneshot"`` prunes,
        in a single round 1, what ``n_rounds`` iterative rounds would (every
        group's rate compounded: ``1 - (1 - rate) ** n_rounds``), then
        retrains once: ``rounds_`` has two rows
        (Frankle & Carbin 2019 compare one-shot and iterative pruning).
        ``"at_init"`` prunes the *initialization* instead, to the same
        counts as ``"oneshot"`` (scopes and per-layer rates included), with
        an at-initialization ``strategy`` (``"snip"``, ``"grasp"``,
        ``"synflow"``, ``"random"`` or a magnitude strategy), then trains
        once; round 0 is still the dense baseline and round 1's
        ``untrained_score`` is the pruned network's score before training
        (user guide: "Pruning at initialization").
    strategy : str or callable, default="large_final"
        Mask criterion; the weights with the highest scores are kept.
        From Zhou et al. (2019), Table 1, with ``w_i`` the round's start
        and ``w_f`` its trained weights: ``"large_final"`` (``|w_f|``, Frankle
        & Carbin 2019), ``"small_final"``, ``"large_init"``,
        ``"small_init"``, ``"large_init_large_final"``,
        ``"small_init_small_final"``, ``"magnitude_increase"`` (``|w_f| -
        |w_i|``), ``"movement"`` (``|w_f - w_i|``), ``"random"`` (the control),
        ``"large_final_same_sign"``, ``"large_final_diff_sign"``; and
        ``"snip"``, the gradient saliency ``|w dL/dw|`` of Lee et al. (2019),
        with gradients of the net's criterion on up to 10 training
        batches. With ``schedule="at_init"`` the strategies score the
        initialization (``w_i = w_f``): ``"snip"`` (Lee et al. 2019),
        ``"grasp"`` (Wang et al. 2020; at initialization only), ``"synflow"``
        (Tanaka et al. 2020, data-free, 100 iterated prune steps; at
        initialization only), ``"random"`` and the magnitude strategies;
        ``"magnitude_increase"`` and ``"movement"`` (all zero before
        training) are refused; see :mod:`sklottery.pruning.at_init`. The
        Keras pruner's ``"smallest_weights"`` and
        ``"smallest_weights_global"`` are aliases of ``"large_final"``
        (layer and global scope). A callable ``f(w_init, w_final) ->
        scores`` is used as is. See :mod:`sklottery.pruning.strategies`.
    rewind : str or int, default="init"
        Where survivors go before retraining (see :mod:`sklottery.pruning.rewind`):
        ``"init"`` their exact initial values (Frankle & Carbin 2019); an int ``k``
        their values after epoch ``k`` of the dense round (late rewinding, Frankle et
        al. 2020); ``"reinit"`` a fresh random initialization every round (iterative
        pruning with re-initialization; Frankle & Carbin's control keeps a ticket's mask
        instead, see :mod:`sklottery.pruning.rewind`); ``"reshuffle"`` their initial
        values permuted within each layer; ``"signed_constant"`` the layer's initial
        standard deviation with the sign of their initial value (Zhou et al. 2019);
        ``"none"`` keep the trained weights and fine-tune at the final learning rate (no
        schedule replay); ``"lr"`` keep the trained weights and replay the learning-rate
        schedule (Renda et al. 2020).
    scope : {"layer", "global"} or list of (layers, rate), default="layer"
        ``"layer"`` prunes each tensor by its own ranking, ``"global"`` ranks
        all tensors together; a list of groups prunes each group together at
        its own rate.
    output_rate_factor : float or None, default=0.5
        The output layer is pruned at ``prune_rate * output_rate_factor``
        (Frankle & Carbin prune it at half the rate). ``None`` = no special
        treatment.
    layer_rates : dict of str to float, optional
        Per-layer rates by layer or parameter name.
    exclude : str or list of str, optional
        Layers never pruned: layer or parameter names, glob patterns
        (``"*.embeddings.*"``) or regular expressions ``"re:<regex>"`` (matched
        in full; see :mod:`sklottery.pruning.patterns`).
    include : str or list of str, optional
        Only the prunable tensors these names or patterns match are pruned,
        less ``exclude``: ``include="encoder.*"`` prunes the encoder's weights
        only (never biases or normalization, which are not prunable).
    type_rates : dict of str to float, optional
        Per-round rates by layer type, e.g. ``{"conv": 0.1, "linear": 0.2}``
        (Frankle & Carbin prune convolutions more slowly than dense layers);
        types: ``"linear"``, ``"conv"``, ``"rnn"``, ``"embedding"``,
        ``"bilinear"``, ``"attention"`` (the ``kind`` column of
        ``layers_``). Precedence, weakest first: ``prune_rate``, the type's
        rate, the output layer's ``output_rate_factor`` (applied to its
        type's rate), ``layer_rates``. ``None`` with ``net=None`` on images
        prunes the default :class:`~sklottery.ConvNet`'s convolutions at half
        the base rate. See :mod:`sklottery.pruning.kinds`.
    keep_trained : str or list of str, optional
        Parameters and buffers (names or patterns, e.g. ``"classifier.*"``)
        that are not rewound between rounds: they keep their trained values
        whatever ``rewind`` says (BERT-Tickets rewind the body only, not the
        head); their pruned weights are still zeroed.
    rescale : bool, default=False
        Dynamic weight rescaling (from the Keras pruner): each pruned
        layer's weight contribution is multiplied by ``total / kept`` of its
        tensor in the forward pass (a forward hook: ``s * (out - b) + b``);
        stored weights are never rewritten. Linear, Bilinear, Conv*,
        ConvTranspose* and Embedding layers only.
    sparse_training : {"auto", "timed", True, False}, default="auto"
        How pruned ``nn.Linear`` and ``nn.Bilinear`` layers train in rounds
        1 and later:
        ``True`` with their surviving weights only (stored compressed; the
        forward and backward products skip pruned weights, and the
        optimizer's state covers the survivors only), ``False`` dense with
        the masks multiplied in after every step (as before), ``"auto"`` per
        layer and per round as a calibrated rule of shape, density, batch
        size and device finds faster (deterministic: the same seed gives
        bit-identical results), ``"timed"`` as a short timing at the round's
        start finds faster (results then vary with the machine's load).
        ``True`` at 25-50% density can need up to 1.8x the memory of a
        dense fit. Between rounds and
        after ``fit`` every layer is an ordinary dense layer; results agree
        with ``False`` up to float rounding. Convolutional, recurrent and
        other layers always train dense with masks; round 0 is dense. See
        the user guide's "Sparse training" page.
    granularity : {"weight", "neuron", "channel"}, default="weight"
        What a round prunes: single weights (Frankle & Carbin 2019), or
        whole units -- output neurons of ``Linear`` layers, filters of
        convolutions, hidden units of RNN/GRU/LSTM layers (all gates), heads
        of ``MultiheadAttention`` (``"channel"`` is a synonym). The units of
        any ``torch.fx``-traceable module are found by tracing it on two
        rows of ``X`` (user guide: "Structured tickets"); a pruned unit
        loses its rows and its consumers' columns, so ``net_.module_`` keeps
        its shapes with exact zeros while every round trains a physically
        smaller copy (``sparse_training=False``: dense with masks).
        ``prune_rate``, ``target_sparsity``, ``scope``, ``type_rates``,
        ``layer_rates`` and the schedules count units; ``strategy`` may also
        be ``"l1_norm"``, ``"l2_norm"`` or ``"bn_scale"``. ``rounds_`` and
        ``layers_`` then report units kept; :meth:`to_compact` gives the
        small dense module.
    score_untrained : bool, default=False
        Also score every round's masked, rewound network before it trains
        (``rounds_["untrained_score"]``, Zhou et al.'s supermask score; the
        dense initialization for round 0). Off by default: it costs one
        extra pass over the evaluation data per round, and the column is
        NaN.
    early_bird : None, True, float or dict, default=None
        Early-bird tickets (You et al. 2020): during the dense round, the
        masks of the first prune are computed after every epoch, and the
        round stops once their normalized Hamming distance to the previous
        epoch's masks stays below ``threshold`` for ``patience`` epochs.
        ``True`` = ``{"threshold": 0.1, "patience": 4}``; a float is the
        threshold; a dict may set either key. ``rounds_["ticket_epoch"]``
        gives the epoch the ticket was drawn.
    select : {"last", "best", "ticket"}, default="last"
        Which round becomes the fitted model (``net_``, ``masks_``,
        ``sparsity_``, ``layers_``, ``predict``), judged by the per-round
        ``score`` of ``rounds_``: ``"last"`` the final round; ``"best"`` the
        highest-scoring round (ties go to the sparser one); ``"ticket"`` the
        sparsest round whose score is within ``tol`` of the dense round 0 --
        the "winning ticket" of Frankle & Carbin (2019), which matches the
        dense network with a fraction of its weights. Only one extra copy of
        the weights is kept while rounds run (the current candidate). Use a
        validation split in ``net`` (``train_split``) for ``"best"`` and
        ``"ticket"``: without one the score is measured on the training data.
    tol : float >= 0, default=0.01
        For ``select="ticket"``: the largest drop below the dense round's
        score that still counts as matching it (absolute, in score units:
        0.01 = one point of accuracy, or of R²).
    memory : None, str or joblib.Memory, default=None
        Caches round 0, the dense training, like ``Pipeline(memory=...)``:
        a directory path or a :class:`joblib.Memory`. The cache key is what
        determines the dense round -- the net's parameters, the data (after
        the validation split), the seed, the source of the net's classes
        (module, criterion, callbacks..., with their base classes) and the
        net's behaviour: its initialized tensors and one training step's
        loss and gradients on the first batch, so edited code misses -- and
        none of the pruning parameters, so a search over ``prune_rate``,
        ``n_rounds``, ``strategy``, ``scope``... trains the dense network
        once per net configuration and fold. Results are identical to an
        uncached fit. Needs an int ``random_state`` to hit (without one a
        warning says so: ``None`` draws a new seed each fit). A round-0
        record read from the cache keeps the epochs and wall time of the fit
        that computed it. With joblib's dask or ray backend the location
        must be shared by the workers.
    warm_start : bool, default=False
        When True and the estimator is fitted, ``fit`` continues pruning from
        the current ticket (the fitted masks and weights, survivors rewound to
        the same rewind point) instead of starting over, running rounds
        ``len(rounds_)`` to ``n_rounds``: like ``n_estimators`` of a forest,
        ``n_rounds`` counts *all* pruning rounds, so raise it to get more
        (equal: a warning and nothing to do; lower: ``ValueError``). ``rounds_``
        grows and masks only shrink. ``y`` must have the same classes. With
        ``select`` other than ``"last"`` pruning continues from the selected
        round. A fit stopped with Ctrl-C resumes this way.
    inference : {"dense", "sparse"}, default="dense"
        How ``predict``/``predict_proba`` run the ticket: ``"dense"`` with
        ``net_``; ``"sparse"`` with ``sparse_module_``, the export of
        :meth:`to_sparse` made at the end of ``fit``, whose pruned Linear
        layers use CSR storage where that is faster (same results up to float
        rounding).
    verbose : int, default=0
        ``verbose > 0`` shows a progress bar over the rounds with the current
        sparsity and score (needs ``tqdm``: ``pip install sklottery[progress]``).
        The skorch net's own ``verbose`` controls its per-epoch table.
    random_state : int, RandomState or None, default=None
        Seeds initialization, shuffling and random criteria. The same value
        gives identical masks, rounds and predictions on CPU.

    Attributes
    ----------
    net_ : skorch.NeuralNetClassifier
        The fitted net holding the selected round's ticket (pruned weights
        are 0.0; its ``history`` is that round's).
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
        Columns of a 2-D ``X`` (table, sparse matrix, 2-D ids); absent after
        a fit on images or sequences.
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
    masks_ : dict of str to bool tensor
        The selected round's masks, keyed like
        ``net_.module_.named_parameters()``; True = kept.
    sparsity_ : float
        Fraction of the weights in ``masks_`` that are zero.
    rounds_ : pandas.DataFrame
        One row per round (``n_rounds + 1`` rows): ``round``,
        ``weights_remaining`` (fraction of prunable weights kept),
        ``n_weights`` (their number), ``epochs`` (trained that round),
        ``train_loss`` and ``valid_loss`` (last epoch), ``score`` (accuracy
        on the validation split, or on the training data when the net has
        none: see ``score_on``), ``wall_time`` (seconds),
        ``untrained_score`` (with ``score_untrained=True``: the same score
        of the masked, rewound network before the round trains -- Zhou et
        al.'s supermask score; the dense initialization for round 0; else
        NaN), ``ticket_epoch`` (round 0 with ``early_bird``: the epoch the
        ticket was drawn, else NaN), ``train_macs`` (multiply-adds the
        round's training spent with the layouts it used: three products
        per trained sample and Linear, Bilinear or convolution layer,
        ``nnz`` per output for a layer trained sparse), ``cumulative_macs``
        (their running sum), ``sparse_layers`` (names of the layers that
        trained sparse, comma-separated) and ``selected`` (True on the
        round chosen by ``select``).

    selected_round_ : int
        The round chosen by ``select``.
    interrupted_ : bool
        True when the user stopped ``fit`` with Ctrl-C (``KeyboardInterrupt``)
        during a round: no further round was run and the estimator keeps the
        round chosen by ``select`` among the completed ones (with the default
        ``select="last"``, the last completed round -- its weights and masks);
        a ``RuntimeWarning`` says so. An interrupt during round 0, before any
        round completed, is re-raised. Deliberate stops (skorch's
        ``EarlyStopping``, :class:`~sklottery.lottery._loop.StopRound`) only end the
        round. ``warm_start=True`` resumes the remaining rounds.
    sparse_module_ : torch.nn.Module
        With ``inference="sparse"``: the sparse export used by ``predict``,
        built at the end of ``fit`` (or on first use after
        ``set_params(inference="sparse")``) and reused until the next fit.
    layers_ : pandas.DataFrame
        The selected round, one row per prunable tensor: ``name``, ``kind``
        (linear, conv, ...), ``shape``, ``kept``, ``total`` and ``sparsity``
        (fraction of that tensor pruned).

    References
    ----------
    J. Frankle and M. Carbin, "The Lottery Ticket Hypothesis: Finding Sparse,
    Trainable Neural Networks", ICLR 2019.

    H. Zhou, J. Lan, R. Liu and J. Yosinski, "Deconstructing Lottery Tickets:
    Zeros, Signs, and the Supermask", NeurIPS 2019.

    J. Frankle, G. K. Dziugaite, D. M. Roy and M. Carbin, "Linear Mode
    Connectivity and the Lottery Ticket Hypothesis", ICML 2020 (late
    rewinding; "Stabilizing the Lottery Ticket Hypothesis", arXiv 2019).

    A. Renda, J. Frankle and M. Carbin, "Comparing Rewinding and Fine-tuning
    in Neural Network Pruning", ICLR 2020.

    N. Lee, T. Ajanthan and P. Torr, "SNIP: Single-shot Network Pruning based
    on Connection Sensitivity", ICLR 2019.

    H. You et al., "Drawing Early-Bird Tickets: Towards More Efficient
    Training of Deep Networks", ICLR 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skorch import NeuralNetClassifier
    >>> import torch
    >>> from sklottery import LotteryTicketClassifier, MLP
    >>> X, y = load_iris(return_X_y=True)
    >>> net = NeuralNetClassifier(MLP, module__hidden_units=(16,), max_epochs=5,
    ...                           criterion=torch.nn.CrossEntropyLoss,
    ...                           optimizer=torch.optim.Adam, lr=0.01,
    ...                           train_split=None, verbose=0)
    >>> clf = LotteryTicketClassifier(net, n_rounds=2, prune_rate=0.5,
    ...                               random_state=0).fit(X, y)
    >>> clf.rounds_["n_weights"].tolist()
    [112, 68, 43]
    >>> clf.predict(X[:3]).shape
    (3,)
    """



    def predict_proba(self, X):
        """Class probabilities from the final ticket."""
        X = self._check_X(X)
        if self.inference == "sparse":
            return self._forward_sparse(X)
        return self.net_.predict_proba(X)

    def predict(self, X):
        """Class labels (in the original labels) from the final ticket."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class LotteryTicketRegressor(RegressorMixin, BaseLotteryTicket):
    """Find a sparse winning ticket inside a skorch regressor.

    The regression counterpart of :class:`LotteryTicketClassifier`, with the
    same rounds (Frankle & Carbin, 2019), parameters and fitted attributes;
    the per-round ``score`` and :meth:`score` are the coefficient of
    determination R². Targets are trained as float32; a 1-d ``y`` is fed to
    the net as a column of shape ``(n_samples, 1)`` and :meth:`predict`
    returns 1-d again. Several targets (``y`` of shape
    ``(n_samples, n_targets)``) are predicted jointly.

    Parameters
    ----------
    net : skorch.NeuralNetRegressor or None, default=None
        The network, uninitialized; cloned, never changed; tunable as
        ``net__<name>``. ``None`` builds ``NeuralNetRegressor`` with a
        network for the input's shape, as for the classifier (mean squared
        error). The modules of :mod:`sklottery.modules` get their input size
        and number of outputs from the data.
    n_rounds, prune_rate, target_sparsity, schedule, strategy, rewind, \
scope, output_rate_factor, layer_rates, exclude, include, type_rates, \
keep_trained, rescale, \
sparse_training, granularity, score_untrained, early_bird, select, tol, memory, \
warm_start, inference, verbose, random_state
        As for :class:`LotteryTicketClassifier`; the per-round score that
        ``select`` and ``tol`` use is R² (``tol`` in units of R²).

    Attributes
    ----------
    net_ : skorch.NeuralNetRegressor
        The fitted net holding the selected round's ticket.
    n_features_in_ : int
        Columns of a 2-D ``X`` (table, sparse matrix, 2-D ids); absent after
        a fit on images or sequences.
    feature_names_in_ : ndarray of str
        Only when ``X`` had string column names.
    masks_, sparsity_, rounds_, selected_round_, layers_, interrupted_, \
sparse_module_
        As for :class:`LotteryTicketClassifier`; ``rounds_["score"]`` is R²
        on the validation split (or the training data, see ``score_on``).

    See Also
    --------
    LotteryTicketClassifier : the same for classification.

    References
    ----------
    J. Frankle and M. Carbin, "The Lottery Ticket Hypothesis: Finding Sparse,
    Trainable Neural Networks", ICLR 2019.

    Examples
    --------
    >>> import torch
    >>> from sklearn.datasets import make_regression
    >>> from skorch import NeuralNetRegressor
    >>> from sklottery import LotteryTicketRegressor, MLP
    >>> X, y = make_regression(200, 5, noise=1.0, random_state=0)
    >>> net = NeuralNetRegressor(MLP, module__hidden_units=(16,), max_epochs=5,
    ...                          optimizer=torch.optim.Adam, lr=0.01,
    ...                          train_split=None, verbose=0)
    >>> reg = LotteryTicketRegressor(net, n_rounds=2, prune_rate=0.5,
    ...                              random_state=0).fit(X, y / y.std())
    >>> reg.rounds_["n_weights"].tolist()
    [96, 52, 29]
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    _task = REGRESSION



    def predict(self, X):
        """Predicted targets from the selected ticket.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets), float64
            The net computes in float32; the predictions are returned in
            float64, as scikit-learn's regressors do.
        """
        X = self._check_X(X)
        if self.inference == "sparse":
            pred = self._forward_sparse(X)
        else:
            pred = self.net_.predict(X)
        pred = np.asarray(pred, dtype=np.float64).reshape(len(X), -1)
        # a ticket file of format 2 or older does not record whether y was
        # 1-d: one target is then predicted 1-d, like scikit-learn's regressors
        y_1d = getattr(self, "_y_1d", pred.shape[1] == 1)
        return pred.ravel() if y_1d else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
