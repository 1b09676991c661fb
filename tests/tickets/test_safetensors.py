"""The safetensors container: the SHA-256 of the tensor data in the header
(format version 3), checked before any tensor is used; version 2 files
(without it) still load."""

import hashlib
import io
import json

import pytest
import torch
from torch import nn

from sklottery.tickets import DIGEST_FIELD, FORMAT_VERSION, load_ticket, save_ticket
from tests.tickets import ticket_helpers as th


def _tiny() -> bytes:
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    mask = torch.tensor([[True, False, True], [False, True, True]])
    buf = io.BytesIO()
    save_ticket(buf, net, {"weight": mask}, rounds=th.ROUNDS)
    return buf.getvalue()


def _data_start(data: bytes) -> int:
    return 8 + int.from_bytes(data[:8], "little")


def test_new_files_carry_the_digest_of_their_data():
    data = _tiny()
    _, inner, body = th.split(data)
    assert inner["version"] == FORMAT_VERSION == 3
    assert inner[DIGEST_FIELD] == hashlib.sha256(body).hexdigest()
    assert load_ticket(io.BytesIO(data)).masks["weight"].sum() == 4


def test_every_single_byte_flip_of_the_data_section_is_refused():
    data = _tiny()
    start = _data_start(data)
    assert len(data) - start == 2 * 4 + 1 + 4 * 4  # bias, mask bits, 4 survivors
    for i in range(start, len(data)):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[i] ^= flip
            with pytest.raises(ValueError, match=f"does not match header field "
                                                 f"'{DIGEST_FIELD}'"):
                load_ticket(io.BytesIO(bytes(bad)))


def test_a_flip_in_the_digest_is_refused():
    data = _tiny()
    at = data.index(th.split(data)[1][DIGEST_FIELD].encode()) + 5
    bad = bytearray(data)
    bad[at] = ord("0") if bad[at] != ord("0") else ord("1")
    with pytest.raises(ValueError, match=DIGEST_FIELD):
        load_ticket(io.BytesIO(bytes(bad)))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda h: h.pop(DIGEST_FIELD), f"'{DIGEST_FIELD}' must be the SHA-256"),
        (lambda h: h.update({DIGEST_FIELD: "ab" * 31}), "64 lowercase hex"),
        (lambda h: h.update({DIGEST_FIELD: "AB" * 32}), "64 lowercase hex"),
        (lambda h: h.update({DIGEST_FIELD: 7}), "64 lowercase hex"),
        # version 2 files have no digest: one claiming a digest is refused
        (lambda h: h.update(version=2), f"unknown header fields \\['{DIGEST_FIELD}'"),
    ],
)
def test_a_missing_or_malformed_digest_is_refused(edit, match):
    outer, inner, body = th.split(_tiny())
    edit(inner)
    text = json.dumps(inner)  # raw: join would put the right digest back
    with pytest.raises(ValueError, match=match):
        load_ticket(io.BytesIO(th.join(outer, None, body, raw_inner=text)))


def test_version_2_files_without_a_digest_still_load():
    """What sklottery 0.2's first files were: version 2, no digest."""
    data = _tiny()
    outer, inner, body = th.split(data)
    del inner[DIGEST_FIELD]
    inner["version"] = 2
    old = th.join(outer, inner, body)
    ticket, new = load_ticket(io.BytesIO(old)), load_ticket(io.BytesIO(data))
    for name, value in new.values.items():
        assert torch.equal(ticket.values[name], value)
    # and nothing checks their data: a changed weight loads as it is
    flipped = body[:-1] + bytes([body[-1] ^ 0x01])
    assert load_ticket(io.BytesIO(th.join(outer, inner, flipped))) is not None
