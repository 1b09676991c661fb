"""The ticket format: the path rule and the checks of sklottery's header."""

import pytest

from sklottery.tickets import FORMAT_VERSION, load_ticket, save_ticket, ticket_path
from tests.tickets import ticket_helpers as th


class TestPathRule:
    def test_save_and_load_agree_on_the_suffix(self, tmp_path, monkeypatch):
        net, masks, _ = th.ticket_net()
        monkeypatch.chdir(tmp_path)
        assert save_ticket("t", net, masks) == ticket_path("t")
        assert (tmp_path / "t.safetensors").is_file()
        assert set(load_ticket("t").masks) == set(masks)
        # any suffix is used as given; the format comes from the content
        save_ticket("u.bin", net, masks)
        assert set(load_ticket("u.bin").masks) == set(masks)
        assert ticket_path("dir/t.ticket") == ticket_path("dir/t.ticket")

    def test_missing_file_and_directory(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            load_ticket(tmp_path / "nope")
        net, masks, _ = th.ticket_net()
        with pytest.raises(IsADirectoryError):
            save_ticket(tmp_path, net, masks)


def _inner(**fields):
    return lambda d: th.craft(d, inner=lambda h: h.update(fields))


def _raw_inner(data, text):
    outer, _, body = th.split(data)
    return th.join(outer, None, body, raw_inner=text)


class TestHeader:
    @pytest.mark.parametrize(
        "edit, match",
        [
            # JSON, format and version
            (lambda d: _raw_inner(d, th.nested(100_000)),
             "nested"),
            (lambda d: _raw_inner(d, "{"), "not valid JSON"),
            (_inner(version=FORMAT_VERSION + 1),
             f"format version {FORMAT_VERSION + 1} is not supported"),
            (lambda d: th.craft(d, inner=lambda h: h.update(version=1)),
             "'version' is 1, but the file is a safetensors file"),
            (lambda d: th.craft(d, inner=lambda h: h.update(format="other")),
             "does not name the format"),
            (lambda d: th.craft(d, inner=lambda h: h.update(rounds={"a": 1})),
             "'rounds' must be a list"),
            (lambda d: th.craft(d, inner=lambda h: h.update(extra=1)),
             "unknown header fields"),
            # the sklottery header against the tensors
            (lambda d: th.craft(d, inner=lambda h: h["tensors"][0].update(
                dtype="object")), "'dtype' of 'conv.weight'"),
            (lambda d: th.craft(d, inner=lambda h: h["tensors"][0].update(
                shape=[10**6, 10**6])), "header implies|needs"),
            (lambda d: th.craft(d, inner=lambda h: h["tensors"].append(
                h["tensors"][0])), "appears twice"),
            (lambda d: th.craft(d, inner=lambda h: h["tensors"][
                th.spec_index(h, "fc.weight")].update(n_kept=10**9)), "'n_kept'"),
        ],
    )
    def test_bad_header(self, saved, edit, match):
        with pytest.raises(ValueError, match=match):
            th.load_bytes(edit(saved[0].read_bytes()))
