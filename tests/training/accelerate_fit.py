"""One lottery fit of an ``AccelerateMixin`` net, run by
``tests/training/test_accelerate.py`` in 2 CPU processes (``torchrun
--nproc_per_node 2``; ``Accelerator(cpu=True)`` picks gloo there).

``python -m tests.training.accelerate_fit OUT_DIR`` writes, for its rank r,
``OUT_DIR/rank{r}_round{k}.pt`` after each round k: the module's tensors and
the round's masks. Then every rank calls ``save_ticket(OUT_DIR/ticket_rank{r})``:
only the main process may write. ``OUT_DIR/done_rank{r}`` says how many
processes ran and whether round 0's cache (``memory``) was refused.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from skorch.hf import AccelerateMixin

from sklottery import LotteryTicketClassifier
from sklottery.training import ApplyMasks


class AccNet(AccelerateMixin, NeuralNetClassifier):
    """A skorch classifier trained through accelerate."""


class DumpRound(Callback):
    """Save the module's tensors and the round's masks at each round's end,
    to a file named by rank and round."""

    def __init__(self, out_dir, rank):
        self.out_dir = out_dir
        self.rank = rank

    def on_train_end(self, net, **kwargs):
        # numbered by the files already written: round 0 trains a clone of
        # the net, with a copy of this callback
        out = Path(self.out_dir)
        k = len(list(out.glob(f"rank{self.rank}_round*.pt")))
        masks = {}
        for _, cb in net.callbacks_:
            if isinstance(cb, ApplyMasks):
                masks = {n: m.clone() for n, m in cb._current().items()}
        module = net.accelerator.unwrap_model(net.module_)
        state = {n: t.detach().clone() for n, t in module.state_dict().items()}
        path = out / f"rank{self.rank}_round{k}.pt"
        torch.save({"state": state, "masks": masks}, path)


def make_net(accelerator, callbacks=(), **kwargs):
    """A tiny MLP classifier net trained through ``accelerator``."""
    module = torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)
    )
    return AccNet(
        module, criterion=torch.nn.CrossEntropyLoss, accelerator=accelerator,
        max_epochs=2, batch_size=8, lr=0.1, verbose=0, callbacks=list(callbacks),
        **kwargs,
    )


def tiny_data():
    """64 rows, 6 features, 2 classes."""
    X = np.random.RandomState(0).randn(64, 6).astype("float32")
    return X, (X[:, 0] + X[:, 1] > 0).astype("int64")


def main(out_dir) -> None:
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    rank = accelerator.process_index
    net = make_net(accelerator, [("dump", DumpRound(out_dir, rank))])
    est = LotteryTicketClassifier(
        net=net, n_rounds=2, random_state=0, memory=str(Path(out_dir, "cache"))
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(*tiny_data())
    not_cached = any("not cached in several" in str(w.message) for w in caught)
    est.save_ticket(Path(out_dir) / f"ticket_rank{rank}")
    done = f"{accelerator.num_processes} {not_cached}"
    Path(out_dir, f"done_rank{rank}").write_text(done)
    # the process group ended before the interpreter: a gloo group left to
    # exit teardown can abort the process ("terminate called without an
    # active exception")
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    main(sys.argv[1])
