"""Checks of a fit's inputs that sklearn's parameter constraints cannot express.

Each turns a careless input into a clear ``ValueError``/``TypeError`` naming
the parameter or the cause *before* any training, where torch or skorch would
fail later with an unrelated message (``range() arg 3 must not be zero``,
``Torch not compiled with CUDA enabled``) or silently train on nothing (NaN
losses):

* :func:`check_device` -- the net's ``device`` exists on this machine;
* :func:`check_batches` -- ``batch_size`` and ``iterator_*__drop_last``
  leave at least one batch per epoch;
* :func:`check_training_options` -- ``max_epochs``, ``lr`` and the
  optimizer's numeric options are numbers (``net__lr="x"`` would fail in
  the optimizer with ``'<' not supported between ...``, ``max_epochs=-1``
  would train nothing);

:func:`initialize_lazy` materializes lazy modules (``nn.LazyLinear``, ...)
on a first batch so that their weights can be pruned.
"""

from __future__ import annotations

import inspect
import math
import numbers

import torch

from ..pruning.targets import find_prunable, has_uninitialized_params
from ._skorch import accelerated_initialization

__all__ = [
    "check_batches",
    "check_device",
    "check_fit",
    "check_training_options",
    "initialize_lazy",
    "initialize_net",
]


def initialize_net(net, X=None):
    """:func:`check_training_options`, ``net.initialize()``, then
    :func:`initialize_lazy` on ``X`` (when given), with a clear error for a
    network with nothing to prune (torch's own, from the optimizer, would be
    "empty parameter list") and for options the optimizer rejects."""
    check_training_options(net)
    try:
        with accelerated_initialization(net):
            net.initialize()
    except (TypeError, ValueError) as exc:
        module = getattr(net, "module_", None)
        if isinstance(module, torch.nn.Module) and not find_prunable(module):
            raise ValueError(
                f"net's module {type(module).__name__} has nothing to prune: "
                "sklottery prunes the weights of Linear, Bilinear, Conv*, "
                "ConvTranspose*, RNN/LSTM/GRU, Embedding and MultiheadAttention "
                "layers"
            ) from exc
        if _raised_in(exc, "initialize_optimizer"):
            options = {f"net__{k}": v for k, v in _optimizer_options(net).items()}
            raise type(exc)(
                f"net's optimizer {_name(net.optimizer)} rejects its options "
                f"{options}: {exc}"
            ) from exc
        raise
    if X is not None:
        initialize_lazy(net, X)
    return net


def _raised_in(exc, function: str) -> bool:
    """Whether ``function`` is among the frames ``exc`` passed through."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == function:
            return True
        tb = tb.tb_next
    return False


def _name(obj) -> str:
    return getattr(obj, "__name__", type(obj).__name__)


def _optimizer_options(net) -> dict:
    """The optimizer's options as the user names them below ``net__``: its
    learning rate (``lr``, or ``optimizer__lr`` when set) and every other
    ``optimizer__`` option (param groups left out)."""
    own = net.get_params_for("optimizer")
    options = {} if "lr" in own else {"lr": net.lr}
    options.update(
        (f"optimizer__{k}", v) for k, v in own.items() if k != "param_groups"
    )
    return options


def _is_number(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and value.is_floating_point()
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _numeric_defaults(optimizer) -> dict:
    """The optimizer's options whose defaults are numbers (``lr``,
    ``momentum``, ``weight_decay``, ...), by name."""
    try:
        params = inspect.signature(optimizer).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if _is_number(p.default)}


def check_training_options(net):
    """Raise if the net's ``max_epochs`` is not an int >= 0, its learning rate
    not a finite number >= 0, its optimizer not callable, or an
    ``optimizer__`` option not a number where the optimizer's default is one
    (``momentum``, ``weight_decay``, ...). Each error names the option as the
    estimator's parameter (``net__lr``, ``net__optimizer__momentum``)."""
    epochs = net.max_epochs
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral):
        raise TypeError(
            f"net__max_epochs (the net's max_epochs) must be an int; got {epochs!r}"
        )
    if epochs < 0:
        raise ValueError(
            f"net__max_epochs (the net's max_epochs) must be >= 0; got {epochs!r}"
        )
    if not callable(net.optimizer):
        raise TypeError(
            "net__optimizer (the net's optimizer) must be a torch optimizer "
            f"class; got {net.optimizer!r}"
        )
    defaults = _numeric_defaults(net.optimizer)
    for key, value in _optimizer_options(net).items():
        name = key.removeprefix("optimizer__")
        if name == "lr":
            _check_lr(key, value)
        elif name in defaults and not _is_number(value):
            raise TypeError(
                f"net__{key} (an option of the net's optimizer "
                f"{_name(net.optimizer)}) must be a number; got {value!r}"
            )
    return net


def _check_lr(key, value) -> None:
    if not _is_number(value):
        raise TypeError(
            f"net__{key} (the net's learning rate) must be a number; got {value!r}"
        )
    if not (math.isfinite(float(value)) and float(value) >= 0):
        raise ValueError(
            f"net__{key} (the net's learning rate) must be a finite number >= 0; "
            f"got {value!r}"
        )


def check_fit(net, data):
    """:func:`check_device` and :func:`check_batches` for a fit's split
    ``data`` (a :class:`~sklottery.training.RoundData`); returns ``data``."""
    check_device(net)
    n_valid = len(data.X_eval) if data.eval_on == "valid" else 0
    check_batches(net, len(data.X_train), n_valid)
    return data


def check_device(net):
    """Raise ``ValueError`` if ``net.device`` names an accelerator this machine
    does not have (torch would fail with an ``AssertionError`` mid-fit)."""
    device = getattr(net, "device", None)
    if device is None:
        return net
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"net's device={device!r} is not a torch device") from exc
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"net's device={device!r}, but CUDA is not available on this machine "
            "(no GPU, or torch built without CUDA); use device='cpu'"
        )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"net's device={device!r}, but MPS is not available on this machine; "
            "use device='cpu'"
        )
    return net


def _batch_size(net, which):
    """The batch size skorch uses for ``which`` (``iterator_train`` or
    ``iterator_valid``): its own ``__batch_size``, else ``net.batch_size``."""
    options = net.get_params_for(which)
    if "batch_size" in options:
        return options["batch_size"], f"{which}__batch_size"
    return net.batch_size, "batch_size"


def check_batches(net, n_train: int, n_valid: int = 0):
    """Raise if an epoch of ``n_train`` training rows (``n_valid`` validation
    rows) would have no batch, or the batch size is not one skorch accepts.

    skorch's ``batch_size`` is a positive int, or -1 (or None) for the whole
    data; with ``iterator_train__drop_last=True`` a batch larger than the
    data is dropped, every epoch is empty and the losses are NaN.
    """
    for which, n in (("iterator_train", n_train), ("iterator_valid", n_valid)):
        size, name = _batch_size(net, which)
        if size is None or (
            isinstance(size, numbers.Integral)
            and not isinstance(size, bool)
            and int(size) == -1
        ):
            continue
        if (
            isinstance(size, bool)
            or not isinstance(size, numbers.Integral)
            or int(size) < 1
        ):
            raise ValueError(
                f"net's {name} must be a positive int (or -1 for the whole data); "
                f"got {name}={size!r}"
            )
        if n and net.get_params_for(which).get("drop_last") and int(size) > n:
            what = "training" if which == "iterator_train" else "validation"
            raise ValueError(
                f"net's {which}__drop_last=True with {name}={int(size)} larger than "
                f"the {n} {what} rows: every batch would be dropped and nothing "
                f"trained; lower {name} or set {which}__drop_last=False"
            )
    return net


def initialize_lazy(net, X) -> bool:
    """Materialize the lazy parameters of ``net.module_`` on a first batch.

    Lazy modules (``nn.LazyLinear``, ``nn.LazyConv2d``, ...) get their shapes
    and initial values in their first forward pass. Pruning needs them
    before training, so one forward pass of up to ``net.batch_size`` rows of
    ``X`` runs in evaluation mode without gradients (no dropout and no
    batch-norm statistics: only the initialization consumes random numbers),
    and the optimizer is rebuilt on the materialized parameters. Returns True
    if there was anything to initialize.
    """
    module = getattr(net, "module_", None)
    if module is None or not has_uninitialized_params(module):
        return False
    bs = net.batch_size if isinstance(net.batch_size, int) and net.batch_size > 0 else 1
    try:
        net.evaluation_step((X[:bs], None), training=False)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's forward
        raise ValueError(
            f"could not initialize the lazy modules of {type(module).__name__} "
            f"with a first batch of X of shape {tuple(X[:bs].shape)}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if has_uninitialized_params(module):
        raise ValueError(
            f"{type(module).__name__} still has uninitialized (lazy) parameters "
            "after a forward pass on a first batch (a lazy layer its forward "
            "does not use?); sklottery can only prune initialized layers"
        )
    if getattr(net, "optimizer_", None) is not None:
        net.initialize_optimizer()
    return True
