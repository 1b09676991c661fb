"""sklottery 0.1.0's .npz tickets: loaded through the same checks; zip bombs,
encryption, unknown compression and pickles refused."""

import io
import json
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest
from torch import nn

from sklottery.tickets import load_ticket
from tests.tickets import ticket_helpers as th


def _zip_entries(data, signature, flag_offset):
    """Offsets of every zip header with ``signature`` (local or central)."""
    out, start = [], 0
    while (i := data.find(signature, start)) >= 0:
        out.append(i + flag_offset)
        start = i + 4
    return out


def _patch_central(data, offset, fmt, value):
    """Set a field of every central-directory entry (and local header)."""
    data = bytearray(data)
    local = {8: 6, 10: 8}[offset]  # the same field in the local headers
    for sig, off in ((b"PK\x01\x02", offset), (b"PK\x03\x04", local)):
        for i in _zip_entries(bytes(data), sig, off):
            struct.pack_into(fmt, data, i, value)
    return bytes(data)


class TestLegacyNpz:
    def test_loads_through_the_same_checks(self, tmp_path):
        ticket = load_ticket(th.LEGACY)
        assert ticket.info["estimator"] == "LotteryTicketClassifier"
        # the path rule: "t" finds 0.1.0's t.npz when there is no t.safetensors
        (tmp_path / "old.npz").write_bytes(th.legacy_bytes())
        assert set(load_ticket(tmp_path / "old").masks) == set(ticket.masks)

    def test_zip_bomb_is_refused_before_decompressing(self, tmp_path):
        # a 100 MB member of zeros compresses to ~100 KB
        header = {"format": "sklottery-ticket", "version": 1, "tensors": [
            {"name": "w", "shape": [25_000_000], "dtype": "float32", "masked": False}],
            "rewind_point": False, "rounds": [], "info": {}, "arrays": []}
        path = tmp_path / "bomb.npz"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            raw = io.BytesIO()
            np.save(raw, np.frombuffer(json.dumps(header).encode(), np.uint8))
            zf.writestr("header.npy", raw.getvalue())
            with zf.open("t0.dense.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array_header_1_0(
                    fh, {"descr": "<f4", "fortran_order": False,
                         "shape": (25_000_000,)})
                chunk = bytes(2**20)
                for _ in range(95):
                    fh.write(chunk)
                fh.write(bytes(100_000_000 - 95 * 2**20))
        assert path.stat().st_size < 2**20
        tracemalloc.start()
        try:
            with pytest.raises(ValueError, match="over 64 times the file"):
                load_ticket(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 2**23
        # with a network, the member is checked against it instead
        with pytest.raises(ValueError, match="tensors missing|does not fit"):
            load_ticket(path, nn.Linear(3, 2))

    def test_encrypted_and_unknown_compression(self):
        data = th.legacy_bytes()
        with pytest.raises(ValueError, match="is encrypted"):
            th.load_bytes(_patch_central(data, 8, "<H", 1))
        with pytest.raises(ValueError, match="compression method 99"):
            th.load_bytes(_patch_central(data, 10, "<H", 99))

    def test_pickled_object_array_is_never_loaded(self, tmp_path):
        class Boom:
            def __reduce__(self):
                return (exec, ("raise SystemExit('code ran')",))

        with np.load(th.LEGACY, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["t1.dense"] = np.array([Boom()], dtype=object)
        np.savez(tmp_path / "pickle.npz", **arrays)
        with pytest.raises(ValueError, match="object arrays are never loaded"):
            load_ticket(tmp_path / "pickle.npz")

    def test_truncated(self):
        data = th.legacy_bytes()
        for cut in (10, len(data) // 2, len(data) - 5):
            with pytest.raises(ValueError, match="not a valid sklottery ticket file"):
                th.load_bytes(data[:cut])
