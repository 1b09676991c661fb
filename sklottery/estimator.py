"""`LotteryTicketClassifier`: lottery-ticket rounds behind fit/predict."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_memory, validate_data
from skorch import NeuralNetClassifier
from skorch.dataset import Dataset
from skorch.history import History
from torch.utils.data import DataLoader, Subset

from .loader import SUPPORTED_OPTIONS, TensorLoader
from .modules import MLP
from .pruning import ApplyMasks, Pruner, find_prunable, resolve_criterion
from .pruning.masks import load_values
from .rounds import (
    DenseInterrupted,
    FixedValidation,
    RoundData,
    accuracy,
    dense_record,
    dense_round,
    run_rounds,
)
from .selection import SELECT_MODES, RoundSelector

__all__ = ["LotteryTicketClassifier"]

REWIND_MODES = ("init",)
MASKS_CALLBACK = "lottery_masks"


def _progress_bar(total):
    try:
        from tqdm import tqdm
    except ImportError as exc:
        raise ImportError(
            "verbose > 0 shows a progress bar over the rounds with tqdm, which is "
            "not installed; install it with `pip install sklottery[progress]` "
            "(or `pip install tqdm`), or set verbose=0"
        ) from exc
    return tqdm(total=total, desc="lottery rounds", unit="round")


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _check_open_unit(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a float in the open interval (0, 1); got {value!r}"
        )
    if not 0.0 < float(value) < 1.0:
        raise ValueError(
            f"{name} must be a float in the open interval (0, 1); got {value!r}"
        )
    return float(value)


def _initialize(net):
    """``net.initialize()``, with a clear error for a network with nothing to
    prune (torch's own, from the optimizer, would be "empty parameter list")."""
    try:
        net.initialize()
    except ValueError as exc:
        module = getattr(net, "module_", None)
        if isinstance(module, torch.nn.Module) and not find_prunable(module):
            raise ValueError(
                f"net's module {type(module).__name__} has nothing to prune: "
                "sklottery prunes the weights of Linear, Bilinear, Conv*, "
                "ConvTranspose*, RNN/LSTM/GRU, Embedding and MultiheadAttention "
                "layers"
            ) from exc
        raise


def _to_tensors(ds, X, y):
    """The rows of a split dataset as tensors, without going item by item
    where the split is a plain ``Subset`` of the data."""
    if isinstance(ds, Subset) and isinstance(ds.dataset, Dataset):
        idx = torch.as_tensor(np.asarray(ds.indices), dtype=torch.long)
        return X[idx], y[idx]
    Xs, ys = next(iter(DataLoader(ds, batch_size=len(ds))))
    return torch.as_tensor(Xs), torch.as_tensor(ys)


class _BaseLotteryTicket(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Shared machinery of the lottery-ticket estimators."""

    _net_class = NeuralNetClassifier

    def __init__(
        self,
        net=None,
        *,
        n_rounds=5,
        prune_rate=0.2,
        strategy="large_final",
        rewind="init",
        scope="layer",
        output_rate_factor=0.5,
        layer_rates=None,
        exclude=None,
        select="last",
        tol=0.01,
        memory=None,
        verbose=0,
        random_state=None,
    ):
        self.net = net
        self.n_rounds = n_rounds
        self.prune_rate = prune_rate
        self.strategy = strategy
        self.rewind = rewind
        self.scope = scope
        self.output_rate_factor = output_rate_factor
        self.layer_rates = layer_rates
        self.exclude = exclude
        self.select = select
        self.tol = tol
        self.memory = memory
        self.verbose = verbose
        self.random_state = random_state

    # -- subclass hooks ----------------------------------------------------
    def _default_net(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _encode_y(self, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _score_round(self, net, X, y):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- fit -------------------------------------------------------------
    def _validate_params(self):
        """Check the parameters; return the numeric ones as plain Python numbers."""
        n_rounds = _check_int(self.n_rounds, "n_rounds", 0)
        prune_rate = _check_open_unit(self.prune_rate, "prune_rate")
        resolve_criterion(self.strategy)  # unknown names: the message lists valid ones
        if not isinstance(self.rewind, str) or self.rewind not in REWIND_MODES:
            raise ValueError(
                f"rewind={self.rewind!r} is not valid; valid rewind modes are "
                f"{list(REWIND_MODES)}"
            )
        if not isinstance(self.select, str) or self.select not in SELECT_MODES:
            raise ValueError(
                f"select={self.select!r} is not valid; valid values are "
                f"{list(SELECT_MODES)}"
            )
        if (
            isinstance(self.tol, bool)
            or not isinstance(self.tol, numbers.Real)
            or not float(self.tol) >= 0.0
        ):
            raise ValueError(f"tol must be a float >= 0; got {self.tol!r}")
        if isinstance(self.verbose, bool) or not isinstance(
            self.verbose, numbers.Integral
        ):
            raise TypeError(f"verbose must be an int >= 0; got {self.verbose!r}")
        if self.net is not None:
            name = self._net_class.__name__
            if isinstance(self.net, type):
                raise TypeError(
                    f"net must be a skorch {name} instance, e.g. "
                    f"{name}(MyModule, ...); got the class {self.net.__name__}"
                )
            if not isinstance(self.net, self._net_class):
                raise TypeError(
                    f"net must be a skorch {name} (or None for the default MLP); "
                    f"got {type(self.net).__name__}"
                )
        return n_rounds, prune_rate

    def _build_net(self, n_features, n_outputs):
        net = self._default_net() if self.net is None else clone(self.net)
        module = net.module
        if isinstance(module, type) and issubclass(module, MLP):
            given = net.get_params_for("module")
            sizes = {"input_units": n_features, "output_units": n_outputs}
            net.set_params(
                **{f"module__{k}": v for k, v in sizes.items() if given.get(k) is None}
            )
        for which in ("iterator_train", "iterator_valid"):
            options = set(net.get_params_for(which))
            if getattr(net, which) is DataLoader and options <= SUPPORTED_OPTIONS:
                net.set_params(**{which: TensorLoader})
        return net

    def _split(self, net, X, y):
        """Split once per fit with the net's own ``train_split``."""
        X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
        if net.train_split is None:
            return RoundData(X_t, y_t, X_t, y_t, "train")
        ds_train, ds_valid = net.get_split_datasets(X, y)
        if ds_valid is None or len(ds_valid) == 0:
            X_tr, y_tr = _to_tensors(ds_train, X_t, y_t)
            return RoundData(X_tr, y_tr, X_tr, y_tr, "train")
        X_tr, y_tr = _to_tensors(ds_train, X_t, y_t)
        X_va, y_va = _to_tensors(ds_valid, X_t, y_t)
        return RoundData(X_tr, y_tr, X_va, y_va, "valid")

    def fit(self, X, y):
        """Find a winning ticket: run ``n_rounds`` pruning rounds after a dense one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self
        """
        n_rounds, prune_rate = self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=False)
        X = np.require(X, dtype=np.float32, requirements=["C", "W"])
        y, n_outputs = self._encode_y(y)

        net = self._build_net(X.shape[1], n_outputs)
        user_split, user_callbacks = net.train_split, net.callbacks
        data = self._split(net, X, y)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        # the network and the pruner are built before the dense round, so a
        # network with nothing to prune or a bad pruning parameter fails fast
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _initialize(net)
            pruner = Pruner(
                net.module_,
                strategy=self.strategy,
                prune_rate=prune_rate,
                scope=self.scope,
                output_rate_factor=self.output_rate_factor,
                layer_rates=self.layer_rates,
                exclude=self.exclude,
                random_state=seed,
            )
        dense, interrupted = self._dense_round(net, data, seed)

        valid = None
        if data.eval_on == "valid":
            valid = Dataset(data.X_eval, data.y_eval)
        net.set_params(train_split=None if valid is None else FixedValidation(valid))
        with torch.random.fork_rng(devices=[]):
            load_values(net.module_, dense["init"])
            pruner.set_rewind_point()
            load_values(net.module_, dense["trained"])
            net.history_ = History(dense["history"])
            net.callbacks = [
                *(user_callbacks or []),
                (MASKS_CALLBACK, ApplyMasks(pruner)),
            ]
            # later rounds continue torch's generator exactly where round 0
            # left it, whether round 0 was trained now or came from the cache
            torch.set_rng_state(dense["rng_state"])
            records = []
            selector = RoundSelector(self.select, float(self.tol), n_rounds)
            bar = _progress_bar(n_rounds + 1) if self.verbose > 0 else None

            def on_round_end(record, net, pruner):
                selector.update(record, net, pruner)
                if bar is not None:
                    bar.set_postfix(
                        sparsity=f"{1.0 - record['weights_remaining']:.3f}",
                        score=f"{record['score']:.4f}",
                    )
                    bar.update(1)

            try:
                if not interrupted:
                    score0 = self._score_round(net, data.X_eval, data.y_eval)
                    records.append(
                        dense_record(pruner, dense["stats"], score0, data.eval_on)
                    )
                    del dense
                    on_round_end(records[0], net, pruner)
                    more, interrupted = run_rounds(
                        net,
                        pruner,
                        data,
                        n_rounds=n_rounds,
                        score=self._score_round,
                        first_round=1,
                        on_round_end=on_round_end,
                    )
                    records += more
            finally:
                if bar is not None:
                    bar.close()
            selector.restore(net, pruner)
        if interrupted:
            warnings.warn(
                f"fit was interrupted during round {len(records)}; "
                f"{len(records)} round(s) completed",
                RuntimeWarning,
                stacklevel=2,
            )

        self.masks_ = {n: m.detach().cpu() for n, m in pruner.masks.items()}
        # leave the fitted net as the user configured it, still enforcing the
        # ticket's masks if it is trained further
        net.set_params(train_split=user_split)
        net.callbacks = [
            *(user_callbacks or []),
            (MASKS_CALLBACK, ApplyMasks(self.masks_)),
        ]
        net.initialize_callbacks()
        self.net_ = net
        self.sparsity_ = pruner.sparsity()
        self.rounds_ = pd.DataFrame.from_records(records)
        if records:
            self.rounds_["selected"] = self.rounds_["round"] == selector.round
        self.selected_round_ = selector.round
        self.layers_ = pruner.layer_table()
        self._output_layer = pruner.targets[-1].module_name
        self._n_features_out = self._features(X[:1]).shape[1]
        return self

    def _dense_round(self, net, data, seed):
        """Round 0 through ``memory``: (result of ``dense_round``, interrupted).

        The cache key is what determines the dense round -- the net's
        parameters (an unfitted clone, its ``train_split`` replaced by the
        split already made), the split data and the seed -- and nothing
        about pruning.
        """
        memory = check_memory(self.memory)
        spec = clone(net).set_params(train_split=None)
        func = memory.cache(dense_round)
        try:
            result = func(
                spec,
                data.X_train.numpy(),
                data.y_train.numpy(),
                data.X_eval.numpy(),
                data.y_eval.numpy(),
                eval_on=data.eval_on,
                seed=seed,
            )
        except DenseInterrupted as exc:
            return exc.result, True
        return result, False

    # -- inference -----------------------------------------------------------
    def _check_X(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        X = np.require(X, dtype=np.float32, requirements=["C", "W"])
        return torch.from_numpy(X)

    def _features(self, X):
        """Inputs of the output layer: the features the ticket's head sees."""
        module = self.net_.module_.get_submodule(self._output_layer)
        captured = []

        def hook(mod, args):
            captured.append(args[0].detach().reshape(len(args[0]), -1).cpu())

        handle = module.register_forward_pre_hook(hook)
        try:
            for _ in self.net_.forward_iter(torch.as_tensor(X), training=False):
                pass
        finally:
            handle.remove()
        return torch.cat(captured).numpy().astype(np.float32, copy=False)

    def transform(self, X):
        """Features of the pruned network: the input of its output layer.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out), float32
        """
        return self._features(self._check_X(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


class LotteryTicketClassifier(ClassifierMixin, _BaseLotteryTicket):
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
        builds ``NeuralNetClassifier(MLP)`` (LeNet-300-100 shaped, Adam,
        lr=1.2e-3, batch 60, 10 epochs, no validation split). An
        :class:`~sklottery.MLP` module gets its input and output sizes from
        the data.
    n_rounds : int, default=5
        Number of pruning rounds after the dense round 0.
    prune_rate : float in (0, 1), default=0.2
        Fraction of the *remaining* weights pruned in each round.
    strategy : str or callable, default="large_final"
        Mask criterion. ``"large_final"`` keeps the largest trained
        magnitudes (Frankle & Carbin 2019); ``"random"`` is the control.
        The Keras pruner's ``"smallest_weights"`` and
        ``"smallest_weights_global"`` are accepted as aliases. A callable
        ``f(w_init, w_final) -> scores`` keeps the highest scores.
    rewind : {"init"}, default="init"
        Where survivors go before retraining: ``"init"`` = their exact
        initial values.
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
    exclude : list of str, optional
        Layers never pruned.
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
        the validation split) and the seed -- and none of the pruning
        parameters, so a search over ``prune_rate``, ``n_rounds``,
        ``strategy``, ``scope``... trains the dense network once per net
        configuration and fold. Results are identical to an uncached fit.
        Needs an int ``random_state`` to hit (``None`` draws a new seed each
        fit). A round-0 record read from the cache keeps the epochs and
        wall time of the fit that computed it. With joblib's dask or ray
        backend the location must be shared by the workers.
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
        none: see ``score_on``), ``wall_time`` (seconds) and ``selected``
        (True on the round chosen by ``select``).
    selected_round_ : int
        The round chosen by ``select``.
    layers_ : pandas.DataFrame
        The selected round, one row per prunable tensor: ``name``, ``kind``
        (linear, conv, ...), ``shape``, ``kept``, ``total`` and ``sparsity``
        (fraction of that tensor pruned).

    References
    ----------
    J. Frankle and M. Carbin, "The Lottery Ticket Hypothesis: Finding Sparse,
    Trainable Neural Networks", ICLR 2019.

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

    def _default_net(self):
        return NeuralNetClassifier(
            MLP,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam,
            lr=1.2e-3,
            batch_size=60,
            max_epochs=10,
            train_split=None,
            iterator_train__shuffle=True,
            verbose=0,
        )

    def _encode_y(self, y):
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in y; "
                f"got {len(self.classes_)} class: {self.classes_.tolist()}"
            )
        return encoder.transform(y).astype(np.int64), len(self.classes_)

    def _score_round(self, net, X, y):
        return accuracy(net, X, y)

    def predict_proba(self, X):
        """Class probabilities from the final ticket."""
        X = self._check_X(X)
        return self.net_.predict_proba(X)

    def predict(self, X):
        """Class labels (in the original labels) from the final ticket."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]
