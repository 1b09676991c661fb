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

import tempfile
import weakref

import torch

__all__ = ["SPILL_BYTES", "Spilled", "n_bytes", "spill", "unspill"]

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
