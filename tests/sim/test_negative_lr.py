"""Simulation of MAML on mixed linear regression (linmeta.sim.negative_lr)."""
import numpy as np
import pytest

from linmeta.sim import negative_lr as S
from linmeta.theory.negative_lr import MixedRegression

OVER = MixedRegression(p=9, n_t=4, n_v=2, n_r=3, m=3, sigma=0.5, nu=0.8)    # N = 6 < p
UNDER = MixedRegression(p=5, n_t=4, n_v=2, n_r=3, m=6, sigma=0.5, nu=0.8)   # N = 12 > p


def _loop_design(data, a):
    """Per run and task, straight from the definition of one inner step and the query loss."""
    R, m, n_t, p = data.Xt.shape
    A, b = [], []
    for r in range(R):
        Ar, br = [], []
        for i in range(m):
            St = data.Xt[r, i].T @ data.Xt[r, i] / n_t
            Ar.append(data.Xv[r, i] @ (np.eye(p) - a * St))
            br.append(data.yv[r, i] - a * data.Xv[r, i] @ data.Xt[r, i].T @ data.yt[r, i] / n_t)
        A.append(np.concatenate(Ar)), b.append(np.concatenate(br))
    return np.array(A), np.array(b)


@pytest.mark.parametrize("setting", [OVER, UNDER], ids=["over", "under"])
def test_design_matches_the_definition(setting):
    data = S.draw_training(setting, 3, 0, w0=np.ones(setting.p))
    for a in (-0.7, 0.3):
        A, b = S.maml_design(data, a)
        A_ref, b_ref = _loop_design(data, a)
        assert np.allclose(A, A_ref, rtol=1e-13, atol=1e-13) and np.allclose(b, b_ref, rtol=1e-13, atol=1e-13)
    A, b = S.maml_design(data, np.array([-0.7, 0.3]))
    assert A.shape == (2, 3, setting.N, setting.p) and np.allclose(A[1], _loop_design(data, 0.3)[0], atol=1e-13)


def test_overparameterised_solution_is_the_min_norm_interpolant_from_omega0():
    data = S.draw_training(OVER, 5, 1)
    omega0 = np.linspace(-1, 1, OVER.p)
    A, b = S.maml_design(data, 0.4)
    w = S.maml_solution(A, b, omega0)
    assert np.max(np.abs(np.einsum("rnp,rp->rn", A, w) - b)) < 1e-12            # interpolates
    for r in range(5):                                                            # ω̂ − ω₀ in the row space of A
        ref = omega0 + np.linalg.lstsq(A[r], b[r] - A[r] @ omega0, rcond=None)[0]
        assert np.allclose(w[r], ref, rtol=1e-11, atol=1e-12)


def test_underparameterised_solution_is_least_squares():
    data = S.draw_training(UNDER, 5, 2)
    A, b = S.maml_design(data, -0.5)
    w = S.maml_solution(A, b)
    for r in range(5):
        assert np.allclose(w[r], np.linalg.lstsq(A[r], b[r], rcond=None)[0], rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("setting", [OVER, UNDER], ids=["over", "under"])
def test_solutions_on_a_grid_match_one_at_a_time(setting):
    data = S.draw_training(setting, 4, 3)
    grid = np.array([-1.5, 0.0, 0.6])
    W = S.maml_solutions(data, grid)
    for k, a in enumerate(grid):
        A, b = S.maml_design(data, a)
        assert np.allclose(W[k], S.maml_solution(A, b), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("setting", [OVER, UNDER], ids=["over", "under"])
def test_engine_meta_objective_is_the_least_squares_loss(setting):
    # the engine's one-step MAML meta-loss is ½|b − Aω|²/N and its (second-order) gradient Aᵀ(Aω − b)/N
    data = S.draw_training(setting, 3, 4)
    rng = np.random.default_rng(5)
    omega = rng.standard_normal((3, setting.p))
    for a in (-0.8, 0.35):
        A, b = S.maml_design(data, a)
        res = np.einsum("rnp,rp->rn", A, omega) - b
        value, grad = S.engine_meta_gradient(data, a, omega)
        assert np.allclose(value, 0.5 * np.sum(res**2, -1) / setting.N, rtol=1e-12)
        ref = np.einsum("rnp,rn->rp", A, res) / setting.N
        assert np.allclose(grad, ref, rtol=1e-11, atol=1e-13)
        # dropping the second-order terms gives a different gradient
        _, fo = S.engine_meta_gradient(data, a, omega, first_order=True)
        assert np.max(np.abs(fo - ref)) > 1e-3 * np.max(np.abs(ref))
        # and the meta-gradient vanishes at the simulated solution
        w = S.maml_solution(A, b)
        _, g = S.engine_meta_gradient(data, a, w)
        _, g0 = S.engine_meta_gradient(data, a, np.zeros_like(w))
        assert np.max(np.linalg.norm(g, axis=-1) / np.linalg.norm(g0, axis=-1)) < 1e-12


def test_engine_gradient_against_finite_differences():
    data = S.draw_training(UNDER, 1, 6)
    omega = np.linspace(-0.5, 0.5, UNDER.p)[None]
    _, g = S.engine_meta_gradient(data, 0.3, omega)
    fd = np.zeros(UNDER.p)
    for j in range(UNDER.p):
        e = np.zeros_like(omega)
        e[0, j] = 1e-5
        fd[j] = (S.engine_meta_gradient(data, 0.3, omega + e)[0][0] - S.engine_meta_gradient(data, 0.3, omega - e)[0][0]) / 2e-5
    assert np.allclose(g[0], fd, rtol=1e-7, atol=1e-9)


def _direct_test_loss(test, omega, a, sigma):
    R, T_, n_r, p = test.Xr.shape
    out = np.zeros(R)
    for r in range(R):
        for t in range(T_):
            X, y = test.Xr[r, t], test.yr[r, t]
            w_r = omega[r] + a * X.T @ (y - X @ omega[r]) / n_r
            if test.Xs is None:
                out[r] += 0.5 * (np.sum((w_r - test.w[r, t]) ** 2) + sigma**2)
            else:
                out[r] += 0.5 * np.mean((test.ys[r, t] - test.Xs[r, t] @ w_r) ** 2)
    return out / T_


@pytest.mark.parametrize("points", [None, 7])
def test_test_losses_match_direct_adaptation(points):
    test = S.draw_test(OVER, 3, 4, 7, w0=np.full(OVER.p, 0.2), test_points=points)
    omega = np.random.default_rng(8).standard_normal((2, 3, OVER.p))      # a leading grid axis of 2 models
    alphas = np.array([-0.2, 0.0, 0.45])
    L = S.test_losses(test, omega, alphas, OVER.sigma)
    assert L.shape == (2, 3, 3)
    for k in range(2):
        for j, a in enumerate(alphas):
            assert np.allclose(L[k, j], _direct_test_loss(test, omega[k], a, OVER.sigma), rtol=1e-12)
    assert np.allclose(S.test_losses(test, omega[0], 0.45, OVER.sigma), L[0, 2], rtol=1e-14)


def test_simulate_is_deterministic_and_seeded():
    a = S.simulate(OVER, [-1.0, 0.2], [0.0, 0.2], 6, 3, 11)
    b = S.simulate(OVER, [-1.0, 0.2], [0.0, 0.2], 6, 3, 11)
    c = S.simulate(OVER, [-1.0, 0.2], [0.0, 0.2], 6, 3, 12)
    assert a["loss"].shape == (2, 2, 6) and a["err2"].shape == (2, 6)
    assert np.array_equal(a["loss"], b["loss"]) and np.array_equal(a["err2"], b["err2"])
    assert not np.array_equal(a["loss"], c["loss"])
    assert np.array_equal(S.estimator_errors(UNDER, [0.1], 4, 3), S.estimator_errors(UNDER, [0.1], 4, 3))


def test_grid_minimiser_recovers_a_vertex_within_its_standard_error():
    rng = np.random.default_rng(9)
    grid = np.linspace(-2, 0, 41)
    hits = []
    for trial in range(40):
        # smooth per-run curves (as with common random numbers) whose mean has its vertex at −1.1
        x = grid[:, None] + 1.1
        runs = (1.0 + x**2 * rng.uniform(0.5, 1.5, 200) + x * rng.normal(0, 0.3, 200)
                + 0.002 * rng.standard_normal((41, 200)))
        est, se = S.grid_minimiser(grid, runs)
        hits.append(abs(est + 1.1) <= 4 * se)
        assert 0 < se < 0.1
    assert all(hits)
    est, se = S.grid_minimiser(grid, (grid[:, None] - 0.2) ** 2 + np.zeros((41, 5)))
    assert np.isnan(est) and se == np.inf                                     # minimum at the grid's end


def test_input_errors():
    data = S.draw_training(OVER, 2, 0)
    with pytest.raises(ValueError, match="alpha_t must be a float or a 1-D array"):
        S.maml_design(data, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="omega must have shape"):
        S.engine_meta_gradient(data, 0.1, np.zeros(OVER.p))
    with pytest.raises(ValueError, match="equals p"):
        S.maml_solution(np.zeros((2, 4, 4)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="w0 must be a vector"):
        S.draw_training(OVER, 2, 0, w0=np.zeros(3))
    with pytest.raises(ValueError, match="runs must be a positive integer"):
        S.draw_test(OVER, 0, 2, 0)
    with pytest.raises(ValueError, match="rng"):
        S.draw_training(OVER, 2, None)
