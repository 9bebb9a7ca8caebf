"""Low-rank per-task matrices (linmeta._factored)."""
import numpy as np

from linmeta._factored import Factored, sum_tasks, sum_tasks_nt, sum_tasks_tn

from .helpers import rel_err


def _random(rng, base=True, lead=(4,), n=5, m=3, r=2):
    return Factored(rng.standard_normal(lead + (n, m)) if base else None,
                    rng.standard_normal(lead + (n, r)), rng.standard_normal(lead + (r, m)))


def test_operations_match_dense_algebra():
    rng = np.random.default_rng(0)
    X, Y = _random(rng), _random(rng, base=False, r=1)
    Z = rng.standard_normal((4, 2, 5))
    assert rel_err(X.left(Z), Z @ X.dense()) <= 1e-13
    Zt = rng.standard_normal((4, 2, 3))
    assert rel_err(X.right_t(Zt), Zt @ np.swapaxes(X.dense(), -1, -2)) <= 1e-13
    assert rel_err(X.plus(Y).dense(), X.dense() + Y.dense()) <= 1e-13 and X.plus(Y).rank == 3
    assert rel_err(X.scaled(-0.3).dense(), -0.3 * X.dense()) <= 1e-13
    A, B = rng.standard_normal((5, 5)), rng.standard_normal((3, 3))
    assert rel_err(X.map_factors(A, B).dense(), A @ X.dense() @ B) <= 1e-13


def test_broadcast_task_axes_concatenate():
    rng = np.random.default_rng(1)
    shared = Factored(C=rng.standard_normal((1, 5, 1)), R=rng.standard_normal((1, 1, 3)))
    per_task = _random(rng, base=False)
    assert rel_err(shared.plus(per_task).dense(), shared.dense() + per_task.dense()) <= 1e-13


def test_sums_over_tasks():
    rng = np.random.default_rng(2)
    X, Y = _random(rng, base=False, lead=(2, 6)), _random(rng, base=False, lead=(2, 6))
    assert rel_err(sum_tasks(X), X.dense().sum(axis=-3)) <= 1e-13
    W = _random(rng)
    assert rel_err(sum_tasks(W), W.dense().sum(axis=-3)) <= 1e-13
    Xd, Yd = X.dense(), Y.dense()
    assert rel_err(sum_tasks_nt(X, Y), np.sum(Xd @ np.swapaxes(Yd, -1, -2), axis=-3)) <= 1e-13
    assert rel_err(sum_tasks_tn(X, Y), np.sum(np.swapaxes(Xd, -1, -2) @ Yd, axis=-3)) <= 1e-13
    # dense fallbacks agree with the factored formulas
    assert rel_err(sum_tasks_nt(Xd, Y), sum_tasks_nt(X, Y)) <= 1e-13


def test_identity_outer_and_wrap():
    R = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(Factored.outer(None, R).dense(), R)
    f = Factored.wrap(R)
    assert Factored.wrap(f) is f and Factored.wrap(None) is None and f.rank == 0
