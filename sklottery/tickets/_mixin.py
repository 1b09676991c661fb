"""Ticket files of a fitted estimator: :class:`TicketIOMixin`.

``save_ticket`` hands the estimator's own state to the file format
(:mod:`sklottery.tickets`) as plain values; ``load_ticket`` validates a file
completely against the estimator's network and only then sets the fitted
attributes, in one step.
"""

from __future__ import annotations

import warnings

from sklearn.utils.validation import check_is_fitted

from ..config import make_config
from ..inputs import input_state, integer_input, sample_input, ticket_input
from ..lottery import (
    Prepared,
    RoundRecord,
    build_net,
    check_params,
    deferred_interrupt,
    make_result,
)
from ..pruning import Pruner, find_prunable
from ..training import accelerator_of, batch_to, initialize_net
from ._estimator import read_estimator_ticket, save_estimator_ticket
from ._read import apply_ticket

__all__ = ["TicketIOMixin"]

#: The start of the Pruner's warning about per-round counts that round to 0.
_ROUNDING_WARNING = "the number of weights to prune per round"


class TicketIOMixin:
    """``save_ticket`` / ``load_ticket`` of the lottery-ticket estimators."""

    def save_ticket(self, file, *, rewind_point=False):
        """Save the fitted ticket to a file that loads without pickle.

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

        Notes
        -----
        For a net trained through ``accelerate`` (skorch's
        ``AccelerateMixin``) in several processes, only the main process
        (``net.accelerator.is_main_process``) writes; in the others this is
        a no-op, so every process may call it with the same path. It does
        not wait for the other processes.
        """
        check_is_fitted(self)
        accelerator = accelerator_of(self.net_)
        if accelerator is not None and not accelerator.is_main_process:
            return
        if rewind_point and self.rewind_point_ is None:
            raise ValueError(
                "rewind_point=True, but this estimator has no rewind point (it was "
                "loaded from a ticket file saved without one)"
            )
        state = {
            **input_state(self),
            "n_outputs": int(self._n_outputs),
            "n_features_out": int(self._n_features_out),
            "output_layer": self._output_layer,
            "selected_round": int(self.selected_round_),
            "interrupted": bool(self.interrupted_),
            # forward-pass options the saved weights only make sense with
            "rescale": bool(self.rescale),
        }
        if hasattr(self, "_y_1d"):  # a regressor: whether y was 1-d
            state["y_1d"] = bool(self._y_1d)
        arrays = {
            attr: getattr(self, attr)
            for attr in ("classes_", "feature_names_in_")
            if hasattr(self, attr)
        }
        save_estimator_ticket(
            file,
            self.net_.module_,
            self.masks_,
            estimator=type(self).__name__,
            state=state,
            arrays=arrays,
            rounds=self.rounds_.drop(columns="selected").to_dict("records"),
            rewind_point=self.rewind_point_ if rewind_point else None,
        )

    def _pruner_options(self) -> dict:
        """Keyword arguments of the :class:`~sklottery.Pruner` a loaded ticket
        is described by (the estimator's pruning parameters, checked)."""
        return dict(
            make_config(self.get_params(deep=False), seed=0, max_epochs=None).pruner
        )

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
        # the preamble's parameter checks, then the net built as fit builds it
        # (sklottery.lottery.prepare), sized by the file
        params = check_params(self, self._task)
        pruner_options = self._pruner_options()
        built = {}

        def network(info):
            # called once the file's header is checked, before its tensors are
            # read: the ticket is checked against this network first
            if info["rescale"] != self.rescale:
                raise ValueError(
                    f"the ticket was found with rescale={info['rescale']}, which "
                    f"changes the forward pass; load it into an estimator with "
                    f"rescale={info['rescale']} (this one has "
                    f"rescale={self.rescale})"
                )
            built["given"] = given = ticket_input(info)
            if given.dtype == "int64" and integer_input(params["net"]) != "ids":
                module = params["net"].module
                raise ValueError(
                    "the ticket was fitted on integer token ids (estimator state "
                    f"field 'input' kind 'ids', {given.describe()}), but this "
                    "estimator's net module "
                    f"{getattr(module, '__name__', type(module).__name__)} takes "
                    "float X"
                )
            net = build_net(params["net"], self._task, given, info["n_outputs"], 0)
            built["split"], built["callbacks"] = net.train_split, net.callbacks
            # a first batch of zeros sets up lazy modules
            initialize_net(net, sample_input(given))
            built["net"] = net
            return net.module_

        ticket, info = read_estimator_ticket(file, type(self).__name__, network)
        net, given = built["net"], built["given"]
        masks = apply_ticket(ticket, net.module_)
        output_layer = find_prunable(net.module_)[-1].module_name
        if info["output_layer"] != output_layer:
            raise ValueError(
                f"the ticket's output_layer {info['output_layer']!r} is not this "
                f"network's output layer {output_layer!r}"
            )
        with warnings.catch_warnings():
            # a loaded ticket prunes nothing: the per-round counts that round
            # to 0 (warned about when it was fitted) do not apply
            warnings.filterwarnings("ignore", message=_ROUNDING_WARNING)
            granularity = getattr(self, "granularity", "weight")  # supermasks: none
            if granularity != "weight":
                # a structured ticket's units: traced on rows of zeros
                pruner_options.update(
                    granularity=granularity,
                    example_inputs=batch_to(sample_input(given, 2), _device(net)),
                )
            pruner = Pruner(net.module_, masks=masks, **pruner_options)
        records = [RoundRecord.from_dict(r) for r in ticket.rounds]
        structured = any(r.n_units == r.n_units for r in records)  # not NaN
        if structured != (granularity != "weight"):
            raise ValueError(
                f"the ticket was found with "
                f"{'whole units' if structured else 'single weights'} pruned; load "
                f"it into an estimator with granularity="
                f"{'neuron' if structured else 'weight'} (this one has "
                f"granularity={granularity!r})"
            )
        if info["selected_round"] not in {r.round for r in records}:
            raise ValueError(
                f"the ticket's selected_round {info['selected_round']} is not one "
                f"of its rounds {[r.round for r in records]}"
            )
        # ticket files keep the rewind point, not a round's other start values
        result = make_result(records, info["selected_round"], pruner)
        result.rewind_point, result.round_start = ticket.rewind_point, None
        learnt = {"_input_info": given, "_example_rows": sample_input(given, 2),
                  **ticket.arrays}
        if len(given.shape) == 1:
            learnt["n_features_in_"] = info["n_features_in"]
        if "y_1d" in info:  # older files: one target is predicted 1-d
            learnt["_y_1d"] = info["y_1d"]
        prep = Prepared(
            net=net, data=None, config=None, seed=0, n_outputs=info["n_outputs"],
            info=given, learnt=learnt, user_split=built["split"],
            user_callbacks=list(built["callbacks"] or []),
        )
        # everything is validated: from here on the estimator changes
        with deferred_interrupt():
            self._set_fitted(prep, result)
            self.interrupted_ = info["interrupted"]
            self._n_features_out = info["n_features_out"]
        return self


def _device(net):
    return next(iter(net.module_.parameters())).device
