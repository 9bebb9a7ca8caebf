"""Simulation of Gao & Sener's MAML-vs-DRS comparison (linmeta.sim.tradeoff)."""
import numpy as np
import pytest

from linmeta.sim import negative_lr as B
from linmeta.sim import tradeoff as S
from linmeta.theory import tradeoff as T
from linmeta.theory.negative_lr import MixedRegression


def _mean_se(x, axis=0):
    x = np.asarray(x, dtype=float)
    return x.mean(axis), x.std(axis, ddof=1) / np.sqrt(x.shape[axis])


def test_haar_rotations_are_rotations_with_the_haar_mean():
    U = S.haar_rotations(np.random.default_rng(0), (20000,), 3)
    assert np.allclose(np.swapaxes(U, -1, -2) @ U, np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(U), 1.0)
    D = np.diag([0.2, 1.0, 3.0])
    m, se = _mean_se(U @ D @ np.swapaxes(U, -1, -2))
    assert np.all(np.abs(m - np.trace(D) / 3 * np.eye(3)) <= 4 * se + 1e-12)
    assert np.array_equal(S.haar_rotations(np.random.default_rng(0), (2,), 1), np.ones((2, 1, 1)))


@pytest.mark.parametrize("N", [2, 6])         # N < p (points drawn) and N ≥ p (Bartlett)
def test_sufficient_statistics_have_the_wishart_moments(N):
    tk = T.TradeoffTasks(3, 2.0)
    one = S.sample_tasks(tk, (1,), 1)
    R = 100000
    t = S.Tasks(np.repeat(one.Theta, R, 0), np.repeat(one.U, R, 0), np.repeat(one.sigma, R, 0))
    XtX, Xty = S.sufficient_statistics(t, N, 2)
    Q, th, sg = one.Q[0], one.Theta[0], one.sigma[0]
    m, se = _mean_se(XtX)
    assert np.all(np.abs(m - N * Q) <= 4 * se + 1e-12)
    trW2 = np.trace(XtX @ XtX, axis1=-2, axis2=-1)                 # E tr W² = N(N+1) tr Q² + N (tr Q)²
    m, se = _mean_se(trW2)
    assert abs(m - (N * (N + 1) * np.trace(Q @ Q) + N * np.trace(Q) ** 2)) <= 4 * se
    noise = Xty - np.einsum("nij,j->ni", XtX, th)                   # Xᵀε: mean 0, covariance σ N Q
    m, se = _mean_se(noise[:, :, None] * noise[:, None, :])
    assert np.all(np.abs(m - sg * N * Q) <= 4 * se + 1e-12)


def _raw(tk, trials, M, N, rng):
    t = S.sample_tasks(tk, (trials, M), rng)
    L = t.U * np.sqrt(t.Theta)[..., None, :]
    halves = []
    for _ in range(2):
        X = rng.standard_normal((trials, M, N, tk.p)) @ np.swapaxes(L, -1, -2)
        Y = np.einsum("tmnp,tmp->tmn", X, t.Theta) + np.sqrt(t.sigma)[..., None] * rng.standard_normal((trials, M, N))
        halves.append((X, Y))
    return halves


def _stats(X, Y):
    return np.swapaxes(X, -1, -2) @ X, np.einsum("tmnp,tmn->tmp", X, Y)


def test_estimators_match_their_code_on_raw_data():
    tk = T.TradeoffTasks(3, 2.0)
    (X1, Y1), (X2, Y2) = _raw(tk, 2, 4, 5, np.random.default_rng(3))
    alphas = np.array([0.0, 0.4, 1.0])
    drs = S.drs_estimate(_stats(X1, Y1), _stats(X2, Y2))
    maml = S.maml_estimate(_stats(X1, Y1), _stats(X2, Y2), 5, alphas)
    M, N, D = 4, 5, 10
    for tr in range(2):
        W, z = np.zeros((3, 3)), np.zeros(3)
        for m in range(M):
            W += (X1[tr, m].T @ X1[tr, m] + X2[tr, m].T @ X2[tr, m]) / (M * D)
            z += (X1[tr, m].T @ Y1[tr, m] + X2[tr, m].T @ Y2[tr, m]) / (M * D)
        assert np.allclose(drs[tr], np.linalg.lstsq(W, z, rcond=None)[0], rtol=1e-11)
        for k, a in enumerate(alphas):
            W, z = np.zeros((3, 3)), np.zeros(3)
            for m in range(M):
                Sh = np.eye(3) - (a / N) * X1[tr, m].T @ X1[tr, m]
                W += Sh @ X2[tr, m].T @ X2[tr, m] @ Sh / (M * N)
                z += Sh @ X2[tr, m].T @ (Y2[tr, m] - (a / N) * X2[tr, m] @ (X1[tr, m].T @ Y1[tr, m])) / (M * N)
            assert np.allclose(maml[k, tr], np.linalg.lstsq(W, z, rcond=None)[0], rtol=1e-10)


def test_maml_estimator_is_the_exact_one_step_maml_least_squares_solution():
    # the same estimator as linmeta.sim.negative_lr (n_t = n_v = N), whose engine meta-gradient vanishes
    tk = T.TradeoffTasks(3, 2.0)
    (X1, Y1), (X2, Y2) = _raw(tk, 2, 4, 5, np.random.default_rng(4))
    data = B.TrainingData(X1, Y1, X2, Y2, np.zeros((2, 4, 3)))
    for a in (0.3, 0.9):
        A, b = B.maml_design(data, a)
        ref = B.maml_solution(A, b)
        got = S.maml_estimate(_stats(X1, Y1), _stats(X2, Y2), 5, [a])[0]
        assert np.allclose(got, ref, rtol=1e-10)
        _, g = B.engine_meta_gradient(data, a, got)
        _, g0 = B.engine_meta_gradient(data, a, np.zeros_like(got))
        assert np.max(np.linalg.norm(g, axis=-1) / np.linalg.norm(g0, axis=-1)) < 1e-12
    assert MixedRegression(3, 5, 5, 5, 4).N == 20            # (overdetermined: N m = 20 > p = 3)


def test_mc_loss_assembles_gao_and_seners_formula():
    tk = T.TradeoffTasks(2, 1.3)
    table = T.moment_table(tk)
    exact = {k: (v * np.eye(2) if k in ("EQ1", "EQ2", "EQ3", "EV") else
                 v * np.ones(2) if k.endswith("T") and not k.startswith("ET") else v) for k, v in table.items()}
    theta = np.array([[0.3, 1.1], [1.0, 1.0]])
    for Nv, a in ((None, 0.0), (3, 0.7)):
        assert np.allclose(S.mc_loss(exact, theta, Nv, a), T.expected_loss(tk, theta, Nv, a), rtol=1e-13)
    samples = S.mc_moments(tk, 5, task_draws=50, x_draws=20)
    x = S.mc_loss_samples(samples, theta[0], 3, 0.7)
    assert x.shape == (50,) and x.mean() == pytest.approx(float(S.mc_loss(S.mc_estimates(samples), theta[0], 3, 0.7)),
                                                         rel=1e-12)


def test_trials_are_seeded_and_shaped():
    tk = T.TradeoffTasks(1, 2.0)
    a = S.trial_estimates(tk, 3, 4, 10, [0.0, 0.5], 7)
    b = S.trial_estimates(tk, 3, 4, 10, [0.0, 0.5], 7)
    assert a["drs"].shape == (10, 1) and a["maml"].shape == (2, 10, 1)
    assert np.array_equal(a["drs"], b["drs"]) and np.array_equal(a["maml"], b["maml"])
    assert not np.array_equal(a["drs"], S.trial_estimates(tk, 3, 4, 10, [0.0, 0.5], 8)["drs"])


def test_updated_loss_without_a_step_is_the_task_loss():
    tk = T.TradeoffTasks(2, 2.0)
    th = np.array([1.0, 0.5])
    x0 = S.updated_loss_samples(tk, th, None, 0.0, 5, 9)
    t = S.sample_tasks(tk, (5,), 9)
    e = th - t.Theta
    assert np.allclose(x0, 0.5 * np.einsum("ni,nij,nj->n", e, t.Q, e) + 0.5 * t.sigma, rtol=1e-13)


def test_bootstrap_replicas_and_loss_differences():
    tk = T.TradeoffTasks(2, 1.5)
    samples = S.mc_moments(tk, 6, task_draws=40, x_draws=10)
    boot = S.bootstrap_estimates(samples, 5, 7)
    assert boot["EQ1"].shape == (5, 2, 2) and boot["ETVT"].shape == (5,)
    assert np.array_equal(boot["EV"], S.bootstrap_estimates(samples, 5, 7)["EV"])
    th1, th2 = np.array([[0.2, 1.0], [1.5, 0.4], [1.0, 1.0]]), np.array([[1.0, 1.0], [0.0, 0.3], [2.0, -1.0]])
    for Nv, a in ((None, 0.0), (4, 0.8)):
        diff = S.mc_loss_difference(boot, th1, th2, Nv, a)
        assert diff.shape == (5, 3)
        for b in range(5):
            est = {k: v[b] for k, v in boot.items()}
            assert np.allclose(diff[b], S.mc_loss(est, th1, Nv, a) - S.mc_loss(est, th2, Nv, a), rtol=1e-12, atol=1e-13)
