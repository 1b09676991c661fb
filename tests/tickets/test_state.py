"""An estimator's ticket state against the network and the tensors: every
field checked, every declared size bounded by the file's tensors before a
network is built, a regressor's 1-d-ness of y kept, and loading silent."""

import copy
import io
import tracemalloc
import warnings

import numpy as np
import pytest

from sklottery import LotteryTicketRegressor
from sklottery.tickets import check_declared_sizes, load_ticket, read_estimator_ticket
from tests.conftest import make_tiny_regressor_net
from tests.tickets import ticket_helpers as th

REG = "LotteryTicketRegressor"


def _reg(**kwargs):
    return LotteryTicketRegressor(
        make_tiny_regressor_net(max_epochs=2, **kwargs), n_rounds=1, prune_rate=0.5,
        random_state=0,
    )


@pytest.fixture(scope="module")
def fitted(regression_data):
    X, y = regression_data
    reg = _reg().fit(X, y)
    buf = io.BytesIO()
    reg.save_ticket(buf)
    return reg, X, buf.getvalue()


def _state(**fields):
    return th.edit_state(**fields)


def _input(**fields):
    return lambda h: h["estimator"]["state"]["input"].update(fields)


def _round(i, **fields):
    return lambda h: h["rounds"][i].update(fields)


def _selected_n_weights(delta):
    def edit(h):
        total = h["rounds"][0]["n_weights"]  # round 0 keeps every weight
        rec = h["rounds"][-1]
        rec["n_weights"] += delta
        rec["weights_remaining"] = rec["n_weights"] / total

    return edit


STATE_CASES = [
    # n_features_in against the input and the network
    (_state(n_features_in=7), "'n_features_in' is 7; one sample of"),
    (_input(shape=[7]), "'n_features_in' is 6; one sample of"),
    (lambda h: (_state(n_features_in=7)(h), _input(shape=[7])(h)), "does not fit"),
    # the input's kind, shape and dtype against each other and the network
    (_input(kind="ids"), "'dtype' of kind 'ids' must be 'int64'"),
    (_input(kind="ids", dtype="int64", max_id=3), "takes float X"),
    (_input(kind="image"), "does not have the rank of kind 'image'"),
    (_input(kind="sequence", shape=[2, 3]), "MLP takes 2-D X"),
    (_input(dtype="float64"), "'dtype' of kind 'table' must be 'float32'"),
    (_input(max_id=5), "'max_id' must be null"),
    (_input(shape=[6, 0]), "ints >= 1"),
    (lambda h: h["estimator"]["state"]["input"].pop("max_id"), "exactly the keys"),
    # n_outputs against the output layer, y_1d against n_outputs
    (_state(n_outputs=2, y_1d=False), "does not fit"),
    (_state(y_1d=True, n_outputs=2), "'y_1d' is true"),
    # the rounds against the masks
    (_round(0, n_weights=3), "its n_weights 3 of the"),
    (_round(0, n_weights=10**6, weights_remaining=1.0), "'n_weights' is 1000000"),
    (_selected_n_weights(-1), "the masks keep"),
    (_state(selected_round=0), "the selected round 0"),
]


@pytest.mark.parametrize("edit, match", STATE_CASES)
def test_state_fields_against_the_network(fitted, edit, match):
    reg, X, data = fitted
    target = copy.deepcopy(reg)
    keys, pred = sorted(target.__dict__), target.predict(X)
    with pytest.raises(ValueError, match=match):
        target.load_ticket(io.BytesIO(th.craft(data, inner=edit)))
    assert sorted(target.__dict__) == keys
    np.testing.assert_array_equal(target.predict(X), pred)


def test_n_outputs_against_a_given_network(fitted):
    """The network given as is (not built from the state): its output layer."""
    reg, _, data = fitted
    bad = th.craft(data, inner=_state(n_outputs=2, y_1d=False))
    with pytest.raises(ValueError, match="'n_outputs' is 2; the output layer"):
        read_estimator_ticket(io.BytesIO(bad), REG, reg.net_.module_)


def test_a_sequence_input_must_run_through_a_given_network(fitted):
    reg, _, data = fitted
    bad = th.craft(data, inner=_input(kind="sequence", shape=[2, 3]))
    module = reg.net_.module_
    with pytest.raises(ValueError, match="does not run through the network"):
        read_estimator_ticket(io.BytesIO(bad), REG, module)
    assert module.training == reg.net_.module_.training


# -- sizes declared by the file, bounded before anything is built -------------
SIZE_CASES = [
    _input(shape=[2_000_000]),
    lambda h: (_state(n_features_in=2_000_000)(h), _input(shape=[2_000_000])(h)),
    lambda h: (_state(n_features_in=2_000_000)(h),
               _input(kind="ids", dtype="int64", max_id=0, shape=[2_000_000])(h)),
    _input(kind="ids", dtype="int64", max_id=2**20 - 1),
    _state(n_outputs=10**9),
    _state(n_features_out=10**9),
]


@pytest.mark.parametrize("edit", SIZE_CASES)
def test_declared_sizes_are_bounded_before_building(fitted, monkeypatch, edit):
    import sklottery.tickets._mixin as mixin

    _, _, data = fitted
    bad = th.craft(data, inner=edit)
    built = []
    real = mixin.build_net
    monkeypatch.setattr(mixin, "build_net", lambda *a, **k: built.append(a) or real(
        *a, **k))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="estimator state field"):
            _reg().load_ticket(io.BytesIO(bad))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert built == []  # refused from the header, no network built
    assert peak < 50 * 2**20
    # and through the plain reader: the builder is never called
    calls = []
    with pytest.raises(ValueError, match="estimator state field"):
        read_estimator_ticket(io.BytesIO(bad), REG, lambda s: calls.append(s))
    assert calls == []


def test_check_declared_sizes(fitted):
    _, _, data = fitted
    ticket = load_ticket(io.BytesIO(data))
    total = sum(v.numel() for v in ticket.values.values())
    assert check_declared_sizes(ticket, {"info field 'hidden'[0]": total}) == total
    with pytest.raises(ValueError, match=f"info field 'hidden'\\[0\\] is {total + 1}, "
                                         f"more than the {total} values"):
        check_declared_sizes(ticket, {"info field 'hidden'[0]": total + 1})
    with pytest.raises(ValueError, match="'n' must be an int >= 0"):
        check_declared_sizes(ticket, {"'n'": -1})


# -- a regressor's targets, and a silent load ---------------------------------
@pytest.mark.parametrize("n_targets", [None, 1, 2])
def test_regressor_keeps_the_shape_of_y(regression_data, n_targets):
    X, y = regression_data
    if n_targets is not None:  # y of shape (n, n_targets)
        y = np.column_stack([y, -y][:n_targets])
    reg = _reg().fit(X, y)
    buf = io.BytesIO()
    reg.save_ticket(buf)
    loaded = _reg().load_ticket(io.BytesIO(buf.getvalue()))
    assert loaded.predict(X).shape == reg.predict(X).shape == y.shape
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))


def test_old_files_without_y_1d_predict_one_target_1d(regression_data):
    X, y = regression_data
    reg = _reg().fit(X, y.reshape(-1, 1))
    buf = io.BytesIO()
    reg.save_ticket(buf)
    old = th.craft(buf.getvalue(),
                   inner=lambda h: h["estimator"]["state"].pop("y_1d"))
    assert _reg().load_ticket(io.BytesIO(old)).predict(X).shape == (len(X),)


def test_loading_a_ticket_does_not_warn_about_pruning(regression_data):
    X, y = regression_data
    make = lambda: LotteryTicketRegressor(  # noqa: E731
        make_tiny_regressor_net(max_epochs=1, module__hidden_units=(4,)),
        n_rounds=3, prune_rate=0.2, random_state=0,
    )
    with pytest.warns(UserWarning, match="rounds to 0"):  # the fit does warn
        reg = make().fit(X, y)
    buf = io.BytesIO()
    reg.save_ticket(buf)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = make().load_ticket(io.BytesIO(buf.getvalue()))
        loaded.predict(X)
    assert [str(w.message) for w in caught] == []
