"""Issue 19: integer X is numbers unless the net's module takes ids; ids are
checked against every embedding they reach, over the whole X; sample
weights beyond float32 are refused by name."""

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier

from sklottery import MLP, ConvNet, EmbeddingNet, LotteryTicketClassifier
from sklottery.inputs import check_sample_weight, integer_input

N = 96


def _net(module, **kwargs):
    return NeuralNetClassifier(
        module,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=0.02,
        max_epochs=2,
        batch_size=32,
        train_split=None,
        verbose=0,
        **kwargs,
    )


def _fit(net, X, y):
    return LotteryTicketClassifier(net, n_rounds=1, prune_rate=0.5, random_state=0).fit(
        X, y
    )


def _int_table(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 10, size=(N, 6))
    return X, (X[:, 0] > X[:, 1]).astype(int)


# -- what integer X is -------------------------------------------------------------
def test_default_net_takes_an_integer_table_as_numbers():
    pd = pytest.importorskip("pandas")
    X, y = _int_table()
    est = _fit(None, X, y)
    assert type(est.net_.module_) is MLP
    assert est._input_info.dtype == "float32"
    # the same table as a DataFrame: the same network, the same predictions
    frame = _fit(None, pd.DataFrame(X), y)
    np.testing.assert_array_equal(
        est.predict_proba(X), frame.predict_proba(pd.DataFrame(X))
    )
    np.testing.assert_array_equal(est.predict_proba(X), est.predict_proba(X * 1.0))


def test_default_net_takes_integer_images_as_pixels():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, size=(40, 1, 4, 4), dtype=np.uint8)
    y = np.arange(40) % 2
    est = LotteryTicketClassifier(n_rounds=1, random_state=0).fit(X, y)
    assert type(est.net_.module_) is ConvNet
    assert est.predict(X).shape == (40,)


class _EmbeddingFirst(torch.nn.Module):
    def __init__(self, vocab=10):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, 3)
        self.out = torch.nn.Linear(18, 2)

    def forward(self, X):
        return self.out(self.emb(X).flatten(1))


class _LinearFirst(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(6, 4)
        self.out = torch.nn.Linear(4, 2)

    def forward(self, X):
        return self.out(self.hidden(X))


class _Declared(_LinearFirst):
    """Says it takes ids (its forward makes them numbers)."""

    takes_ids = True

    def forward(self, X):
        return super().forward(X.float())


class _NeedsArgs(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.emb = torch.nn.Embedding(10, width)


@pytest.mark.parametrize(
    "net, expected",
    [
        (None, "float"),
        (_net(MLP), "float"),
        (_net(ConvNet), "float"),
        (_net(EmbeddingNet), "ids"),
        (_net(_EmbeddingFirst), "ids"),
        (_net(_EmbeddingFirst, module__vocab=4), "ids"),
        (_net(_LinearFirst), "float"),
        (_net(_Declared), "ids"),
        (_net(torch.nn.Embedding, module__num_embeddings=5,
              module__embedding_dim=2), "ids"),
        (_net(torch.nn.Sequential(torch.nn.EmbeddingBag(5, 2),
                                  torch.nn.Linear(2, 2))), "ids"),
        (_net(torch.nn.Sequential(torch.nn.Linear(2, 2))), "float"),
        (_net(_NeedsArgs), "float"),  # cannot be built without its width
        (_net(_NeedsArgs, module__width=3), "ids"),
    ],
)
def test_integer_input_follows_the_module(net, expected):
    state = torch.get_rng_state()
    assert integer_input(net) == expected
    # building the module to look at it leaves torch's generator as it was
    assert torch.equal(torch.get_rng_state(), state)


def test_a_linear_module_takes_integer_numbers():
    X, y = _int_table()
    est = _fit(_net(_LinearFirst), X, y)
    assert est._input_info.dtype == "float32"
    np.testing.assert_array_equal(
        est.predict_proba(X), _fit(_net(_LinearFirst), X * 1.0, y).predict_proba(X)
    )


def test_a_module_declaring_ids_gets_int64():
    seen = []

    class Spy(_Declared):
        def forward(self, X):
            seen.append(X.dtype)
            return super().forward(X)

    X, y = _int_table()
    _fit(_net(Spy), X, y)
    assert set(seen) == {torch.int64}


# -- ids against every embedding they reach ------------------------------------------
def test_ids_beyond_the_first_rows_checked_at_fit_and_predict():
    X, y = _int_table(2)
    X = np.minimum(X, 7)
    bad = X.copy()
    bad[70, 4] = 9  # far from the two rows of the forward check
    net = _net(_EmbeddingFirst, module__vocab=8)
    with pytest.raises(
        ValueError, match=r"token id 9, outside the vocabulary of the network's "
        r"embedding 'emb' \(num_embeddings=8; 9 is the largest id"
    ):
        _fit(net, bad, y)
    est = _fit(net, X, y)
    with pytest.raises(ValueError, match=r"token id 9, outside .* 'emb'"):
        est.predict(bad)
    with pytest.raises(ValueError, match=r"token id 9, outside .* 'emb'"):
        est.predict_proba(bad[60:])


class _TwoColumns(torch.nn.Module):
    """Column 0 feeds ``small`` (5 rows), column 1 ``large`` (50 rows);
    ``hashed`` gets ids the module computes."""

    def __init__(self):
        super().__init__()
        self.small = torch.nn.Embedding(5, 2)
        self.large = torch.nn.Embedding(50, 2)
        self.hashed = torch.nn.EmbeddingBag(3, 2)
        self.out = torch.nn.Linear(6, 2)

    def forward(self, X):
        parts = [self.small(X[:, 0]), self.large(X[:, 1]), self.hashed(X % 3)]
        return self.out(torch.cat(parts, dim=1))


def test_each_embedding_checked_at_the_positions_it_reads():
    rng = np.random.default_rng(3)
    X = np.stack([rng.integers(0, 5, N), rng.integers(0, 50, N)], axis=1)
    y = np.arange(N) % 2
    est = _fit(_net(_TwoColumns), X, y)  # ids up to 49: only 'large' reads them
    assert est.predict(X).shape == (N,)
    bad = X.copy()
    bad[80, 0] = 6
    with pytest.raises(ValueError, match=r"token id 6, outside .* 'small' "
                       r"\(num_embeddings=5"):
        est.predict(bad)
    bad = X.copy()
    bad[90, 1] = 50
    with pytest.raises(ValueError, match=r"token id 50, outside .* 'large'"):
        _fit(_net(_TwoColumns), bad, y)


# -- sample_weight in float32 ---------------------------------------------------------
@pytest.mark.parametrize(
    "w, match",
    [
        (np.full(N, 1e39), r"sample_weight holds 1e\+39, beyond float32's largest"),
        (1e39, r"sample_weight holds 1e\+39, beyond float32's largest"),
        (np.full(N, 1e37), r"sample_weight sums to 9.6e\+38, beyond float32's"),
        (np.full(N, 1e-40), r"sample_weight is at most 1e-40, below float32's "
         "smallest normal"),
    ],
)
def test_sample_weight_beyond_float32(w, match):
    with pytest.raises(ValueError, match=match):
        check_sample_weight(w, N)
    X, y = _int_table()
    with pytest.raises(ValueError, match=match):
        LotteryTicketClassifier(_net(MLP), n_rounds=1).fit(X * 1.0, y, sample_weight=w)


def test_sample_weight_within_float32_is_kept():
    w = np.r_[np.full(N - 1, 1e-30), 1e30]
    np.testing.assert_array_equal(check_sample_weight(w, N), w.astype(np.float32))
