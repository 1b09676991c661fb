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
    RegressorMixin,
    TransformerMixin,
    clone,
)
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_memory, validate_data
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.dataset import Dataset
from skorch.history import History
from torch.utils.data import DataLoader, Subset

from .loader import SUPPORTED_OPTIONS, TensorLoader
from .modules import MLP
from .pruning import (
    CRITERIA,
    SCHEDULES,
    ApplyMasks,
    Pruner,
    find_prunable,
    resolve_criterion,
)
from .pruning.masks import load_values
from .pruning.rewind import REWIND_MODES, check_rewind
from .rounds import (
    DenseInterrupted,
    FixedValidation,
    RoundData,
    accuracy,
    dense_record,
    dense_round,
    gradient_function,
    r2,
    run_rounds,
)
from .selection import SELECT_MODES, RoundSelector
from .sparse import to_sparse
from .tickets import apply_ticket, read_estimator_ticket, save_estimator_ticket

__all__ = ["LotteryTicketClassifier", "LotteryTicketRegressor", "REWIND_MODES"]

MASKS_CALLBACK = "lottery_masks"
INFERENCE_MODES = ("dense", "sparse")
#: Rows per forward call of the sparse export (its layouts are chosen for it).
SPARSE_BATCH = 256
EARLY_BIRD_DEFAULTS = {"threshold": 0.1, "patience": 4}


class _RoundProgress:
    """The ``on_round_end`` hook of the rounds: feeds the round selector and,
    when ``verbose > 0``, a tqdm bar showing the sparsity and score."""

    def __init__(self, selector, total, verbose, initial=0):
        self.selector = selector
        self.bar = _progress_bar(total, initial) if verbose > 0 else None

    def __call__(self, record, net, pruner):
        self.selector.update(record, net, pruner)
        if self.bar is not None:
            self.bar.set_postfix(
                sparsity=f"{1.0 - record['weights_remaining']:.3f}",
                score=f"{record['score']:.4f}",
            )
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _progress_bar(total, initial=0):
    try:
        from tqdm import tqdm
    except ImportError as exc:
        raise ImportError(
            "verbose > 0 shows a progress bar over the rounds with tqdm, which is "
            "not installed; install it with `pip install sklottery[progress]` "
            "(or `pip install tqdm`), or set verbose=0"
        ) from exc
    return tqdm(total=total, initial=initial, desc="lottery rounds", unit="round")


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _check_option(value, name, valid, noun="values"):
    """A string parameter that must be one of ``valid``."""
    if not isinstance(value, str) or value not in valid:
        raise ValueError(
            f"{name}={value!r} is not valid; valid {noun} are {list(valid)}"
        )


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
    # how validate_data checks y (the subclasses' targets differ)
    _y_checks = {"y_numeric": False}

    def __init__(
        self,
        net=None,
        *,
        n_rounds=5,
        prune_rate=None,
        target_sparsity=None,
        schedule="iterative",
        strategy="large_final",
        rewind="init",
        scope="layer",
        output_rate_factor=0.5,
        layer_rates=None,
        exclude=None,
        rescale=False,
        early_bird=None,
        select="last",
        tol=0.01,
        memory=None,
        warm_start=False,
        inference="dense",
        verbose=0,
        random_state=None,
    ):
        self.net = net
        self.n_rounds = n_rounds
        self.prune_rate = prune_rate
        self.target_sparsity = target_sparsity
        self.schedule = schedule
        self.strategy = strategy
        self.rewind = rewind
        self.scope = scope
        self.output_rate_factor = output_rate_factor
        self.layer_rates = layer_rates
        self.exclude = exclude
        self.rescale = rescale
        self.early_bird = early_bird
        self.select = select
        self.tol = tol
        self.memory = memory
        self.warm_start = warm_start
        self.inference = inference
        self.verbose = verbose
        self.random_state = random_state

    # -- subclass hooks ----------------------------------------------------
    #: What the default network (``net=None``) sets beyond the shared defaults.
    _default_net_kwargs: dict = {}

    def _default_net(self):
        """``net=None``: a LeNet-300-100-shaped :class:`~sklottery.MLP` trained
        with Adam (lr 1.2e-3, batch 60, 10 epochs), no validation split."""
        return self._net_class(
            MLP,
            optimizer=torch.optim.Adam,
            lr=1.2e-3,
            batch_size=60,
            max_epochs=10,
            train_split=None,
            iterator_train__shuffle=True,
            verbose=0,
            **self._default_net_kwargs,
        )

    def _encode_y(self, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def _score_round(self, net, X, y):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- fit -------------------------------------------------------------
    def _validate_params(self):
        """Check the parameters; return the numeric ones as plain Python numbers."""
        n_rounds = _check_int(self.n_rounds, "n_rounds", 0)
        prune_rate = target = None
        if self.prune_rate is not None:
            prune_rate = _check_open_unit(self.prune_rate, "prune_rate")
        if self.target_sparsity is not None:
            target = _check_open_unit(self.target_sparsity, "target_sparsity")
            if n_rounds < 1:
                raise ValueError(
                    "target_sparsity needs n_rounds >= 1 pruning rounds; got "
                    f"n_rounds={self.n_rounds!r}"
                )
        if prune_rate is not None and target is not None:
            raise ValueError(
                "give either prune_rate (the fraction of the remaining weights "
                "pruned each round) or target_sparsity (the sparsity after "
                "n_rounds, from which the per-round rate is derived), not both; got "
                f"prune_rate={self.prune_rate!r}, "
                f"target_sparsity={self.target_sparsity!r}"
            )
        _check_option(self.schedule, "schedule", SCHEDULES, "schedules")
        resolve_criterion(self.strategy)  # unknown names: the message lists valid ones
        check_rewind(self.rewind)  # unknown modes: the message lists valid ones
        if not isinstance(self.rescale, bool):
            raise TypeError(f"rescale must be True or False; got {self.rescale!r}")
        self._early_bird_options()
        if self.early_bird is not None and isinstance(self.strategy, str) and (
            self.strategy == "random"
        ):
            raise ValueError(
                "early_bird needs a deterministic mask criterion: with "
                "strategy='random' the masks never settle; valid strategies with "
                f"early_bird are {sorted(set(CRITERIA) - {'random'})} or a callable"
            )
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise TypeError(f"warm_start must be a bool; got {self.warm_start!r}")
        _check_option(self.inference, "inference", INFERENCE_MODES)
        _check_option(self.select, "select", SELECT_MODES)
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
        return n_rounds, prune_rate, target

    def _early_bird_options(self):
        """``early_bird`` as a dict of :class:`~sklottery.rounds.EarlyBird`
        options, or None."""
        eb = self.early_bird
        if eb is None or eb is False:
            return None
        if eb is True:
            return dict(EARLY_BIRD_DEFAULTS)
        if isinstance(eb, numbers.Real) and not isinstance(eb, bool):
            eb = {"threshold": eb}
        if not isinstance(eb, dict):
            raise TypeError(
                "early_bird must be None, True, a threshold in (0, 1) or a dict with "
                f"keys {sorted(EARLY_BIRD_DEFAULTS)}; got {self.early_bird!r}"
            )
        unknown = set(eb) - set(EARLY_BIRD_DEFAULTS)
        if unknown:
            raise ValueError(
                f"early_bird has unknown keys {sorted(unknown)}; valid keys are "
                f"{sorted(EARLY_BIRD_DEFAULTS)}"
            )
        options = {**EARLY_BIRD_DEFAULTS, **eb}
        _check_open_unit(options["threshold"], "early_bird threshold")
        _check_int(options["patience"], "early_bird patience", 1)
        return options

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
        n_rounds, prune_rate, target_sparsity = self._validate_params()
        if self.warm_start and hasattr(self, "rounds_"):
            return self._fit_more(X, y, n_rounds, prune_rate, target_sparsity)
        X, y = validate_data(self, X, y, dtype=np.float32, **self._y_checks)
        X = np.require(X, dtype=np.float32, requirements=["C", "W"])
        y, n_outputs = self._encode_y(y)

        net = self._build_net(X.shape[1], n_outputs)
        rewind_epoch = check_rewind(self.rewind)
        rewind_epoch = rewind_epoch if isinstance(rewind_epoch, int) else None
        if rewind_epoch is not None and rewind_epoch > net.max_epochs:
            raise ValueError(
                f"rewind={rewind_epoch} (late rewinding to epoch {rewind_epoch} of the "
                f"dense round) exceeds the net's max_epochs={net.max_epochs}"
            )
        user_split, user_callbacks = net.train_split, net.callbacks
        data = self._split(net, X, y)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        # the network and the pruner are built before the dense round, so a
        # network with nothing to prune or a bad pruning parameter fails fast
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _initialize(net)
            oneshot = self.schedule == "oneshot"
            pruner_kwargs = self._pruner_kwargs(
                n_rounds, prune_rate, target_sparsity, seed
            )
            # (dropped at once: no copy of the weights is held through round 0)
            Pruner(
                net.module_, rewind=self.rewind, rescale=self.rescale, **pruner_kwargs
            )
        last_round = min(n_rounds, 1) if oneshot else n_rounds
        early_bird = self._early_bird_options()
        if early_bird is not None:
            early_bird = {**early_bird, "pruner": pruner_kwargs}
        dense, interrupted = self._dense_round(
            net, data, seed, rewind_epoch=rewind_epoch, early_bird=early_bird
        )
        if interrupted:
            raise KeyboardInterrupt(
                "fit was interrupted during round 0 (the dense training): no round "
                "completed, so there is no ticket to keep"
            )

        valid = None
        if data.eval_on == "valid":
            valid = Dataset(data.X_eval, data.y_eval)
        net.set_params(train_split=None if valid is None else FixedValidation(valid))
        with torch.random.fork_rng(devices=[]):
            load_values(net.module_, dense["init"])
            # its snapshot of the initialization is the rewind point
            pruner = Pruner(
                net.module_, rewind=self.rewind, rescale=self.rescale, **pruner_kwargs
            )
            # the supermask score of round 0: the dense initialization
            untrained0 = self._score_round(net, data.X_eval, data.y_eval)
            load_values(net.module_, dense["trained"])
            if dense["rewind_point"] is not None:  # late rewinding
                pruner.set_rewind_point(dense["rewind_point"])
            net.history_ = History(dense["history"])
            net.callbacks = [
                *(user_callbacks or []),
                (MASKS_CALLBACK, ApplyMasks(pruner)),
            ]
            # later rounds continue torch's generator exactly where round 0
            # left it, whether round 0 was trained now or came from the cache
            torch.set_rng_state(dense["rng_state"])
            records = []
            selector = RoundSelector(self.select, float(self.tol), last_round)
            on_round_end = _RoundProgress(selector, last_round + 1, self.verbose)
            try:
                score0 = self._score_round(net, data.X_eval, data.y_eval)
                records.append(
                    dense_record(
                        pruner,
                        dense["stats"],
                        score0,
                        data.eval_on,
                        untrained_score=untrained0,
                        ticket_epoch=dense["ticket_epoch"],
                    )
                )
                final_lrs = dense["final_lrs"]
                fine_tune = isinstance(self.rewind, str) and self.rewind == "none"
                del dense
                on_round_end(records[0], net, pruner)
                grad_fn = None
                if pruner.needs_grad:
                    grad_fn = gradient_function(
                        net, pruner, data.X_train, data.y_train, seed=seed
                    )
                more, interrupted = run_rounds(
                    net,
                    pruner,
                    data,
                    n_rounds=last_round,
                    score=self._score_round,
                    first_round=1,
                    on_round_end=on_round_end,
                    freeze_lr=fine_tune,
                    initial_lrs=final_lrs,
                    grad_fn=grad_fn,
                )
                records += more
            finally:
                on_round_end.close()
            selector.restore(net, pruner)
        self._set_ticket(
            net, pruner, records, selector, interrupted, user_split, user_callbacks
        )
        self._n_outputs = n_outputs
        self._n_features_out = self._features(X[:1]).shape[1]
        return self

    def _pruner_kwargs(self, n_rounds, prune_rate, target_sparsity, seed):
        """Keyword arguments of the fit's :class:`~sklottery.Pruner`."""
        oneshot = self.schedule == "oneshot"
        return {
            "strategy": self.strategy,
            "prune_rate": prune_rate,
            "target_sparsity": target_sparsity,
            # one-shot prunes what n_rounds iterative rounds would, once
            "n_rounds": max(n_rounds, 1) if oneshot else n_rounds,
            "schedule": self.schedule,
            "scope": self.scope,
            "output_rate_factor": self.output_rate_factor,
            "layer_rates": self.layer_rates,
            "exclude": self.exclude,
            "random_state": seed,
        }

    def _set_ticket(
        self, net, pruner, records, selector, interrupted, user_split, user_callbacks
    ):
        """Fitted attributes from the round the selector put back in ``net``."""
        if interrupted:
            warnings.warn(
                f"fit was interrupted (KeyboardInterrupt) during round "
                f"{records[-1]['round'] + 1}; no further rounds were run. The "
                f"estimator keeps round {selector.round} (select={self.select!r} "
                f"among the {len(records)} completed rounds) as its ticket; "
                "interrupted_ is True",
                RuntimeWarning,
                stacklevel=3,
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
        self.interrupted_ = bool(interrupted)
        # what warm_start rewinds survivors to; CPU tensors so pickling works
        # anywhere (no copy when training ran on the CPU)
        self._rewind_point = {
            n: t.detach().cpu() for n, t in pruner.rewind_point.items()
        }
        # what the selected round started from, where that is not the masked
        # rewind point (reinit, reshuffle, signed_constant, none, lr): the
        # w_init of warm_start's next prune
        start = pruner.stored_reference()
        self._round_start = (
            None if start is None else {n: t.detach().cpu() for n, t in start.items()}
        )
        if self.inference == "sparse":
            self.sparse_module_ = self.to_sparse(batch_size=SPARSE_BATCH)
        else:
            self.__dict__.pop("sparse_module_", None)

    def _fit_more(self, X, y, n_rounds, prune_rate, target_sparsity):
        """``warm_start``: more pruning rounds from the current ticket."""
        done = int(self.rounds_["round"].iloc[-1])
        if self.schedule == "oneshot":
            raise ValueError(
                "warm_start=True adds iterative pruning rounds; it cannot be used "
                "with schedule='oneshot' (valid: schedule='iterative')"
            )
        if n_rounds < done:
            raise ValueError(
                f"n_rounds={n_rounds} must be >= the {done} pruning rounds "
                "already run when warm_start=True (n_rounds counts all pruning "
                "rounds, like n_estimators of a forest)"
            )
        if getattr(self, "_round_start", None) is None and check_rewind(
            self.rewind
        ) in ("reinit", "reshuffle", "signed_constant", "none", "lr"):
            raise ValueError(
                f"warm_start=True with rewind={self.rewind!r} needs the weights the "
                "selected round started from (the criterion's w_init); an estimator "
                "loaded from a ticket file does not have them: refit, or use "
                "rewind='init' or a late-rewinding epoch"
            )
        if getattr(self, "_rewind_point", None) is None:
            raise ValueError(
                "warm_start=True needs the rewind point of the first fit; this "
                "estimator was loaded from a ticket file saved without it "
                "(use save_ticket(..., rewind_point=True))"
            )
        X, y = validate_data(
            self, X, y, reset=False, dtype=np.float32, **self._y_checks
        )
        X = np.require(X, dtype=np.float32, requirements=["C", "W"])
        previous = getattr(self, "classes_", None)
        y, n_outputs = self._encode_y(y)
        if n_outputs != self._n_outputs or (
            previous is not None and not np.array_equal(previous, self.classes_)
        ):
            if previous is not None:
                self.classes_ = previous
            raise ValueError(
                "warm_start=True continues the fitted network, so y must have the "
                f"same classes/outputs as the first fit ({self._n_outputs} outputs"
                + ("" if previous is None else f", classes {previous.tolist()}")
                + ")"
            )
        if n_rounds == done:
            warnings.warn(
                f"warm_start=True with n_rounds={n_rounds} equal to the rounds "
                "already run: nothing to fit; increase n_rounds for more rounds",
                UserWarning,
                stacklevel=3,
            )
            return self

        net = self._build_net(X.shape[1], n_outputs)
        user_split, user_callbacks = net.train_split, net.callbacks
        data = self._split(net, X, y)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        # a different stream from the first fit's rounds
        seed = int(np.random.SeedSequence([seed, done]).generate_state(1)[0])
        valid = None if data.eval_on != "valid" else Dataset(data.X_eval, data.y_eval)
        net.set_params(train_split=None if valid is None else FixedValidation(valid))
        old = self.net_.module_
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _initialize(net)
            state = dict(old.named_parameters())
            state.update(old.named_buffers())
            new = dict(net.module_.named_parameters())
            new.update(net.module_.named_buffers())
            if {n: tuple(t.shape) for n, t in state.items()} != {
                n: tuple(t.shape) for n, t in new.items()
            }:
                raise ValueError(
                    "warm_start=True continues the fitted network, but the net's "
                    "module now has other tensors or shapes; refit with "
                    "warm_start=False"
                )
            load_values(net.module_, state)
            pruner = Pruner(
                net.module_,
                rewind=self.rewind,
                rescale=self.rescale,
                masks=self.masks_,
                **self._pruner_kwargs(n_rounds, prune_rate, target_sparsity, seed),
            )
            pruner.set_rewind_point(
                {n: t.to(new[n].device) for n, t in self._rewind_point.items()}
            )
            if self._round_start is not None:
                pruner.reference = {
                    n: t.to(new[n].device) for n, t in self._round_start.items()
                }
            net.history_ = self.net_.history_
            net.callbacks = [
                *(user_callbacks or []),
                (MASKS_CALLBACK, ApplyMasks(pruner)),
            ]
            old_records = self.rounds_.drop(columns="selected", errors="ignore")
            old_records = old_records.to_dict("records")
            selector = RoundSelector(self.select, float(self.tol), n_rounds)
            selector.dense_score = old_records[0]["score"]
            # the current ticket is the candidate to beat, and the fallback if
            # the user interrupts the first new round
            current = next(r for r in old_records if r["round"] == self.selected_round_)
            selector.update(current, net, pruner)
            freeze_lr = isinstance(self.rewind, str) and self.rewind == "none"
            grad_fn = None
            if pruner.needs_grad:
                grad_fn = gradient_function(
                    net, pruner, data.X_train, data.y_train, seed=seed
                )
            on_round_end = _RoundProgress(
                selector, n_rounds + 1, self.verbose, initial=done + 1
            )
            try:
                more, interrupted = run_rounds(
                    net,
                    pruner,
                    data,
                    n_rounds=n_rounds,
                    score=self._score_round,
                    first_round=done + 1,
                    on_round_end=on_round_end,
                    freeze_lr=freeze_lr,
                    initial_lrs=[g["lr"] for g in self.net_.optimizer_.param_groups]
                    if freeze_lr
                    else None,
                    grad_fn=grad_fn,
                )
            finally:
                on_round_end.close()
            selector.restore(net, pruner)
        records = old_records + more
        self._set_ticket(
            net, pruner, records, selector, interrupted, user_split, user_callbacks
        )
        return self

    # -- export and ticket files ----------------------------------------------
    def to_sparse(self, *, layout="auto", batch_size=SPARSE_BATCH, measure=True):
        """The fitted ticket as a plain torch module for fast inference.

        Pruned ``Linear`` layers are stored in torch's CSR layout where that is
        faster than dense for the layer's shape and density; every other layer
        stays dense with its pruned weights exactly zero (see
        :func:`sklottery.sparse.to_sparse`). The module's outputs are the
        logits of ``net_.module_`` (allclose); ``predict`` uses it when
        ``inference="sparse"``.

        Parameters
        ----------
        layout : {"auto", "sparse", "dense"}, default="auto"
            ``"auto"`` keeps, per layer, whichever of dense and CSR is faster.
        batch_size : int, default=256
            Rows per forward call the choice is made for.
        measure : bool, default=True
            Decide by a short timing at export (``False``: by a calibrated
            rule, deterministic).

        Returns
        -------
        torch.nn.Module
            In eval mode, on the device of ``net_.module_``; the per-layer
            decisions are in its ``sparse_layouts`` attribute.
        """
        check_is_fitted(self)
        return to_sparse(
            self.net_.module_,
            self.masks_,
            layout=layout,
            batch_size=batch_size,
            measure=measure,
        )

    def _forward_sparse(self, X):
        """Outputs of the exported module after the net's predict nonlinearity."""
        module = getattr(self, "sparse_module_", None)
        if module is None:  # inference="sparse" set after fit
            module = self.to_sparse(batch_size=SPARSE_BATCH)
        device = next(iter(self.net_.module_.parameters())).device
        nonlin = self.net_._get_predict_nonlinearity()
        outs = []
        with torch.no_grad():
            for start in range(0, len(X), SPARSE_BATCH):
                out = module(X[start : start + SPARSE_BATCH].to(device))
                if isinstance(out, tuple):
                    out = out[0]
                outs.append(nonlin(out).cpu())
        return torch.cat(outs).numpy()

    def save_ticket(self, file, *, rewind_point=False):
        """Save the fitted ticket to an ``.npz`` file that loads without pickle.

        Masks are packed as bits and only surviving weights are stored (about
        13% of the dense float32 weights at 90% sparsity), with the round
        history and what :meth:`load_ticket` needs to rebuild a fitted
        estimator. See :mod:`sklottery.tickets`.

        Parameters
        ----------
        file : str, os.PathLike or binary file object
        rewind_point : bool, default=False
            Also store the rewind point's survivors (about doubles the size),
            so that a loaded estimator can continue with ``warm_start=True``.
        """
        check_is_fitted(self)
        save_estimator_ticket(self, file, rewind_point=rewind_point)

    def load_ticket(self, file):
        """Make this estimator the fitted one saved in ``file``.

        The estimator's ``net`` (and pruning parameters) must describe the
        network the ticket was found in. The file and its fit to the network
        are validated completely first: a truncated or corrupt file, wrong
        dtypes or a mismatched network raise ``ValueError`` and leave the
        estimator unchanged.

        Parameters
        ----------
        file : str, os.PathLike or binary file object

        Returns
        -------
        self
        """
        n_rounds, prune_rate, target_sparsity = self._validate_params()
        ticket, info = read_estimator_ticket(file, type(self).__name__)
        if info["rescale"] != self.rescale:
            raise ValueError(
                f"the ticket was found with rescale={info['rescale']}, which changes "
                f"the forward pass; load it into an estimator with "
                f"rescale={info['rescale']} (this one has rescale={self.rescale})"
            )
        net = self._build_net(info["n_features_in"], info["n_outputs"])
        user_split, user_callbacks = net.train_split, net.callbacks
        _initialize(net)
        masks = apply_ticket(ticket, net.module_)
        try:
            net.module_.get_submodule(info["output_layer"])
        except AttributeError:
            raise ValueError(
                f"the ticket's output layer {info['output_layer']!r} is not a layer "
                "of this network"
            ) from None
        pruner = Pruner(
            net.module_,
            rewind=self.rewind,
            rescale=self.rescale,
            masks=masks,
            **self._pruner_kwargs(n_rounds, prune_rate, target_sparsity, None),
        )
        if ticket.rewind_point is not None:
            pruner.set_rewind_point(ticket.rewind_point)
        selector = RoundSelector(self.select, float(self.tol), n_rounds)
        selector.round = info["selected_round"]
        # everything is validated: from here on the estimator changes
        for attr in ("classes_", "feature_names_in_"):
            self.__dict__.pop(attr, None)
        self.n_features_in_ = info["n_features_in"]
        for attr, value in ticket.arrays.items():
            setattr(self, attr, value)
        self._set_ticket(
            net, pruner, ticket.rounds, selector, False, user_split, user_callbacks
        )
        self.interrupted_ = info["interrupted"]
        if ticket.rewind_point is None:
            self._rewind_point = None
        # ticket files keep the rewind point, not a round's other start values
        self._round_start = None
        self._n_outputs = info["n_outputs"]
        self._n_features_out = info["n_features_out"]
        return self

    def _dense_round(self, net, data, seed, *, rewind_epoch=None, early_bird=None):
        """Round 0 through ``memory``: (result of ``dense_round``, interrupted).

        The cache key is what determines the dense round -- the net's
        parameters (an unfitted clone, its ``train_split`` replaced by the
        split already made), the split data and the seed -- and nothing
        about pruning, except, when they are used, late rewinding's epoch and
        the early-bird options, which change what round 0 returns or how long
        it trains.
        """
        memory = check_memory(self.memory)
        spec = clone(net).set_params(train_split=None)
        func = memory.cache(dense_round)
        try:
            with warnings.catch_warnings():
                # joblib's timing heuristic: on a busy machine the first call
                # in a new cache directory can take over 0.5 s to persist its
                # (small) arguments; the result is right either way
                warnings.filterwarnings(
                    "ignore", message="Persisting input arguments took",
                    category=UserWarning,
                )
                result = func(
                    spec,
                    data.X_train.numpy(),
                    data.y_train.numpy(),
                    data.X_eval.numpy(),
                    data.y_eval.numpy(),
                    eval_on=data.eval_on,
                    seed=seed,
                    rewind_epoch=rewind_epoch,
                    early_bird=early_bird,
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
    schedule : {"iterative", "oneshot"}, default="iterative"
        ``"oneshot"`` prunes, in a single round 1, what ``n_rounds``
        iterative rounds would (every group's rate compounded: ``1 - (1 -
        rate) ** n_rounds``), then retrains once: ``rounds_`` has two rows
        (Frankle & Carbin 2019 compare one-shot and iterative pruning).
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
        batches. The Keras pruner's ``"smallest_weights"`` and
        ``"smallest_weights_global"`` are aliases of ``"large_final"``
        (layer and global scope). A callable ``f(w_init, w_final) ->
        scores`` is used as is. See :mod:`sklottery.pruning.criteria`.
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
    exclude : list of str, optional
        Layers never pruned.
    rescale : bool, default=False
        Dynamic weight rescaling (from the Keras pruner): each pruned
        layer's weight contribution is multiplied by ``total / kept`` of its
        tensor in the forward pass (a forward hook: ``s * (out - b) + b``);
        stored weights are never rewritten. Linear, Bilinear, Conv*,
        ConvTranspose* and Embedding layers only.
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
        the validation split) and the seed -- and none of the pruning
        parameters, so a search over ``prune_rate``, ``n_rounds``,
        ``strategy``, ``scope``... trains the dense network once per net
        configuration and fold. Results are identical to an uncached fit.
        Needs an int ``random_state`` to hit (``None`` draws a new seed each
        fit). A round-0 record read from the cache keeps the epochs and
        wall time of the fit that computed it. With joblib's dask or ray
        backend the location must be shared by the workers.
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
        ``untrained_score`` (the same score of the masked, rewound network
        before the round trains -- Zhou et al.'s supermask score; the dense
        initialization for round 0), ``ticket_epoch`` (round 0 with
        ``early_bird``: the epoch the ticket was drawn, else NaN) and
        ``selected`` (True on the round chosen by ``select``).

    selected_round_ : int
        The round chosen by ``select``.
    interrupted_ : bool
        True when the user stopped ``fit`` with Ctrl-C (``KeyboardInterrupt``)
        during a round: no further round was run and the estimator keeps the
        round chosen by ``select`` among the completed ones (with the default
        ``select="last"``, the last completed round -- its weights and masks);
        a ``RuntimeWarning`` says so. An interrupt during round 0, before any
        round completed, is re-raised. Deliberate stops (skorch's
        ``EarlyStopping``, :class:`~sklottery.rounds.StopRound`) only end the
        round. ``warm_start=True`` resumes the remaining rounds.
    sparse_module_ : torch.nn.Module
        Only with ``inference="sparse"``: the sparse export used by
        ``predict``.
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

    _default_net_kwargs = {"criterion": torch.nn.CrossEntropyLoss}

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
        if self.inference == "sparse":
            return self._forward_sparse(X)
        return self.net_.predict_proba(X)

    def predict(self, X):
        """Class labels (in the original labels) from the final ticket."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class LotteryTicketRegressor(RegressorMixin, _BaseLotteryTicket):
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
        ``net__<name>``. ``None`` builds ``NeuralNetRegressor(MLP)``
        (LeNet-300-100 shaped, mean squared error, Adam, lr=1.2e-3, batch
        60, 10 epochs, no validation split). An :class:`~sklottery.MLP`
        gets its input size and its number of outputs from the data.
    n_rounds, prune_rate, target_sparsity, schedule, strategy, rewind, \
scope, output_rate_factor, layer_rates, exclude, rescale, early_bird, \
select, tol, memory, warm_start, inference, verbose, random_state
        As for :class:`LotteryTicketClassifier`; the per-round score that
        ``select`` and ``tol`` use is R² (``tol`` in units of R²).

    Attributes
    ----------
    net_ : skorch.NeuralNetRegressor
        The fitted net holding the selected round's ticket.
    n_features_in_ : int
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
    >>> from sklearn.datasets import make_regression
    >>> from skorch import NeuralNetRegressor
    >>> import torch
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

    _net_class = NeuralNetRegressor
    _y_checks = {"y_numeric": True, "multi_output": True}

    def _encode_y(self, y):
        y = np.asarray(y, dtype=np.float32)
        self._y_1d = y.ndim == 1
        y = np.require(y.reshape(len(y), -1), requirements=["C", "W"])
        return y, y.shape[1]

    def _score_round(self, net, X, y):
        return r2(net, X, y)

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
        # a ticket file does not record whether y was 1-d: one target is
        # then predicted 1-d, like scikit-learn's regressors
        y_1d = getattr(self, "_y_1d", pred.shape[1] == 1)
        return pred.ravel() if y_1d else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
