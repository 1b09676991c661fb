"""Large tensors a fit keeps but does not read for a while go to a temporary file.

A lottery keeps two things it only reads between rounds: the rewind point
(read when a round starts) and the copy of the round it would fall back to
or select (read when the fit ends or is interrupted). While a round trains,
both would sit on top of that round's memory peak. :func:`spill` writes
such a dict of tensors to an anonymous temporary file when it is over
:data:`SPILL_BYTES` (the file has no name and is deleted when closed, which
happens when the :class:`Spilled` object is collected); :func:`unspill`
reads it back, exactly (``torch.save``/``torch.load`` round trip, on the
tensors' own devices). The file's pages live in the operating system's page
cache, which it can write out under memory pressure, not in the process.
Where no temporary file can be written, the tensors stay in memory.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import sys
import tempfile
import weakref

import torch

__all__ = [
    "SPILL_BYTES",
    "TRIM_BYTES",
    "Spilled",
    "n_bytes",
    "return_freed_memory",
    "spill",
    "unspill",
]

#: Dicts of tensors over this many bytes are spilled (32 MiB).
SPILL_BYTES = 32 << 20


class Spilled:
    """A dict of tensors saved to an anonymous temporary file."""

    def __init__(self, tensors: dict, file):
        torch.save(tensors, file)
        self._file = file
        # closed (and so deleted) when this object goes, however it goes
        self._finalizer = weakref.finalize(self, file.close)

    def load(self) -> dict:
        """The tensors, read back (as new tensors)."""
        self._file.seek(0)
        return torch.load(self._file, weights_only=True)


def n_bytes(tensors: dict) -> int:
    """Bytes held by a dict of tensors."""
    return sum(t.numel() * t.element_size() for t in tensors.values())


def spill(tensors: dict):
    """``tensors`` as a :class:`Spilled` file when they hold more than
    :data:`SPILL_BYTES` (and a temporary file can be written); else
    ``tensors`` themselves."""
    if n_bytes(tensors) <= SPILL_BYTES:
        return tensors
    try:
        return Spilled(tensors, tempfile.TemporaryFile())
    except OSError:
        return tensors


def unspill(stored):
    """What :func:`spill` was given (read back if it was spilled)."""
    return stored.load() if isinstance(stored, Spilled) else stored


#: Nets with at least this many bytes of tensors (dense) give freed memory
#: back to the system before each round trains.
TRIM_BYTES = 1 << 23


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim`` (None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None


def return_freed_memory(n_bytes: int) -> bool:
    """Give the memory freed between rounds back to the system (glibc only;
    True if it was asked).

    Between two rounds a fit frees the optimizer's state and the pruning
    step's temporaries (first collected, where they sit in reference
    cycles); glibc's allocator keeps much of that in its heap
    (its mmap threshold grows with the blocks freed), where it would sit
    under the next round's training peak -- measured at 2.5 times the
    weights of a 784-4096-4096-10 net. ``malloc_trim(0)`` returns it; it
    changes no allocator setting. Skipped for nets of fewer than
    :data:`TRIM_BYTES` bytes of tensors (``n_bytes``, dense), where the
    allocator keeps little.
    """
    trim = _malloc_trim()
    if trim is None or n_bytes < TRIM_BYTES:
        return False
    # the last round's objects in reference cycles (its optimizer, the
    # swapped layers) still hold their tensors until the collector runs
    gc.collect()
    trim(0)
    return True
