"""Tests of linmeta.theory.separation against direct numpy Monte Carlo and exact properties."""
import numpy as np
import pytest

from linmeta.theory import separation as T


def _u(d, seed=0):
    u = np.random.default_rng(seed).standard_normal(d)
    return u / np.linalg.norm(u)


def _draw(rng, u, c, sigma, n, tasks):
    s = np.where(rng.random(tasks) < 0.5, -1.0, 1.0)
    w = s[:, None] * c * u
    X = rng.standard_normal((tasks, n, u.size))
    y = np.einsum("tnd,td->tn", X, w) + sigma * rng.standard_normal((tasks, n))
    return w, X, y


def _within(mc, theory, k=4.0):
    return abs(mc.mean() - theory) <= k * mc.std(ddof=1) / np.sqrt(mc.size)


@pytest.mark.parametrize("n", [2, 5, 16])
def test_convex_closed_forms_against_monte_carlo(n):
    d, c, sig = 10, 1.3, 0.4
    rng = np.random.default_rng(n)
    u = _u(d)
    w0 = 0.2 * rng.standard_normal(d)
    w, X, y = _draw(rng, u, c, sig, n, 8000)
    # least squares closest to w0 (gradient descent's limit)
    resid = y - X @ w0
    w_ls = w0 + np.einsum("tdn,tn->td", np.linalg.pinv(X), resid)
    mc = 0.5 * np.sum((w_ls - w) ** 2, -1)
    if abs(n - d) > 3:
        assert _within(mc, T.convex_gd_error(n, d, c, sig, w0 @ w0))
    # one gradient step of size α
    alpha = 0.37
    g = np.einsum("tnd,tn->td", X, np.einsum("tnd,d->tn", X, w0) - y) / n  # support gradient at w0
    mc1 = 0.5 * np.sum((w0 - alpha * g - w) ** 2, -1)
    assert _within(mc1, T.convex_one_step_error(n, d, c, sig, alpha, w0 @ w0))


def test_convex_noiseless_least_squares_is_exact_past_d():
    assert T.convex_gd_error(12, 10, 1.0, 0.0) == 0.0
    assert T.convex_gd_error(5, 10, 1.0, 0.0) == 0.25
    assert T.convex_gd_error(10, 10, 1.0, 0.3) == float("inf")


def test_general_one_step_formula_against_monte_carlo():
    d, n, c, sig = 6, 4, 0.8, 0.3
    rng = np.random.default_rng(1)
    u = _u(d, 1)
    L = rng.standard_normal((d, d))
    P = L @ L.T / d
    w, X, y = _draw(rng, u, c, sig, n, 20000)
    ghat = np.einsum("tnd,tn->td", X, y) / n  # negative support gradient at M = 0
    mc = 0.5 * np.sum((ghat @ P - w) ** 2, -1)
    assert _within(mc, T.one_step_error(P, u, n, c, sig))
    assert np.allclose(T.support_second_moment(u, n, c, sig), np.einsum("ti,tj->ij", ghat, ghat) / ghat.shape[0],
                       atol=0.05)


def test_best_head_step_minimises_and_special_cases():
    d, n, c, sig = 8, 3, 1.0, 0.2
    u = _u(d, 2)
    rng = np.random.default_rng(2)
    L = rng.standard_normal((d, d))
    G = L @ L.T
    t = T.best_head_step(G, u, n, c, sig)
    e = lambda s: T.one_step_error(s * G, u, n, c, sig)
    assert e(t) < e(0.99 * t) and e(t) < e(1.01 * t)
    assert np.isclose(T.best_head_error(G, u, n, c, sig), e(t), rtol=1e-12)
    uu = np.outer(u, u)
    assert np.isclose(T.best_head_error(uu, u, n, c, sig), T.projection_best_error(n, c, sig), rtol=1e-12)
    assert np.isclose(T.best_head_error(np.eye(d), u, n, c, sig), T.convex_best_one_step_error(n, d, c, sig), rtol=1e-12)
    assert np.isclose(T.one_step_error(0.7 * uu, u, n, c, sig), T.projection_error(n, c, sig, 0.7), rtol=1e-12)
    # vectorised over a stack of Grams
    both = T.best_head_error(np.stack([uu, np.eye(d)]), u, n, c, sig)
    assert both.shape == (2,) and both[0] < both[1]


def test_maml_projection_is_the_minimiser_over_symmetric_preconditioners():
    d, K, c, sig = 5, 6, 1.2, 0.3
    u = _u(d, 3)
    gam = T.projection_best_gamma(K, c, sig)
    P0 = gam * np.outer(u, u)
    f0 = T.one_step_error(P0, u, K, c, sig)
    rng = np.random.default_rng(3)
    for _ in range(20):
        E = rng.standard_normal((d, d))
        E = 1e-3 * (E + E.T)
        assert T.one_step_error(P0 + E, u, K, c, sig) > f0  # a strict minimum (the objective is convex in P)


def test_the_separation_in_numbers():
    # noiseless, ε = 1/4: least squares needs ⌈0.75 d⌉, the best convex step ⌈3(d + 1)⌉, the projection 6
    for d in (16, 64):
        cf = T.noiseless_sample_complexities(d, 0.25)
        assert cf == {"least_squares": np.ceil(0.75 * d), "convex_step": 3.0 * (d + 1), "projection": 6.0}
    assert T.sample_complexity(lambda n: 1.0, 0.1, 1.0, n_max=50) == float("inf")


def test_bad_input():
    with pytest.raises(ValueError, match="unit vector"):
        T.one_step_error(np.eye(2), np.array([1.0, 1.0]), 3, 1.0, 0.0)
    with pytest.raises(ValueError, match="P must"):
        T.one_step_error(np.eye(3), np.array([1.0, 0.0]), 3, 1.0, 0.0)
    with pytest.raises(ValueError, match="n must"):
        T.projection_error(0, 1.0, 0.0, 0.5)
    with pytest.raises(ValueError, match="sigma"):
        T.convex_gd_error(3, 5, 1.0, -0.1)
