"""`BaseLotteryTicket`: what the lottery-ticket estimators share.

``fit`` validates, builds the net and the pruner, runs the lottery
(:func:`~sklottery.lottery._loop.run_lottery`) and sets the fitted attributes from
its result; the rest is inference, export and ticket files.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, check_memory
from skorch import NeuralNetClassifier
from torch.utils.data import DataLoader

from .. import inputs
from ..training import ApplyMasks
from ..training import check_fit, check_no_missing_targets
from ..training import initialize_net as _initialize
from ..config import PARAMETER_CONSTRAINTS, make_config
from ..training._loader import SUPPORTED_OPTIONS, TensorLoader, as_rows
from ..modules import MLP, default_module_for, default_type_rates, fill_module_sizes
from ..lottery import RoundProgress
from ..pruning import Pruner, find_prunable
from ..pruning.rewind import KEEP_TRAINED
from ..lottery._loop import (
    MASKS_CALLBACK,
    LotteryState,
    RoundRecord,
    deferred_interrupt,
    records_frame,
    run_lottery,
)
from ..export import to_sparse
from ..tickets._mixin import TicketIOMixin
from ..training import predict_nonlinearity, seed_train_split, split_data

__all__ = ["BaseLotteryTicket"]

#: Rows per forward call of the sparse export (its layouts are chosen for it).
SPARSE_BATCH = 256
#: Attributes fit sets from X and y before the lottery runs.
_DATA_ATTRS = ("n_features_in_", "feature_names_in_", "classes_", "_y_1d",
               "_input_info")


class BaseLotteryTicket(
    TicketIOMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Shared machinery of the lottery-ticket estimators (not used directly)."""

    _parameter_constraints: dict = dict(PARAMETER_CONSTRAINTS)
    _net_class = NeuralNetClassifier
    #: How validate_data checks y (the subclasses' targets differ).
    _y_checks = {"y_numeric": False}
    #: What the default network (``net=None``) sets beyond the shared defaults.
    _default_net_kwargs: dict = {}

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
        type_rates=None,
        rescale=False,
        sparse_training="auto",
        score_untrained=False,
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
        self.type_rates = type_rates
        self.rescale = rescale
        self.sparse_training = sparse_training
        self.score_untrained = score_untrained
        self.early_bird = early_bird
        self.select = select
        self.tol = tol
        self.memory = memory
        self.warm_start = warm_start
        self.inference = inference
        self.verbose = verbose
        self.random_state = random_state

    # -- subclass hooks ----------------------------------------------------
    def _encode_y(self, y):  # pragma: no cover - abstract
        raise NotImplementedError

    #: ``score(net, X, y) -> float``, the per-round score (a plain function).
    _round_score = None

    # -- building blocks -------------------------------------------------------
    def _check_net(self):
        """The ``net`` parameter: a skorch net of the estimator's kind, or None."""
        if self.net is None:
            return
        name = self._net_class.__name__
        if isinstance(self.net, type):
            raise TypeError(
                f"net must be a skorch {name} instance, e.g. {name}(MyModule, ...); "
                f"got the class {self.net.__name__}"
            )
        if not isinstance(self.net, self._net_class):
            raise TypeError(
                f"net must be a skorch {name} (or None for the default MLP); got "
                f"{type(self.net).__name__}"
            )

    def _default_net(self, module=MLP):
        """``net=None``: ``module`` (for tables a LeNet-300-100-shaped
        :class:`~sklottery.MLP`) trained with Adam (lr 1.2e-3, batch 60, 10
        epochs), no validation split."""
        return self._net_class(
            module,
            optimizer=torch.optim.Adam,
            lr=1.2e-3,
            batch_size=60,
            max_epochs=10,
            train_split=None,
            iterator_train__shuffle=True,
            verbose=0,
            **self._default_net_kwargs,
        )

    def _build_net(self, n_features, n_outputs, seed):
        """A clone of ``net`` (or the default net for the input) sized for the
        data (``n_features``: an int or :class:`~sklottery.inputs._validation.InputInfo`),
        with the fast batch loader where it changes nothing and the fit's
        seed for a validation split that has none."""
        info = inputs.as_info(n_features)
        if self.net is None:
            net = self._default_net(default_module_for(info))
        else:
            net = clone(self.net)
        fill_module_sizes(net, info, n_outputs)
        for which in ("iterator_train", "iterator_valid"):
            options = set(net.get_params_for(which))
            if getattr(net, which) is DataLoader and options <= SUPPORTED_OPTIONS:
                net.set_params(**{which: TensorLoader})
        return seed_train_split(net, seed)

    def _seed(self, resumed_after=None):
        """The fit's seed; a warm start continues on its own stream."""
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        if resumed_after is None:
            return seed
        return int(np.random.SeedSequence([seed, resumed_after]).generate_state(1)[0])

    def _validate_X_y(self, X, y, reset):
        """``X`` (ndarray or SparseRows), ``y`` and the input's InputInfo."""
        check_no_missing_targets(y)
        int_as, checks = inputs.integer_input(self.net), self._y_checks
        return inputs.check_X_y(self, X, y, reset=reset, int_as=int_as, **checks)

    # -- fit ---------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Find a winning ticket: run ``n_rounds`` pruning rounds after a dense one.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...), sparse matrix or tensor
            Tables, images, sequences, token ids (user guide: "Inputs").
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples' losses, ``sum(w * loss) / sum(w)`` per
            batch (user guide: "Inputs"); all ones is the unweighted fit.

        Returns
        -------
        self
        """
        # put back what fit learnt from X and y if it fails or is interrupted
        before = {a: v for a, v in vars(self).items() if a in _DATA_ATTRS}
        try:
            return self._fit(X, y, sample_weight)
        except BaseException:
            for attr in _DATA_ATTRS:
                self.__dict__.pop(attr, None)
            self.__dict__.update(before)
            raise

    def _fit(self, X, y, sample_weight):
        self._validate_params()
        self._check_net()
        resume = self.warm_start and hasattr(self, "rounds_")
        done = int(self.rounds_["round"].iloc[-1]) if resume else None
        seed = self._seed(done)
        spec = self._default_net() if self.net is None else self.net
        config = make_config(
            self.get_params(deep=False), seed=seed, max_epochs=spec.max_epochs
        )
        if resume:
            self._check_resume(config, done)
            if config.n_rounds == done:
                warnings.warn(
                    f"warm_start=True with n_rounds={config.n_rounds} equal to the "
                    "rounds already run: nothing to fit; increase n_rounds for more "
                    "rounds", UserWarning, stacklevel=3,
                )
                return self
        X, y, info = self._validate_X_y(X, y, reset=not resume)
        sample_weight = inputs.check_sample_weight(sample_weight, len(X))
        previous = getattr(self, "classes_", None) if resume else None
        y, n_outputs = self._encode_y(y)
        if resume:
            self._check_same_outputs(previous, n_outputs)
        net = self._build_net(info, n_outputs, seed)
        if self.net is None and self.type_rates is None:  # the default net's own
            config = config.with_pruner(type_rates=default_type_rates(net, config))
        data = check_fit(net, split_data(net, X, y, sample_weight))
        if self.select in ("best", "ticket") and data.eval_on == "train":
            warnings.warn(
                f"select={self.select!r} without a validation split: rounds are "
                "judged by their score on the training data; give the net a "
                "train_split (e.g. skorch's ValidSplit) to select on held-out data",
                UserWarning, stacklevel=3,
            )
        user_split, user_callbacks = net.train_split, net.callbacks
        progress = None
        if self.verbose > 0:
            first = 0 if done is None else done + 1
            progress = RoundProgress(config.last_round + 1, first)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _initialize(net, data.X_train)
            inputs.check_network(net.module_, X, info)
            # the pruner's rewind point is the initialization just made
            pruner = Pruner(net.module_, **config.pruner)
            state = self._lottery_state() if resume else None
            if resume:
                self._check_same_module(net)
            memory = check_memory(self.memory) if self.memory is not None else None
            result = run_lottery(
                net, pruner, data, config, score=type(self)._round_score,
                memory=memory, resume=state, progress=progress,
            )
        with deferred_interrupt() as caught:
            self._set_fitted(
                net, result, user_split, user_callbacks, n_outputs, X[:1], bool(caught)
            )
        return self

    def _lacks_round_start(self, rewind) -> bool:
        """True when the selected round started from values this estimator
        does not hold: round 0 starts from the rewind point itself, but a
        later round of these rewind modes starts elsewhere, which a ticket
        file does not keep."""
        return (
            getattr(self, "_round_start", None) is None
            and self.selected_round_ > 0
            and rewind in ("reinit", "reshuffle", "signed_constant", *KEEP_TRAINED)
        )

    def _check_resume(self, config, done):
        """What a warm start needs from the fitted estimator."""
        if self.schedule in ("oneshot", "at_init"):
            raise ValueError(
                "warm_start=True adds iterative pruning rounds; it cannot be used "
                f"with schedule={self.schedule!r} (valid: schedule='iterative')"
            )
        if config.n_rounds < done:
            raise ValueError(
                f"n_rounds={config.n_rounds} must be >= the {done} pruning rounds "
                "already run when warm_start=True (n_rounds counts all pruning "
                "rounds, like n_estimators of a forest)"
            )
        if self._lacks_round_start(config.pruner["rewind"]):
            raise ValueError(
                f"warm_start=True with rewind={self.rewind!r} needs the weights the "
                "selected round started from (the strategy's w_init); an estimator "
                "loaded from a ticket file does not have them: refit, or use "
                "rewind='init' or a late-rewinding epoch"
            )
        if getattr(self, "rewind_point_", None) is None:
            raise ValueError(
                "warm_start=True needs the rewind point of the first fit; this "
                "estimator was loaded from a ticket file saved without it "
                "(use save_ticket(..., rewind_point=True))"
            )

    def _check_same_outputs(self, previous, n_outputs):
        if n_outputs != self._n_outputs or (
            previous is not None and not np.array_equal(previous, self.classes_)
        ):
            raise ValueError(
                "warm_start=True continues the fitted network, so y must have the "
                f"same classes/outputs as the first fit ({self._n_outputs} outputs"
                + ("" if previous is None else f", classes {previous.tolist()}")
                + ")"
            )

    def _check_same_module(self, net):
        def shapes(module):
            both = [*module.named_parameters(), *module.named_buffers()]
            return {n: tuple(t.shape) for n, t in both}

        if shapes(self.net_.module_) != shapes(net.module_):
            raise ValueError(
                "warm_start=True continues the fitted network, but the net's "
                "module now has other tensors or shapes; refit with warm_start=False"
            )

    def _lottery_state(self) -> LotteryState:
        """The fitted lottery as a warm start's starting point."""
        old = self.net_
        values = dict(old.module_.named_parameters())
        values.update(old.module_.named_buffers())
        optimizer = getattr(old, "optimizer_", None)
        return LotteryState(
            records=[RoundRecord.from_dict(r) for r in self.rounds_.to_dict("records")],
            selected_round=int(self.selected_round_),
            values={n: t.detach() for n, t in values.items()},
            masks=self.masks_,
            rewind_point=self.rewind_point_,
            round_start=self._round_start,
            history=old.history_,
            final_lrs=None
            if optimizer is None
            else [g["lr"] for g in optimizer.param_groups],
        )

    def _set_fitted(self, net, result, user_split, user_callbacks, n_outputs, X1,
                    interrupted_late=False):
        """The fitted attributes from a lottery's result, set all at once."""
        interrupted = result.interrupted or interrupted_late
        if interrupted:
            warnings.warn(
                "fit was interrupted (KeyboardInterrupt) after round "
                f"{result.records[-1].round} completed; no further rounds were "
                f"run. The estimator keeps round {result.selected_round} "
                f"(select={self.select!r} among the {len(result.records)} "
                "completed rounds) as its ticket; interrupted_ is True and "
                "warm_start=True resumes",
                RuntimeWarning,
                stacklevel=4,
            )
        masks = result.masks
        # leave the fitted net as the user configured it, still enforcing the
        # ticket's masks if it is trained further
        net.set_params(train_split=user_split)
        net.callbacks = [*(user_callbacks or []), (MASKS_CALLBACK, ApplyMasks(masks))]
        net.initialize_callbacks()
        output_layer = find_prunable(net.module_)[-1].module_name
        fitted = {
            "net_": net,
            "masks_": masks,
            "sparsity_": result.sparsity,
            "rounds_": records_frame(result.records, result.selected_round),
            "selected_round_": result.selected_round,
            "layers_": result.layers,
            "interrupted_": bool(interrupted),
            "rewind_point_": result.rewind_point,
            "_round_start": result.round_start,
            "_output_layer": output_layer,
            "_n_outputs": n_outputs,
        }
        self.__dict__.update(fitted)
        if X1 is not None:
            self._n_features_out = self._features(torch.as_tensor(X1)).shape[1]
        if self.inference == "sparse":
            self.sparse_module_ = self.to_sparse(batch_size=SPARSE_BATCH)
        else:
            self.__dict__.pop("sparse_module_", None)

    # -- export and ticket files ----------------------------------------------
    def to_sparse(self, *, layout="auto", batch_size=SPARSE_BATCH, measure=True,
                  structured=True):
        """The fitted ticket as a plain torch module for fast inference.

        Dead hidden units (all incoming or all outgoing weights pruned) are
        removed first where the network's dataflow is known, giving smaller
        layers (see :mod:`sklottery.export._dead_units`); then pruned ``Linear``
        layers are stored in torch's CSR layout where that is faster than
        dense for the layer's shape and density; every other layer stays
        dense with its pruned weights exactly zero (see
        :func:`sklottery.export._sparse.to_sparse`). The module's outputs are the
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
        structured : bool, default=True
            Remove dead hidden units and conv channels first.

        Returns
        -------
        torch.nn.Module
            In eval mode, on the device of ``net_.module_``; the per-layer
            decisions are in its ``sparse_layouts`` attribute and the number
            of units removed per layer in its ``removed_units`` attribute.
        """
        check_is_fitted(self)
        return to_sparse(
            self.net_.module_,
            self.masks_,
            layout=layout,
            batch_size=batch_size,
            measure=measure,
            structured=structured,
        )

    def _forward_sparse(self, X):
        """Outputs of the exported module after the net's predict nonlinearity."""
        module = getattr(self, "sparse_module_", None)
        if module is None:  # inference="sparse" set after fit
            module = self.to_sparse(batch_size=SPARSE_BATCH)
        device = next(iter(self.net_.module_.parameters())).device
        nonlin = predict_nonlinearity(self.net_)
        outs = []
        with torch.no_grad():
            for start in range(0, len(X), SPARSE_BATCH):
                out = module(X[start : start + SPARSE_BATCH].to(device))
                out = out[0] if isinstance(out, tuple) else out
                outs.append(nonlin(out).cpu())
        return torch.cat(outs).numpy()

    # -- inference -----------------------------------------------------------
    def _check_X(self, X):
        check_is_fitted(self)
        X, _ = inputs.check_X(self, X, reset=False, module=self.net_.module_)
        return as_rows(X)

    def _features(self, X):
        """Inputs of the output layer: the features the ticket's head sees."""
        module = self.net_.module_.get_submodule(self._output_layer)
        captured = []

        def hook(mod, args):
            captured.append(args[0].detach().reshape(len(args[0]), -1).cpu())

        handle = module.register_forward_pre_hook(hook)
        try:
            for _ in self.net_.forward_iter(as_rows(X), training=False):
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
        tags.input_tags.sparse = True  # densified one batch at a time
        return tags
