"""Round 0 of a lottery: the dense round, a pure function that can be cached.

:func:`dense_round` trains the dense network from its initialization and
returns a :class:`DenseRound` of plain values, so that ``memory`` (a
``joblib.Memory``) can cache it: fits that differ only in their pruning
parameters train the dense network once. The cache key covers the net's
parameters, the data, the seed and the module's code (:func:`module_code`).
Round 0 may also set a late-rewinding point
(:class:`~sklottery.training._callbacks.RewindCheckpoint`, Frankle et al. 2020) and
stop early once its masks settle (:class:`~sklottery.training._callbacks.EarlyBird`,
You et al. 2020).
"""

from __future__ import annotations

import hashlib
import inspect
import math
import time
import warnings
from dataclasses import dataclass

import torch

from ..config import LotteryConfig
from ..pruning import Pruner
from ..training import (
    EarlyBird,
    RewindCheckpoint,
    RoundData,
    gradient_function,
    initialize_lazy,
    last_value,
)
from ._round import RoundPlan, run_round

__all__ = ["DenseRound", "cached_dense_round", "dense_round", "module_code"]

@dataclass
class DenseRound:
    """What round 0 gives the later rounds: plain values, so it can be cached.

    ``trained`` holds the module's tensors after training (CPU),
    ``history`` the skorch history as a list, ``rng_state`` torch's generator
    after the round (later rounds draw the same numbers whether or not round
    0 came from a cache), ``final_lrs`` the optimizer's learning rates at the
    end, ``rewind_point`` the state after the late-rewinding epoch and
    ``ticket_epoch`` the early-bird epoch, when asked for.
    """

    # what the later rounds start from
    trained: dict
    history: list
    rng_state: torch.Tensor
    final_lrs: list
    # round 0's figures for its record
    epochs: int
    train_loss: float
    valid_loss: float
    wall_time: float
    # asked for by late rewinding and early-bird tickets only
    rewind_point: dict | None = None
    ticket_epoch: float = math.nan




def module_code(module) -> str:
    """A digest of the module's code (its class's source, or qualified name when
    the source is not available), part of the round-0 cache key so that an
    edited module never reuses a stale round 0."""
    cls = module if isinstance(module, type) else type(module)
    try:
        text = inspect.getsource(cls)
    except (OSError, TypeError):
        text = f"{cls.__module__}.{cls.__qualname__}"
    return hashlib.sha256(text.encode()).hexdigest()


def dense_round(
    net,
    data: RoundData,
    *,
    seed: int,
    rewind_epoch: int | None = None,
    early_bird: dict | None = None,
    code: str = "",
    data_key: tuple = (),
) -> DenseRound:
    """Round 0: initialize a clone of ``net`` from ``seed`` and train it dense.

    Its inputs are an *unfitted* skorch net (a specification: its
    parameters), the split data (tensors, converted once by the fit) and
    plain values -- exactly what determines the dense round, and nothing
    about pruning -- so it can be cached
    (``joblib.Memory``): candidates of a search that differ only in pruning
    parameters share one result. ``code`` (:func:`module_code`) and
    ``data_key`` (the split as ndarrays, views of ``data``'s tensors) only
    take part in the cache key; ``data`` itself is left out of it.

    Parameters
    ----------
    net : skorch.NeuralNet
        Unfitted net; cloned, never changed. Its ``train_split`` is ignored:
        the validation data is ``X_eval``/``y_eval``.
    data : RoundData
        The fit's split; ``data.eval_on == "valid"`` validates on its
        evaluation rows every epoch (``valid_loss``); its sample weights
        weight the training loss.
    seed : int
        Seeds torch's generator for initialization and shuffling.
    rewind_epoch : int, optional
        Late rewinding: also return the state after this epoch.
    early_bird : dict, optional
        ``{"threshold", "patience", "pruner"}``: stop the round once the
        masks of the first prune settle, computed by a
        :class:`~sklottery.Pruner` built with the keyword arguments in
        ``"pruner"`` (part of the cache key, like ``rewind_epoch``).

    Raises
    ------
    KeyboardInterrupt
        When the user interrupts training (never cached).
    """
    from sklearn.base import clone

    net = clone(net)
    net.set_params(train_split=data.valid_split())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net.initialize()
        # lazy modules: materialized exactly as in the fit (same seed, same rows)
        initialize_lazy(net, data.X_train)
        callbacks, pruner = [], None
        if rewind_epoch or early_bird is not None:
            options = dict(early_bird or {})
            pruner = Pruner(net.module_, **options.pop("pruner", {}))
            if rewind_epoch:
                checkpoint = RewindCheckpoint(pruner, rewind_epoch)
                callbacks.append(("lottery_rewind_checkpoint", checkpoint))
            if early_bird is not None:
                grad_fn = None
                if pruner.needs_grad:
                    grad_fn = gradient_function(
                        net, pruner, data.X_train, data.y_train, seed=seed
                    )
                bird = EarlyBird(pruner, grad_fn=grad_fn, **options)
                callbacks.append(("lottery_early_bird", bird))
        start = time.perf_counter()
        plan = RoundPlan(round=0, callbacks=callbacks, record=False)
        if run_round(net, None, data, plan, score=None).interrupted:
            raise KeyboardInterrupt(
                "fit was interrupted during round 0 (the dense training): no round "
                "completed, so there is no ticket to keep"
            )
        wall_time = time.perf_counter() - start
        hist = net.history
        result = DenseRound(
            # the trained tensors themselves, not a copy: this net is dropped
            # when the function returns, so no extra copy of the weights is
            # held at the peak
            trained=_cpu(_state(net.module_)),
            history=hist.to_list(),
            rng_state=torch.get_rng_state(),
            final_lrs=[g["lr"] for g in net.optimizer_.param_groups],
            epochs=len(hist),
            train_loss=last_value(hist, "train_loss"),
            valid_loss=last_value(hist, "valid_loss"),
            wall_time=wall_time,
        )
        for name, cb in callbacks:
            if name == "lottery_rewind_checkpoint":
                if not cb.done_:
                    warnings.warn(
                        f"rewind={cb.epoch}: the dense round stopped after "
                        f"{len(hist)} epoch(s); rewinding to the weights at its "
                        "end instead",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    pruner.set_rewind_point()
                result.rewind_point = _cpu(pruner.rewind_point)
            elif cb.epoch_ is not None:
                result.ticket_epoch = cb.epoch_
    return result


def cached_dense_round(net, data: RoundData, config: LotteryConfig, memory):
    """:func:`dense_round` through ``memory`` (a ``joblib.Memory``).

    The cache key is what determines the dense round -- the net's
    parameters (an unfitted clone without the fit's own callbacks and with
    its ``train_split`` replaced by the split already made), the module's
    code, the split data and the seed -- and nothing about pruning, except,
    when they are used, late rewinding's epoch and the early-bird options.
    """
    from sklearn.base import clone

    spec = clone(net).set_params(train_split=None)
    func = dense_round if memory is None else memory.cache(dense_round, ignore=["data"])
    with warnings.catch_warnings():
        # joblib's timing heuristic: on a busy machine the first call in a new
        # cache directory can take over 0.5 s to persist its (small)
        # arguments; the result is right either way
        warnings.filterwarnings(
            "ignore", message="Persisting input arguments took", category=UserWarning
        )
        return func(
            spec,
            data,
            seed=config.seed,
            rewind_epoch=config.rewind_epoch,
            early_bird=config.early_bird_with_pruner(),
            code=module_code(net.module) if memory is not None else "",
            data_key=_data_key(data) if memory is not None else (),
        )


def _data_key(data: RoundData) -> tuple:
    """The split as the cache key hashes it: ndarrays (views of the tensors,
    no copy; :class:`~sklottery.training.SparseRows` as they are), which
    joblib hashes by content."""

    def plain(X):
        return None if X is None else (X.numpy() if isinstance(X, torch.Tensor) else X)

    return (
        plain(data.X_train), plain(data.y_train), plain(data.X_eval),
        plain(data.y_eval), data.eval_on, plain(data.w_train), plain(data.w_eval),
    )


def _state(module) -> dict:
    state = dict(module.named_parameters())
    state.update(module.named_buffers())
    return {n: t.detach() for n, t in state.items()}


def _cpu(state: dict) -> dict:
    return {n: t.cpu() for n, t in state.items()}
