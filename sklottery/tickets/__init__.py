"""Ticket files: a pruned network saved small and loaded safely.

A ticket file is a `safetensors <https://huggingface.co/docs/safetensors>`_
file: an 8-byte little-endian header length, a JSON header naming every
tensor's dtype, shape and byte range, then the raw tensor bytes. No pickle,
no compression, nothing that runs code. A ticket holds

* per pruned tensor: its mask packed as bits (:func:`numpy.packbits`, one bit
  per weight, ``t<i>.bits``) and the surviving values only, in row-major order
  of the mask (``t<i>.values``);
* every other parameter and buffer (biases, normalization statistics) dense
  (``t<i>.dense``);
* optionally the survivors of the rewind point (``r<i>.*``, what
  ``warm_start`` needs to continue pruning);
* small extra arrays such as class labels (numeric ones as ``x.<name>``
  tensors, text ones inside the header);
* sklottery's own JSON header, in the safetensors metadata under the key
  ``"sklottery"``: format name and version, each tensor's name, shape, dtype
  and kept count, the round history, free ``info`` and, for a fitted
  estimator, its class name and state.

The default suffix is ``.safetensors``: ``save_ticket("t")`` writes
``t.safetensors`` and ``load_ticket("t")`` reads it (or, if there is no
``t.safetensors``, the file ``t`` itself, or 0.1.0's ``t.npz``). A path with
any suffix is used as given; the format is recognised from the content, not
the name.

Loading is bounded and strict. The header length is checked against the
file's real size (and :data:`MAX_HEADER_BYTES`) before the header is read,
every declared shape times its dtype size against the tensor's byte range,
and the byte ranges against the file, before any tensor is read; the header's
nesting depth is limited. A file of ``S`` bytes therefore never makes the
loader allocate more than a few times ``S`` plus the dense network it
describes -- and when a ``module`` is given, the tensors' names, shapes and
dtypes are checked against it before any tensor data is read. Every problem
is a ``ValueError`` naming the file and the field; nothing is ever
half-applied.

Tickets written by sklottery 0.1.0 (numpy ``.npz`` archives, format
version 1) still load, through the same checks: each zip member's declared
uncompressed size is bounded by what the header implies before it is
decompressed, and encrypted members or unsupported compression methods are
refused with a ``ValueError``.

References
----------
J. Frankle and M. Carbin, "The Lottery Ticket Hypothesis: Finding Sparse,
Trainable Neural Networks", ICLR 2019 (a ticket is a mask plus the weights).
"""
from ._estimator import (
    ESTIMATOR_ARRAYS,
    ROUND_FIELDS,
    STATE_FIELDS,
    read_estimator_ticket,
    save_estimator_ticket,
)
from ._format import (
    DEFAULT_SUFFIX,
    FORMAT_NAME,
    FORMAT_VERSION,
    LEGACY_MAX_RATIO,
    MAX_HEADER_BYTES,
    Ticket,
    ticket_path,
)
from ._mixin import TicketIOMixin
from ._read import apply_ticket, check_compatible, load_ticket
from ._write import save_ticket

__all__ = [
    "DEFAULT_SUFFIX",
    "ESTIMATOR_ARRAYS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LEGACY_MAX_RATIO",
    "MAX_HEADER_BYTES",
    "ROUND_FIELDS",
    "STATE_FIELDS",
    "Ticket",
    "TicketIOMixin",
    "apply_ticket",
    "check_compatible",
    "load_ticket",
    "read_estimator_ticket",
    "save_estimator_ticket",
    "save_ticket",
    "ticket_path",
]
