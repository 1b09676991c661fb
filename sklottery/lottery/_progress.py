"""The progress bar over a fit's rounds (``verbose > 0``): display only."""

from __future__ import annotations

__all__ = ["RoundProgress"]


class RoundProgress:
    """A tqdm bar over the rounds showing each completed round's sparsity and
    score; :func:`~sklottery.lottery._loop.run_lottery` calls :meth:`update` after
    every completed round and :meth:`close` at the end."""

    def __init__(self, total: int, initial: int = 0):
        try:
            from tqdm import tqdm
        except ImportError as exc:
            raise ImportError(
                "verbose > 0 shows a progress bar over the rounds with tqdm, which "
                "is not installed; install it with `pip install sklottery[progress]` "
                "(or `pip install tqdm`), or set verbose=0"
            ) from exc
        self.bar = tqdm(
            total=total, initial=initial, desc="lottery rounds", unit="round"
        )

    def update(self, record) -> None:
        self.bar.set_postfix(
            sparsity=f"{1.0 - record.weights_remaining:.3f}",
            score=f"{record.score:.4f}",
        )
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
