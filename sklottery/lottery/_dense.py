"""Round 0 of a lottery: the dense round, a pure function that can be cached.

:func:`dense_round` trains the dense network from its initialization and
returns a :class:`DenseRound` of plain values, so that ``memory`` (a
``joblib.Memory``) can cache it: fits that differ only in their pruning
parameters train the dense network once. The cache key covers the net's
parameters, the data, the seed, the code of the net's classes
(:func:`code_key`) and what the network does (:func:`behaviour_key`: its
initialization and one training step's loss and gradients), so that no edit
-- to the module, a function or constant it uses, its base classes or the
criterion -- reuses a stale round 0.
Round 0 may also set a late-rewinding point
(:class:`~sklottery.training._callbacks.RewindCheckpoint`, Frankle et al. 2020) and
stop early once its masks settle (:class:`~sklottery.training._callbacks.EarlyBird`,
You et al. 2020).
"""

from __future__ import annotations

import hashlib
import inspect
import io
import math
import numbers
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..config import LotteryConfig
from ..pruning import Pruner, unwrap_compiled
from ..pruning.rng import seeded
from ..training import (
    EarlyBird,
    RewindCheckpoint,
    RoundData,
    accelerator_of,
    clone_net,
    gradient_function,
    initialize_lazy,
    initialize_net,
    last_value,
)
from ._prepare import pruner_options
from ._round import RoundPlan, run_round

__all__ = [
    "DenseRound",
    "behaviour_key",
    "cached_dense_round",
    "code_key",
    "dense_round",
    "module_code",
]

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


# -- the cache key: the code and the behaviour of the net ------------------------
#: Packages whose classes the code key leaves out, with the standard library
#: (their version shows in the behaviour; their source is large).
_LIBRARIES = frozenset({"torch", "skorch", "sklearn", "numpy", "scipy"})


def _code_of(obj) -> str:
    """The source of a class and of its base classes outside :data:`_LIBRARIES`
    (or of a function); qualified names where there is no source."""
    if not isinstance(obj, type):
        obj = obj if inspect.isfunction(obj) else type(obj)
    owners = obj.__mro__ if isinstance(obj, type) else (obj,)
    parts = []
    for owner in owners:
        package = owner.__module__.partition(".")[0]
        if package in _LIBRARIES or package in sys.stdlib_module_names:
            continue
        try:
            parts.append(inspect.getsource(owner))
        except (OSError, TypeError):
            parts.append(f"{owner.__module__}.{owner.__qualname__}")
    return "\n".join(parts)


def module_code(module) -> str:
    """A digest of the module's code: its class's source and that of its base
    classes (outside torch), or qualified names where the source is not
    available. Part of the round-0 cache key (:func:`code_key`)."""
    return hashlib.sha256(_code_of(module).encode()).hexdigest()


def code_key(net) -> str:
    """A digest of the code of the net's class and of every class or function
    among its parameters (module, criterion, optimizer, callbacks, ...),
    base classes included: an edit in a code path that one training step
    does not reach (:func:`behaviour_key`) still misses the cache."""
    seen = {_code_of(net)}
    values = list(net.get_params(deep=False).values())
    while values:
        value = values.pop()
        if isinstance(value, (list, tuple)):
            values.extend(value)
        elif not isinstance(value, (str, bytes, numbers.Number, type(None))):
            # a class, a function or an instance (a module, a callback...)
            seen.add(_code_of(value))
    return hashlib.sha256("\n".join(sorted(seen)).encode()).hexdigest()


def behaviour_key(spec, data: RoundData, *, seed: int) -> str:
    """A digest of what the dense round starts from and its first step does.

    A clone of ``spec`` is initialized from ``seed`` exactly as
    :func:`dense_round` initializes its own; its tensors (names, shapes,
    dtypes, values) are hashed, then the loss and every gradient of one
    forward and backward pass of the net's own loss (``net.get_loss``, in
    training mode, dropout seeded) on the first ``batch_size`` training rows.
    Whatever changes the network's initialization or its training step -- a
    function or global its ``forward`` reads, a constant its ``__init__``
    uses, a base class, the criterion -- changes the digest. The fit's own
    net and torch's generators are left as they were; the cost is one batch.
    """
    from sklearn.base import clone

    net = clone(spec)
    digest = hashlib.sha256()
    with _isolated(net):
        torch.manual_seed(seed)
        initialize_net(net)
        initialize_lazy(net, data.X_train)
        _hash_tensors(digest, _state(net.module_))
        n = len(data.X_train)
        bs = n if net.batch_size in (None, -1) else min(int(net.batch_size), n)
        Xb, yb = data.X_train[:bs], data.y_train[:bs]
        for module in (net.module_, getattr(net, "criterion_", None)):
            if isinstance(module, torch.nn.Module):
                module.train()
        torch.manual_seed(seed)  # dropout draws the same numbers every time
        loss = net.get_loss(net.infer(Xb), yb, X=Xb, training=True)
        loss.backward()
        grads = {
            n: p.grad for n, p in unwrap_compiled(net.module_).named_parameters()
        }
        _hash_tensors(digest, {"loss": loss.detach(), **grads})
        net.module_.zero_grad(set_to_none=True)
    return digest.hexdigest()


@contextmanager
def _isolated(net):
    """torch's generators (the CPU's, under the lock of
    :func:`~sklottery.lottery.seeded`, and for a net on CUDA its device's)
    forked, and deterministic algorithms on: the fingerprint draws the same
    numbers and sums in the same order every time, and the fit's own stream
    goes on as if it had not run."""
    device = torch.device(getattr(net, "device", None) or "cpu")
    devices = []
    if device.type == "cuda" and torch.cuda.is_available():
        index = device.index
        devices = [torch.cuda.current_device() if index is None else index]
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with seeded(), torch.random.fork_rng(devices=devices), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ops without a deterministic version
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def _hash_tensors(digest, tensors: dict) -> None:
    """Feed each tensor's name, shape, dtype and bytes (None: no gradient)."""
    for name, t in tensors.items():
        if t is None:
            digest.update(f"{name}:None;".encode())
            continue
        t = t.detach()
        digest.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        if t.layout != torch.strided:
            t = t.to_dense()
        try:
            data = t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        except (RuntimeError, TypeError):  # quantized, ...: the saved tensor
            data = io.BytesIO()
            torch.save(t.cpu(), data)
            data = data.getvalue()
        digest.update(data)


def dense_round(
    net,
    data: RoundData,
    *,
    seed: int,
    rewind_epoch: int | None = None,
    early_bird: dict | None = None,
    code: str = "",
    behaviour: str = "",
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
    with seeded(seed):
        initialize_net(net)
        # lazy modules: materialized exactly as in the fit (same seed, same rows)
        initialize_lazy(net, data.X_train)
        callbacks, pruner = [], None
        if rewind_epoch or early_bird is not None:
            options = dict(early_bird or {})
            pruner = Pruner(net.module_, **pruner_options(
                options.pop("pruner", {}), options.pop("granularity", "weight"),
                net, data.X_train,
            ))
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
    its ``train_split`` replaced by the split already made), the code of
    its classes (:func:`code_key`), what its initialization and first
    training step compute (:func:`behaviour_key`), the split data and the
    seed -- and nothing about pruning, except, when they are used, late
    rewinding's epoch and the early-bird options; never in several
    accelerate processes (warned about). A seed that does not
    repeat (``random_state`` not an int) is warned about: the cache would
    rarely hit and grows with every fit.
    """
    # an unfitted clone (an initialized accelerate net included)
    spec = clone_net(net).set_params(train_split=None)
    accelerator = accelerator_of(net)
    if memory is not None and accelerator is not None and accelerator.num_processes > 1:
        warnings.warn(
            "memory: round 0 is not cached in several accelerate processes (a "
            "cache hit in one process and a miss in another would leave the "
            "other waiting for it)",
            UserWarning,
            stacklevel=5,
        )
        memory = None
    keys = None if memory is None else _cache_keys(spec, data, config)
    func = dense_round
    if keys is None:
        keys = {"code": "", "behaviour": "", "data_key": ()}
    else:
        func = memory.cache(dense_round, ignore=["data"])
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
            **keys,
        )


def _cache_keys(spec, data: RoundData, config: LotteryConfig) -> dict | None:
    """The keyword arguments of :func:`dense_round` that only key the cache;
    None (round 0 not cached, with a warning) when the network's first
    training step cannot be fingerprinted outside its training loop."""
    if not config.seeded:
        warnings.warn(
            "memory is set but random_state is not an int: each fit draws a new "
            "seed for round 0, so the memory cache will rarely hit and grows with "
            "every fit; pass an int random_state to reuse round 0",
            UserWarning,
            stacklevel=6,
        )
    try:
        behaviour = behaviour_key(spec, data, seed=config.seed)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's code
        warnings.warn(
            "memory: round 0 is not cached, because one training step of the net "
            "outside its training loop (the cache key's fingerprint of what the "
            f"network computes) failed: {type(exc).__name__}: {exc}",
            UserWarning,
            stacklevel=6,
        )
        return None
    return {"code": code_key(spec), "behaviour": behaviour, "data_key": _data_key(data)}


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
    module = unwrap_compiled(module)  # the uncompiled module's names
    state = dict(module.named_parameters())
    state.update(module.named_buffers())
    return {n: t.detach() for n, t in state.items()}


def _cpu(state: dict) -> dict:
    return {n: t.cpu() for n, t in state.items()}
