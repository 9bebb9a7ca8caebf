"""Tests of linmeta.sim.separation: the line-task family and the new-task error estimators."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.sim import separation as SEP
from linmeta.theory import deep_one_step as DOS
from linmeta.theory import separation as T


def _fam(d=8, noise=0.2):
    u = np.random.default_rng(0).standard_normal(d)
    return SEP.LineTasks(u, 1.5, noise)


def test_line_tasks_lie_on_the_line_with_zero_mean():
    fam = _fam()
    tb = fam.sample_tasks(4000, 1, n_runs=2)
    w = tb.w_star[..., 0, :]
    assert w.shape == (2, 4000, 8)
    assert np.allclose(np.abs(w @ fam.u), 1.5) and np.allclose(w - (w @ fam.u)[..., None] * fam.u, 0)
    signs = np.sign(w @ fam.u)
    assert abs(signs.mean()) < 4 / np.sqrt(signs.size)
    both = fam.both_tasks()
    assert np.allclose(both.w_star.sum(0), 0) and both.n_tasks == 2
    with pytest.raises(ValueError, match="non-zero"):
        SEP.LineTasks(np.zeros(3))


def test_engine_one_step_errors_match_the_closed_form():
    fam = _fam()
    d = fam.d
    e = SEP.adapted_errors((np.zeros((1, d)),), fam, 5, lm.InnerLoop(1, 0.3), tasks=6000, rng=2)
    th = T.convex_one_step_error(5, d, fam.c, fam.noise_std, 0.3)
    assert abs(e.mean() - th) <= 4 * e.std(ddof=1) / np.sqrt(e.size)
    # a zero-head two-layer net whose Gram is the projection: the ANIL step gives P = t uuᵀ
    W1 = np.outer(np.eye(3)[0], fam.u)
    e2 = SEP.adapted_errors((W1, np.zeros((1, 3))), fam, 4, lm.InnerLoop(1, 0.6, layers="last"), tasks=6000, rng=3)
    th2 = T.projection_error(4, fam.c, fam.noise_std, 0.6)
    assert abs(e2.mean() - th2) <= 4 * e2.std(ddof=1) / np.sqrt(e2.size)


def test_engine_errors_match_deep_one_step_on_the_two_line_tasks():
    fam = _fam(6, 0.1)
    params = lm.init_deep_linear(6, (4,), 1, rng=4, n_runs=2)
    rule = lm.InnerLoop(1, 0.2)
    e = SEP.adapted_errors(params, fam, 3, rule, tasks=8000, rng=5)
    th = DOS.expected_meta_loss(params, fam.both_tasks(), 3, rule) - 0.5 * fam.noise_std**2
    assert np.all(np.abs(e.mean(-1) - th) <= 4 * e.std(-1, ddof=1) / np.sqrt(e.shape[-1]))


def test_least_squares_errors():
    fam = _fam(10, 0.0)
    assert np.max(SEP.least_squares_errors(np.zeros(10), fam, 12, tasks=50, rng=6)) < 1e-20
    e = SEP.least_squares_errors(np.zeros(10), fam, 4, tasks=6000, rng=7)
    assert abs(e.mean() - T.convex_gd_error(4, 10, fam.c, 0.0)) <= 4 * e.std(ddof=1) / np.sqrt(e.size)


def test_alignment_and_projection_gain():
    fam = _fam()
    u = fam.u
    W1 = np.stack([np.outer(np.eye(4)[0], u) * 2.0, np.random.default_rng(8).standard_normal((4, 8))])
    a = SEP.alignment(W1, u)
    assert np.isclose(a[0], 1.0) and a[1] < 0.99
    W2 = np.zeros((2, 1, 4))
    g = SEP.projection_gain((W1, W2), u, 0.5)
    assert np.isclose(g["gamma"][0], 0.5 * 4.0) and g["leak"][0] < 1e-12 and g["M_norm"][0] == 0.0
