"""Every input a skorch net takes (issue 10): images, sequences, token ids,
sparse matrices, tensors; sample_weight and its routing; default nets by
input shape; per-layer-type rates; bad inputs by their messages."""

import io
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn
import torch
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from skorch import NeuralNetClassifier, NeuralNetRegressor

from sklottery import (
    MLP,
    ConvNet,
    EmbeddingNet,
    LotteryTicketClassifier,
    LotteryTicketRegressor,
    RecurrentNet,
)

N = 96


def _net(module, cls=NeuralNetClassifier, **kwargs):
    params = {
        "optimizer": torch.optim.Adam,
        "lr": 0.02,
        "max_epochs": 2,
        "batch_size": 32,
        "train_split": None,
        "iterator_train__shuffle": True,
        "verbose": 0,
        **kwargs,
    }
    if cls is NeuralNetClassifier:
        params.setdefault("criterion", torch.nn.CrossEntropyLoss)
    return cls(module, **params)


def _clf(module, n_rounds=1, **kwargs):
    net_kwargs = {k: v for k, v in kwargs.items() if k.startswith("module__")}
    est_kwargs = {k: v for k, v in kwargs.items() if k not in net_kwargs}
    return LotteryTicketClassifier(
        _net(module, **net_kwargs),
        n_rounds=n_rounds,
        prune_rate=0.5,
        random_state=0,
        **est_kwargs,
    )


def _labels(rng):
    return rng.integers(0, 3, N)


def images(rng):
    return rng.normal(size=(N, 1, 6, 6)), _labels(rng)


def sequences(rng):
    return rng.normal(size=(N, 5, 3)).astype(np.float32), _labels(rng)


def token_ids(rng):
    return rng.integers(0, 40, size=(N, 7)), _labels(rng)


KINDS = {
    "image": (
        images,
        lambda: _clf(ConvNet, module__channels=(4,), module__hidden_units=(8,)),
        ("features.0.weight",),
    ),
    "sequence": (
        sequences,
        lambda: _clf(RecurrentNet, module__hidden_size=6, module__cell="lstm"),
        ("rnn.weight_ih_l0", "rnn.weight_hh_l0"),
    ),
    "ids": (
        token_ids,
        lambda: _clf(EmbeddingNet, module__embedding_dim=4, module__hidden_units=(8,)),
        ("embedding.weight",),
    ),
}


def _assert_pruned_zero(est, names):
    params = dict(est.net_.module_.named_parameters())
    for name in names:
        mask = est.masks_[name]
        assert (~mask).any(), name  # something was pruned
        assert torch.all(params[name].detach()[~mask] == 0), name


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_input_kind_end_to_end(kind):
    make_data, make_est, pruned = KINDS[kind]
    X, y = make_data(np.random.default_rng(0))
    est = make_est().fit(X, y)
    _assert_pruned_zero(est, pruned)
    assert not hasattr(est, "n_features_in_") or X.ndim == 2
    proba = est.predict_proba(X)
    assert proba.shape == (N, 3)
    assert est.predict(X).shape == (N,)
    assert 0 <= est.score(X, y) <= 1
    assert est.transform(X).shape == (N, 8 if kind != "sequence" else 6)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict_proba(X), proba)
    # a ticket file keeps the input's shape and dtype
    buf = io.BytesIO()
    est.save_ticket(buf)
    buf.seek(0)
    loaded = make_est().load_ticket(buf)
    np.testing.assert_allclose(loaded.predict_proba(X), proba, rtol=1e-5, atol=1e-6)
    search = GridSearchCV(make_est(), {"prune_rate": [0.2, 0.5]}, cv=2).fit(X, y)
    assert search.best_params_["prune_rate"] in (0.2, 0.5)
    assert search.predict(X).shape == (N,)


def test_images_keep_float32_and_shape_checked():
    X, y = images(np.random.default_rng(1))
    est = KINDS["image"][1]().fit(X, y)
    assert est.transform(X).dtype == np.float32
    with pytest.raises(ValueError, match=r"shape \(n, 1, 6, 5\) after the first axis"):
        est.predict(X[:, :, :, :5])
    with pytest.raises(ValueError, match=r"shape \(n, 36\) after the first axis"):
        est.predict(X.reshape(N, -1))


@pytest.mark.parametrize(
    "kind, default",
    # integer X is numbers for net=None (issue 19): an integer table, an MLP
    [("image", ConvNet), ("sequence", RecurrentNet), ("ids", MLP)],
)
def test_default_net_from_input_shape(kind, default):
    X, y = KINDS[kind][0](np.random.default_rng(2))
    est = LotteryTicketClassifier(n_rounds=1, random_state=0).fit(X[:60], y[:60])
    assert isinstance(est.net_.module_, default)
    layers = est.layers_.set_index("name")
    # every weight layer is pruned; the output layer at half the rate
    assert (layers["sparsity"] > 0).all()
    assert layers.loc["output.weight", "sparsity"] == pytest.approx(0.1, abs=0.01)
    if kind == "image":
        # Frankle & Carbin: convolutions at half the dense layers' rate
        conv = layers[layers["kind"] == "conv"]["sparsity"]
        np.testing.assert_allclose(conv, 0.1, atol=0.01)
        assert layers.loc["hidden.0.weight", "sparsity"] == pytest.approx(0.2, abs=0.01)
    # transform: the features entering the output layer
    width = est.net_.module_.output.in_features
    assert est.transform(X[:5]).shape == (5, width)


def test_ids_above_2_24_reach_the_module_unchanged():
    seen = []

    class Hashed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.EmbeddingBag(1000, 4)
            self.out = torch.nn.Linear(4, 2)

        def forward(self, X):
            seen.append(X.clone())
            return self.out(self.emb(X % 1000))

    rng = np.random.default_rng(3)
    X = 2**24 + rng.integers(1, 2**30, size=(40, 3), dtype=np.int64)
    y = rng.integers(0, 2, 40)
    est = _clf(Hashed).fit(X, y)
    assert all(t.dtype == torch.int64 for t in seen)
    fed = torch.cat([t for t in seen if len(t) == 40 or len(t) == 32 or len(t) == 8])
    assert set(fed.flatten().tolist()) <= set(X.flatten().tolist())
    seen.clear()
    est.predict(X)
    # the vocabulary check's pass over two samples (issue 19), then predict's
    np.testing.assert_array_equal(seen[0].numpy(), X[:2])
    np.testing.assert_array_equal(torch.cat(seen[1:]).numpy(), X)


def test_tfidf_pipeline_and_sparse_formats(monkeypatch):
    rng = np.random.default_rng(4)
    words = [f"w{i}" for i in range(60)]
    docs, y = [], []
    for i in range(N):
        label = i % 2
        pool = words[:35] if label else words[25:]
        docs.append(" ".join(rng.choice(pool, size=8)))
        y.append(label)
    y = np.array(y)
    pipe = make_pipeline(TfidfVectorizer(), _clf(MLP, module__hidden_units=(8,)))
    pipe.fit(docs, y)
    assert pipe.score(docs, y) > 0.7

    X = TfidfVectorizer().fit_transform(docs)
    dense = _clf(MLP, module__hidden_units=(8,)).fit(X.toarray(), y)
    expected = dense.predict_proba(X.toarray())

    def no_toarray(self, *a, **k):
        raise AssertionError("the whole sparse matrix was densified")

    monkeypatch.setattr(sp.csr_matrix, "toarray", no_toarray)
    for fmt in ("csr", "csc", "coo"):
        est = _clf(MLP, module__hidden_units=(8,)).fit(X.asformat(fmt), y)
        assert est.n_features_in_ == X.shape[1]
        np.testing.assert_array_equal(est.predict_proba(X.asformat(fmt)), expected)


def test_torch_tensors_and_dataframes():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(5)
    X = rng.normal(size=(N, 4)).astype(np.float32)
    y = _labels(rng)
    ref = _clf(MLP, module__hidden_units=(8,)).fit(X, y).predict_proba(X)
    est = _clf(MLP, module__hidden_units=(8,)).fit(torch.from_numpy(X), y)
    np.testing.assert_array_equal(est.predict_proba(torch.from_numpy(X)), ref)
    frame = pd.DataFrame(X, columns=list("abcd"))
    est = _clf(MLP, module__hidden_units=(8,)).fit(frame, y)
    np.testing.assert_array_equal(est.feature_names_in_, list("abcd"))
    np.testing.assert_array_equal(est.predict_proba(frame), ref)


# -- sample_weight ---------------------------------------------------------------
def _table(seed=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, 4)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int)


def test_sample_weight_all_ones_is_the_unweighted_fit():
    X, y = _table()
    plain = _clf(MLP, module__hidden_units=(8,)).fit(X, y)
    ones = _clf(MLP, module__hidden_units=(8,)).fit(X, y, sample_weight=np.ones(N))
    np.testing.assert_array_equal(ones.predict_proba(X), plain.predict_proba(X))


@pytest.mark.parametrize("regressor", [False, True])
def test_zero_weights_remove_samples_influence(regressor):
    X, y = _table()
    w = np.ones(N)
    w[:30] = 0.0
    fits = []
    for seed in (1, 2):
        Xs, ys = X.copy(), y.astype(np.float32 if regressor else int)
        noise = np.random.default_rng(seed)
        Xs[:30] = noise.normal(size=(30, 4)) * 5
        ys[:30] = noise.integers(0, 2, 30)
        if regressor:
            est = LotteryTicketRegressor(
                _net(MLP, cls=NeuralNetRegressor, module__hidden_units=(8,)),
                n_rounds=1, prune_rate=0.5, random_state=0,
            )
        else:
            est = _clf(MLP, module__hidden_units=(8,))
        fits.append(est.fit(Xs, ys, sample_weight=w))
    a, b = (dict(f.net_.module_.named_parameters()) for f in fits)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    # the weights change the fit
    plain = _clf(MLP, module__hidden_units=(8,)).fit(X, y)
    if not regressor:
        assert not np.array_equal(
            plain.predict_proba(X), fits[0].predict_proba(X)
        )


def test_sample_weight_routing():
    X, y = _table()
    w = np.random.default_rng(7).uniform(0.1, 2.0, N)
    with sklearn.config_context(enable_metadata_routing=True):
        est = _clf(MLP, module__hidden_units=(8,))
        est.set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        search = GridSearchCV(est, {"prune_rate": [0.2, 0.5]}, cv=2)
        search.fit(X, y, sample_weight=w)
        best = _clf(MLP, module__hidden_units=(8,)).set_params(**search.best_params_)
        manual = best.fit(X, y, sample_weight=w)
        np.testing.assert_array_equal(
            search.best_estimator_.predict_proba(X), manual.predict_proba(X)
        )
        cv = KFold(2)
        out = cross_validate(
            est, X, y, cv=cv, params={"sample_weight": w}, return_estimator=True
        )
        train, _ = next(iter(cv.split(X)))
        manual = _clf(MLP, module__hidden_units=(8,)).fit(
            X[train], y[train], sample_weight=w[train]
        )
        np.testing.assert_array_equal(
            out["estimator"][0].predict_proba(X), manual.predict_proba(X)
        )
        unweighted = _clf(MLP, module__hidden_units=(8,)).fit(X[train], y[train])
        assert not np.array_equal(
            unweighted.predict_proba(X), manual.predict_proba(X)
        )


# -- per-layer-type rates -----------------------------------------------------------
def test_type_rates_precedence():
    X, y = images(np.random.default_rng(8))
    est = KINDS["image"][1]().set_params(
        prune_rate=None, type_rates={"conv": 0.3, "linear": 0.4}
    )
    layers = est.fit(X, y).layers_.set_index("name")["sparsity"]
    assert layers["features.0.weight"] == pytest.approx(0.3, abs=0.02)
    assert layers["hidden.0.weight"] == pytest.approx(0.4, abs=0.01)
    assert layers["output.weight"] == pytest.approx(0.2, abs=0.02)  # 0.4 * 0.5
    est.set_params(layer_rates={"output.weight": 0.6})
    layers = est.fit(X, y).layers_.set_index("name")["sparsity"]
    assert layers["output.weight"] == pytest.approx(0.6, abs=0.02)


@pytest.mark.parametrize(
    "type_rates, error, match",
    [
        ({"dense": 0.2}, ValueError, r"'dense' is not a layer type; valid types"),
        ({"conv": 1.5}, ValueError, r"type_rates\['conv'\] must be in \[0, 1\)"),
        ({"conv": "x"}, TypeError, r"type_rates\['conv'\] must be a float"),
        ([("conv", 0.1)], ValueError, r"'type_rates' parameter .* must be"),
    ],
)
def test_type_rates_validated(type_rates, error, match):
    X, y = _table()
    est = _clf(MLP, module__hidden_units=(8,)).set_params(type_rates=type_rates)
    with pytest.raises(error, match=match):
        est.fit(X, y)


# -- bad inputs ---------------------------------------------------------------------
def _fitted_ids():
    X, y = token_ids(np.random.default_rng(9))
    return KINDS["ids"][1]().fit(X, y), X, y


@pytest.mark.parametrize(
    "X, match",
    [
        (np.full((N, 1, 6, 6), np.nan), "Input X contains NaN"),
        (np.full((N, 5, 3), np.inf), "Input X contains infinity"),
        (np.zeros((0, 1, 6, 6)), r"Found array with 0 sample\(s\)"),
        (np.zeros((0, 4)), r"Found array with 0 sample\(s\)"),
        (np.zeros((N, 0, 3)), "has an empty axis"),
        (np.ones((N, 4), dtype=np.complex64), "Complex data not supported"),
        (np.full((N, 4), "a"), "X holds strings"),
        (np.ones((N, 4), dtype="datetime64[s]"), "which a network cannot take"),
    ],
)
def test_bad_inputs_in_fit(X, match):
    y = np.arange(len(X)) % 2
    with pytest.raises(ValueError, match=match):
        LotteryTicketClassifier(n_rounds=1).fit(X, y)


def test_bad_inputs_in_predict():
    est, X, _ = _fitted_ids()
    vocab = est.net_.module_.embedding.num_embeddings
    bad = X.copy()
    bad[3, 2] = vocab
    with pytest.raises(ValueError, match=rf"token id {vocab}, outside the vocabulary"):
        est.predict(bad)
    bad[3, 2] = -4
    with pytest.raises(ValueError, match="must be >= 0; found -4"):
        est.predict(bad)
    with pytest.raises(ValueError, match="fitted on integer token ids"):
        est.predict(X.astype(np.float32))
    with pytest.raises(ValueError, match="X has 6 features, but"):
        est.predict(X[:, :6])


class _LinearTakingIds(torch.nn.Linear):
    takes_ids = True  # says so, wrongly


def test_network_that_cannot_take_the_dtype():
    X = np.random.default_rng(10).integers(0, 5, size=(N, 4))
    y = np.arange(N) % 2
    # integer X is numbers for a Linear layer (issue 19)
    net = _net(torch.nn.Linear, module__in_features=4, module__out_features=2)
    LotteryTicketClassifier(net, n_rounds=1).fit(X, y)
    net = _net(_LinearTakingIds, module__in_features=4, module__out_features=2)
    with pytest.raises(ValueError, match=r"cannot take int64 X of shape \(n, 4\)"):
        LotteryTicketClassifier(net, n_rounds=1).fit(X, y)
    # negative ids, for a module that takes ids
    with pytest.raises(ValueError, match=r"ids, which must be >= 0; found -1"):
        LotteryTicketClassifier(_net(EmbeddingNet), n_rounds=1).fit(
            np.full((N, 4), -1), y
        )
    # a user net with an embedding of known size: out-of-vocabulary ids
    net = _net(EmbeddingNet, module__num_embeddings=3)
    with pytest.raises(ValueError, match=r"token id 4, outside the vocabulary"):
        LotteryTicketClassifier(net, n_rounds=1).fit(X, y)


@pytest.mark.parametrize(
    "w, match",
    [
        (-np.ones(N), "Negative values in data passed to `sample_weight`"),
        (np.ones(N - 1), r"sample_weight.shape == \(95,\), expected \(96,\)"),
        (np.zeros(N), "non-zero"),
        (np.full(N, np.nan), "NaN"),
    ],
)
def test_bad_sample_weight(w, match):
    X, y = _table()
    with pytest.raises(ValueError, match=match):
        _clf(MLP).fit(X, y, sample_weight=w)


def test_integer_weights_equal_repeated_samples():
    # full-batch training: equal in exact arithmetic, float32 rounding apart
    X, y = _table()
    w = np.random.default_rng(11).integers(0, 4, N)
    w[0] = 1
    est = _clf(MLP, module__hidden_units=(8,))
    est.set_params(net__batch_size=1024)
    weighted = clone(est).fit(X, y, sample_weight=w).predict_proba(X)
    repeated = clone(est).fit(X.repeat(w, axis=0), y.repeat(w)).predict_proba(X)
    np.testing.assert_allclose(weighted, repeated, rtol=1e-4, atol=1e-5)


class _Softmax(torch.nn.Module):
    """Probabilities out, for skorch's NLLLoss path (the log is skorch's)."""

    def __init__(self):
        super().__init__()
        self.hidden = torch.nn.Linear(4, 8)
        self.output = torch.nn.Linear(8, 2)

    def forward(self, X):
        return torch.softmax(self.output(torch.relu(self.hidden(X))), dim=-1)


def test_sample_weight_with_validation_split_sparse_and_nllloss():
    from skorch.dataset import ValidSplit

    X, y = _table()
    w = np.random.default_rng(12).uniform(0.0, 2.0, N)
    est = _clf(MLP, module__hidden_units=(8,))
    est.set_params(net__train_split=ValidSplit(0.25, stratified=True))
    est.fit(sp.csr_matrix(X), y, sample_weight=w)
    assert "valid_acc" in est.net_.history[-1]
    assert np.isfinite(est.rounds_["score"]).all()
    # NLLLoss on probabilities: zero weights still remove the samples
    fits = []
    for seed in (1, 2):
        Xs, ys = X.copy(), y.copy()
        Xs[:20] = np.random.default_rng(seed).normal(size=(20, 4)) * 3
        est = _clf(_Softmax).set_params(net__criterion=torch.nn.NLLLoss)
        fits.append(est.fit(Xs, ys, sample_weight=np.r_[np.zeros(20), w[20:]]))
    np.testing.assert_array_equal(fits[0].predict_proba(X), fits[1].predict_proba(X))
