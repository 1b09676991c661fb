"""Saving tickets: bit-exact round trip, size, a safetensors file, what is refused."""

import io
import math

import numpy as np
import pytest
import torch
from torch import nn

from sklottery import MLP, Pruner
from sklottery.tickets import DEFAULT_SUFFIX, apply_ticket, load_ticket, save_ticket
from tests.tickets import ticket_helpers as th


class TestRoundTrip:
    def test_bit_exact_survivors_masks_and_history(self, saved):
        path, net, masks, init = saved
        assert path.name == "ticket" + DEFAULT_SUFFIX
        ticket = load_ticket(path)
        assert set(ticket.masks) == set(masks)
        for name, mask in masks.items():
            assert torch.equal(ticket.masks[name], mask)
        for name, value in th.state(net).items():
            assert ticket.values[name].dtype == value.dtype
            assert torch.equal(ticket.values[name], value), name
            # rewind point: the survivors, bit for bit; pruned entries zero
            mask = masks.get(name)
            expected = init[name] if mask is None else init[name] * mask
            assert torch.equal(ticket.rewind_point[name], expected), name
        assert ticket.rounds[1] == th.ROUNDS[1]
        assert math.isnan(ticket.rounds[0]["valid_loss"])
        assert ticket.info == {"who": "test", "n": 3}
        assert ticket.arrays["classes"].tolist() == ["a", "b"]
        assert ticket.arrays["w"].tolist() == [0.0, 1.0, 2.0]
        assert ticket.estimator is None and ticket.state == {}

    def test_apply_to_a_fresh_network(self, saved):
        path, net, masks, _ = saved
        torch.manual_seed(1)
        fresh = th.Net()
        got = apply_ticket(load_ticket(path, fresh), fresh)
        for name, value in th.state(net).items():
            assert torch.equal(th.state(fresh)[name], value)
        assert all(torch.equal(got[n], masks[n]) for n in masks)
        x = torch.randn(3, 2, 8)
        net.eval(), fresh.eval()
        with torch.no_grad():
            assert torch.equal(fresh(x), net(x))

    def test_file_object_and_no_rewind_point(self):
        net, masks, _ = th.ticket_net()
        buf = io.BytesIO()
        assert save_ticket(buf, net, masks) is None
        buf.seek(0)
        ticket = load_ticket(buf)
        assert ticket.rewind_point is None and ticket.rounds == []

    def test_is_a_safetensors_file(self, saved):
        safetensors = pytest.importorskip("safetensors.numpy")
        path, net, masks, _ = saved
        tensors = safetensors.load_file(path)
        i = th.fc_index(path.read_bytes())
        kept = tensors[f"t{i}.values"]
        assert kept.dtype == np.float32 and len(kept) == int(masks["fc.weight"].sum())

    def test_bfloat16_round_trip(self, tmp_path):
        net = nn.Linear(3, 2).to(torch.bfloat16)
        masks = {"weight": torch.tensor([[1, 0, 1], [0, 1, 1]], dtype=torch.bool)}
        ticket = load_ticket(save_ticket(tmp_path / "b", net, masks))
        assert ticket.values["weight"].dtype == torch.bfloat16
        expected = net.weight.detach() * masks["weight"]
        assert torch.equal(ticket.values["weight"], expected)

    def test_size_at_90_percent_is_at_most_15_percent_of_dense(self, tmp_path):
        torch.manual_seed(0)
        net = MLP(784, 10, hidden_units=(300, 100))
        pruner = Pruner(net, prune_rate=0.9, output_rate_factor=None)
        pruner.prune()
        assert pruner.sparsity() == pytest.approx(0.9, abs=1e-3)
        path = save_ticket(tmp_path / "lenet", net, pruner.masks)
        dense_bytes = 4 * sum(p.numel() for p in net.parameters())
        assert path.stat().st_size <= 0.15 * dense_bytes

    def test_refused_on_save(self, tmp_path):
        masks = {"weight": torch.ones(2, 3, dtype=torch.bool)}
        tensors = {"weight": torch.zeros(2, 3, dtype=torch.complex128)}
        with pytest.raises(ValueError, match="dtype torch.complex128 is not supported"):
            save_ticket(tmp_path / "t", tensors, masks)
        net = nn.Linear(3, 2)
        with pytest.raises(ValueError, match="only numeric, bool and str"):
            save_ticket(tmp_path / "t", net, masks, arrays={"x": np.array([{}])})
        with pytest.raises(ValueError, match="bool tensor of shape"):
            save_ticket(tmp_path / "t", net, {"weight": torch.ones(2, 3)})
        with torch.no_grad():
            net.bias[0] = float("nan")
        with pytest.raises(ValueError, match="NaN or infinite"):
            save_ticket(tmp_path / "t", net, masks)
        assert not list(tmp_path.iterdir())
