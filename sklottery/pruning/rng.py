"""torch's global random generator, one seeded section at a time.

A fit draws its initialization, its data orders and its dropout from torch's
global CPU generator, seeded with the fit's seed; that generator is shared by
every thread of the process. Each section of a fit that seeds it and reads
it (the initialization, the lottery's rounds, a retraining) runs inside
:func:`seeded`: under one process-wide lock, on a forked generator that
starts from the given seed or state and is put back afterwards. Two seeded
fits in two threads (joblib's threading backend, ``GridSearchCV(n_jobs=2)``
with it) therefore give exactly what they give one after the other; their
seeded sections take turns, so threads add no speed to fits (use processes,
joblib's default ``loky`` backend, for that). The lock is re-entrant: a
section may open another in the same thread. Code that only borrows the
generator (a forward pass that must not move it) uses :func:`forked`, under
the same lock: an unlocked ``fork_rng`` in one thread would put back, when
it ends, a state another thread's seeded section has moved on from.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import torch

__all__ = ["RNG_LOCK", "forked", "seeded"]

#: Held while a section of a fit uses torch's global generator.
RNG_LOCK = threading.RLock()


@contextmanager
def seeded(seed: int | None = None, *, state: torch.Tensor | None = None,
           devices=()):
    """Run the block under :data:`RNG_LOCK` on torch's global CPU generator
    seeded with ``seed`` (or set to ``state``), restoring the generator after
    (and the generators of the CUDA ``devices`` given)."""
    with RNG_LOCK, torch.random.fork_rng(devices=list(devices)):
        if state is not None:
            torch.set_rng_state(state)
        elif seed is not None:
            torch.manual_seed(int(seed))
        yield


@contextmanager
def forked(devices=()):
    """Run the block under :data:`RNG_LOCK` with torch's generators (CPU,
    and the CUDA ``devices`` given) put back as they were afterwards."""
    with RNG_LOCK, torch.random.fork_rng(devices=list(devices)):
        yield
