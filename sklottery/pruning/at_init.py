"""Pruning at initialization: SNIP, GraSP, SynFlow, random and magnitude scores.

Pure mask maths on a module's *initial* weights, before any training step
(the module is never changed here; :class:`~sklottery.Pruner` applies the
masks, through :mod:`sklottery.pruning.masks`). The scores are turned into
masks by the same :func:`~sklottery.pruning.scope.masks_from_scores` the
iterative rounds use, on the Pruner's plan, so scopes, per-layer rates,
``type_rates``, the output layer's rate and excluded layers mean the same
thing as for iterative magnitude pruning. The weights with the *highest*
scores are kept, as everywhere in sklottery.

The strategies
--------------
Details, references and differences from the papers: the user guide's
"Pruning at initialization".

``"snip"``
    ``|w * dL/dw|``, the loss summed over the given batches (Lee et al. 2019).
``"grasp"``
    ``w * Hg`` (Wang et al. 2020), ``g`` the gradient of the loss summed over
    the batches, ``Hg`` a Hessian-gradient product by double
    back-propagation, the output divided by a ``temperature`` (200) before
    the loss. The paper removes the highest ``S(-w) = -w * Hg`` (the weights
    whose removal reduces the gradient flow least); keeping the highest
    ``w * Hg`` removes the same weights (the Synaptic-Flow code's sign).
``"synflow"``
    ``|w * dR/dw|`` (Tanaka et al. 2020), data-free: ``R`` is the sum of the
    output, for one all-ones input, of a float64 eval-mode copy of the
    module with ``|p|`` for every parameter and floating buffer (pruned
    weights zero). Iterated over 100 prune steps with the paper's
    exponential schedule: after step ``t`` of ``T`` a group keeps ``n0 *
    (nT / n0) ** (t / T)`` weights (rounded half up), exactly ``nT`` at the
    end. The copy is dropped: the module keeps its signs bit for bit.
``"random"`` and magnitude
    Uniform random scores, or any strategy of
    :data:`~sklottery.pruning.strategies.STRATEGIES` (or a callable) with
    ``w_init = w_final`` the initialization; ``"magnitude_increase"`` and
    ``"movement"`` score every weight 0 before training and are refused.

References: Lee et al., "SNIP", ICLR 2019; Wang et al., "Picking Winning
Tickets Before Training by Preserving Gradient Flow", ICLR 2020; Tanaka et
al., "Pruning neural networks without any data by iteratively conserving
synaptic flow", NeurIPS 2020.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from .scope import Plan, masks_from_scores, planned_kept
from .strategies import STRATEGIES, compute_scores
from .targets import find_prunable

__all__ = [
    "AT_INIT_ONLY",
    "DATA_STRATEGIES",
    "at_init_masks",
    "at_init_strategies",
    "check_at_init_strategy",
    "grasp_scores",
    "init_scores",
    "needs_data",
    "snip_scores",
    "synflow_scores",
]

#: Strategies that exist only at initialization (not in ``STRATEGIES``).
AT_INIT_ONLY = ("grasp", "synflow")
#: Strategies that need training batches and a loss.
DATA_STRATEGIES = ("snip", "grasp")
#: Strategies of ``STRATEGIES`` that score every weight 0 before training.
_DEGENERATE = ("magnitude_increase", "movement")
#: Default number of prune steps per strategy (Tanaka et al. 2020 use 100).
DEFAULT_ITERATIONS = {"synflow": 100}

LossFn = Callable[[nn.Module, object], torch.Tensor]


def at_init_strategies() -> list[str]:
    """The strategy names pruning at initialization accepts (callables too)."""
    names = set(STRATEGIES) - set(_DEGENERATE) | set(AT_INIT_ONLY)
    return sorted(names)


def check_at_init_strategy(strategy):
    """``strategy`` if pruning at initialization knows it, else a ValueError."""
    if callable(strategy) and not isinstance(strategy, str):
        return strategy
    if isinstance(strategy, str) and strategy in _DEGENERATE:
        raise ValueError(
            f"strategy={strategy!r} compares the trained weights with the "
            "initial ones and scores every weight 0 before training: it cannot "
            f"prune at initialization; valid strategies are {at_init_strategies()} "
            "or a callable f(w_init, w_final) -> scores"
        )
    if not isinstance(strategy, str) or strategy not in at_init_strategies():
        raise ValueError(
            f"strategy={strategy!r} is not a pruning-at-initialization strategy; "
            f"valid strategies are {at_init_strategies()} or a callable "
            "f(w_init, w_final) -> scores"
        )
    return strategy


def needs_data(strategy) -> bool:
    """True if ``strategy`` needs training batches and a loss (SNIP, GraSP)."""
    return isinstance(strategy, str) and strategy in DATA_STRATEGIES


def init_only_score(strategy: str):
    """A score function for :class:`~sklottery.Pruner` that refuses to score
    trained weights: GraSP and SynFlow exist at initialization only."""

    def refuse(w_init, w_final, **_):
        raise ValueError(
            f"strategy={strategy!r} prunes at initialization only: use "
            "Pruner.prune_at_init (or schedule='at_init' in the estimators)"
        )

    refuse.__name__ = strategy
    return refuse


# -- argument checks ------------------------------------------------------------
def _loss_callable(loss_fn, strategy) -> LossFn:
    if loss_fn is None:
        raise ValueError(
            f"strategy={strategy!r} needs a loss: pass loss_fn(module, batch) -> "
            "scalar, or a torch loss module such as torch.nn.CrossEntropyLoss() "
            "(applied as loss(module(X), y) to batches (X, y))"
        )
    if isinstance(loss_fn, nn.Module):
        criterion = loss_fn

        def wrapped(module, batch):
            X, y = batch
            out = module(X)
            return criterion(out[0] if isinstance(out, tuple) else out, y)

        return wrapped
    if not callable(loss_fn):
        raise TypeError(
            f"loss_fn must be a callable loss_fn(module, batch) or a torch loss "
            f"module; got {type(loss_fn).__name__}"
        )
    return loss_fn


def _batch_list(batches, strategy) -> list:
    if batches is None:
        raise ValueError(
            f"strategy={strategy!r} needs training data: pass batches (a few "
            "batches of training data, e.g. [(X, y), ...]) and loss_fn; "
            "'synflow', 'random' and the magnitude strategies need none"
        )
    if isinstance(batches, torch.Tensor) or not isinstance(batches, Iterable):
        raise TypeError(
            "batches must be an iterable of batches (e.g. a list of (X, y) pairs "
            f"or a DataLoader); got {type(batches).__name__}"
        )
    out = list(batches)
    if not out:
        raise ValueError(f"strategy={strategy!r} needs at least one batch; got none")
    return out


def _check_iterations(iterations, strategy) -> int:
    if iterations is None:
        return DEFAULT_ITERATIONS.get(strategy, 1) if isinstance(strategy, str) else 1
    if (
        isinstance(iterations, bool)
        or not isinstance(iterations, numbers.Integral)
        or iterations < 1
    ):
        raise ValueError(f"iterations must be an int >= 1; got {iterations!r}")
    return int(iterations)


def _check_temperature(temperature) -> float:
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, numbers.Real)
        or not temperature > 0
    ):
        raise ValueError(f"temperature must be a float > 0; got {temperature!r}")
    return float(temperature)


# -- the scores ---------------------------------------------------------------------
@contextmanager
def _masked_eval(module: nn.Module, masks: dict[str, torch.Tensor]):
    """The module in eval mode with its pruned weights zero; values and mode
    restored exactly on exit."""
    params = dict(module.named_parameters())
    saved = {}
    was_training = module.training
    with torch.no_grad():
        for name, m in masks.items():
            if not bool(m.all()):
                p = params[name]
                saved[name] = p.detach().clone()
                p.mul_(m.to(device=p.device, dtype=p.dtype))
    module.eval()
    try:
        with torch.backends.cudnn.flags(enabled=False):
            yield params
    finally:
        module.train(was_training)
        with torch.no_grad():
            for name, value in saved.items():
                params[name].copy_(value)


def _finite(scores: dict[str, torch.Tensor], strategy) -> dict[str, torch.Tensor]:
    for name, s in scores.items():
        if not bool(torch.isfinite(s).all()):
            raise ValueError(
                f"strategy={strategy!r} gave non-finite scores for {name!r} (an "
                "overflow in the network's outputs or loss); try fewer batches, "
                "a smaller network or another strategy"
            )
    return scores


def summed_grads(module, tensors, loss_fn, batches):
    """Gradients of ``loss_fn(module, batch)`` w.r.t. ``tensors``, summed
    over ``batches`` (unused tensors: zero); the module is not changed."""
    total = [torch.zeros_like(t) for t in tensors]
    for batch in batches:
        loss = loss_fn(module, batch)
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        for acc, g in zip(total, grads):
            if g is not None:
                acc.add_(g.detach())
    return total


def snip_scores(
    module: nn.Module, names: Sequence[str], masks: dict, batches, loss_fn
) -> dict[str, torch.Tensor]:
    """SNIP connection sensitivity ``|w * dL/dw|`` (Lee et al. 2019).

    ``L`` is ``loss_fn(module, batch)`` summed over ``batches`` (the only data
    used), in eval mode, with the weights pruned by ``masks`` zero. Returns
    one CPU tensor per name of ``names``; the module is unchanged.
    """
    loss_fn = _loss_callable(loss_fn, "snip")
    batches = _batch_list(batches, "snip")
    with _masked_eval(module, masks) as params:
        tensors = [params[n] for n in names]
        grads = summed_grads(module, tensors, loss_fn, batches)
        scores = {
            n: (t.detach() * g).abs().cpu() for n, t, g in zip(names, tensors, grads)
        }
    return _finite(scores, "snip")


class _Temperature:
    """Forward hook dividing a module's output (or its first element) by T."""

    def __init__(self, temperature: float):
        self.temperature = temperature

    def __call__(self, module, args, output):
        if isinstance(output, tuple):
            return (output[0] / self.temperature, *output[1:])
        return output / self.temperature


def grasp_scores(
    module: nn.Module,
    names: Sequence[str],
    masks: dict,
    batches,
    loss_fn,
    *,
    temperature: float = 200.0,
) -> dict[str, torch.Tensor]:
    """GraSP keep-scores ``w * Hg`` (Wang et al. 2020; highest kept).

    ``g`` is the gradient of the loss summed over ``batches`` (no graph);
    then, batch by batch, the gradient ``g_b`` is taken again with its graph
    and ``d(g . g_b)/dw = H_b g`` is summed into ``Hg``. The module's output
    is divided by ``temperature`` before the loss (1.0 turns it off).
    """
    loss_fn = _loss_callable(loss_fn, "grasp")
    batches = _batch_list(batches, "grasp")
    temperature = _check_temperature(temperature)
    handle = module.register_forward_hook(_Temperature(temperature))
    try:
        with _masked_eval(module, masks) as params:
            tensors = [params[n] for n in names]
            stopped = summed_grads(module, tensors, loss_fn, batches)
            hg = [torch.zeros_like(t) for t in tensors]
            for batch in batches:
                loss = loss_fn(module, batch)
                grads = torch.autograd.grad(
                    loss, tensors, create_graph=True, allow_unused=True
                )
                z = sum(
                    (g * s).sum() for g, s in zip(grads, stopped) if g is not None
                )
                if not isinstance(z, torch.Tensor) or not z.requires_grad:
                    continue  # the loss is linear in (or independent of) the weights
                second = torch.autograd.grad(z, tensors, allow_unused=True)
                for acc, h in zip(hg, second):
                    if h is not None:
                        acc.add_(h.detach())
            scores = {n: (t.detach() * h).cpu() for n, t, h in zip(names, tensors, hg)}
    finally:
        handle.remove()
    return _finite(scores, "grasp")


def _linearized(module: nn.Module) -> nn.Module:
    """A float64 eval-mode copy with ``|p|`` for every parameter and floating
    buffer (the copy is SynFlow's; the module keeps its signs)."""
    twin = copy.deepcopy(module).double().eval()
    with torch.no_grad():
        for p in twin.parameters():
            p.abs_()
        for b in twin.buffers():
            if b.is_floating_point():
                b.abs_()
    return twin


def _check_input_shape(input_shape) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except TypeError:
        raise TypeError(
            "input_shape must be a tuple of ints (one sample's shape, without the "
            f"batch dimension); got {input_shape!r}"
        ) from None
    if not shape or min(shape) < 1:
        raise ValueError(f"input_shape must hold sizes >= 1; got {input_shape!r}")
    return shape


def _default_input_shape(module, names) -> tuple[int, ...]:
    owner = names[0].rsplit(".", 1)[0] if "." in names[0] else ""
    first = module.get_submodule(owner)
    if isinstance(first, nn.Linear):
        return (first.in_features,)
    raise ValueError(
        "strategy='synflow' feeds one all-ones input and cannot infer its shape "
        f"for a network whose first prunable layer is a {type(first).__name__}: "
        "pass input_shape (one sample's shape, without the batch dimension)"
    )


def synflow_scores(
    module: nn.Module,
    names: Sequence[str],
    masks: dict,
    *,
    input_shape: Sequence[int] | None = None,
    _twin: nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """One SynFlow step: ``|w * dR/dw|`` on the linearized network (data-free).

    ``R`` is the sum of the output of :func:`_linearized`'s copy of
    ``module`` (``|p|`` everywhere, float64, eval mode, weights pruned by
    ``masks`` zero) for one all-ones input of ``input_shape`` (inferred when
    the first prunable layer is ``nn.Linear``). ``module`` is not touched.
    """
    shape = (
        _default_input_shape(module, names)
        if input_shape is None
        else _check_input_shape(input_shape)
    )
    twin = _linearized(module) if _twin is None else _twin
    tparams = dict(twin.named_parameters())
    absolute = _twin_abs(module, twin, names)
    with torch.no_grad():
        for n in names:
            tparams[n].copy_(absolute[n] * masks[n].to(absolute[n].device,
                                                       torch.float64))
    x = torch.ones((1, *shape), dtype=torch.float64,
                   device=tparams[names[0]].device)
    tensors = [tparams[n] for n in names]
    with torch.backends.cudnn.flags(enabled=False):
        out = twin(x)
        out = out[0] if isinstance(out, tuple) else out
        grads = torch.autograd.grad(out.sum(), tensors, allow_unused=True)
    scores = {
        n: (torch.zeros_like(t) if g is None else (g * t).abs()).detach().cpu()
        for n, t, g in zip(names, tensors, grads)
    }
    return _finite(scores, "synflow")


def _check_float_input(module) -> None:
    """SynFlow feeds one all-ones float input: no token (embedding) inputs."""
    tokens = [t.name for t in find_prunable(module) if t.kind == "embedding"]
    if tokens:
        raise ValueError(
            "strategy='synflow' feeds the network one all-ones float input; it "
            f"cannot score a network with embedding layers {tokens} (token "
            "inputs): use 'snip', 'grasp', 'random' or a magnitude strategy"
        )


def _twin_abs(module, twin, names):
    """``|w|`` (float64) of the module's prunable tensors, on the twin's device."""
    params = dict(module.named_parameters())
    tparams = dict(twin.named_parameters())
    return {
        n: params[n].detach().to(tparams[n].device, torch.float64).abs()
        for n in names
    }


def _scores(module, strategy, names, masks, *, batches, loss_fn, generator,
            input_shape, temperature, twin):
    if strategy == "snip":
        return snip_scores(module, names, masks, batches, loss_fn)
    if strategy == "grasp":
        return grasp_scores(module, names, masks, batches, loss_fn,
                            temperature=temperature)
    if strategy == "synflow":
        return synflow_scores(module, names, masks, input_shape=input_shape,
                              _twin=twin)
    score_fn = STRATEGIES[strategy] if isinstance(strategy, str) else strategy
    params = dict(module.named_parameters())
    w = {n: params[n].detach() for n in names}
    return compute_scores(score_fn, w, w, generator=generator)


# -- the exponential schedule ----------------------------------------------------
def _step_plan(plan, start, final, current, t, steps) -> Plan:
    """Step ``t`` of ``steps`` of the exponential schedule, as rates."""
    out: Plan = []
    for group, _ in plan:
        key = tuple(group)
        n0, nT = start[key], final[key]
        if t == steps or n0 == 0:
            target = nT
        else:
            target = max(nT, math.floor(n0 * (nT / n0) ** (t / steps) + 0.5))
        alive = sum(int(torch.count_nonzero(current[n])) for n in group)
        n_prune = max(alive - target, 0)
        # n_to_prune(alive, n_prune / alive) == n_prune: round half up of an
        # exact-enough product (alive < 2**52)
        out.append((list(group), n_prune / alive if alive else 0.0))
    return out


def at_init_masks(
    module: nn.Module,
    strategy,
    plan: Plan,
    masks: dict[str, torch.Tensor],
    *,
    batches=None,
    loss_fn=None,
    iterations: int | None = None,
    generator: torch.Generator | None = None,
    input_shape: Sequence[int] | None = None,
    temperature: float = 200.0,
) -> dict[str, torch.Tensor]:
    """Masks from ``module``'s current (initial) weights, pruned by ``plan``.

    Parameters
    ----------
    module : torch.nn.Module
        The network at initialization; not changed (parameters, buffers,
        ``.grad`` and train/eval mode).
    strategy : str or callable
        See :func:`at_init_strategies` and the module docstring.
    plan : list of (names, rate)
        Each group loses ``rate`` of the weights ``masks`` keep, as one IMP
        prune (:func:`~sklottery.pruning.scope.n_to_prune`).
    masks : dict of str to bool tensor
        The masks to start from; the weights they prune are zero in every
        forward pass the scores come from.
    batches, loss_fn, iterations, input_shape, temperature
        As for :meth:`Pruner.prune_at_init <sklottery.Pruner.prune_at_init>`.
    generator : torch.Generator, optional
        Randomness of ``"random"``.

    Returns
    -------
    dict of str to bool tensor
        New masks (True = kept); each group keeps exactly
        :func:`planned_kept` weights.
    """
    strategy = check_at_init_strategy(strategy)
    steps = _check_iterations(iterations, strategy)
    score = _scorer(module, strategy, batches=batches, loss_fn=loss_fn,
                    generator=generator, input_shape=input_shape,
                    temperature=temperature)
    start = {
        tuple(g): sum(int(torch.count_nonzero(masks[n])) for n in g) for g, _ in plan
    }
    final = planned_kept(plan, masks)
    current = {n: m.detach().cpu() for n, m in masks.items()}
    for t in range(1, steps + 1):
        step = _step_plan(plan, start, final, current, t, steps)
        if all(rate == 0.0 for _, rate in step):
            continue
        current = masks_from_scores(score(current), current, step)
    return {n: current[n].to(masks[n].device) for n in masks}


def init_scores(module: nn.Module, strategy, masks: dict[str, torch.Tensor], *,
                batches=None, loss_fn=None, generator=None, input_shape=None,
                temperature: float = 200.0) -> dict[str, torch.Tensor]:
    """One step's scores of ``strategy`` for ``module``'s current weights
    (higher = kept; the weights ``masks`` prunes are zero): what each step of
    :func:`at_init_masks` ranks (for ``"synflow"`` its first step only).
    The module is not changed. Options as for :func:`at_init_masks`."""
    strategy = check_at_init_strategy(strategy)
    score = _scorer(module, strategy, batches=batches, loss_fn=loss_fn,
                    generator=generator, input_shape=input_shape,
                    temperature=temperature)
    return score({n: m.detach().cpu() for n, m in masks.items()})


def _scorer(module, strategy, *, batches, loss_fn, generator, input_shape,
            temperature):
    """``score(masks) -> scores`` with the options checked once."""
    if needs_data(strategy):
        batches = _batch_list(batches, strategy)
        loss_fn = _loss_callable(loss_fn, strategy)
    if strategy == "grasp":
        temperature = _check_temperature(temperature)
    twin = None
    if strategy == "synflow":
        _check_float_input(module)
        if input_shape is not None:
            input_shape = _check_input_shape(input_shape)
        twin = _linearized(module)

    def score(masks):
        return _scores(
            module, strategy, list(masks), masks, batches=batches,
            loss_fn=loss_fn, generator=generator, input_shape=input_shape,
            temperature=temperature, twin=twin,
        )

    return score
