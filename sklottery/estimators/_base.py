"""`BaseLotteryTicket`: what the lottery-ticket estimators share.

``fit`` runs the package's one preamble (:func:`sklottery.lottery.prepare`),
builds the pruner, runs the lottery (:func:`sklottery.lottery.run_lottery`)
and sets the fitted attributes from its result, all at once; inference and
export are :class:`~sklottery.estimators._inference.InferenceMixin`'s,
ticket files :class:`~sklottery.tickets.TicketIOMixin`'s.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
)
from sklearn.utils.validation import check_memory

from ..config import PARAMETER_CONSTRAINTS
from ..inputs import LEARNT_FROM_X
from ..lottery import (
    MASKS_CALLBACK,
    LotteryState,
    RoundProgress,
    RoundRecord,
    deferred_interrupt,
    prepare,
    pruner_options,
    records_frame,
    run_lottery,
    seeded,
)
from ..pruning import Pruner, find_prunable, unwrap_compiled
from ..pruning.rewind import KEEP_TRAINED
from ..tickets import TicketIOMixin
from ..training import ApplyMasks, as_rows, batch_to
from ._inference import SPARSE_BATCH, InferenceMixin
from ._task import CLASSIFICATION

__all__ = ["BaseLotteryTicket"]

#: Attributes fit learns from X and y (set only once a fit succeeds).
LEARNT = (*LEARNT_FROM_X, "classes_", "_y_1d")


class BaseLotteryTicket(
    TicketIOMixin,
    InferenceMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
):
    """Shared machinery of the lottery-ticket estimators (not used directly)."""

    _parameter_constraints: dict = dict(PARAMETER_CONSTRAINTS)
    #: Classification or regression (:mod:`sklottery.estimators._task`).
    _task = CLASSIFICATION

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
        include=None,
        type_rates=None,
        keep_trained=None,
        rescale=False,
        sparse_training="auto",
        granularity="weight",
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
        self.include = include
        self.type_rates = type_rates
        self.keep_trained = keep_trained
        self.rescale = rescale
        self.sparse_training = sparse_training
        self.granularity = granularity
        self.score_untrained = score_untrained
        self.early_bird = early_bird
        self.select = select
        self.tol = tol
        self.memory = memory
        self.warm_start = warm_start
        self.inference = inference
        self.verbose = verbose
        self.random_state = random_state

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
        resume = self.warm_start and hasattr(self, "rounds_")
        done = int(self.rounds_["round"].iloc[-1]) if resume else None
        prep = prepare(
            self, X, y, sample_weight, task=self._task, fitted=resume,
            resumed_after=done,
            check_config=(lambda c: self._check_resume(c, done)) if resume else None,
        )
        if prep is None:  # a warm start with nothing to fit
            return self
        if resume:
            self._check_same_outputs(prep)
        if self.select in ("best", "ticket") and prep.data.eval_on == "train":
            warnings.warn(
                f"select={self.select!r} without a validation split: rounds are "
                "judged by their score on the training data; give the net a "
                "train_split (e.g. skorch's ValidSplit) to select on held-out data",
                UserWarning, stacklevel=2,
            )
        net, config = prep.net, prep.config
        progress = None
        if self.verbose > 0:
            first = 0 if done is None else done + 1
            progress = RoundProgress(config.last_round + 1, first)
        # the rounds go on from torch's generator right after the
        # initialization (prepare seeded it with the fit's seed)
        with seeded(state=prep.rng_state):
            # the pruner's rewind point is the initialization just made
            pruner = Pruner(net.module_, **pruner_options(
                config.pruner, config.granularity, net, prep.data.X_train
            ))
            state = None
            if resume:
                self._check_same_module(net)
                state = self._lottery_state()
            memory = check_memory(self.memory) if self.memory is not None else None
            result = run_lottery(
                net, pruner, prep.data, config, score=self._task.score,
                memory=memory, resume=state, progress=progress,
            )
        with deferred_interrupt() as caught:
            self._set_fitted(prep, result, bool(caught))
        return self

    def _lacks_round_start(self, rewind) -> bool:
        """True when the selected round started from values this estimator
        does not hold: round 0 starts from the rewind point itself, but a
        later round of these rewind modes starts elsewhere, which a ticket
        file does not keep."""
        return (
            getattr(self, "_round_start", None) is None
            and self.selected_round_ > 0
            and (
                rewind in ("reinit", "reshuffle", "signed_constant", *KEEP_TRAINED)
                or bool(self.keep_trained)
            )
        )

    def _check_resume(self, config, done) -> bool:
        """What a warm start needs from the fitted estimator; False when
        there is nothing to fit (``n_rounds`` rounds already run)."""
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
        fitted = _fitted_granularity(self.rounds_)
        if (fitted == "weight") != (config.granularity == "weight"):
            raise ValueError(
                f"warm_start=True continues the fitted rounds, which pruned "
                f"{'single weights' if fitted == 'weight' else 'whole units'}; "
                f"granularity={self.granularity!r} cannot continue them (refit "
                "with warm_start=False)"
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
        if config.n_rounds == done:
            warnings.warn(
                f"warm_start=True with n_rounds={config.n_rounds} equal to the "
                "rounds already run: nothing to fit; increase n_rounds for more "
                "rounds", UserWarning, stacklevel=5,
            )
            return False
        return True

    def _check_same_outputs(self, prep):
        previous = getattr(self, "classes_", None)
        classes = prep.learnt.get("classes_")
        if prep.n_outputs != self._n_outputs or (
            previous is not None and not np.array_equal(previous, classes)
        ):
            raise ValueError(
                "warm_start=True continues the fitted network, so y must have the "
                f"same classes/outputs as the first fit ({self._n_outputs} outputs"
                + ("" if previous is None else f", classes {previous.tolist()}")
                + ")"
            )

    def _check_same_module(self, net):
        def shapes(module):
            module = unwrap_compiled(module)
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
        module = unwrap_compiled(old.module_)
        values = dict(module.named_parameters())
        values.update(module.named_buffers())
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

    def _set_fitted(self, prep, result, interrupted_late=False):
        """The fitted attributes from the preamble and a lottery's result,
        set all at once."""
        interrupted = result.interrupted or interrupted_late
        if interrupted and prep.config is not None:
            # a Ctrl-C that came once the last round was complete interrupted
            # nothing: no round is missing
            interrupted = result.records[-1].round < prep.config.last_round
        if interrupted:
            warnings.warn(
                "fit was interrupted (KeyboardInterrupt) after round "
                f"{result.records[-1].round} completed; no further rounds were "
                f"run. The estimator keeps round {result.selected_round} "
                f"(select={self.select!r} among the {len(result.records)} "
                "completed rounds) as its ticket; interrupted_ is True and "
                "warm_start=True resumes",
                RuntimeWarning,
                stacklevel=3,
            )
        masks = result.masks
        net = prep.net
        # leave the fitted net as the user configured it, still enforcing the
        # ticket's masks if it is trained further
        net.set_params(train_split=prep.user_split)
        net.callbacks = [*prep.user_callbacks, (MASKS_CALLBACK, ApplyMasks(masks))]
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
            "_n_outputs": prep.n_outputs,
        }
        if "_input_info" in prep.learnt:  # a new fit (not a warm start)
            for attr in LEARNT:
                self.__dict__.pop(attr, None)
            fitted.update(prep.learnt)
        self.__dict__.update(fitted)
        if prep.data is not None:
            # two rows to trace the module's units on (to_compact, to_sparse)
            self._example_rows = batch_to(prep.data.X_train[:2], torch.device("cpu"))
            first = as_rows(prep.data.X_train[:1])
            self._n_features_out = self._features(first).shape[1]
        if self.inference == "sparse":
            self.sparse_module_ = self.to_sparse(batch_size=SPARSE_BATCH)
        else:
            self.__dict__.pop("sparse_module_", None)


def _fitted_granularity(rounds) -> str:
    """``"weight"`` or ``"neuron"``: what a fit's ``rounds_`` pruned (a
    structured fit records its units)."""
    units = rounds["n_units"] if "n_units" in rounds else None
    return "weight" if units is None or units.isna().all() else "neuron"
