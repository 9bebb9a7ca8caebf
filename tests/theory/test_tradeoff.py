"""Exact expected losses of Gao & Sener's linear-regression study (linmeta.theory.tradeoff)."""
import numpy as np
import pytest

from linmeta.sim import tradeoff as S
from linmeta.theory import tradeoff as T


def _mean_se(x):
    x = np.asarray(x, dtype=float)
    return x.mean(), x.std(ddof=1) / np.sqrt(x.size)


def test_p1_coefficients_by_hand():
    # p = 1: Q = Θ, so L_{N,α}(θ) = E[½ Θ (θ − Θ)² ((1 − αΘ)² + 2α²Θ²/N) + σ/2 + α²σΘ²/(2N)], μ_k = β^k/(k+1)
    b, Nv, a = 2.0, 7, 0.6
    mu = lambda k: b**k / (k + 1)  # noqa: E731
    w = lambda k0: mu(k0 + 1) - 2 * a * mu(k0 + 2) + a**2 * (1 + 2 / Nv) * mu(k0 + 3)  # noqa: E731
    cf = T.loss_coefficients(T.TradeoffTasks(1, b), Nv, a)
    assert cf.a == pytest.approx(w(0), rel=1e-14)
    assert cf.b1 == pytest.approx(w(1), rel=1e-14)
    assert cf.c == pytest.approx(0.5 * w(2) + mu(1) / 2 + a**2 * mu(1) * mu(2) / (2 * Nv), rel=1e-14)
    pre = T.loss_coefficients(T.TradeoffTasks(1, b))
    assert (pre.a, pre.b1, pre.c) == pytest.approx((mu(1), mu(2), 0.5 * mu(3) + mu(1) / 2), rel=1e-14)


def test_power_sum_moments_match_monte_carlo():
    rng = np.random.default_rng(0)
    tk = T.TradeoffTasks(4, 1.7)
    th = rng.uniform(0, 1.7, (200000, 4))
    ps = lambda k: np.sum(th**k, -1)  # noqa: E731
    for powers, fixed, samples in [((2, 1), 1, ps(2) * ps(1) * th[:, 0]), ((3, 2), 0, ps(3) * ps(2)),
                                   ((2, 1, 2), 0, ps(2) * ps(1) * ps(2)), ((1,), 2, ps(1) * th[:, 0] ** 2)]:
        m, se = _mean_se(samples)
        assert abs(m - T.power_sum_moment(tk, powers, fixed)) <= 4 * se


@pytest.mark.parametrize("p", [1, 3])
def test_expected_loss_matches_a_direct_simulation_of_the_test_step(p):
    tk = T.TradeoffTasks(p, 2.0)
    theta = np.linspace(0.5, 1.5, p)
    for Nv, a in ((None, 0.0), (1, 0.5), (4, 1.0), (30, 0.3)):
        x = S.updated_loss_samples(tk, theta, Nv, a, 60000, 1)
        m, se = _mean_se(x)
        assert abs(m - T.expected_loss(tk, theta, Nv, a)) <= 4 * se, (p, Nv, a, m, se)


def test_moment_table_matches_their_monte_carlo():
    tk = T.TradeoffTasks(2, 1.5)
    samples = S.mc_moments(tk, 2, task_draws=4000, x_draws=200)
    exact = T.moment_table(tk)
    for k, v in samples.items():
        v = np.asarray(v)
        if v.ndim == 3:        # E[X] = value · I: check the diagonal and the off-diagonal entries
            for (i, j), ref in (((0, 0), exact[k]), ((1, 1), exact[k]), ((0, 1), 0.0)):
                m, se = _mean_se(v[:, i, j])
                assert abs(m - ref) <= 4 * se, (k, i, j)
        elif v.ndim == 2:      # E[XΘ] = value · 1
            for i in range(2):
                m, se = _mean_se(v[:, i])
                assert abs(m - exact[k]) <= 4 * se, (k, i)
        else:
            m, se = _mean_se(v)
            assert abs(m - exact[k]) <= 4 * se, k


def test_population_minimisers_and_their_optimality():
    tk = T.TradeoffTasks(2, 2.0)
    drs, maml = T.population_drs(tk), T.population_maml(tk, 10, 0.5)
    pre, post = T.loss_coefficients(tk), T.loss_coefficients(tk, 10, 0.5)
    assert np.allclose(drs, pre.b1 / pre.a) and np.allclose(maml, post.b1 / post.a)
    # each is the best for its own loss, and they differ
    assert pre(drs) < pre(maml) and post(maml) < post(drs)
    g = np.linspace(-1, 1, 11)[:, None] * np.array([1.0, -0.5])
    assert np.all(pre(drs + g) >= pre(drs)) and np.all(post(maml + g) >= post(maml))


def test_input_errors():
    with pytest.raises(ValueError, match="beta must be positive"):
        T.TradeoffTasks(1, 0.0)
    with pytest.raises(ValueError, match="p must be a positive integer"):
        T.TradeoffTasks(0, 1.0)
    with pytest.raises(ValueError, match="N=None means no test-time step"):
        T.loss_coefficients(T.TradeoffTasks(), None, 0.5)
    with pytest.raises(TypeError, match="TradeoffTasks"):
        T.loss_coefficients({"p": 1}, 5, 0.1)
    with pytest.raises(ValueError, match=r"theta must have shape \(\.\.\., 2\)"):
        T.expected_loss(T.TradeoffTasks(2, 1.0), np.zeros(3))
    with pytest.raises(ValueError, match="not strictly convex"):
        T.QuadraticLoss(0.0, 1.0, 0.0).minimiser(1)
