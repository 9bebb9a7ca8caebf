"""Closed forms for meta-optimizers (linmeta.theory.metaopt), checked against simulation and other closed forms."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.sim.montecarlo import post_adaptation_samples
from linmeta.preconditioners import KFO, MetaSGD
from linmeta.theory import gaussian_moments, metaopt, precondition, shallow

from ..helpers import central_diff_grad, rel_err


def _family(seed, d=3, out=1, noise=0.3, iso=False):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d))
    S = A @ A.T / d + 0.3 * np.eye(d)
    C = np.eye(d) if iso else (lambda B: B @ B.T / d + 0.2 * np.eye(d))(rng.standard_normal((d, d)))
    fam = lm.GaussianRegression(d=d, out=out, mean=rng.standard_normal((out, d)), cov=C, input_cov=S,
                                noise_std=noise)
    return fam, rng


def test_error_moment_matches_samples():
    fam, rng = _family(0, out=2)
    M = rng.standard_normal((2, 3))
    W = fam.sample_tasks(200_000, rng).w_star
    E = M - W
    emp = np.einsum("toa,tob->ab", E, E) / len(E)
    R = metaopt.error_moment(M, fam)
    # per-entry SE of the sample mean of (EᵀE)_ab
    se = np.einsum("toa,tob->tab", E, E).std(axis=0) / np.sqrt(len(E))
    assert np.all(np.abs(emp - R) <= 4 * se + 1e-12)


def test_curvature_is_the_gaussian_chain_moment():
    fam, rng = _family(1)
    B = rng.standard_normal((3, 3))
    R = B @ B.T
    for K in (1, 4, 25):
        H = metaopt.one_step_curvature(fam.input_cov, R, K, 0.0)
        assert rel_err(H, gaussian_moments.chain_moment(fam.input_cov, K, 2, {1: R})) <= 1e-12
    H = metaopt.one_step_curvature(fam.input_cov, R, 5, 0.7, out=3)
    assert rel_err(H - metaopt.one_step_curvature(fam.input_cov, R, 5, 0.0), 3 * 0.49 * fam.input_cov / 5) <= 1e-12
    assert rel_err(metaopt.one_step_curvature(fam.input_cov, R, None), fam.input_cov @ R @ fam.input_cov) <= 1e-14


@pytest.mark.parametrize("out", [1, 2])
def test_one_step_loss_matches_engine_simulation(out):
    """Conditional on the tasks drawn, average the engine's post-adaptation loss of M − α L̃ G R̃ (4 SE)."""
    fam, rng = _family(2, out=out)
    M = rng.standard_normal((out, 3))
    P = 0.3 * rng.standard_normal((3, 3))  # any right preconditioner, not symmetric
    K, alpha = 5, 0.1
    tasks = fam.sample_tasks(3000, rng)
    phi = ((np.eye(out), P / alpha),)  # KFO non-PSD: M⁺ = M − α I G (P/α) = M − G P
    samples = post_adaptation_samples((M,), tasks, K, lm.InnerLoop(1, alpha), draws=30, rng=rng,
                                      precond=KFO(psd=False), phi=phi)
    E = M - tasks.w_star
    R_tasks = np.einsum("toa,tob->ab", E, E) / len(E)  # the loss is linear in R: condition on these tasks
    exact = metaopt.one_step_loss(P, fam.input_cov, R_tasks, K, fam.noise_std, out)
    se = np.sqrt(samples.var(axis=0, ddof=1).mean() / samples.size)
    assert abs(samples.mean() - exact) <= 4 * se


def test_population_inner_loss_and_its_optimum():
    fam, rng = _family(3, noise=0.0)
    R = metaopt.error_moment(fam.mean, fam)
    P = metaopt.optimal_preconditioner(fam.input_cov, R, None)
    assert rel_err(P, np.linalg.inv(fam.input_cov)) <= 1e-12  # Newton's step: one step solves every task
    assert metaopt.one_step_loss(P, fam.input_cov, R, None) <= 1e-12 * np.trace(fam.input_cov @ R)
    # the engine agrees: population inner loss, P = Σ⁻¹ adapts every task exactly
    tasks = fam.sample_tasks(5, rng)
    phi = ((np.eye(1), P / 0.5),)
    M = lm.adapted_map((fam.mean,), tasks.population(), lm.InnerLoop(1, 0.5), KFO(psd=False), phi)
    assert rel_err(M, tasks.w_star) <= 1e-12


def test_optimal_preconditioner_converges_to_inverse_covariance():
    fam, _ = _family(4, noise=0.0)
    R = metaopt.error_moment(fam.mean, fam)
    errs = [rel_err(metaopt.optimal_preconditioner(fam.input_cov, R, K), np.linalg.inv(fam.input_cov))
            for K in (10, 100, 1000, 10000)]
    assert all(a > b for a, b in zip(errs, errs[1:])) and errs[-1] < 1e-2


@pytest.mark.parametrize("K,noise", [(4, 0.0), (10, 0.5), (None, 0.0)])
def test_optima_are_stationary_and_minimal(K, noise):
    fam, rng = _family(5, noise=noise)
    R = metaopt.error_moment(rng.standard_normal((1, 3)), fam)
    args = (fam.input_cov, R, K, noise)
    f = lambda P: metaopt.one_step_loss(P, *args)
    P = metaopt.optimal_preconditioner(*args)
    assert np.max(np.abs(central_diff_grad(f, P, h=1e-4))) <= 1e-8
    p = metaopt.optimal_diagonal_preconditioner(*args)
    assert np.max(np.abs(central_diff_grad(lambda q: f(np.diag(q)), p, h=1e-4))) <= 1e-8
    a = metaopt.optimal_scalar_step(*args)
    assert abs(central_diff_grad(lambda x: f(x[0] * np.eye(3)), np.array([a]), h=1e-4)[0]) <= 1e-8
    # nested classes: full ≤ diagonal ≤ scalar, and random perturbations only increase the loss
    assert f(P) <= f(np.diag(p)) <= f(a * np.eye(3))
    for _ in range(20):
        D = 1e-2 * rng.standard_normal((3, 3))
        assert f(P + D) > f(P)
        assert f(np.diag(p + np.diag(D))) > f(np.diag(p))


def test_scalar_optimum_and_floors_agree_with_shallow_closed_forms():
    """A different route (Wick chain moments, numerical 1-D minimisation in linmeta.theory.shallow)."""
    fam, _ = _family(6, noise=0.4)
    for K in (3, 10, None):
        floors = metaopt.preconditioner_floors(fam, K, 0.2)
        assert rel_err(floors["loss_fixed"], shallow.shallow_floor(fam, K, 0.2, 1)) <= 1e-12
        a, fl = shallow.optimal_alpha(fam, K, 1)
        assert abs(floors["P_scalar"][0, 0] - a) <= 1e-7 * a
        assert rel_err(floors["loss_scalar"], fl) <= 1e-10
        assert floors["loss_full"] <= floors["loss_diagonal"] <= floors["loss_scalar"] <= floors["loss_fixed"]


@pytest.mark.parametrize("iso", [True, False])
def test_optimum_is_symmetric_positive_definite(iso):
    """P* = H⁻¹ΣR = R^½ (a R^½ΣR^½ + c I)⁻¹ R^½ with a = 1 + 1/K, c = (tr RΣ + out σ²)/K (push-through identity)."""
    fam, rng = _family(7, iso=iso)
    S, K, s2 = fam.input_cov, 6, 0.09
    R = metaopt.error_moment(rng.standard_normal((1, 3)), fam)
    P = metaopt.optimal_preconditioner(S, R, K, 0.3)
    assert rel_err(P, P.T) <= 1e-12 and np.linalg.eigvalsh((P + P.T) / 2)[0] > 0
    Rh = precondition.psd_power(R, 0.5)
    c = (np.trace(R @ S) + s2) / K
    assert rel_err(P, Rh @ np.linalg.inv((1 + 1 / K) * Rh @ S @ Rh + c * np.eye(3)) @ Rh) <= 1e-10
    if iso:  # R = I at M = E[W*]: [(1 + 1/K) Σ + (tr Σ + σ²) I / K]⁻¹
        P0 = metaopt.optimal_preconditioner(S, metaopt.error_moment(fam.mean, fam), K, 0.3)
        assert rel_err(P0, np.linalg.inv((1 + 1 / K) * S + (np.trace(S) + s2) * np.eye(3) / K)) <= 1e-12


def test_meta_sgd_and_kfo_reach_their_floor_when_set_to_the_optimum():
    """The engine's Meta-SGD/KFO at the closed-form optimum: Monte Carlo loss = closed-form floor (4 SE)."""
    fam, rng = _family(8, iso=True, noise=0.2)
    K, alpha = 6, 0.05
    floors = metaopt.preconditioner_floors(fam, K, alpha)
    tasks = fam.sample_tasks(4000, rng)
    E = fam.mean - tasks.w_star
    R_tasks = np.einsum("toa,tob->ab", E, E) / len(E)
    L = np.linalg.cholesky(floors["P_full"] / alpha)  # P* is PD: KFO(psd) with RᵀR = P*/α
    lam = np.diag(floors["P_diagonal"])[None, :] / alpha  # Meta-SGD: M⁺ = M − α λ ⊙ G
    cases = [(MetaSGD(), ((lam,),), floors["P_diagonal"]), (KFO(psd=True), ((np.eye(1), L.T),), floors["P_full"])]
    for pc, phi, P in cases:
        s = post_adaptation_samples((fam.mean,), tasks, K, lm.InnerLoop(1, alpha), draws=20, rng=rng, precond=pc,
                                    phi=phi)
        exact = metaopt.one_step_loss(P, fam.input_cov, R_tasks, K, fam.noise_std)
        assert abs(s.mean() - exact) <= 4 * np.sqrt(s.var(axis=0, ddof=1).mean() / s.size)


def test_step_polynomial_and_residual_bounds():
    rng = np.random.default_rng(9)
    params = lm.init_deep_linear(3, (4, 2), 2, rng=rng, n_runs=2)
    G = rng.standard_normal((2, 2, 3))
    coeffs = metaopt.step_polynomial(params, G)
    assert len(coeffs) == 4
    for alpha in (0.0, 0.3, -1.2):
        assert rel_err(sum(alpha**k * C for k, C in enumerate(coeffs)),
                       precondition.exact_one_step_map(params, G, alpha)) <= 1e-13
    sub = metaopt.step_polynomial(params, G, layers=[0, -1])
    assert len(sub) == 3
    assert rel_err(sum(0.4**k * C for k, C in enumerate(sub)),
                   precondition.exact_one_step_map(params, G, 0.4, layers=[0, 2])) <= 1e-13
    single = [metaopt.step_polynomial([W[0] for W in params], G[0], layers=[l]) for l in range(3)]
    assert all(len(c) == 2 for c in single)
    p0 = [W[0] for W in params]
    c = metaopt.step_polynomial(p0, G[0])
    for a in (0.2, 0.05, 0.01):
        lo, hi = metaopt.residual_ratio_interval(c, a)
        R = lambda x: np.linalg.norm(sum(x**k * C for k, C in enumerate(c) if k >= 2))
        assert lo <= R(a) / R(a / 2) <= hi
        assert lo <= 4 <= hi
    lo1, hi1 = metaopt.residual_ratio_interval(c, 0.1)
    lo2, hi2 = metaopt.residual_ratio_interval(c, 0.01)
    assert hi2 - lo2 < hi1 - lo1  # the bound tightens as α → 0
    with pytest.raises(ValueError, match="second-order"):
        metaopt.residual_ratio_interval(single[0], 0.1)


def test_expected_softplus():
    s = np.array([0.0, 0.3, 2.0, 15.0])
    u = np.random.default_rng(10).standard_normal(400_000)
    for si, v in zip(s, metaopt.expected_softplus(s)):
        mc = np.logaddexp(0, si * u)
        assert abs(mc.mean() - v) <= 4 * mc.std() / np.sqrt(u.size) + 1e-15
    assert abs(metaopt.expected_softplus(0.0) - np.log(2)) <= 1e-14
    small = 1e-3
    assert abs(metaopt.expected_softplus(small) - (np.log(2) + small**2 / 8)) <= 1e-12


def test_input_validation():
    S = np.eye(2)
    with pytest.raises(ValueError, match="input_cov"):
        metaopt.one_step_curvature(-S, S, 3)
    with pytest.raises(ValueError, match="K"):
        metaopt.optimal_preconditioner(S, S, 0)
    with pytest.raises(ValueError, match="P must be"):
        metaopt.one_step_loss(np.eye(3), S, S, 3)
    with pytest.raises(ValueError, match="same size"):
        metaopt.one_step_loss(S, S, np.eye(3), 3)
    with pytest.raises(ValueError, match="family"):
        metaopt.error_moment(np.zeros((1, 2)), lm.BinaryClassification(d=2))
    with pytest.raises(ValueError, match="M must have shape"):
        metaopt.error_moment(np.zeros((2, 2)), lm.GaussianRegression(d=2))
    with pytest.raises(ValueError, match="G must have"):
        metaopt.step_polynomial(lm.init_deep_linear(3, (2,), 1, rng=0), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="alpha"):
        metaopt.residual_ratio_interval([np.ones((1, 1))] * 3, -0.1)
