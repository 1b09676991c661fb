"""The one preamble of every fit: :func:`prepare`.

``fit`` of the lottery and supermask estimators, ``sanity_checks`` and
``stability_analysis`` (through their retraining) and ``load_ticket`` all
start from what :func:`prepare` builds, in this order: the parameters
validated (once), the ``net`` parameter checked, the seed drawn, the
configuration made, ``X``/``y`` validated, the sample weights checked, ``y``
encoded by the task, the net built for the data, the data split once and
the net initialized from the seed. Nothing is written on the estimator: what
``fit`` learns from ``X`` and ``y`` comes back in :attr:`Prepared.learnt`,
for the estimator to set once its fit succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import validate_parameter_constraints
from torch.utils.data import DataLoader

from .. import inputs
from ..config import make_config
from ..modules import default_module_for, default_type_rates, fill_module_sizes
from ..pruning import snapshot
from ..pruning.rng import seeded
from ..training import (
    SUPPORTED_OPTIONS,
    RoundData,
    TensorLoader,
    accelerator_of,
    batch_to,
    check_fit,
    check_training_options,
    initialize_net,
    seed_train_split,
    split_data,
)

__all__ = [
    "Prepared",
    "build_net",
    "check_params",
    "draw_seed",
    "prepare",
    "pruner_options",
]


@dataclass
class Prepared:
    """What :func:`prepare` builds.

    Attributes
    ----------
    net : skorch.NeuralNet
        Built for the data and initialized from ``seed``; its
        ``train_split`` validates on the split already made in ``data``.
    data : RoundData or None
        The split, converted to tensors once (None for a network built for
        a ticket file, which has no data).
    config : LotteryConfig or None
        The lottery's configuration (None for the supermask estimators).
    seed : int
    n_outputs : int
    info : InputInfo
    learnt : dict
        The fitted attributes learnt from ``X`` and ``y`` (``n_features_in_``,
        ``feature_names_in_``, ``_input_info``, ``classes_`` or ``_y_1d``).
    user_split, user_callbacks
        The net's own ``train_split`` and callbacks, for the fitted net.
    rng_state : torch.Tensor
        torch's generator right after the initialization: the rounds go on
        from exactly there.
    """

    net: object
    data: RoundData | None
    config: object
    seed: int
    n_outputs: int
    info: object
    learnt: dict = field(default_factory=dict)
    user_split: object = None
    user_callbacks: list = field(default_factory=list)
    rng_state: torch.Tensor | None = None

    def initialization(self) -> dict:
        """The module's tensors as initialized (detached copies)."""
        return snapshot(self.net.module_)


def draw_seed(random_state, resumed_after=None) -> int:
    """The fit's seed from ``random_state``; a warm start after round
    ``resumed_after`` continues on its own stream."""
    rng = check_random_state(random_state)
    seed = int(rng.randint(np.iinfo(np.int32).max))
    if resumed_after is None:
        return seed
    return int(np.random.SeedSequence([seed, resumed_after]).generate_state(1)[0])


def build_net(net, task, info, n_outputs, seed, *, default_changes=None):
    """A clone of the ``net`` parameter (or the task's default net for the
    input, ``default_changes`` applied) sized for the data, with the fast
    batch loader where it changes nothing (not for an ``AccelerateMixin``
    net, whose DataLoader accelerate shards) and the fit's seed for a
    validation split that has none."""
    info = inputs.as_info(info)
    if net is None:
        net = task.default_net(default_module_for(info), **(default_changes or {}))
    else:
        net = clone(net)
    fill_module_sizes(net, info, n_outputs)
    # an accelerate net keeps skorch's DataLoader: accelerate shards only a
    # DataLoader across processes
    loaders = ("iterator_train", "iterator_valid")
    if accelerator_of(net) is not None:
        loaders = ()
    for which in loaders:
        options = set(net.get_params_for(which))
        if getattr(net, which) is DataLoader and options <= SUPPORTED_OPTIONS:
            net.set_params(**{which: TensorLoader})
    return seed_train_split(net, seed)


def check_params(estimator, task) -> dict:
    """The estimator's parameters (``get_params(deep=False)``), checked once
    per preamble: scikit-learn's check against the estimator's declared
    constraints (:mod:`sklottery.config`), then the ``net`` parameter
    against the task."""
    params = estimator.get_params(deep=False)
    validate_parameter_constraints(
        type(estimator)._parameter_constraints,
        params,
        caller_name=type(estimator).__name__,
    )
    task.check_net(params["net"])
    return params


def prepare(
    estimator,
    X,
    y,
    sample_weight=None,
    *,
    task,
    lottery: bool = True,
    fitted: bool = False,
    resumed_after: int | None = None,
    check_config: Callable | None = None,
    default_changes: dict | None = None,
) -> Prepared | None:
    """The preamble of a fit of ``estimator`` on ``X``, ``y``.

    Parameters
    ----------
    estimator : BaseLotteryTicket
        Read, never changed: its parameters (``get_params(deep=False)``)
        and, with ``fitted=True``, the fitted input ``X`` is checked against.
    X, y, sample_weight
        As given to ``fit``.
    task : Task
        Classification or regression (:mod:`sklottery.estimators`).
    lottery : bool, default=True
        Make the lottery's :class:`~sklottery.config.LotteryConfig` (False:
        the supermask estimators, which have none).
    fitted : bool, default=False
        ``X`` must be what the fitted estimator was fitted on (a warm
        start, the retraining of a fitted ticket).
    resumed_after : int, optional
        A warm start after this round: the seed continues on its own stream.
    check_config : callable, optional
        ``check_config(config) -> bool`` before any data is read (a warm
        start's checks); False ends the preamble with None.
    default_changes : dict, optional
        Changes to the task's default net (``net=None``).

    Returns
    -------
    Prepared or None
    """
    params = check_params(estimator, task)
    seed = draw_seed(params["random_state"], resumed_after)
    config = None
    if lottery:
        spec = params["net"] or task.default_net(None)
        check_training_options(spec)  # max_epochs is compared with rewind
        config = make_config(params, seed=seed, max_epochs=spec.max_epochs)
        if check_config is not None and not check_config(config):
            return None
    learnt: dict = {}
    inputs.check_no_missing_targets(y)
    X, y, info = inputs.check_X_y(
        estimator, X, y, reset=not fitted, learnt=learnt,
        int_as=inputs.integer_input(params["net"]), **task.y_checks,
    )
    sample_weight = inputs.check_sample_weight(sample_weight, len(X))
    y, n_outputs, from_y = task.encode(y, type(estimator).__name__)
    learnt.update(from_y)
    net = build_net(params["net"], task, info, n_outputs, seed,
                    default_changes=default_changes)
    if lottery and params["net"] is None and params["type_rates"] is None:
        # the default net's own per-type rates
        config = config.with_pruner(type_rates=default_type_rates(net, config))
    data = check_fit(net, split_data(net, X, y, sample_weight))
    user_split, user_callbacks = net.train_split, list(net.callbacks or [])
    with seeded(seed):
        initialize_net(net, data.X_train)
        rng_state = torch.get_rng_state()
    inputs.check_network(net.module_, X, info)
    net.set_params(train_split=data.valid_split())
    return Prepared(
        net=net, data=data, config=config, seed=seed, n_outputs=n_outputs,
        info=info, learnt=learnt, user_split=user_split,
        user_callbacks=user_callbacks, rng_state=rng_state,
    )


def pruner_options(options, granularity: str, net, X) -> dict:
    """The keyword arguments of a fit's :class:`~sklottery.Pruner`:
    ``options`` (a :class:`~sklottery.config.LotteryConfig`'s ``pruner``)
    and, for a structured ``granularity``, the two rows of ``X`` its unit
    graph is traced on (on the module's device; a dict batch becomes
    keyword arguments)."""
    options = dict(options)
    if granularity != "weight":
        device = next(iter(net.module_.parameters())).device
        options.update(granularity=granularity, example_inputs=batch_to(X[:2], device))
    return options
