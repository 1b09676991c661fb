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


# Every other check passes. Integer sample weights are equivalent to repeated
# samples in exact arithmetic (the weighted loss is sum(w*l)/sum(w), see
# sklottery.training.SampleWeightedLoss), but mini-batch training in float32
# sums in another order: the outputs differ by 1-2 float32 ulps (measured max
# relative difference 6e-7), above the check's rtol of 1e-7. scikit-learn
# marks its own SGD estimators the same way; tests/test_inputs.py checks the
# equivalence at a float32 tolerance.
_ROUNDING = (
    "sample_weight equals repetition up to float32 rounding (1-2 ulps), not "
    "to the check's rtol=1e-7"
)
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": _ROUNDING,
    "check_sample_weight_equivalence_on_sparse_data": _ROUNDING,
}


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
