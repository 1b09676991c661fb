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
  and kept count, the round history, free ``info``, for a fitted
  estimator its class name and state, and the SHA-256 of the data section
  (:data:`DIGEST_FIELD`, ``"data_sha256"``).

Format version 3 (what this sklottery writes) always carries the digest, and
a version-3 file without it is refused; version 2 files (sklottery 0.2's
first) have none and still load, unchecked; a version-2 file claiming a
digest is refused. The digest is checked before any tensor is used, so a
flipped bit anywhere in the tensor data is a ``ValueError``; it guards
against corruption, not against a file made to deceive, which every other
check below still meets.

The default suffix is ``.safetensors``: ``save_ticket("t")`` writes
``t.safetensors`` and ``load_ticket("t")`` reads it (or, if there is no
``t.safetensors``, the file ``t`` itself, or 0.1.0's ``t.npz``). A path with
any suffix is used as given; the format is recognised from the content, not
the name.

Loading is bounded and strict. Only regular files are opened (a FIFO, device
or socket is a ``ValueError``, without waiting on it); anything but a path
or a binary file object is a ``TypeError``. The header length is checked
against the file's real size (and :data:`MAX_HEADER_BYTES`) before the header is read,
every declared shape times its dtype size against the tensor's byte range,
and the byte ranges against the file, before any tensor is read; the header's
nesting depth is limited. A file of ``S`` bytes therefore never makes the
loader allocate more than a few times ``S`` plus the dense network it
describes -- and when a ``module`` is given, the tensors' names, shapes and
dtypes are checked against it before any tensor data is used. An
estimator's ticket bounds every size its state declares by the values of
the file's tensors (:func:`check_declared_sizes`) before it builds a
network from them, and checks every state field against that network. Every problem
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
from ._estimator import read_estimator_ticket, save_estimator_ticket
from ._format import (
    DEFAULT_SUFFIX,
    DIGEST_FIELD,
    FORMAT_NAME,
    FORMAT_VERSION,
    LEGACY_MAX_RATIO,
    MAX_HEADER_BYTES,
    SAFETENSORS_VERSIONS,
    Ticket,
    ticket_path,
)
from ._mixin import TicketIOMixin
from ._read import apply_ticket, check_compatible, load_ticket
from ._safetensors import data_digest
from ._state import (
    ESTIMATOR_ARRAYS,
    ROUND_FIELDS,
    STATE_FIELDS,
    check_declared_sizes,
)
from ._write import save_ticket

__all__ = [
    "DEFAULT_SUFFIX",
    "DIGEST_FIELD",
    "ESTIMATOR_ARRAYS",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LEGACY_MAX_RATIO",
    "MAX_HEADER_BYTES",
    "ROUND_FIELDS",
    "SAFETENSORS_VERSIONS",
    "STATE_FIELDS",
    "Ticket",
    "TicketIOMixin",
    "apply_ticket",
    "check_compatible",
    "check_declared_sizes",
    "data_digest",
    "load_ticket",
    "read_estimator_ticket",
    "save_estimator_ticket",
    "save_ticket",
    "ticket_path",
]
