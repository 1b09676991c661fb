"""Estimators on a dict X, as skorch takes it (the module's forward gets the
values as keyword arguments): fit, predict, transform, sample weights, the
validation split, searches and pickling; with the ``hf`` extra, a 2-layer
BERT on a dict, a BatchEncoding and a tokenizer pipeline."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from skorch.dataset import ValidSplit
from skorch.helper import SliceDict

from sklottery import LotteryTicketClassifier, LotteryTicketRegressor
from tests.dict_helpers import Bert, DictNet, dict_data, dict_net


def _fit(X, y, net=None, sample_weight=None, **kwargs):
    params = {"n_rounds": 1, "prune_rate": 0.5, "random_state": 0, **kwargs}
    return LotteryTicketClassifier(net or dict_net(), **params).fit(
        X, y, sample_weight=sample_weight
    )


def test_fit_predict_transform():
    X, y = dict_data()
    clf = _fit(X, y)
    assert not hasattr(clf, "n_features_in_")
    assert clf._input_info.kind == "dict"
    proba = clf.predict_proba(X)
    assert proba.shape == (80, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert set(clf.predict(X)) <= {0, 1}
    assert clf.transform(X).shape == (80, 8)
    # the same form as tensors, and the keys in another order, predict the same
    as_tensors = {"num": torch.as_tensor(X["num"]), "ids": torch.as_tensor(X["ids"])}
    np.testing.assert_allclose(clf.predict_proba(as_tensors), proba, rtol=1e-6)
    assert np.isfinite(clf.rounds_["train_macs"]).all()
    assert clf.rounds_["n_weights"].iloc[1] < clf.rounds_["n_weights"].iloc[0]


def test_sparse_inference_agrees():
    X, y = dict_data()
    clf = _fit(X, y, inference="sparse")
    dense = clf.set_params(inference="dense").predict_proba(X)
    np.testing.assert_allclose(
        clf.set_params(inference="sparse").predict_proba(X), dense, atol=1e-5
    )


def test_mismatched_prediction_input():
    X, y = dict_data()
    clf = _fit(X, y)
    with pytest.raises(ValueError, match="keys"):
        clf.predict({"ids": X["ids"]})
    with pytest.raises(ValueError, match="fitted on dict X"):
        clf.predict(X["num"])
    with pytest.raises(ValueError, match=r"X\['ids'\] holds the token id 30"):
        clf.predict({"ids": X["ids"] + 1, "num": X["num"]})


def test_sample_weight():
    X, y = dict_data()
    plain = _fit(X, y).predict_proba(X)
    ones = _fit(X, y, sample_weight=np.ones(80)).predict_proba(X)
    np.testing.assert_array_equal(ones, plain)  # all ones: the unweighted fit
    weighted = _fit(X, y, sample_weight=np.where(y == 1, 5.0, 0.2))
    assert not np.allclose(weighted.predict_proba(X), plain)
    with pytest.raises(ValueError, match="sample_weight"):
        _fit(X, y, sample_weight=np.ones(3))


def test_validation_split_keeps_the_dict():
    X, y = dict_data()
    clf = _fit(X, y, net=dict_net(train_split=ValidSplit(4, stratified=True)),
               select="best")
    assert (clf.rounds_["score_on"] == "valid").all()
    assert clf.predict(X).shape == (80,)


def test_regressor():
    X, _ = dict_data()
    y = X["num"][:, 0] + 0.1 * X["ids"][:, 0]
    from skorch import NeuralNetRegressor

    net = NeuralNetRegressor(DictNet, module__n_out=1, max_epochs=3, lr=0.02,
                             optimizer=torch.optim.Adam, train_split=None,
                             verbose=0, batch_size=16)
    reg = LotteryTicketRegressor(net, n_rounds=1, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (80,)


def test_search_and_pickle():
    X, y = dict_data()
    # scikit-learn indexes X row-wise: skorch's SliceDict is the dict it can
    # split (skorch's documented way to search over a dict X)
    Xs = SliceDict(**X)
    search = GridSearchCV(
        LotteryTicketClassifier(dict_net(), n_rounds=1, random_state=0),
        {"prune_rate": [0.3, 0.6]}, cv=2,
    )
    search.fit(Xs, y)
    assert search.best_estimator_.predict(Xs).shape == (80,)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    clf = _fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))


# -- the hf extra: BERT from a local config, a BatchEncoding, a tokenizer ----
TEXTS = [
    "good movie great fun", "bad film dull plot", "great acting good story",
    "dull boring bad", "fun great good", "plot bad boring film",
] * 6
LABELS = np.array([1, 0, 1, 0, 1, 0] * 6)


def _bert_net(**kwargs):
    pytest.importorskip("transformers")
    return dict_net(Bert, max_epochs=2, lr=1e-3, **kwargs)


def _tokenizer(max_length=8):
    pytest.importorskip("tokenizers")
    pytest.importorskip("transformers")
    from skorch.hf import HuggingfaceTokenizer
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    return HuggingfaceTokenizer(
        tokenizer=Tokenizer, model=WordLevel, model__unk_token="[UNK]",
        pre_tokenizer=Whitespace(), max_length=max_length,
        trainer__vocab_size=30, trainer__special_tokens=["[UNK]", "[PAD]"],
    )


def test_bert_on_a_dict_and_a_batch_encoding():
    net = _bert_net()
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 30, (48, 8))
    mask = np.ones_like(ids)
    mask[:, 6:] = 0
    y = (ids[:, 0] > 15).astype(np.int64)
    X = {"input_ids": ids, "attention_mask": mask}
    clf = _fit(X, y, net=net, sample_weight=np.linspace(0.5, 2, 48))
    from transformers import BatchEncoding

    enc = BatchEncoding({k: torch.as_tensor(v) for k, v in X.items()})
    np.testing.assert_allclose(clf.predict_proba(enc), clf.predict_proba(X),
                               rtol=1e-6)
    assert clf.predict(enc).shape == (48,)
    assert clf.sparsity_ > 0.3


def test_tokenizer_pipeline_fit_predict_search_pickle():
    pipe = Pipeline([
        ("tok", _tokenizer()),
        ("clf", LotteryTicketClassifier(_bert_net(), n_rounds=1, prune_rate=0.5,
                                        random_state=0)),
    ])
    pipe.fit(TEXTS, LABELS)
    info = pipe[-1]._input_info
    assert [k for k, _, _ in info.fields] == ["input_ids", "attention_mask"]
    assert info.fields[0][1:] == ((8,), "int64")
    pred = pipe.predict(TEXTS[:6])
    assert pred.shape == (6,)
    back = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(back.predict_proba(TEXTS), pipe.predict_proba(TEXTS))
    search = GridSearchCV(pipe, {"clf__prune_rate": [0.3, 0.6]}, cv=2)
    search.fit(np.array(TEXTS), LABELS)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # another max_length is another input form
    with pytest.raises(ValueError, match=r"X\['input_ids'\]"):
        pipe[-1].predict(_tokenizer(max_length=6).fit(TEXTS).transform(TEXTS))
