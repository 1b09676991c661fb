"""The net's training options are checked before it is initialized
(sklottery.training._net.check_training_options, via initialize_net)."""

import pytest
import torch

from sklottery import LotteryTicketClassifier
from sklottery.training import check_training_options, initialize_net


@pytest.mark.parametrize("params, error, match", [
    ({"net__lr": "x"}, TypeError, r"net__lr \(the net's learning rate\) must be a "
     r"number; got 'x'"),
    ({"net__lr": -1.0}, ValueError, r"net__lr .* finite number >= 0; got -1.0"),
    ({"net__lr": float("nan")}, ValueError, r"net__lr .* finite number >= 0"),
    ({"net__optimizer__lr": "x"}, TypeError, r"net__optimizer__lr \(the net's "
     "learning rate\\) must be a number"),
    ({"net__optimizer": torch.optim.SGD, "net__optimizer__momentum": "x"},
     TypeError, r"net__optimizer__momentum \(an option of the net's optimizer "
     r"SGD\) must be a number; got 'x'"),
    ({"net__optimizer__weight_decay": "x"}, TypeError,
     r"net__optimizer__weight_decay \(an option of the net's optimizer Adam\)"),
    ({"net__max_epochs": -1}, ValueError, r"net__max_epochs \(the net's "
     r"max_epochs\) must be >= 0; got -1"),
    ({"net__max_epochs": "x"}, TypeError, r"net__max_epochs .* must be an int"),
    ({"net__max_epochs": 2.5}, TypeError, r"net__max_epochs .* must be an int"),
    ({"net__batch_size": "x"}, ValueError, r"batch_size must be a positive int"),
    ({"net__optimizer": "sgd"}, TypeError, r"net__optimizer .* must be a torch "
     "optimizer class; got 'sgd'"),
])
def test_bad_training_options_name_the_parameter(tiny_net, data, params, error,
                                                 match):
    clf = LotteryTicketClassifier(tiny_net(), n_rounds=1).set_params(**params)
    with pytest.raises(error, match=match):
        clf.fit(*data)


def test_good_options_pass(tiny_net):
    net = tiny_net(optimizer=torch.optim.SGD, optimizer__momentum=0.9,
                   optimizer__nesterov=True, lr=torch.tensor(0.1), max_epochs=0)
    assert check_training_options(net) is net


def test_an_option_the_optimizer_rejects_names_the_optimizer_and_options(tiny_net):
    net = tiny_net(optimizer=torch.optim.SGD, optimizer__momentum=-1.0,
                   module__input_units=4, module__output_units=2)
    with pytest.raises(ValueError, match=r"net's optimizer SGD rejects its options "
                       r"\{.*'net__optimizer__momentum': -1.0\}: Invalid momentum"):
        initialize_net(net)
