"""Seeded fits do not depend on other threads (sklottery.pruning.rng)."""

import threading

import joblib
import numpy as np
import torch
from sklearn.model_selection import GridSearchCV

from sklottery.lottery import RNG_LOCK, seeded
from tests.conftest import make_lottery, make_tiny_net


def _clf():
    # shuffled batches and dropout: every round reads torch's generator
    net = make_tiny_net(max_epochs=3, batch_size=16,
                        iterator_train__shuffle=True, module__dropout=0.2)
    return make_lottery(net, n_rounds=2)


def test_seeded_restores_the_generator_and_repeats():
    before = torch.get_rng_state()
    with seeded(3):
        a = torch.rand(5)
    with seeded(3):
        b = torch.rand(5)
    assert torch.equal(a, b)
    assert torch.equal(torch.get_rng_state(), before)
    with seeded(state=before):
        c = torch.rand(5)
    assert torch.equal(c, torch.rand(5))  # the same state, drawn again


def test_seeded_sections_take_turns_across_threads():
    order = []
    inside = threading.Event()

    def other():
        inside.wait(5)
        with seeded(1):
            order.append("other")

    thread = threading.Thread(target=other)
    thread.start()
    with seeded(0):
        inside.set()
        thread.join(0.2)  # the other thread waits for the lock
        order.append("first")
    thread.join(5)
    assert order == ["first", "other"]
    assert RNG_LOCK.acquire(blocking=False)
    RNG_LOCK.release()


def test_two_seeded_fits_in_threads_match_one_after_the_other(data):
    X, y = data
    alone = _clf().fit(X, y).predict_proba(X)
    results = [None, None]
    start = threading.Barrier(2)

    def fit(i):
        start.wait()
        results[i] = _clf().fit(X, y).predict_proba(X)

    threads = [threading.Thread(target=fit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for proba in results:
        np.testing.assert_array_equal(proba, alone)


def test_grid_search_with_threads_equals_one_job(data):
    X, y = data
    grid = {"prune_rate": [0.3, 0.6]}

    def search(n_jobs):
        with joblib.parallel_backend("threading"):
            return GridSearchCV(_clf(), grid, cv=2, n_jobs=n_jobs).fit(X, y)

    one, two = search(1), search(2)
    np.testing.assert_array_equal(
        one.cv_results_["mean_test_score"], two.cv_results_["mean_test_score"]
    )
    np.testing.assert_array_equal(
        one.best_estimator_.predict_proba(X), two.best_estimator_.predict_proba(X)
    )
