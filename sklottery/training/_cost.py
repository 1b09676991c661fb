"""A round's cost: the multiply-adds of its training (``train_macs``,
``cumulative_macs``) and the batch size they are counted at."""

from __future__ import annotations

from ..pruning.sparse_training import forward_macs, train_macs
from ._dict import batch_to, dict_as_kwargs

__all__ = ["forward_macs_of", "round_cost", "training_batch_size"]


def training_batch_size(net, n_rows: int) -> int:
    """Rows per training batch of ``net`` on ``n_rows`` rows."""
    size = net.get_params_for("iterator_train").get("batch_size", net.batch_size)
    if size in (None, -1):
        return max(1, int(n_rows))
    return max(1, min(int(size), int(n_rows)))


def forward_macs_of(net, X):
    """Per-sample forward multiply-adds of the net's layers, or None when a
    single row cannot be run through the module on its own."""
    try:
        device = next(iter(net.module_.parameters())).device
        first = batch_to(X[:1], device)
        with dict_as_kwargs(net.module_):  # a dict batch: keyword arguments
            return forward_macs(net.module_, first)
    except Exception:  # noqa: BLE001 - the cost columns are then NaN
        return None


def round_cost(data, layouts, epochs, previous):
    """A round record's cost columns (``train_macs``, ``cumulative_macs``,
    ``sparse_layers``) for ``epochs`` epochs with ``layouts``, on the training
    rows of ``data`` (a :class:`~sklottery.training.RoundData` whose ``macs``
    :func:`forward_macs_of` gave); ``previous`` is the last round's record."""
    names = ",".join(r["name"] for r in layouts if r["layout"] == "sparse")
    if data.macs is None:
        return {"sparse_layers": names}
    macs = float(train_macs(data.macs, layouts, epochs * len(data.X_train)))
    before = 0.0 if previous is None else previous.cumulative_macs
    return {
        "train_macs": macs,
        "cumulative_macs": before + macs,
        "sparse_layers": names,
    }
