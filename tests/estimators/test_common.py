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
    (:class:`sklottery.training.SampleWeightedLoss`), equal to repetition in
    exact arithmetic; in float32 the sums run in another order and differ by
    1-2 ulps, so the checks run the same MLP in float64, where that rounding
    is far below the tolerance. Every other check is as strict in float64.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.double()

    def forward(self, X):
        return super().forward(X.double())


def _small(estimator, net_class, max_epochs, params, **net_params):
    """``estimator`` around a float64 32-unit MLP64 (Adam, batch 64)."""
    net = net_class(
        MLP64,
        module__hidden_units=(32,),
        optimizer=torch.optim.Adam,
        lr=0.02,
        max_epochs=max_epochs,
        batch_size=64,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
        **net_params,
    )
    params = params or {"n_rounds": 1, "prune_rate": 0.2}
    return estimator(net, random_state=0, **params)


def small_classifier(estimator=LotteryTicketClassifier, **params):
    return _small(estimator, NeuralNetClassifier, 15, params,
                  criterion=torch.nn.CrossEntropyLoss)


def small_regressor(estimator=LotteryTicketRegressor, **params):
    return _small(estimator, NeuralNetRegressor, 20, params)


def float32_rounding(estimator):
    """The checks the defaults fail, with the measured reason.

    The default net (``net=None``) computes in float32, so the sample-weight
    equivalence differs from repetition by the rounding that MLP64 avoids:
    measured 1-2 ulps (e.g. transform 0.11304761 vs 0.11304760; the
    classifier's predict_proba 6.0e-8, 5 of 45 values) above the checks'
    rtol=1e-7. The only checks the lottery estimators are let fail."""
    if estimator.net is not None:
        return {}
    reason = "float32 rounding of the weighted loss sum(w*l)/sum(w): 1-2 ulps"
    failing = {
        "check_sample_weight_equivalence_on_dense_data": reason,
        "check_sample_weight_equivalence_on_sparse_data": reason,
    }
    if isinstance(estimator, SupermaskClassifier):
        # the float32 rounding moves scores across the top-k threshold: a
        # weight in or out of the mask, measured 0.0117 in predict_proba
        flips = (
            "float32 rounding of the weighted loss flips the edge-popup top-k "
            "mask: predict_proba off by 0.0117 (45 of 45 values)"
        )
        failing = dict.fromkeys(failing, flips)
    if isinstance(estimator, SupermaskRegressor):
        # its sample-weight checks pass (measured); float32 matmul sums in an
        # order that depends on the batch: one row at a time vs 20 at once,
        # measured 3.6e-7 (2 ulps of 1.34) on 3 of 20 predictions
        failing = {
            "check_methods_subset_invariance": (
                "float32 matmul of one row vs a batch: predict differs by "
                "3.6e-7 (2 ulps), above atol=1e-7"
            )
        }
    return failing


@parametrize_with_checks(
    [
        small_classifier(),
        small_regressor(),
        # as a user gets it: every default, the default net
        LotteryTicketClassifier(),
        LotteryTicketRegressor(),
        SupermaskClassifier(),
        SupermaskRegressor(),
        # predict through the sparse export (sklottery.export._sparse.to_sparse)
        small_classifier().set_params(inference="sparse"),
        # learned supermasks (edge-popup) over the same networks
        small_classifier(SupermaskClassifier, density=0.5),
        small_regressor(SupermaskRegressor, density=0.5),
    ],
    expected_failed_checks=float32_rounding,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
