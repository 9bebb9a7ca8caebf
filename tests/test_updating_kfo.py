"""KFO factors that update in the inner loop (linmeta.updating_kfo): exact forward rule and meta-gradient."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.meta import adapt, meta_loss, meta_value_and_grad

from .helpers import complex_step_grad, rel_err


def _problem(seed, widths=(3,), d=4, out=2, T=3):
    rng = np.random.default_rng(seed)
    fam = lm.GaussianRegression(d=d, out=out, mean=rng.standard_normal((out, d)), noise_std=0.3)
    batch = lm.meta_batch(fam.sample_tasks(T, rng), 6, 7, rng)
    params = lm.init_deep_linear(d, widths, out, rng=rng, scale=0.8)
    return rng, params, batch


def _perturbed_phi(rng, precond, params, rule, scale=0.1):
    return tuple(tuple(p + scale * rng.standard_normal(p.shape) for p in pl)
                 for pl in precond.init(params, rule.adapted_layers(len(params))))


@pytest.mark.parametrize("psd", [True, False])
@pytest.mark.parametrize("widths,layers", [((), "all"), ((3,), "all"), ((3,), "last"), ((3, 2), (0, 2)),
                                           ((3, 2), "first")])
@pytest.mark.parametrize("k", [2, 3])
def test_meta_gradient_matches_complex_step(psd, widths, layers, k):
    rng, params, batch = _problem(k * 7 + len(widths), widths)
    precond = lm.KFO(psd=psd, update_factors=True)
    # α = 0.05 keeps the inner loop stable for every case (at 0.15 some diverge to 1e69, which the public
    # entry points now refuse with a DivergenceError)
    rule = lm.InnerLoop(k, 0.05, layers)
    phi = _perturbed_phi(rng, precond, params, rule)
    mg = meta_value_and_grad(params, batch.support, batch.query, rule, precond, phi)
    f = lambda p, ph: meta_loss(p, batch.support, batch.query, rule, precond, ph)
    assert np.allclose(mg.value, f(params, phi), rtol=1e-13, atol=0)
    for l in range(len(params)):
        def in_layer(W, l=l):
            p = list(params)
            p[l] = W
            return f(tuple(p), phi)
        assert rel_err(mg.params[l], complex_step_grad(in_layer, params[l])) <= 1e-9
    for l in rule.adapted_layers(len(params)):
        for i in range(2):
            def in_factor(X, l=l, i=i):
                ph = [list(x) for x in phi]
                ph[l][i] = X
                return f(params, tuple(tuple(x) for x in ph))
            assert rel_err(mg.phi[l][i], complex_step_grad(in_factor, phi[l][i])) <= 1e-9


def test_factor_step_is_a_gradient_step_on_the_support_loss():
    """Independent forward reference: the factor update is computed by complex-step differentiation of
    ℓ(θ_{j−1} − α U_φ(g_{j−1})) in φ, one task at a time, not by the module's closed-form V."""
    rng, params, batch = _problem(3, (3,), T=2)
    alpha, psd = 0.1, True
    precond = lm.KFO(psd=psd, update_factors=True)
    rule = lm.InnerLoop(3, alpha, "all")
    phi = _perturbed_phi(rng, precond, params, rule)
    adapted = adapt(params, batch.support, rule, precond, phi)
    eff = (lambda X: X.T @ X) if psd else (lambda X: X)
    for t in range(batch.support.n_tasks):
        loss = batch.support.take([t])

        def layer_grads(theta):
            M = theta[1] @ theta[0]
            G = loss.grad(M)[0]
            return [theta[1].T @ G, G @ theta[0].T]

        def step(theta, factors, grads):
            return [W - alpha * eff(Lf) @ g @ eff(Rf) for W, (Lf, Rf), g in zip(theta, factors, grads)]

        theta = [W.copy() for W in params]
        factors = [list(pl) for pl in phi]
        prev = None
        for j in range(rule.steps):
            g = layer_grads(theta)
            if j >= 1:
                theta_prev, g_prev = prev
                new = []
                for l in range(2):
                    pair = []
                    for i in range(2):
                        def loss_in_factor(X, l=l, i=i):
                            fac = [list(f) for f in factors]
                            fac[l][i] = X
                            th = step(theta_prev, fac, g_prev)
                            return loss.value(th[1] @ th[0])[0]
                        pair.append(factors[l][i] - alpha * complex_step_grad(loss_in_factor, factors[l][i]))
                    new.append(pair)
                factors = new
            prev = (theta, g)
            theta = step(theta, factors, g)
        for l in range(2):
            assert rel_err(adapted[l][t], theta[l]) <= 1e-11


def test_one_inner_step_is_plain_kfo():
    """The factors adapt only from the second step on: with k = 1 the rule is KFO, exactly."""
    rng, params, batch = _problem(4, (3,))
    rule = lm.InnerLoop(1, 0.2, "all")
    for psd in (True, False):
        phi = _perturbed_phi(rng, lm.KFO(psd=psd), params, rule)
        a = meta_value_and_grad(params, batch.support, batch.query, rule, lm.KFO(psd=psd, update_factors=True), phi)
        b = meta_value_and_grad(params, batch.support, batch.query, rule, lm.KFO(psd=psd), phi)
        assert a.value == b.value
        assert all(np.array_equal(x, y) for x, y in zip(a.params, b.params))


def test_adapting_the_factors_changes_the_rule_and_first_order_drops_terms():
    rng, params, batch = _problem(5, (3,))
    rule = lm.InnerLoop(2, 0.2, "all")
    phi = _perturbed_phi(rng, lm.KFO(), params, rule)
    fixed = meta_value_and_grad(params, batch.support, batch.query, rule, lm.KFO(), phi)
    moving = meta_value_and_grad(params, batch.support, batch.query, rule, lm.KFO(update_factors=True), phi)
    assert abs(moving.value - fixed.value) > 1e-6 * abs(fixed.value)
    fo = meta_value_and_grad(params, batch.support, batch.query, lm.InnerLoop(2, 0.2, "all", first_order=True),
                             lm.KFO(update_factors=True), phi)
    assert fo.value == moving.value  # the loss is the same, only the gradient drops terms
    assert rel_err(fo.params[0], moving.params[0]) > 1e-3
    assert rel_err(fo.phi[0][0], moving.phi[0][0]) > 1e-3


def test_names():
    assert lm.KFO(update_factors=True).name == "kfo-updating"
    assert lm.MetaCurvature(update_factors=True).name == "meta-curvature-updating"
    assert lm.KFO().name == "kfo"
