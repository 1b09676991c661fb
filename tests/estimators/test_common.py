"""scikit-learn's estimator checks on every public estimator."""

import torch
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch import NeuralNetClassifier, NeuralNetRegressor

from sklottery import (
    MLP,
    LotteryTicketClassifier,
    LotteryTicketRegressor,
    SupermaskClassifier,
    SupermaskRegressor,
)


class MLP64(MLP):
    """The MLP computing in float64.

    scikit-learn's sample-weight checks compare a fit with integer weights to
    a fit on repeated rows at rtol=1e-7. The weighted loss is sum(w*l)/sum(w)
    (:class:`sklottery.training._train.SampleWeightedLoss`), equal to repetition in
    exact arithmetic; in float32 the sums run in another order and differ by
    1-2 ulps, so the checks run the same MLP in float64, where that rounding
    is far below the tolerance. Every other check is as strict in float64.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.double()

    def forward(self, X):
        return super().forward(X.double())


def small_classifier(estimator=LotteryTicketClassifier, **params):
    net = NeuralNetClassifier(
        MLP64,
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
    params = params or {"n_rounds": 1, "prune_rate": 0.2}
    return estimator(net, random_state=0, **params)


def small_regressor(estimator=LotteryTicketRegressor, **params):
    net = NeuralNetRegressor(
        MLP64,
        module__hidden_units=(32,),
        optimizer=torch.optim.Adam,
        lr=0.02,
        max_epochs=20,
        batch_size=64,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    params = params or {"n_rounds": 1, "prune_rate": 0.2}
    return estimator(net, random_state=0, **params)


@parametrize_with_checks(
    [
        small_classifier(),
        small_regressor(),
        # predict through the sparse export (sklottery.export._sparse.to_sparse)
        small_classifier().set_params(inference="sparse"),
        # learned supermasks (edge-popup) over the same networks
        small_classifier(SupermaskClassifier, density=0.5),
        small_regressor(SupermaskRegressor, density=0.5),
    ],
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
