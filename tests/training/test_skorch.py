"""The wrappers of skorch's private API (sklottery.training._skorch)."""

import numpy as np
import torch
from skorch.callbacks import EarlyStopping

from sklottery.training import (
    StopRound,
    deliberate_stop,
    predict_nonlinearity,
    train_round,
)


def test_early_stopping_is_a_deliberate_stop(tiny_net, data):
    X, y = map(torch.as_tensor, data)
    stopper = EarlyStopping(monitor="train_loss", patience=1, threshold=10.0)
    net = tiny_net(max_epochs=5, callbacks=[("stop", stopper)],
                   module__input_units=64, module__output_units=10).initialize()
    assert train_round(net, X, y) is False
    assert len(net.history) == 2
    assert deliberate_stop(net, KeyboardInterrupt()) is True
    assert deliberate_stop(net, StopRound()) is True
    plain = tiny_net(module__input_units=64, module__output_units=10).initialize()
    assert deliberate_stop(plain, KeyboardInterrupt()) is False  # a user's Ctrl-C


def test_predict_nonlinearity_is_what_predict_proba_applies(net, data):
    X, _ = data
    out = predict_nonlinearity(net)(net.forward(X))
    np.testing.assert_allclose(out.detach().numpy(), net.predict_proba(X), rtol=1e-6)
