"""The meta-objective and its exact gradient (linmeta.meta)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linmeta as lm
from linmeta.losses import LogisticLoss
from linmeta.meta import meta_loss, meta_value_and_grad

from .helpers import central_diff_grad, complex_step_grad, rel_err

RULES = ["all", "last", "first", "none", "subset"]


def random_problem(seed, *, depth=None, k=None, layers=None, population=False, out=None):
    """A random deep linear model and meta-batch, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 5)) if depth is None else depth
    d = int(rng.integers(1, 6))
    out = int(rng.integers(1, 4)) if out is None else out
    widths = tuple(int(w) for w in rng.integers(1, 6, size=depth - 1))
    k = int(rng.integers(1, 4)) if k is None else k
    if layers is None:
        layers = RULES[int(rng.integers(len(RULES)))]
    if layers == "subset":
        layers = tuple(sorted(set(int(i) for i in rng.integers(0, depth, size=2))))
    fam = lm.GaussianRegression(d=d, out=out, mean=rng.standard_normal((out, d)), noise_std=0.3)
    tasks = fam.sample_tasks(int(rng.integers(1, 6)), rng)
    K = None if population else int(rng.integers(1, 8))
    batch = lm.meta_batch(tasks, K, int(rng.integers(1, 8)), rng)
    params = lm.init_deep_linear(d, widths, out, rng=rng, scale=0.8)
    rule = lm.InnerLoop(steps=k, alpha=float(rng.uniform(-0.2, 0.3)), layers=layers)
    return params, batch, rule


def layer_fd(params, f, l):
    """Complex-step gradient of ``f(params)`` in layer ``l``."""
    def g(Wl):
        p = list(params)
        p[l] = Wl
        return f(tuple(p))

    return complex_step_grad(g, params[l])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), population=st.booleans())
def test_meta_gradient_matches_complex_step(seed, population):
    params, batch, rule = random_problem(seed, population=population)
    mg = meta_value_and_grad(params, batch.support, batch.query, rule)
    f = lambda p: meta_loss(p, batch.support, batch.query, rule)
    assert np.allclose(mg.value, f(params), rtol=1e-13, atol=0)
    for l in range(len(params)):
        fd = layer_fd(params, f, l)
        assert rel_err(mg.params[l], fd) <= 1e-9, (l, rule)


@pytest.mark.parametrize("layers", RULES)
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_meta_gradient_every_rule_depth_and_steps(layers, depth, k):
    params, batch, rule = random_problem(1000 * depth + 10 * k + len(str(layers)), depth=depth, k=k, layers=layers)
    mg = meta_value_and_grad(params, batch.support, batch.query, rule)
    f = lambda p: meta_loss(p, batch.support, batch.query, rule)
    for l in range(depth):
        assert rel_err(mg.params[l], layer_fd(params, f, l)) <= 1e-9


def test_dropping_second_order_terms_is_detected():
    """An FO gradient does NOT match the derivative of the meta-loss; the full one does."""
    params, batch, rule = random_problem(7, depth=3, k=2, layers="all")
    f = lambda p: meta_loss(p, batch.support, batch.query, rule)
    so = meta_value_and_grad(params, batch.support, batch.query, rule)
    fo = meta_value_and_grad(params, batch.support, batch.query,
                             lm.InnerLoop(rule.steps, rule.alpha, rule.layers, first_order=True))
    for l in range(3):
        fd = layer_fd(params, f, l)
        assert rel_err(so.params[l], fd) <= 1e-10
        assert rel_err(fo.params[l], fd) > 1e-3  # the second-order terms are not negligible here


def test_first_order_difference_matches_theory_for_shallow_k1():
    """Shallow, k=1: ∇F = mean_t G_q(M_t')(I − αA_t) and FO-MAML drops the (I − αA_t) factor."""
    rng = np.random.default_rng(3)
    fam = lm.GaussianRegression(d=4, out=2, mean=rng.standard_normal((2, 4)), noise_std=0.2)
    batch = lm.meta_batch(fam.sample_tasks(6, rng), 5, 7, rng)
    M = rng.standard_normal((2, 4))
    alpha = 0.15
    rule = lm.InnerLoop(1, alpha)
    A = batch.support.A
    Mad = M - alpha * batch.support.grad(M[None])
    Gq = batch.query.grad(Mad)
    so = meta_value_and_grad((M,), batch.support, batch.query, rule).params[0]
    fo = meta_value_and_grad((M,), batch.support, batch.query, lm.InnerLoop(1, alpha, first_order=True)).params[0]
    assert rel_err(so, np.mean(Gq @ (np.eye(4) - alpha * A), axis=0)) <= 1e-12
    assert rel_err(fo, np.mean(Gq, axis=0)) <= 1e-12
    assert rel_err(fo, so) > 1e-2


def test_first_order_equals_full_when_alpha_is_zero():
    params, batch, _ = random_problem(11, depth=3, k=2, layers="all")
    full = meta_value_and_grad(params, batch.support, batch.query, lm.InnerLoop(2, 0.0))
    fo = meta_value_and_grad(params, batch.support, batch.query, lm.InnerLoop(2, 0.0, first_order=True))
    for a, b in zip(full.params, fo.params):
        assert rel_err(a, b) <= 1e-14  # equal up to the order of floating-point sums


def test_first_order_equals_full_for_single_task_at_its_optimum():
    """One task, population inner and outer loss, M = W*: G = 0, nothing moves and both gradients vanish;
    a small step away they differ (the second-order term is then first order in the distance)."""
    rng = np.random.default_rng(5)
    fam = lm.GaussianRegression(d=3, out=1, input_cov=np.diag([1.0, 0.5, 0.2]))
    tasks = fam.sample_tasks(1, rng)
    pop = tasks.population()
    W1 = rng.standard_normal((4, 3))
    # choose the head so that M = w2 W1 = W* exactly (W1 has full column rank)
    w2 = tasks.w_star[0] @ np.linalg.pinv(W1)
    params = (W1, w2)
    rule = lm.InnerLoop(2, 0.3)
    rule_fo = lm.InnerLoop(2, 0.3, first_order=True)
    so = meta_value_and_grad(params, pop, pop, rule)
    fo = meta_value_and_grad(params, pop, pop, rule_fo)
    for a, b in zip(so.params, fo.params):
        assert np.max(np.abs(a)) < 1e-12 and np.max(np.abs(b)) < 1e-12
    moved = (W1 + 0.1 * rng.standard_normal(W1.shape), w2)
    so = meta_value_and_grad(moved, pop, pop, rule)
    fo = meta_value_and_grad(moved, pop, pop, rule_fo)
    assert rel_err(fo.params[0], so.params[0]) > 1e-2


def test_run_axis_equals_separate_runs():
    rng = np.random.default_rng(2)
    fam = lm.GaussianRegression(d=4, out=2, noise_std=0.1)
    tasks = fam.sample_tasks(5, rng, n_runs=3)
    batch = lm.meta_batch(tasks, 6, 6, rng)
    params = lm.init_deep_linear(4, (3, 5), 2, rng=rng, n_runs=3)
    rule = lm.InnerLoop(2, 0.1, "all")
    mg = meta_value_and_grad(params, batch.support, batch.query, rule, "kfo")
    for r in range(3):
        run_r = lambda q: lm.QuadraticLoss(q.A[r], q.B[r], q.c[r])
        one = meta_value_and_grad(tuple(W[r] for W in params), run_r(batch.support), run_r(batch.query), rule, "kfo")
        assert np.allclose(mg.value[r], one.value, rtol=1e-13)
        for a, b in zip(mg.params, one.params):
            assert rel_err(a[r], b) <= 1e-12
        for pa, pb in zip(mg.phi, one.phi):
            for a, b in zip(pa, pb):
                assert rel_err(a[r], b) <= 1e-12


def test_tasks_shared_by_all_runs_broadcast():
    rng = np.random.default_rng(4)
    batch = lm.meta_batch(lm.GaussianRegression(d=3).sample_tasks(4, rng), 5, 5, rng)
    params = lm.init_deep_linear(3, (2,), 1, rng=rng, n_runs=2)
    rule = lm.InnerLoop(1, 0.1)
    mg = meta_value_and_grad(params, batch.support, batch.query, rule)
    assert mg.value.shape == (2,)
    for r in range(2):
        one = meta_value_and_grad(tuple(W[r] for W in params), batch.support, batch.query, rule)
        assert rel_err(mg.params[0][r], one.params[0]) <= 1e-12


def test_meta_loss_matches_per_task_reference_on_data():
    """An independent per-task loop on the raw data (MSE, explicit layer gradients) gives the same meta-loss."""
    rng = np.random.default_rng(8)
    fam = lm.GaussianRegression(d=3, out=2, noise_std=0.4)
    tasks = fam.sample_tasks(4, rng)
    Xs, Ys = tasks.sample_data(5, rng)
    Xq, Yq = tasks.sample_data(6, rng)
    params = lm.init_deep_linear(3, (4,), 2, rng=rng)
    alpha, k = 0.2, 2
    ref = []
    for t in range(4):
        W1, W2 = params
        for _ in range(k):
            R = (Xs[t] @ W1.T @ W2.T - Ys[t]) / len(Xs[t])  # dℓ/dŶ for ℓ = ½ mean ‖Ŷ − Y‖²
            g2 = R.T @ (Xs[t] @ W1.T)
            g1 = W2.T @ R.T @ Xs[t]
            W1, W2 = W1 - alpha * g1, W2 - alpha * g2
        ref.append(0.5 * np.mean(np.sum((Xq[t] @ W1.T @ W2.T - Yq[t]) ** 2, axis=1)))
    got = meta_loss(params, lm.sample_moments(Xs, Ys), lm.sample_moments(Xq, Yq), lm.InnerLoop(k, alpha))
    assert abs(got - np.mean(ref)) <= 1e-12 * abs(np.mean(ref))


def test_logistic_meta_gradient_matches_central_differences():
    rng = np.random.default_rng(9)
    fam = lm.BinaryClassification(d=4, label_noise=0.1)
    w = fam.sample_tasks(5, rng)
    batch = fam.meta_batch(w, 8, 10, rng)
    params = lm.init_deep_linear(4, (3, 3), 1, rng=rng)
    for layers in ["all", "last", "first"]:
        rule = lm.InnerLoop(2, 0.5, layers)
        mg = meta_value_and_grad(params, batch.support, batch.query, rule)
        f = lambda p: meta_loss(p, batch.support, batch.query, rule)
        for l in range(3):
            def g(Wl, l=l):
                p = list(params)
                p[l] = Wl
                return f(tuple(p))

            assert rel_err(mg.params[l], central_diff_grad(g, params[l], h=1e-3)) <= 1e-7


def test_preconditioned_meta_gradient_in_phi_matches_complex_step():
    params, batch, rule = random_problem(21, depth=3, k=2, layers="all")
    for pc in (lm.MetaSGD(), lm.KFO(psd=True), lm.KFO(psd=False), lm.MetaCurvature()):
        rng = np.random.default_rng(1)
        phi = tuple(tuple(p + 0.2 * rng.standard_normal(p.shape) for p in pl)
                    for pl in pc.init(params, rule.adapted_layers(3)))
        mg = meta_value_and_grad(params, batch.support, batch.query, rule, pc, phi)
        for l, pl in enumerate(phi):
            for i, p in enumerate(pl):
                def f(x, l=l, i=i):
                    new = [list(q) for q in phi]
                    new[l][i] = x
                    return meta_loss(params, batch.support, batch.query, rule, pc, tuple(map(tuple, new)))

                assert rel_err(mg.phi[l][i], complex_step_grad(f, p)) <= 1e-9
        f = lambda p: meta_loss(p, batch.support, batch.query, rule, pc, phi)
        assert rel_err(mg.params[0], layer_fd(params, f, 0)) <= 1e-9


def test_nal_meta_loss_is_pre_adaptation_loss():
    params, batch, _ = random_problem(13, depth=2)
    nal = meta_loss(params, batch.support, batch.query, lm.InnerLoop(3, 0.5, "none"))
    assert np.allclose(nal, lm.pre_adaptation_loss(params, batch.query), rtol=1e-14)


def test_adapt_shapes():
    params, batch, _ = random_problem(17, depth=3)
    T = batch.support.n_tasks
    ad = lm.adapt(params, batch.support, lm.InnerLoop(1, 0.1, "last"))
    assert ad[-1].shape[-3] == T and ad[0].shape[-3] == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(support="wrong_d"), "d="),
        (dict(params="unchained"), "chain"),
        (dict(params="nonfinite"), "non-finite"),
        (dict(rule="notarule"), "InnerLoop"),
        (dict(query="ntasks"), "tasks"),
    ],
)
def test_bad_input_raises_clear_value_error(kwargs, match):
    rng = np.random.default_rng(0)
    fam = lm.GaussianRegression(d=3)
    batch = lm.meta_batch(fam.sample_tasks(4, rng), 5, 5, rng)
    params = lm.init_deep_linear(3, (2,), 1, rng=rng)
    support, query, rule = batch.support, batch.query, lm.InnerLoop()
    if kwargs.get("support") == "wrong_d":
        support = lm.meta_batch(lm.GaussianRegression(d=4).sample_tasks(4, rng), 5, 5, rng).support
    if kwargs.get("params") == "unchained":
        params = (params[0], rng.standard_normal((1, 5)))
    if kwargs.get("params") == "nonfinite":
        params = (params[0], np.full((1, 2), np.nan))
    if kwargs.get("rule") == "notarule":
        rule = {"steps": 1}
    if kwargs.get("query") == "ntasks":
        query = lm.meta_batch(fam.sample_tasks(3, rng), 5, 5, rng).query
    with pytest.raises(ValueError, match=match):
        meta_value_and_grad(params, support, query, rule)


def test_logistic_loss_requires_scalar_output():
    rng = np.random.default_rng(0)
    loss = LogisticLoss(rng.standard_normal((2, 5, 3)), (rng.random((2, 5)) > 0.5).astype(float))
    params = lm.init_deep_linear(3, (), 2, rng=rng)
    with pytest.raises(ValueError, match="out="):
        meta_loss(params, loss, loss, lm.InnerLoop())
