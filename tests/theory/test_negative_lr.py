"""Closed forms for MAML on mixed linear regression (linmeta.theory.negative_lr).

Exact pieces are checked against Monte Carlo within 4 SE (and against literature formulas); the
approximate estimator error is checked where it is exact (α_t = 0, N < p) and its corrections are
shown to beat the plain Gaussian-row form by more than 4 SE where the latter is known to be off.

Measured approximation errors of ``B`` (simulation with 2·10⁴ runs, SE 0.2-0.4 %; module docstring):
Fig. 2 parameters (p=60, n_t=30, n_v=2, m=3, σ=1, ν=0.5): corrected −0.5..−1.5 % for α_t ∈ [−2, 0.6]
(−4.7 % at α_t = 1), Gaussian-row form −0.9..+1.1 % (−4.0 % at 1); σ = 0.5, ν = 2: corrected within
0.6 %, Gaussian-row +4.4..+4.8 %; m = 60 (N = 120 > p): corrected −1.3..+1.1 %, Gaussian-row −6.8..−0.2 %.
"""
import numpy as np
import pytest

from linmeta.sim import negative_lr as S
from linmeta.theory import negative_lr as T

FIG2 = T.MixedRegression(p=60, n_t=30, n_v=2, n_r=20, m=3, sigma=1.0, nu=0.5)


def _mean_se(x, axis=-1):
    x = np.asarray(x, dtype=float)
    return x.mean(axis), x.std(axis, ddof=1) / np.sqrt(x.shape[axis])


def test_wishart_moments_match_literature_polynomials():
    # E tr W^k, E (tr W)^2 for W = XᵀX, X n × p standard normal (Letac & Massam; Graczyk et al.)
    for n, p in [(3, 5), (30, 60), (7, 2)]:
        E = lambda *k: T.wishart_trace_moment(k, n, p) * n ** sum(k)  # noqa: E731
        assert E(1) == pytest.approx(n * p, rel=1e-13)
        assert E(2) == pytest.approx(n * p * (n + p + 1), rel=1e-13)
        assert E(3) == pytest.approx(n * p * (n**2 + p**2 + 3 * n * p + 3 * n + 3 * p + 4), rel=1e-13)
        assert E(4) == pytest.approx(n * p * (n**3 + p**3 + 6 * n**2 * p + 6 * n * p**2 + 6 * n**2 + 6 * p**2
                                              + 17 * n * p + 21 * n + 21 * p + 20), rel=1e-13)
        assert E(1, 1) == pytest.approx(n * p * (n * p + 2), rel=1e-13)


def test_wishart_moments_match_monte_carlo():
    rng = np.random.default_rng(0)
    n, p = 6, 4
    X = rng.standard_normal((40000, n, p))
    S_ = np.swapaxes(X, -1, -2) @ X / n
    t1, t2 = np.trace(S_, axis1=-2, axis2=-1), np.trace(S_ @ S_, axis1=-2, axis2=-1)
    for powers, samples in [((2, 2), t2 * t2), ((1, 2), t1 * t2), ((3,), np.trace(S_ @ S_ @ S_, axis1=-2, axis2=-1))]:
        m, se = _mean_se(samples)
        assert abs(m - T.wishart_trace_moment(powers, n, p)) <= 4 * se


def test_h_factor_is_the_mean_squared_step_operator():
    rng = np.random.default_rng(1)
    n, p, a = 8, 5, -0.7
    X = rng.standard_normal((30000, n, p))
    M = np.eye(p) - a * np.swapaxes(X, -1, -2) @ X / n
    m, se = _mean_se(np.trace(M @ M, axis1=-2, axis2=-1) / p)
    assert abs(m - T.h_factor(a, n, p)) <= 4 * se


def test_task_gradient_moment_matches_monte_carlo():
    s = T.MixedRegression(p=12, n_t=7, n_v=3, n_r=5, m=50, sigma=0.8, nu=1.3)
    w0 = np.linspace(-1, 1, 12)
    data = S.draw_training(s, 400, 2, w0=w0)
    for a in (-1.2, 0.4):
        A, b = S.maml_design(data, a)                              # (R, N, p), (R, N)
        u = (b - A @ w0).reshape(400, s.m, s.n_v)
        r = np.einsum("rmvp,rmv->rmp", A.reshape(400, s.m, s.n_v, s.p), u)
        m, se = _mean_se(np.sum(r * r, -1).ravel())
        assert abs(m - T.task_gradient_moment(s, a)) <= 4 * se, (a, m, se, T.task_gradient_moment(s, a))


def test_test_loss_given_error_is_exact_for_a_fixed_model():
    s = T.MixedRegression(p=10, n_t=5, n_v=2, n_r=6, m=2, sigma=0.7, nu=0.9)
    w0 = np.full(10, 0.3)
    omega = w0 + np.linspace(-0.5, 0.5, 10)
    test = S.draw_test(s, 200, 200, 3, w0=w0)
    alphas = np.array([-0.3, 0.0, 0.25, 0.8])
    losses = S.test_losses(test, np.broadcast_to(omega, (200, 10)), alphas, s.sigma)   # (k, R)
    theory = T.test_loss_given_error(s, alphas, np.sum((omega - w0) ** 2))
    m, se = _mean_se(losses)
    assert np.all(np.abs(m - theory) <= 4 * se), (m, se, theory)


@pytest.mark.parametrize("m, offset", [(3, 0.0), (5, 1.5)])
def test_expected_loss_is_exact_at_alpha_t_zero_overparameterised(m, offset):
    # α_t = 0: Gaussian design rows, so the corrected V (with the within-task structure of δ) is exact
    s = T.MixedRegression(p=20, n_t=6, n_v=2, n_r=5, m=m, sigma=0.6, nu=1.5, offset=offset)
    w0, omega0 = np.zeros(20), np.r_[offset, np.zeros(19)]
    out = S.simulate(s, [0.0], [0.0, 0.3], 6000, 2, 4, w0=w0, omega0=omega0)
    m_B, se_B = _mean_se(out["err2"][0])
    assert abs(m_B - T.estimator_error(s, 0.0)) <= 4 * se_B
    m_L, se_L = _mean_se(out["loss"][0])
    assert np.all(np.abs(m_L - T.expected_test_loss(s, 0.0, np.array([0.0, 0.3]))) <= 4 * se_L)
    # the plain Gaussian-row form treats δ as white noise: ν² N/(p − N − 1) instead of ν² N(p − n_v − 1)/(p(p − N − 1))
    gap = T.estimator_error(s, 0.0, "gaussian") - T.estimator_error(s, 0.0)
    assert gap == pytest.approx(s.nu**2 * s.N / (s.p - s.N - 1) * (s.n_v + 1) / s.p, rel=1e-12)
    assert gap > 4 * se_B


def test_corrected_form_beats_the_gaussian_row_form_where_it_is_off():
    # δ-dominated overparameterised setting: the Gaussian-row form is ~4.5 % high, the corrected one ≲ 1 %
    s = T.MixedRegression(p=60, n_t=30, n_v=2, n_r=20, m=3, sigma=0.5, nu=2.0)
    at = np.array([-1.0, 0.2])
    e2 = S.estimator_errors(s, at, 6000, 5)
    m, se = _mean_se(e2)
    err_c, err_g = np.abs(T.estimator_error(s, at) - m), np.abs(T.estimator_error(s, at, "gaussian") - m)
    assert np.all(err_g - err_c > 4 * se), (err_c / m, err_g / m, se / m)


@pytest.mark.slow
def test_corrected_form_beats_the_gaussian_row_form_underparameterised():
    # many tasks (N = 120 > p = 60), α_t = −1: Gaussian-row −4.7 %, corrected +1.1 % (measured)
    s = T.MixedRegression(p=60, n_t=30, n_v=2, n_r=20, m=60, sigma=1.0, nu=0.5)
    e2 = S.estimator_errors(s, [-1.0], 3000, 6)[0]
    m, se = _mean_se(e2)
    err_c, err_g = abs(T.estimator_error(s, -1.0) - m), abs(T.estimator_error(s, -1.0, "gaussian") - m)
    assert err_g - err_c > 4 * se


def test_optimal_adaptation_rate_minimises_the_closed_form():
    for s in (FIG2, T.MixedRegression(60, 30, 2, 20, 60, 1.0, 0.5), T.MixedRegression(20, 5, 3, 4, 2, 2.0, 0.1, 1.0)):
        for at in (-1.0, 0.2):
            a = float(T.optimal_alpha_adapt(s, at))
            grid = a + np.linspace(-1e-3, 1e-3, 201)
            L = T.expected_test_loss(s, at, grid)
            assert a > 0 and abs(grid[np.argmin(L)] - a) <= 1e-5


def test_optimal_training_rate_closed_form():
    a = T.optimal_alpha_train(FIG2)
    q, b = 60 / 30, 1 + 1 / 30
    assert a == pytest.approx((-b - np.sqrt(b * b + 4 * q)) / (2 * q), rel=1e-14) and a < 0
    assert q * a * a + b * a - 1 == pytest.approx(0, abs=1e-12)
    grid = a + np.linspace(-0.5, 0.5, 10001)
    assert abs(grid[np.argmin(T.estimator_error(FIG2, grid))] - a) <= 2e-4
    # independent of σ, ν, m, n_v, n_r and the offset in the overparameterised regime
    for kw in ({"sigma": 3.0}, {"nu": 0.1}, {"m": 1}, {"n_v": 5}, {"n_r": 3}, {"offset": 2.0}):
        s = T.MixedRegression(**{**FIG2.__dict__, **kw})
        assert T.optimal_alpha_train(s) == a
    assert T.gaussian_optimal_alpha_train(60, 30) == a


def test_underparameterised_optimum_is_the_grid_minimum_and_depends_on_the_setting():
    base = T.MixedRegression(60, 30, 2, 20, 60, 1.0, 0.5)
    values = {}
    for kw in ({}, {"sigma": 0.5}, {"nu": 1.0}, {"m": 120}, {"n_v": 4}):
        s = T.MixedRegression(**{**base.__dict__, **kw})
        a = T.optimal_alpha_train(s)
        grid = np.linspace(-5, 3, 80001)
        assert abs(grid[np.argmin(T.fitted_noise(s, grid))] - a) <= 2e-4
        assert a < 0
        values[tuple(kw.items())] = a
    assert np.ptp(list(values.values())) > 0.1
    # the Gaussian-row form keeps the closed form (5) in this regime too
    assert T.optimal_alpha_train(base, "gaussian") == T.gaussian_optimal_alpha_train(60, 30)


def test_domain_and_input_errors():
    with pytest.raises(ValueError, match="within 1 of p"):
        T.expected_test_loss(T.MixedRegression(60, 30, 2, 20, 30), 0.1, 0.1)
    with pytest.raises(ValueError, match="sigma must be non-negative"):
        T.MixedRegression(60, 30, 2, 20, 3, sigma=-1.0)
    with pytest.raises(ValueError, match="m must be a positive integer"):
        T.MixedRegression(60, 30, 2, 20, 0)
    with pytest.raises(TypeError, match="MixedRegression"):
        T.estimator_error({"p": 60}, 0.1)
    with pytest.raises(ValueError, match="method"):
        T.fitted_noise(FIG2, 0.1, "exact")
    with pytest.raises(ValueError, match="alpha_t contains"):
        T.estimator_error(FIG2, np.nan)
    with pytest.raises(ValueError, match="error2 must be non-negative"):
        T.test_loss_given_error(FIG2, 0.1, -1.0)
    with pytest.raises(ValueError, match="sigma = 0"):
        T.optimal_alpha_train(T.MixedRegression(60, 30, 2, 20, 3, sigma=0.0))
    with pytest.raises(ValueError, match="at most 5"):
        T.wishart_trace_moment((3, 3), 4, 4)
