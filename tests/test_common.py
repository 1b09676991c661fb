"""scikit-learn's estimator checks on every public estimator."""

import torch
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch import NeuralNetClassifier, NeuralNetRegressor

from sklottery import MLP, LotteryTicketClassifier, LotteryTicketRegressor


def small_classifier():
    net = NeuralNetClassifier(
        MLP,
        module__hidden_units=(32,),
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=0.02,
        max_epochs=15,
        batch_size=64,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    return LotteryTicketClassifier(net, n_rounds=1, prune_rate=0.2, random_state=0)


def small_regressor():
    net = NeuralNetRegressor(
        MLP,
        module__hidden_units=(32,),
        optimizer=torch.optim.Adam,
        lr=0.02,
        max_epochs=20,
        batch_size=64,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    return LotteryTicketRegressor(net, n_rounds=1, prune_rate=0.2, random_state=0)


# The goal is an empty dict: every check passes.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [
        small_classifier(),
        small_regressor(),
        # predict through the sparse export (sklottery.sparse.to_sparse)
        small_classifier().set_params(inference="sparse"),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
