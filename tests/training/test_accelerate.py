"""Nets trained through accelerate (skorch's ``AccelerateMixin``): on CPU in
this process, in bf16 mixed precision, with optimizer steps a grad scaler
skips, and one fit in 2 CPU processes (``torchrun``, gloo)."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier

from sklottery import LotteryTicketClassifier
from sklottery.training import accelerator_of, clone_net

accelerate = pytest.importorskip("accelerate")
pytest.importorskip("skorch.hf")

from tests.training.accelerate_fit import make_net, tiny_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def accelerator_factory():
    """``accelerator_factory(**kwargs)``: an ``Accelerator(cpu=True,
    **kwargs)`` from a fresh accelerate state (a process holds one), reset
    again afterwards so that no other test sees it."""
    from accelerate.state import AcceleratorState, GradientState

    def reset():
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()

    def make(**kwargs):
        reset()
        return accelerate.Accelerator(cpu=True, **kwargs)

    yield make
    reset()


def _check_masked(est):
    """Every pruned weight of the fitted module is exactly zero, and some
    were pruned."""
    state = dict(est.net_.module_.named_parameters())
    assert est.masks_
    for name, mask in est.masks_.items():
        assert not mask.all()
        assert torch.all(state[name].detach()[~mask] == 0), name


def test_clone_net_of_a_prepared_accelerate_net(accelerator_factory):
    net = make_net(accelerator_factory()).initialize()
    assert net._wrapped_with_accelerator  # what sklearn's clone refused
    copy = clone_net(net)
    assert not hasattr(copy, "module_")
    assert net._wrapped_with_accelerator
    assert accelerator_of(copy) is not None
    assert accelerator_of(NeuralNetClassifier(torch.nn.Linear(2, 2))) is None


def test_accelerate_fit_on_cpu(accelerator_factory, tmp_path):
    est = LotteryTicketClassifier(
        net=make_net(accelerator_factory()), n_rounds=2, random_state=0
    ).fit(*tiny_data())
    assert len(est.rounds_) == 3
    _check_masked(est)
    # unwrapped after training, as skorch leaves it: the plain module
    assert type(est.net_.module_) is torch.nn.Sequential
    X, y = tiny_data()
    assert est.predict(X).shape == y.shape
    # one process: the main one, which writes the ticket
    est.save_ticket(tmp_path / "ticket")
    assert (tmp_path / "ticket.safetensors").exists()


def test_accelerate_fit_in_bf16(accelerator_factory):
    try:
        accelerator = accelerator_factory(mixed_precision="bf16")
    except (ValueError, RuntimeError) as exc:  # pragma: no cover - old CPUs
        pytest.skip(f"bf16 autocast not available on this CPU: {exc}")
    est = LotteryTicketClassifier(
        net=make_net(accelerator), n_rounds=2, random_state=0
    ).fit(*tiny_data())
    _check_masked(est)
    assert all(np.isfinite(est.rounds_["score"]))


class SkippingSGD(torch.optim.SGD):
    """SGD whose every other step is skipped, as a grad scaler skips a step
    whose gradients overflowed: the weights are left as they were."""

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self.calls, self.skipped = 0, 0

    def step(self, closure=None):
        self.calls += 1
        if self.calls % 2 == 0:
            self.skipped += 1
            return None
        return super().step(closure)


def test_masks_hold_across_skipped_steps(accelerator_factory):
    """The masks are applied after every step, skipped or not: a skipped step
    leaves the (already masked) weights as they were, and the mask multiply
    changes nothing then."""
    from skorch.callbacks import Callback

    seen = []

    class Watch(Callback):
        def on_batch_begin(self, net, training=False, **kwargs):
            if training:
                self.before_ = {
                    n: p.detach().clone() for n, p in net.module_.named_parameters()
                }

        def on_batch_end(self, net, training=False, **kwargs):
            # runs before sklottery's ApplyMasks (the user's callbacks first)
            if training and net.optimizer_.optimizer.calls % 2 == 0:
                after = dict(net.module_.named_parameters())
                seen.append(
                    all(torch.equal(after[n], t) for n, t in self.before_.items())
                )

    net = make_net(
        accelerator_factory(), [("watch", Watch())], optimizer=SkippingSGD
    )
    est = LotteryTicketClassifier(net=net, n_rounds=2, random_state=0)
    est.fit(*tiny_data())
    assert seen and all(seen)  # skipped steps changed nothing
    _check_masked(est)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_fit_keeps_ranks_identical(tmp_path):
    """One fit in 2 CPU processes (torchrun, gloo): after every round both
    ranks hold bit-identical weights and masks; only rank 0 writes the
    ticket; round 0 is not cached."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this Python")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        torchrun, "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()),
        "-m", "tests.training.accelerate_fit", str(tmp_path),
    ]
    try:
        run = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
        )
    except subprocess.TimeoutExpired:
        pytest.skip("torchrun with 2 gloo processes did not finish in 240 s here")
    if run.returncode != 0 and "rendezvous" in (run.stderr + run.stdout).lower():
        pytest.skip(f"torchrun could not start 2 processes here: {run.stderr[-500:]}")
    assert run.returncode == 0, run.stderr[-4000:]
    # 2 processes; round 0 not cached in either (memory was set)
    assert (tmp_path / "done_rank0").read_text() == "2 True"
    assert (tmp_path / "done_rank1").read_text() == "2 True"
    assert not list(tmp_path.glob("cache/**/output.pkl"))  # joblib's results
    rounds = sorted(tmp_path.glob("rank0_round*.pt"))
    assert len(rounds) == 3  # round 0 (dense) and 2 pruning rounds
    for path in rounds:
        a = torch.load(path)
        b = torch.load(tmp_path / path.name.replace("rank0", "rank1"))
        for what in ("state", "masks"):
            assert a[what].keys() == b[what].keys()
            for name, t in a[what].items():
                assert torch.equal(t, b[what][name]), (path.name, what, name)
    assert torch.load(rounds[-1])["masks"]  # the last round was pruned
    assert (tmp_path / "ticket_rank0.safetensors").exists()
    assert not list(tmp_path.glob("ticket_rank1*"))
