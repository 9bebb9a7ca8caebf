"""Closed forms of the scalar depth example (linmeta.theory.depth), checked against the engine and simulation."""
import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss

import linmeta as lm
from linmeta.theory import depth, shallow

from ..helpers import central_diff_grad, rel_err


def _tasks(w_star, rho, noise):
    T = len(w_star)
    return lm.TaskBatch(np.reshape(w_star, (T, 1, 1)), np.full((T, 1, 1), rho), np.full(T, noise))


def _engine_post_losses(params, w_star, alpha, rho, noise):
    """Engine: post-adaptation population loss after one MAML step on the population loss, (runs, T)."""
    pop = _tasks(w_star, rho, noise).population()
    rule = lm.InnerLoop(1, alpha, inner_loss="population")
    return np.asarray(pop.value(lm.adapted_map(params, pop, rule)))


@pytest.mark.parametrize("seed", range(3))
def test_deep_meta_loss_equals_engine_by_exact_quadrature(seed):
    rng = np.random.default_rng(seed)
    alpha, rho, mu, s, noise = rng.uniform(0.05, 0.5), rng.uniform(0.5, 2), rng.normal(), rng.uniform(0.3, 2), 0.4
    pts = rng.normal(scale=1.5, size=(20, 2))
    z, wq = hermegauss(5)  # exact for polynomials of degree <= 9; the loss has degree 4 in w*
    vals = _engine_post_losses((pts[:, :1, None], pts[:, 1:, None]), mu + s * z, alpha, rho, noise)
    engine = vals @ (wq / np.sqrt(2 * np.pi))
    closed = depth.scalar_deep_meta_loss(pts[:, 0], pts[:, 1], alpha, rho, mu, s, noise)
    assert rel_err(closed, engine) < 1e-12


def test_deep_meta_loss_matches_sampled_tasks():
    """Simulation: mean over sampled tasks of the engine's post-adaptation loss, within 4 SE."""
    rng = np.random.default_rng(5)
    alpha, rho, mu, s = 0.3, 1.3, 0.7, 1.1
    pts = np.array([[0.4, -1.2], [1.5, 0.3], [-0.8, -0.9]])
    w_star = mu + s * rng.standard_normal(200000)
    vals = _engine_post_losses((pts[:, :1, None], pts[:, 1:, None]), w_star, alpha, rho, 0.0)
    mean, se = vals.mean(axis=1), vals.std(axis=1, ddof=1) / np.sqrt(vals.shape[1])
    closed = depth.scalar_deep_meta_loss(pts[:, 0], pts[:, 1], alpha, rho, mu, s)
    assert np.all(np.abs(mean - closed) <= 4 * se)


def test_shallow_meta_loss_equals_theory_shallow():
    """An independent closed form: theory.shallow with the population inner loss, d = out = 1."""
    alpha, rho, mu, s, noise = 0.3, 1.7, -0.4, 0.8, 0.5
    fam = lm.GaussianRegression(d=1, mean=[[mu]], cov=s**2, input_cov=[[rho]], noise_std=noise)
    for w in (-1.0, 0.0, 0.3, 2.0):
        ref = shallow.expected_meta_loss(np.array([[w]]), fam, None, alpha, 1)
        assert abs(depth.scalar_shallow_meta_loss(w, alpha, rho, mu, s, noise) - ref) <= 1e-12 * ref


def test_adapted_equals_engine_adapt():
    rng = np.random.default_rng(2)
    w1, w2, ws = rng.normal(size=(3, 6))
    alpha, rho = 0.2, 1.4
    a1, a2 = depth.scalar_adapted(w1, w2, ws, alpha, rho)
    pop = _tasks(ws, rho, 0.0).population()
    out = lm.adapt((w1.reshape(6, 1, 1), w2.reshape(6, 1, 1)), pop, lm.InnerLoop(1, alpha, inner_loss="population"))
    # 6 runs x 6 shared tasks: the diagonal is run i adapted to task i
    e1 = out[0][np.arange(6), np.arange(6), 0, 0]
    e2 = out[1][np.arange(6), np.arange(6), 0, 0]
    assert rel_err(a1, e1) < 1e-13 and rel_err(a2, e2) < 1e-13


@pytest.mark.parametrize("alpha, rho", [(0.25, 1.0), (0.1, 2.0)])
def test_minima_are_strict_zeros_of_the_centred_meta_loss(alpha, rho):
    s = 1.3
    f = lambda p: depth.scalar_deep_meta_loss(p[0], p[1], alpha, rho, 0.0, s)
    for p in depth.scalar_deep_minima(alpha, rho):
        assert f(p) < 1e-28
        assert np.max(np.abs(central_diff_grad(f, p))) < 1e-8
        assert abs(alpha * rho * (p ** 2).sum() - 1) < 1e-14
        # strictly larger in every direction nearby (an isolated minimum)
        for ang in np.linspace(0, 2 * np.pi, 12, endpoint=False):
            assert f(p + 1e-3 * np.array([np.cos(ang), np.sin(ang)])) > 0


def test_effective_step_is_first_order_step_on_m():
    """m' − m = −α(w₁²+w₂²) ∂ℓ/∂m + O(α²): compare with the engine at small α."""
    w1, w2, ws, rho = 0.7, -1.3, 0.4, 1.2
    g = rho * (w1 * w2 - ws)
    for alpha in (1e-3, 1e-4):
        a1, a2 = depth.scalar_adapted(w1, w2, ws, alpha, rho)
        first = -depth.scalar_effective_step(w1, w2, alpha) * g
        assert abs((a1 * a2 - w1 * w2) - first) <= 2 * alpha**2 * abs(w1 * w2) * g**2


@pytest.mark.parametrize("kwargs, name", [({"alpha": float("nan")}, "alpha"), ({"rho": 0.0}, "rho"),
                                          ({"s": -1.0}, "s"), ({"noise_std": -0.1}, "noise_std")])
def test_invalid_inputs_name_the_argument(kwargs, name):
    args = {"alpha": 0.1, "rho": 1.0, "mu": 0.0, "s": 1.0, "noise_std": 0.0} | kwargs
    with pytest.raises(ValueError, match=name):
        depth.scalar_deep_meta_loss(0.1, 0.2, **args)
    with pytest.raises(ValueError, match="alpha"):
        depth.scalar_deep_minima(-0.1)
