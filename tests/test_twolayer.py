"""Tests of linmeta.twolayer: the two-layer network, its exact meta-gradients, teacher mixtures, training."""
import numpy as np
import pytest

from linmeta import twolayer as nl
from linmeta.theory import landscape

from .helpers import central_diff_grad, complex_step_grad, rel_err

H, D, T = 3, 4, 5


def _problem(act, seed=0, n_s=7, n_q=6):
    rng = np.random.default_rng(seed)
    W, a = rng.standard_normal((H, D)), rng.standard_normal(H)
    S = nl.SampleLoss(rng.standard_normal((T, n_s, D)), rng.standard_normal((T, n_s)), act)
    Q = nl.SampleLoss(rng.standard_normal((T, n_q, D)), rng.standard_normal((T, n_q)), act)
    return W, a, S, Q


def _as_fn(S, Q, rule):
    return lambda x: nl._value_and_grad(x[: H * D].reshape(H, D), x[H * D:], S, Q, rule)[0]


RULES = [nl.TwoLayerRule(1, 0.3), nl.TwoLayerRule(2, 0.25), nl.TwoLayerRule(1, 0.3, "last"), nl.TwoLayerRule(2, 0.2, "last"), nl.TWO_LAYER_NAL]


@pytest.mark.parametrize("rule", RULES, ids=str)
def test_meta_gradient_tanh_complex_step(rule):
    W, a, S, Q = _problem("tanh")
    _, gW, ga = nl.two_layer_meta_value_and_grad(W, a, S, Q, rule)
    g = complex_step_grad(_as_fn(S, Q, rule), nl.flatten_params(W, a))
    assert rel_err(np.r_[gW.ravel(), ga], g) < 1e-12


@pytest.mark.parametrize("rule", RULES, ids=str)
def test_meta_gradient_relu_central_differences(rule):
    W, a, S, Q = _problem("relu", seed=1)
    x = nl.flatten_params(W, a)
    # away from kinks: every pre-activation (initial and adapted parameters) is far from zero vs the step
    Wt, _ = nl.adapt_two_layer(W, a, S, rule) if rule.steps else (W[None], a[None])
    for loss in (S, Q):
        for Wx in (W[None], Wt, nl.adapt_two_layer(W, a, S, nl.TwoLayerRule(max(rule.steps - 1, 0), rule.alpha, rule.layers))[0]):
            assert np.min(np.abs(loss.X @ np.swapaxes(Wx, -1, -2))) > 1e-4
    _, gW, ga = nl.two_layer_meta_value_and_grad(W, a, S, Q, rule)
    g = central_diff_grad(_as_fn(S, Q, rule), x, h=1e-6)
    assert rel_err(np.r_[gW.ravel(), ga], g) < 1e-8


def test_first_order_gradient_is_query_gradient_at_adapted_params():
    W, a, S, Q = _problem("tanh", seed=2)
    rule = nl.TwoLayerRule(2, 0.3, first_order=True)
    _, gW, ga = nl.two_layer_meta_value_and_grad(W, a, S, Q, rule)
    Wt, at = nl.adapt_two_layer(W, a, S, rule)
    qW, qa = Q.grad(Wt, at)
    assert rel_err(gW, qW.mean(0)) < 1e-14 and rel_err(ga, qa.mean(0)) < 1e-14
    assert abs(nl.two_layer_meta_loss(W, a, S, Q, rule) - Q.value(Wt, at).mean()) < 1e-15


@pytest.mark.parametrize("act", nl.ACTIVATIONS)
def test_hvp_matches_gradient_differences(act):
    rng = np.random.default_rng(3)
    W, a, S, _ = _problem(act, seed=3)
    V, v = rng.standard_normal((T, H, D)), rng.standard_normal((T, H))
    HW, Ha = S.hvp(W[None], a[None], V, v)
    h = 1e-6
    gp = S.grad(W[None] + h * V, a[None] + h * v)
    gm = S.grad(W[None] - h * V, a[None] - h * v)
    assert rel_err(HW, (gp[0] - gm[0]) / (2 * h)) < 1e-6 and rel_err(Ha, (gp[1] - gm[1]) / (2 * h)) < 1e-6


def test_loss_value_and_forward():
    W, a, S, _ = _problem("tanh", seed=4)
    f = nl.forward(W, a, S.X, "tanh")
    assert f.shape == S.y.shape
    assert np.allclose(f[2, 3], a @ np.tanh(W @ S.X[2, 3]))
    assert np.allclose(S.value(W[None], a[None]), 0.5 * np.mean((f - S.y) ** 2, axis=-1))
    v, gW, ga = S.value_and_grad(W[None], a[None])
    assert np.array_equal(v, S.value(W[None], a[None])) and np.array_equal(ga, S.grad(W[None], a[None])[1])


def test_features_are_the_parameter_jacobian():
    rng = np.random.default_rng(5)
    W, a = rng.standard_normal((H, D)), rng.standard_normal(H)
    X = rng.standard_normal((6, D))
    J = nl.features(W, a, X, "tanh")
    for i in range(6):
        f = lambda x: nl._forward(x[: H * D].reshape(H, D), x[H * D:], X[i: i + 1], "tanh")[0]
        assert rel_err(J[i], complex_step_grad(f, nl.flatten_params(W, a))) < 1e-13


def test_last_layer_rule_keeps_first_layer():
    W, a, S, _ = _problem("relu", seed=6)
    Wt, at = nl.adapt_two_layer(W, a, S, nl.TwoLayerRule(2, 0.3, "last"))
    assert Wt.shape == (T, H, D) and np.all(Wt == W) and not np.allclose(at, a)


def test_teacher_mixture_sampling():
    rng = np.random.default_rng(7)
    cH = (rng.standard_normal((H, D)), rng.standard_normal(H))
    cE = (cH[0] + 1.0, cH[1] - 1.0)
    mix = nl.TeacherMixture(cH, cE, 0.3, 0.6, 0.2, 1.0, p_hard=0.3, noise=0.1, activation="tanh")
    t = mix.sample_tasks(40000, 8)
    assert abs(t.hard.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 40000)
    dev = np.concatenate([(t.W - np.where(t.hard[:, None, None], cH[0], cE[0])).reshape(40000, -1),
                          t.a - np.where(t.hard[:, None], cH[1], cE[1])], axis=1)
    r2 = np.sum(dev**2, axis=1)
    for flag, R in ((True, 0.3), (False, 0.6)):
        x = r2[t.hard == flag]
        assert abs(x.mean() - R**2) < 4 * x.std() / np.sqrt(x.size)
    X = t.inputs(50, 9)
    assert np.allclose(X[t.hard].var(), 0.2, rtol=0.05) and np.allclose(X[~t.hard].var(), 1.0, rtol=0.05)
    loss = t.sample_loss(20, 10, noise=False)
    assert np.allclose(loss.y, t.targets(loss.X))


def test_linearised_curvatures_algebra():
    """A = (I − αG)G(I − αG) + α²(F − G³)/K with G, F the feature moments of the same inputs."""
    rng = np.random.default_rng(10)
    W, a = rng.standard_normal((2, 3)), rng.standard_normal(2)
    lc = nl.linearised_curvatures(W, a, 0.7, 0.3, 6, noise=0.2, activation="tanh", samples=5000, rng=3)
    X = np.sqrt(0.7) * np.random.default_rng(3).standard_normal((5000, 3))
    J = nl.features(W, a, X, "tanh")
    G = J.T @ J / 5000
    F = sum(np.outer(j, j) * (j @ G @ j) for j in J) / 5000
    P = np.eye(8) - 0.3 * G
    assert rel_err(lc.G, G) < 1e-13 and rel_err(lc.A, P @ G @ P + 0.09 * (F - G @ G @ G) / 6) < 1e-12
    assert abs(lc.noise - 0.5 * 0.09 * 0.04 * np.trace(G @ G) / 6) < 1e-14


def test_linearised_curvatures_one_step_formula():
    """The linearised model's one-step K-shot excess (non-Gaussian features) equals direct simulation."""
    rng = np.random.default_rng(11)
    W, a = rng.standard_normal((2, 2)), rng.standard_normal(2)
    alpha, K, noise = 0.4, 5, 0.3
    lc = nl.linearised_curvatures(W, a, 1.0, alpha, K, noise=noise, activation="relu", samples=2_000_000, rng=12)
    e = np.r_[0.2, -0.1, 0.3, 0.0, 0.5, -0.3]
    n = 100_000
    X = rng.standard_normal((n, K, 2))
    J = nl.features(W, a, X, "relu")  # (n, K, p)
    eps = noise * rng.standard_normal((n, K))
    r = J @ e - eps
    e1 = e - alpha * np.einsum("nkp,nk->np", J, r) / K
    x = 0.5 * np.einsum("np,pq,nq->n", e1, lc.G, e1)
    theory = 0.5 * e @ lc.A @ e + lc.noise
    # A and G come from 2e6 inputs: their Monte Carlo error is far below this test's standard error
    assert abs(x.mean() - theory) < 4 * x.std(ddof=1) / np.sqrt(n), (x.mean(), theory)


def test_meta_train_lbfgs_reduces_loss_and_is_deterministic():
    rng = np.random.default_rng(13)
    cH = (rng.standard_normal((2, 2)), rng.standard_normal(2))
    mix = nl.TeacherMixture(cH, (cH[0] + 0.2, cH[1]), 0.1, 0.1, 0.5, 1.0, activation="tanh")
    W0, a0 = cH[0] + 0.3, cH[1] - 0.3
    r1 = nl.meta_train_two_layer(W0, a0, mix, nl.TwoLayerRule(1, 0.5), K=8, Q=8, tasks=32, iters=50, seed=1)
    r2 = nl.meta_train_two_layer(W0, a0, mix, nl.TwoLayerRule(1, 0.5), K=8, Q=8, tasks=32, iters=50, seed=1)
    assert np.array_equal(r1.W, r2.W) and r1.history["loss"][-1] < 0.5 * r1.history["loss"][0]
    r3 = nl.meta_train_two_layer(W0, a0, mix, nl.TWO_LAYER_NAL, K=8, Q=8, tasks=16, iters=30, optimizer="adam", lr=0.05, seed=2)
    assert r3.history["loss"].size == 30
    # a huge ridge pins the parameters to the start
    r4 = nl.meta_train_two_layer(W0, a0, mix, nl.TWO_LAYER_NAL, K=8, Q=8, tasks=16, iters=50, ridge=1e6, seed=1)
    assert np.max(np.abs(r4.W - W0)) < 1e-4


def test_post_adaptation_excess_pairs_inits():
    rng = np.random.default_rng(14)
    cH = (rng.standard_normal((2, 2)), rng.standard_normal(2))
    mix = nl.TeacherMixture(cH, cH, 0.1, 0.1, 1.0, 1.0, noise=0.0)
    t = mix.sample_tasks(10, 15)
    ex = nl.post_adaptation_excess([cH, cH], t, nl.TWO_LAYER_NAL, K=4, Q=50, rng=16)
    assert ex.shape == (2, 10) and np.array_equal(ex[0], ex[1]) and np.all(ex >= 0)


def test_quadratic_gain_on_linearised_network_is_at_least_one():
    rng = np.random.default_rng(17)
    W, a = rng.standard_normal((2, 2)), rng.standard_normal(2)
    cur = [nl.linearised_curvatures(W, a, r, 0.3, 10, activation="tanh", samples=5000, rng=18) for r in (0.2, 1.0)]
    p = 6
    th = nl.flatten_params(W, a)
    q = landscape.quadratic_gain([0.5, 0.5], [th, th + 0.1], [0.01 * np.eye(p)] * 2, [c.G for c in cur], [c.A for c in cur])
    assert q.gain >= 1.0 - 1e-12


@pytest.mark.parametrize("call,match", [
    (lambda: nl.forward(np.zeros((2, 3)), np.zeros(3), np.zeros((4, 3))), "same h"),
    (lambda: nl.forward(np.zeros((2, 3)), np.zeros(2), np.zeros((4, 2))), "d = 3"),
    (lambda: nl.SampleLoss(np.zeros((2, 3, 4)), np.zeros((2, 4))), "y must have shape"),
    (lambda: nl.SampleLoss(np.zeros((2, 3, 4)), np.zeros((2, 3)), "gelu"), "activation"),
    (lambda: nl.TwoLayerRule(1, 0.1, "first"), "layers"),
    (lambda: nl.TwoLayerRule(-1, 0.1), "steps"),
    (lambda: nl.TeacherMixture((np.zeros((2, 2)), np.zeros(2)), (np.zeros((3, 2)), np.zeros(3)), 0.1, 0.1, 1.0, 1.0),
     "same shapes"),
    (lambda: nl.TeacherMixture((np.zeros((2, 2)), np.zeros(2)), (np.zeros((2, 2)), np.zeros(2)), 0.1, 0.1, 0.0, 1.0),
     "rho_hard"),
    (lambda: nl.two_layer_meta_value_and_grad(np.zeros((2, 2)), np.zeros(2), _problem("relu")[2], _problem("relu")[3],
                                    nl.TWO_LAYER_NAL), "d = 4"),
])
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
