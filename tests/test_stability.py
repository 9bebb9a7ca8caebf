"""Inner-step stability bound (linmeta.stability)."""
import numpy as np

import linmeta as lm
from linmeta._chain_rule import LayerCalculus
from linmeta.stability import curvature_max, inner_step_bound


def test_shallow_bound_is_two_over_largest_eigenvalue():
    rng = np.random.default_rng(0)
    fam = lm.GaussianRegression(d=4, out=2, input_cov=np.diag([3.0, 1.0, 0.5, 0.1]))
    pop = fam.sample_tasks(3, rng).population()
    params = lm.init_deep_linear(4, (), 2, rng=rng)
    b = inner_step_bound(params, pop, lm.InnerLoop(1, 0.1))
    assert abs(b - 2 / 3.0) <= 1e-8


def test_deep_curvature_matches_dense_hessian():
    rng = np.random.default_rng(1)
    loss = lm.meta_batch(lm.GaussianRegression(d=3).sample_tasks(1, rng), None, None, rng).support
    params = lm.init_deep_linear(3, (2,), 1, rng=rng, scale=1.5)
    rule = lm.InnerLoop(1, 0.1, "all")
    calc = LayerCalculus(params)
    G = loss.grad(calc.M[None])[0]
    single = lm.QuadraticLoss(loss.A[0], loss.B[0], loss.c[0])
    sizes = [W.size for W in params]
    n = sum(sizes)
    H = np.zeros((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = 1
        V, j = [], 0
        for W, s in zip(params, sizes):
            V.append(e[j:j + s].reshape(W.shape))
            j += s
        H[:, i] = np.concatenate([h.reshape(-1) for h in calc.hvp(single, G, V)])
    lam = np.max(np.abs(np.linalg.eigvalsh((H + H.T) / 2)))
    got = curvature_max(params, loss, rule, iters=500)[0]
    assert abs(got - lam) <= 1e-6 * lam


def test_preconditioner_scales_the_bound():
    rng = np.random.default_rng(2)
    pop = lm.GaussianRegression(d=3, input_cov=np.diag([2.0, 1.0, 0.3])).sample_tasks(2, rng).population()
    params = lm.init_deep_linear(3, (), 1, rng=rng)
    phi = ((2.0 * np.ones((1, 3)),),)
    b = inner_step_bound(params, pop, lm.InnerLoop(1, 0.1), lm.MetaSGD(), phi)
    assert abs(b - 2 / (2 * 2.0)) <= 1e-8
