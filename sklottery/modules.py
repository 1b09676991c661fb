"""Ready-made torch modules: the estimators' default networks.

``net=None`` builds one from the input's form (:func:`default_module_for`):
:class:`MLP` for tables (integer ones too), :class:`ConvNet` for images and
:class:`RecurrentNet` for sequences. :class:`EmbeddingNet` takes token ids,
with ``net=NeuralNetClassifier(EmbeddingNet, ...)``: integer ``X`` is ids
only for a module that takes them
(:func:`sklottery.inputs.takes_ids`). In each the output
layer is the last prunable layer, so the estimators' ``transform`` returns
the features entering it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "MLP",
    "ConvNet",
    "EmbeddingNet",
    "RecurrentNet",
    "default_module_for",
    "default_type_rates",
    "fill_module_sizes",
    "module_sizes",
]


def _require_sizes(net: nn.Module, **sizes) -> None:
    """The sizes an estimator fills from the data must be given."""
    if any(v is None for v in sizes.values()):
        raise ValueError(
            f"{type(net).__name__} needs {' and '.join(sizes)} (a sklottery "
            "estimator fills them from the data)"
        )


class MLP(nn.Module):
    """A fully-connected ReLU network returning logits.

    With the defaults it is LeNet-300-100 of Frankle & Carbin (2019) once the
    sizes are known. Used inside a sklottery estimator, ``input_units`` and
    ``output_units`` left as ``None`` are taken from the data.

    Parameters
    ----------
    input_units, output_units : int
        Sizes of the input and of the output (classes, or targets).
    hidden_units : sequence of int, default=(300, 100)
    dropout : float, default=0.0
    """

    #: Integer ``X`` is numbers (:func:`sklottery.inputs.takes_ids`).
    takes_ids = False

    def __init__(
        self,
        input_units: int | None = None,
        output_units: int | None = None,
        hidden_units: Sequence[int] = (300, 100),
        dropout: float = 0.0,
    ):
        super().__init__()
        _require_sizes(self, input_units=input_units, output_units=output_units)
        sizes = [int(input_units), *[int(h) for h in hidden_units]]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(sizes[-1], int(output_units))

    def forward(self, X):
        return self.output(self.hidden(X))


def _check_sizes(name, sizes):
    try:
        out = tuple(int(s) for s in sizes)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of ints; got {sizes!r}") from None
    if any(s < 1 for s in out):
        raise ValueError(f"{name} must hold positive ints; got {sizes!r}")
    return out


def _head(sizes: Sequence[int], dropout: float) -> nn.Sequential:
    """Linear + ReLU (+ Dropout) layers through ``sizes``."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class ConvNet(nn.Module):
    """A small convolutional network for images ``(n, C, H, W)``: Conv-2 style.

    Frankle & Carbin (2019)'s Conv-2 at half width: two 3x3 convolutions (32
    channels, ReLU, ``same`` padding; the paper has 64), 2x2 max pooling,
    two dense layers of 256 and the output layer. The estimators build it for
    4-D float ``X`` (``net=None``) and then prune its convolutions at half
    the base rate per round, as in the paper (conv 10%, dense 20%, output
    10% with the default rate 0.2): :attr:`default_type_factors`, unless
    ``type_rates`` is given.

    Parameters
    ----------
    input_shape : (int, int, int)
        ``(channels, height, width)`` of one image (filled from the data).
    output_units : int
        Classes or targets (filled from the data).
    channels : sequence of int, default=(32, 32)
        Output channels of each convolution; all convolutions come before one
        pooling layer, as in Conv-2 (Conv-4 and Conv-6 pool after every
        pair).
    hidden_units : sequence of int, default=(256, 256)
    kernel_size : int, default=3
    pool : int, default=2
        Max-pooling window after the convolutions (1: none). Images smaller
        than the window are not pooled.
    dropout : float, default=0.0
        After each dense hidden layer.

    Notes
    -----
    The output layer (``output``) is the last prunable layer, so the
    estimators' ``transform`` returns the features of the last hidden layer.
    """

    #: Per-round rate of each layer type as a fraction of the base rate, used
    #: by the estimators when they build this network themselves.
    default_type_factors = {"conv": 0.5}

    #: Integer ``X`` (uint8 pixels) is numbers (:func:`sklottery.inputs.takes_ids`).
    takes_ids = False

    def __init__(
        self,
        input_shape: Sequence[int] | None = None,
        output_units: int | None = None,
        channels: Sequence[int] = (32, 32),
        hidden_units: Sequence[int] = (256, 256),
        kernel_size: int = 3,
        pool: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__()
        _require_sizes(self, input_shape=input_shape, output_units=output_units)
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 3:
            raise ValueError(
                f"ConvNet takes images (n, C, H, W): input_shape must be "
                f"(C, H, W); got {tuple(input_shape)!r}"
            )
        c, h, w = shape
        chans = _check_sizes("channels", channels)
        layers: list[nn.Module] = []
        for a, b in zip((c, *chans[:-1]), chans):
            layers += [
                nn.Conv2d(a, b, int(kernel_size), padding=int(kernel_size) // 2),
                nn.ReLU(),
            ]
        pool = int(pool)
        if pool > 1 and min(h, w) >= pool:
            layers.append(nn.MaxPool2d(pool))
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, c, h, w)).numel()
        sizes = [n_flat, *_check_sizes("hidden_units", hidden_units)]
        self.hidden = _head(sizes, dropout)
        self.output = nn.Linear(sizes[-1], int(output_units))

    def forward(self, X):
        return self.output(self.hidden(self.features(X).flatten(1)))


class RecurrentNet(nn.Module):
    """A GRU or LSTM over sequences ``(n, T, F)`` with a dense head.

    The final hidden state of the last layer (both directions when
    bidirectional) goes through optional dense layers to the output layer.

    Parameters
    ----------
    input_size : int
        Features per time step ``F`` (filled from the data).
    output_units : int
        Classes or targets (filled from the data).
    hidden_size : int, default=32
    num_layers : int, default=1
    cell : {"gru", "lstm"}, default="gru"
    bidirectional : bool, default=False
    hidden_units : sequence of int, default=()
        Dense layers between the recurrent state and the output layer.
    dropout : float, default=0.0
        After each dense hidden layer.
    """

    #: Integer ``X`` is numbers (:func:`sklottery.inputs.takes_ids`).
    takes_ids = False

    def __init__(
        self,
        input_size: int | None = None,
        output_units: int | None = None,
        hidden_size: int = 32,
        num_layers: int = 1,
        cell: str = "gru",
        bidirectional: bool = False,
        hidden_units: Sequence[int] = (),
        dropout: float = 0.0,
    ):
        super().__init__()
        _require_sizes(self, input_size=input_size, output_units=output_units)
        cells = {"gru": nn.GRU, "lstm": nn.LSTM}
        if cell not in cells:
            raise ValueError(f"cell must be one of {sorted(cells)}; got {cell!r}")
        self.rnn = cells[cell](
            int(input_size),
            int(hidden_size),
            num_layers=int(num_layers),
            batch_first=True,
            bidirectional=bool(bidirectional),
        )
        self.directions = 2 if bidirectional else 1
        sizes = [
            int(hidden_size) * self.directions,
            *_check_sizes("hidden_units", hidden_units),
        ]
        self.hidden = _head(sizes, dropout)
        self.output = nn.Linear(sizes[-1], int(output_units))

    def forward(self, X):
        _, state = self.rnn(X)
        if isinstance(state, tuple):  # LSTM: (h, c)
            state = state[0]
        # the last layer's final state, each direction
        last = state[-self.directions :].transpose(0, 1).reshape(len(X), -1)
        return self.output(self.hidden(last))


class EmbeddingNet(nn.Module):
    """Token ids ``(n, T)`` -> embedding -> mean over positions -> dense head.

    A bag of embeddings (order is ignored), like fastText. With
    ``padding_idx`` the padding positions are left out of the mean, so rows of
    different lengths can be padded to one width.

    Parameters
    ----------
    num_embeddings : int
        Vocabulary size: ids must be in ``[0, num_embeddings)``. Filled from
        the data (largest id + 1); set it larger when later data may hold
        larger ids.
    output_units : int
        Classes or targets (filled from the data).
    embedding_dim : int, default=32
    hidden_units : sequence of int, default=(64,)
    padding_idx : int, optional
    dropout : float, default=0.0
        Dropout probability after each dense hidden layer of the head (the
        embedding table itself is never dropped).

    Notes
    -----
    ``net=None`` never builds it (integer ``X`` is numbers then): pass
    ``net=NeuralNetClassifier(EmbeddingNet, ...)`` (or
    ``NeuralNetRegressor``) for token ids.
    """

    #: Integer ``X`` is token ids (:func:`sklottery.inputs.takes_ids`).
    takes_ids = True

    def __init__(
        self,
        num_embeddings: int | None = None,
        output_units: int | None = None,
        *,
        embedding_dim: int = 32,
        hidden_units: Sequence[int] = (64,),
        padding_idx: int | None = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        _require_sizes(self, num_embeddings=num_embeddings, output_units=output_units)
        self.embedding = nn.Embedding(
            int(num_embeddings), int(embedding_dim), padding_idx=padding_idx
        )
        self.padding_idx = padding_idx
        sizes = [int(embedding_dim), *_check_sizes("hidden_units", hidden_units)]
        self.hidden = _head(sizes, dropout)
        self.output = nn.Linear(sizes[-1], int(output_units))

    def forward(self, X):
        X = X.reshape(len(X), -1)
        emb = self.embedding(X)
        if self.padding_idx is None:
            pooled = emb.mean(dim=1)
        else:
            keep = (X != self.padding_idx).unsqueeze(-1).to(emb.dtype)
            pooled = (emb * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return self.output(self.hidden(pooled))


#: Largest vocabulary the default embedding network is built with (rows of
#: its table); larger ids need a net of the user's (e.g. with hashing).
MAX_DEFAULT_VOCABULARY = 2**20

def module_sizes(module_class, info, n_outputs: int, given=()) -> dict:
    """The size arguments a module of this file takes from the data.

    Parameters
    ----------
    module_class : type
    info : sklottery.inputs.InputInfo
    n_outputs : int
        Classes (classifier) or targets (regressor).
    given : collection of str, default=()
        Size arguments the user set (their checks are skipped).

    Returns
    -------
    dict
        Empty for modules not defined here (their sizes are the user's).

    Raises
    ------
    ValueError
        When the input does not fit the module (e.g. a :class:`ConvNet` on
        2-D ``X``).
    """
    if not isinstance(module_class, type):
        return {}
    what = info.describe()
    if issubclass(module_class, MLP):
        if len(info.shape) != 1:
            raise ValueError(
                f"MLP takes 2-D X (samples, features); got {what}. Flatten X "
                "(X.reshape(len(X), -1)) or use net=None for a network built "
                "for its shape"
            )
        return {"input_units": info.shape[0], "output_units": n_outputs}
    if issubclass(module_class, ConvNet):
        if len(info.shape) != 3:
            raise ValueError(f"ConvNet takes images (n, C, H, W); got {what}")
        return {"input_shape": tuple(info.shape), "output_units": n_outputs}
    if issubclass(module_class, RecurrentNet):
        if len(info.shape) != 2:
            raise ValueError(f"RecurrentNet takes sequences (n, T, F); got {what}")
        return {"input_size": info.shape[1], "output_units": n_outputs}
    if issubclass(module_class, EmbeddingNet):
        if info.dtype != "int64":
            raise ValueError(f"EmbeddingNet takes integer token ids; got {what}")
        if "num_embeddings" in given:
            return {"output_units": n_outputs}
        vocab = int(info.max_id) + 1
        if vocab > MAX_DEFAULT_VOCABULARY:
            raise ValueError(
                f"X holds token ids up to {info.max_id}: an embedding table with "
                f"{vocab} rows is over the {MAX_DEFAULT_VOCABULARY} rows sklottery "
                "builds by itself. Map the ids to 0..V-1, pass a net whose "
                "module sets its size (e.g. NeuralNetClassifier(EmbeddingNet, "
                "module__num_embeddings=...)), or, for numeric features, pass "
                "float X"
            )
        return {"num_embeddings": vocab, "output_units": n_outputs}
    return {}


def default_module_for(info) -> type:
    """The network the estimators build for ``net=None``, from the input's form.

    ============================  ==========================================
    input                         network
    ============================  ==========================================
    2-D float, sparse             :class:`MLP` (LeNet-300-100)
    float ``(n, C, H, W)``        :class:`ConvNet` (Conv-2, half width)
    float ``(n, T, F)``           :class:`RecurrentNet` (GRU, 32 units)
    ============================  ==========================================

    With ``net=None`` integer ``X`` is numbers (float32, so an integer
    table gets the :class:`MLP`); token ids need a net whose module takes
    them (:func:`sklottery.inputs.takes_ids`), e.g.
    ``NeuralNetClassifier(EmbeddingNet)``.
    Ids reach this function only from a ticket file that recorded them:
    int64 ``(n, T)`` gets an :class:`EmbeddingNet`.

    Parameters
    ----------
    info : sklottery.inputs.InputInfo

    Returns
    -------
    type
        The module class; :func:`fill_module_sizes` sizes it.

    Raises
    ------
    ValueError
        For inputs with no default network (other ranks).
    """
    if info.dtype == "int64":
        cls = EmbeddingNet if len(info.shape) == 1 else None
    else:
        cls = {1: MLP, 2: RecurrentNet, 3: ConvNet}.get(len(info.shape))
    if cls is None:
        raise ValueError(
            f"there is no default network for {info.describe()}: the "
            "defaults take 2-D X (MLP), images (n, C, H, W) (ConvNet) and "
            "sequences (n, T, F) (RecurrentNet); token ids need a net whose "
            "module takes them (e.g. NeuralNetClassifier(EmbeddingNet)). Pass "
            "a skorch net whose module takes this X"
        )
    return cls


def fill_module_sizes(net, info, n_outputs: int):
    """Give ``net`` (an unfitted skorch net) the sizes its module takes from
    the data (:func:`module_sizes`), where the user did not set them."""
    given = {k: v for k, v in net.get_params_for("module").items() if v is not None}
    sizes = module_sizes(net.module, info, n_outputs, given)
    net.set_params(
        **{f"module__{k}": v for k, v in sizes.items() if k not in given}
    )
    return net


def default_type_rates(net, config) -> dict | None:
    """The ``type_rates`` the default network ``net`` is pruned with when the
    user gives none: a :class:`ConvNet`'s
    :attr:`~ConvNet.default_type_factors` times the base rate (``config``: a
    :class:`~sklottery.config.LotteryConfig`); None for the others."""
    module = net.module
    if not (isinstance(module, type) and issubclass(module, ConvNet)):
        return None
    from .pruning import resolve_rate

    p = config.pruner
    rate = resolve_rate(p["prune_rate"], p["target_sparsity"], p["n_rounds"])
    return {k: f * rate for k, f in ConvNet.default_type_factors.items()}
