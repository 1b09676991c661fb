"""Ctrl-C during a fit: held while the fit's state is swapped."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

__all__ = ["deferred_interrupt"]


@contextmanager
def deferred_interrupt():
    """Hold Ctrl-C while the fit's state is swapped; yields a list that gets an
    entry if one came. Outside the main thread (joblib's thread backend) there
    is no signal to hold and nothing changes."""
    caught: list = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(1))
    except ValueError:  # pragma: no cover - no signals in this interpreter
        yield caught
        return
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, previous)
