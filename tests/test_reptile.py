"""Tests of linmeta.reptile and meta_train(outer="reptile")."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.reptile import reptile_direction


def _spd(rng, d):
    X = rng.standard_normal((d, d))
    S = X @ X.T / d + 0.3 * np.eye(d)
    return S / np.linalg.eigvalsh(S)[-1]


def _quadratic_tasks(seed=0, T=5, d=3, runs=None):
    rng = np.random.default_rng(seed)
    lead = (T,) if runs is None else (runs, T)
    H = np.stack([_spd(rng, d) for _ in range(int(np.prod(lead)))]).reshape(lead + (d, d))
    w = rng.standard_normal(lead + (d,))
    Hw = np.einsum("...ij,...j->...i", H, w)
    loss = lm.QuadraticLoss(A=H, B=Hw[..., None], c=0.5 * np.sum(w * Hw, -1))
    return H, w, loss


def _deep(seed=1, d=4, widths=(3,), out=2, runs=None):
    params = lm.init_deep_linear(d, widths, out, rng=seed, n_runs=runs) if runs else lm.init_deep_linear(d, widths, out,
                                                                                                          rng=seed)
    rng = np.random.default_rng(seed + 10)
    T = 6
    lead = (T,) if runs is None else (runs, T)
    X = rng.standard_normal(lead + (7, d))
    Y = rng.standard_normal(lead + (7, out))
    return params, lm.sample_moments(X, Y)


def test_quadratic_direction_is_the_hand_computation():
    H, w, loss = _quadratic_tasks()
    theta = np.random.default_rng(2).standard_normal((1, 3))
    for k, alpha in ((1, 0.3), (4, 0.7), (3, -0.2)):
        D = reptile_direction((theta,), loss, loss, lm.InnerLoop(k, alpha)).params[0]
        hand = np.mean([(np.eye(3) - np.linalg.matrix_power(np.eye(3) - alpha * h, k)) @ (theta[0] - wi) / (k * alpha)
                        for h, wi in zip(H, w)], axis=0)
        assert np.max(np.abs(D[0] - hand)) < 1e-13


def test_one_step_reptile_is_joint_training_and_the_expansion_holds():
    H, w, loss = _quadratic_tasks(3)
    theta = np.random.default_rng(4).standard_normal((1, 3))
    alpha = 0.37
    D = reptile_direction((theta,), loss, loss, lm.InnerLoop(1, alpha)).params[0][0]
    g = lm.meta_value_and_grad((theta,), loss, loss, lm.InnerLoop(0, alpha)).params[0][0]  # ∇ mean ℓ_s(θ)
    assert np.max(np.abs(D - g)) < 1e-14
    fo = lm.meta_value_and_grad((theta,), loss, loss, lm.InnerLoop(1, alpha, first_order=True)).params[0][0]
    maml = lm.meta_value_and_grad((theta,), loss, loss, lm.InnerLoop(1, alpha)).params[0][0]
    # quadratic: exact polynomials in α, per task g_t = H_t(θ − w_t)
    gt = [h @ (theta[0] - wi) for h, wi in zip(H, w)]
    Hg = np.mean([h @ x for h, x in zip(H, gt)], axis=0)
    H2g = np.mean([h @ h @ x for h, x in zip(H, gt)], axis=0)
    assert np.max(np.abs((D - fo) - alpha * Hg)) < 1e-14
    assert np.max(np.abs((D - maml) - (2 * alpha * Hg - alpha**2 * H2g))) < 1e-14


@pytest.mark.parametrize("k", [1, 3])
def test_expansion_on_a_deep_model(k):
    """D − FO = ½(k+1) α H g + O(α²) and D − MAML = ½(3k+1) α H g + O(α²), same support and query."""
    params, loss = _deep()
    flat = lambda ps: np.concatenate([p.reshape(-1) for p in ps])
    # mean over tasks of H_t g_t, each by central differences of the task's gradient (error O(h²))
    grad = lambda ps, l: lm.meta_value_and_grad(ps, l, l, lm.InnerLoop(0, 0.1)).params
    h, Hg = 1e-5, 0.0
    for t in range(loss.n_tasks):
        lt = loss.take([t])
        g = grad(params, lt)
        plus = grad(tuple(p + h * q for p, q in zip(params, g)), lt)
        minus = grad(tuple(p - h * q for p, q in zip(params, g)), lt)
        Hg = Hg + (flat(plus) - flat(minus)) / (2 * h) / loss.n_tasks
    res = {}
    for alpha in (1e-2, 5e-3):
        D = flat(reptile_direction(params, loss, loss, lm.InnerLoop(k, alpha)).params)
        fo = flat(lm.meta_value_and_grad(params, loss, loss, lm.InnerLoop(k, alpha, first_order=True)).params)
        ml = flat(lm.meta_value_and_grad(params, loss, loss, lm.InnerLoop(k, alpha)).params)
        res[alpha] = (D - fo - 0.5 * (k + 1) * alpha * Hg, D - ml - 0.5 * (3 * k + 1) * alpha * Hg)
        # the remainder is second order: much smaller than the first-order term
        assert np.linalg.norm(res[alpha][0]) < 0.15 * np.linalg.norm(alpha * Hg)
    for i in range(2):  # halving α divides the remainder by ~4
        ratio = np.linalg.norm(res[1e-2][i]) / np.linalg.norm(res[5e-3][i])
        assert 3.5 < ratio < 4.5, ratio


def test_deep_direction_equals_an_independent_unrolled_loop():
    params, loss = _deep(5, runs=2)
    rule = lm.InnerLoop(3, 0.2)
    D = reptile_direction(params, loss, loss, rule)
    W1, W2 = params
    A, B = loss.A, loss.B  # (runs, T, d, d), (runs, T, d, out)
    disp = [np.zeros_like(W1), np.zeros_like(W2)]
    for r in range(2):
        for t in range(A.shape[1]):
            a, b = W1[r].copy(), W2[r].copy()
            for _ in range(3):
                G = b @ a @ A[r, t] - B[r, t].T  # ∇_M of ½tr(MAMᵀ) − tr(MB)
                a, b = a - 0.2 * b.T @ G, b - 0.2 * G @ a.T
            disp[0][r] += (W1[r] - a) / (3 * 0.2 * A.shape[1])
            disp[1][r] += (W2[r] - b) / (3 * 0.2 * A.shape[1])
    assert max(np.max(np.abs(x - y)) for x, y in zip(D.params, disp)) < 1e-13
    # the reported value is the MAML meta-loss
    assert np.allclose(D.value, lm.meta_loss(params, loss, loss, rule), rtol=1e-13)


def test_frozen_layers_get_no_direction():
    params, loss = _deep(6)
    D = reptile_direction(params, loss, loss, lm.InnerLoop(2, 0.1, layers="last"))
    assert np.all(D.params[0] == 0) and np.any(D.params[1] != 0)


def test_meta_train_with_reptile_converges_to_its_fixed_point():
    """Population inner loss on quadratics: the Reptile direction vanishes at θ* = (Σ(I − P_t))⁻¹ Σ(I − P_t) w_t."""
    rng = np.random.default_rng(7)
    S = [_spd(rng, 2) for _ in range(2)]
    fam = lm.TaskMixture(tuple(lm.GaussianRegression(d=2, mean=rng.standard_normal((1, 2)), cov=0.0, input_cov=s)
                               for s in S), (0.5, 0.5))
    rule = lm.InnerLoop(3, 0.5, inner_loss="population")
    res = lm.meta_train((np.zeros((1, 2)),), fam, rule, steps=400, lr=1.0, optimizer="sgd", tasks_per_step=64, K=None,
                        Q=None, fixed_tasks=64, eval_tasks=4, seed=0, progress=False, outer="reptile")
    # the fixed task set is a sample of the two types; its Reptile fixed point from the sampled tasks:
    fixed = fam.sample_tasks(64, lm.as_generator(0).spawn(2)[0])
    P = [np.eye(2) - np.linalg.matrix_power(np.eye(2) - 0.5 * s, 3) for s in fixed.input_cov]
    expect = np.linalg.solve(sum(P), sum(p @ w[0] for p, w in zip(P, fixed.w_star)))
    assert np.max(np.abs(res.params[0][0] - expect)) < 1e-10
    again = lm.meta_train((np.zeros((1, 2)),), fam, rule, steps=400, lr=1.0, optimizer="sgd", tasks_per_step=64, K=None,
                          Q=None, fixed_tasks=64, eval_tasks=4, seed=0, progress=False, outer="reptile")
    assert np.array_equal(again.params[0], res.params[0])


def test_meta_train_reptile_on_fresh_tasks_with_runs_and_adam():
    fam = lm.GaussianRegression(d=3, mean=np.ones((1, 3)), cov=0.3, noise_std=0.1)
    params = lm.init_deep_linear(3, (4,), 1, rng=0, n_runs=3)
    res = lm.meta_train(params, fam, lm.InnerLoop(2, 0.1), steps=30, lr=0.01, tasks_per_step=8, K=5, Q=5,
                        eval_tasks=20, seed=1, progress=False, outer="reptile")
    assert res.params[0].shape == (3, 4, 3) and np.all(np.isfinite(res.history["train_loss"]))
    assert res.history["test_post"][-1].mean() < res.history["test_post"][0].mean()


def test_bad_input():
    fam = lm.GaussianRegression(d=2)
    p = (np.zeros((1, 2)),)
    kw = dict(steps=2, progress=False, eval_tasks=2, tasks_per_step=2)
    with pytest.raises(ValueError, match="outer"):
        lm.meta_train(p, fam, lm.InnerLoop(1, 0.1), outer="fomaml", **kw)
    with pytest.raises(ValueError, match="L-BFGS"):
        lm.meta_train(p, fam, lm.InnerLoop(1, 0.1), outer="reptile", optimizer="lbfgs", fixed_tasks=4, **kw)
    with pytest.raises(ValueError, match="preconditioner"):
        lm.meta_train(p, fam, lm.InnerLoop(1, 0.1), outer="reptile", precond=lm.MetaSGD(), **kw)
    with pytest.raises(ValueError, match="alpha must be non-zero"):
        lm.meta_train(p, fam, lm.InnerLoop(1, 0.0), outer="reptile", **kw)
    with pytest.raises(ValueError, match="inner loop"):
        reptile_direction(p, lm.QuadraticLoss(np.eye(2)[None], np.zeros((1, 2, 1)), np.zeros(1)),
                          lm.QuadraticLoss(np.eye(2)[None], np.zeros((1, 2, 1)), np.zeros(1)), lm.InnerLoop(0, 0.1))
