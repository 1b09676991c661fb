"""The data split made once per fit (sklottery.training._split)."""

import torch
from skorch.dataset import ValidSplit

from sklottery.training import FixedValidation, RoundData, seed_train_split, split_data


def test_split_data_without_a_split_scores_on_the_training_data(net, data):
    X, y = data
    net.set_params(train_split=None)
    split = split_data(net, X, y)
    assert split.eval_on == "train" and split.valid_split() is None
    assert torch.equal(split.X_train, torch.from_numpy(X))
    assert split.X_eval is split.X_train


def test_split_data_with_a_validation_split(net, data):
    X, y = data
    net.set_params(train_split=ValidSplit(4, stratified=True))
    split = split_data(net, X, y)
    assert split.eval_on == "valid"
    assert len(split.X_train) + len(split.X_eval) == len(X) == 240
    assert len(split.X_eval) == 60
    rows = {tuple(r) for r in split.X_train.numpy().round(6)}
    assert not rows & {tuple(r) for r in split.X_eval.numpy().round(6)}
    fixed = split.valid_split()
    assert isinstance(fixed, FixedValidation)
    train, valid = fixed("anything")
    assert train == "anything" and len(valid) == 60


def test_seed_train_split_seeds_only_an_unseeded_fraction(tiny_net):
    unseeded = ValidSplit(0.2, stratified=True)
    net = seed_train_split(tiny_net(train_split=unseeded), 17)
    assert net.train_split is not unseeded and unseeded.random_state is None
    assert net.train_split.random_state == 17
    assert net.train_split.cv == 0.2 and net.train_split.stratified
    for kept in (ValidSplit(5), ValidSplit(0.2, random_state=3), None):
        assert seed_train_split(tiny_net(train_split=kept), 17).train_split is kept


def test_round_data_holds_the_split():
    X = torch.zeros(4, 2)
    y = torch.zeros(4)
    data = RoundData(X, y, X[:1], y[:1], "valid")
    valid = data.valid_split()(None)[1]
    assert len(valid) == 1
    assert data.macs is None and data.w_train is None
