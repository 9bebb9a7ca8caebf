"""Inner-loop gradient transforms (linmeta.preconditioners): maps, adjoints, φ-gradients, reductions to MAML."""
import numpy as np
import pytest

import linmeta as lm
from linmeta import preconditioners as pc

from .helpers import complex_step_grad, rel_err

TRANSFORMS = [pc.MetaSGD(), pc.KFO(psd=True), pc.KFO(psd=False), pc.MetaCurvature()]
IDS = ["meta-sgd", "kfo-psd", "kfo-nonpsd", "meta-curvature"]


def _phi(transform, rng, n, m, runs=(2,)):
    if isinstance(transform, pc.KFO):
        return (rng.standard_normal(runs + (n, n)), rng.standard_normal(runs + (m, m)))
    return (rng.standard_normal(runs + (n, m)),)


def _vec(A):
    return np.swapaxes(A, -1, -2).reshape(A.shape[:-2] + (-1,))


def _matrix(transform, phi_r):
    """The transform as an explicit (nm x nm) matrix on column-major vec(g), from the definitions."""
    if isinstance(transform, pc.KFO):
        L, R = phi_r
        if transform.psd:
            L, R = L.T @ L, R.T @ R
        return np.kron(R.T, L)
    return np.diag(_vec(phi_r[0]))


@pytest.mark.parametrize("transform", TRANSFORMS, ids=IDS)
def test_apply_matches_its_definition_and_adjoint_is_the_transpose(transform):
    rng = np.random.default_rng(0)
    n, m, T = 3, 4, 5
    phi = _phi(transform, rng, n, m)
    g, v = rng.standard_normal((2, T, n, m)), rng.standard_normal((2, T, n, m))
    U, Ut = transform.apply(phi, g), transform.adjoint(phi, v)
    for r in range(2):
        A = _matrix(transform, tuple(p[r] for p in phi))
        for t in range(T):
            assert rel_err(_vec(U[r, t]), A @ _vec(g[r, t])) <= 1e-13
            assert rel_err(_vec(Ut[r, t]), A.T @ _vec(v[r, t])) <= 1e-13
    # ⟨v, U g⟩ = ⟨Uᵀ v, g⟩
    assert np.allclose(np.sum(v * U, axis=(-2, -1)), np.sum(Ut * g, axis=(-2, -1)), rtol=1e-12, atol=0)


@pytest.mark.parametrize("transform", TRANSFORMS, ids=IDS)
def test_param_vjp_is_the_gradient_of_the_pairing(transform):
    """param_vjp = ∂/∂φ Σ_t ⟨v_t, U(g_t; φ)⟩, against complex-step differences in every factor."""
    rng = np.random.default_rng(1)
    n, m, T = 3, 2, 4
    phi = _phi(transform, rng, n, m, runs=())
    g, v = rng.standard_normal((T, n, m)), rng.standard_normal((T, n, m))
    vjp = transform.param_vjp(phi, g, v)
    assert len(vjp) == len(phi)
    for i in range(len(phi)):
        def pairing(x, i=i):
            p = list(phi)
            p[i] = x
            return np.sum(v * transform.apply(tuple(p), g))
        assert rel_err(vjp[i], complex_step_grad(pairing, phi[i])) <= 1e-12


@pytest.mark.parametrize("transform", TRANSFORMS, ids=IDS)
def test_identity_init_reduces_to_maml(transform):
    rng = np.random.default_rng(2)
    params = lm.init_deep_linear(4, (3, 5), 2, rng=rng, n_runs=3)
    support = lm.sample_moments(rng.standard_normal((3, 6, 7, 4)), rng.standard_normal((3, 6, 7, 2)))
    query = lm.sample_moments(rng.standard_normal((3, 6, 9, 4)), rng.standard_normal((3, 6, 9, 2)))
    rule = lm.InnerLoop(3, 0.07)
    phi = transform.init(params, rule.adapted_layers(3))
    for l, W in enumerate(params):  # identity initialisation
        g = rng.standard_normal(W.shape[:-2] + (6,) + W.shape[-2:])
        assert np.array_equal(transform.apply(phi[l], g), g)
    ref = lm.meta_value_and_grad(params, support, query, rule)
    got = lm.meta_value_and_grad(params, support, query, rule, transform)
    for a, b in zip(lm.adapt(params, support, rule, transform), lm.adapt(params, support, rule)):
        assert rel_err(a, b) <= 1e-13
    assert rel_err(got.value, ref.value) <= 1e-13
    for a, b in zip(got.params, ref.params):
        assert rel_err(a, b) <= 1e-12


def test_identity_transform_has_no_parameters():
    t = pc.Identity()
    params = lm.init_deep_linear(3, (2,), 1, rng=0)
    assert t.init(params, (0, 1)) == ((), ())
    g = np.ones((1, 2, 3))
    assert t.apply((), g) is g and t.adjoint((), g) is g and t.param_vjp((), g, g) == ()


def test_frozen_layers_get_no_parameters():
    params = lm.init_deep_linear(3, (2,), 1, rng=0)
    for t in TRANSFORMS:
        phi = t.init(params, (1,))
        assert phi[0] == () and len(phi[1]) >= 1


def _meta_problem(seed, depth, layers, steps):
    rng = np.random.default_rng(seed)
    widths = (3,) * (depth - 1)
    params = lm.init_deep_linear(3, widths, 2, rng=rng)
    support = lm.sample_moments(rng.standard_normal((4, 6, 3)), rng.standard_normal((4, 6, 2)))
    query = lm.sample_moments(rng.standard_normal((4, 8, 3)), rng.standard_normal((4, 8, 2)))
    return rng, params, support, query, lm.InnerLoop(steps, 0.1, layers=layers)


@pytest.mark.parametrize("transform", TRANSFORMS, ids=IDS)
@pytest.mark.parametrize("depth,layers,steps", [(1, "all", 2), (2, "all", 2), (3, (0, 2), 1)])
def test_meta_gradient_in_phi_against_complex_step(transform, depth, layers, steps):
    rng, params, support, query, rule = _meta_problem(3 + depth, depth, layers, steps)
    adapted = rule.adapted_layers(depth)
    phi0 = transform.init(params, adapted)
    # a random point near the identity, so the transform is not trivial
    phi = tuple(tuple(p + 0.3 * rng.standard_normal(p.shape) for p in pl) for pl in phi0)
    mg = lm.meta_value_and_grad(params, support, query, rule, transform, phi)
    for l in adapted:
        for i in range(len(phi[l])):
            def f(x, l=l, i=i):
                p = [list(pl) for pl in phi]
                p[l][i] = x
                return lm.meta_loss(params, support, query, rule, transform, tuple(tuple(pl) for pl in p))
            assert rel_err(mg.phi[l][i], complex_step_grad(f, phi[l][i])) <= 1e-10
    # and the gradient in θ at that φ
    for l in range(depth):
        def g(x, l=l):
            p = list(params)
            p[l] = x
            return lm.meta_loss(tuple(p), support, query, rule, transform, phi)
        assert rel_err(mg.params[l], complex_step_grad(g, params[l])) <= 1e-10


def test_meta_gradient_in_phi_with_run_axis_sums_tasks_not_runs():
    rng = np.random.default_rng(11)
    params = lm.init_deep_linear(3, (), 2, rng=rng, n_runs=2)
    support = lm.sample_moments(rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((2, 5, 6, 2)))
    query = lm.sample_moments(rng.standard_normal((2, 5, 8, 3)), rng.standard_normal((2, 5, 8, 2)))
    rule = lm.InnerLoop(2, 0.1)
    t = pc.KFO(psd=True)
    phi = tuple(tuple(p + 0.2 * rng.standard_normal(p.shape) for p in pl) for pl in t.init(params, (0,)))
    mg = lm.meta_value_and_grad(params, support, query, rule, t, phi)
    assert mg.phi[0][0].shape == (2, 2, 2) and mg.phi[0][1].shape == (2, 3, 3)
    for r in range(2):  # each run's gradient equals that of the run alone
        p_r = (params[0][r],)
        sup_r = lm.QuadraticLoss(support.A[r], support.B[r], support.c[r])
        q_r = lm.QuadraticLoss(query.A[r], query.B[r], query.c[r])
        single = lm.meta_value_and_grad(p_r, sup_r, q_r, rule, t, ((phi[0][0][r], phi[0][1][r]),))
        assert rel_err(mg.phi[0][0][r], single.phi[0][0]) <= 1e-12
        assert rel_err(mg.phi[0][1][r], single.phi[0][1]) <= 1e-12


def test_meta_sgd_is_a_per_parameter_step():
    """Meta-SGD with λ = c everywhere equals MAML with step c·α."""
    rng = np.random.default_rng(12)
    params = lm.init_deep_linear(3, (4,), 1, rng=rng)
    support = lm.sample_moments(rng.standard_normal((3, 6, 3)), rng.standard_normal((3, 6, 1)))
    phi = tuple((2.5 * np.ones(W.shape),) for W in params)
    a = lm.adapted_map(params, support, lm.InnerLoop(2, 0.04), pc.MetaSGD(), phi)
    b = lm.adapted_map(params, support, lm.InnerLoop(2, 0.1))
    assert rel_err(a, b) <= 1e-13


def test_kfo_psd_uses_gram_factors():
    rng = np.random.default_rng(13)
    L, R = rng.standard_normal((2, 2)), rng.standard_normal((3, 3))
    g = rng.standard_normal((1, 2, 3))
    assert rel_err(pc.KFO(psd=True).apply((L, R), g)[0], L.T @ L @ g[0] @ R.T @ R) <= 1e-14
    assert rel_err(pc.KFO(psd=False).apply((L, R), g)[0], L @ g[0] @ R) <= 1e-14
    assert rel_err(pc.MetaCurvature().apply((L, R), g)[0], L @ g[0] @ R) <= 1e-14
    assert pc.KFO().name == "kfo" and pc.KFO(psd=False).name == "kfo-nonpsd"
    assert pc.MetaCurvature().name == "meta-curvature"


def test_get_by_name_and_errors():
    assert isinstance(pc.get(None), pc.Identity)
    assert isinstance(pc.get("meta-sgd"), pc.MetaSGD)
    assert isinstance(pc.get("kfo"), pc.KFO) and pc.get("kfo").psd
    assert isinstance(pc.get("meta-curvature"), pc.MetaCurvature)
    t = pc.KFO(psd=False)
    assert pc.get(t) is t
    with pytest.raises(ValueError, match="precond must be a Preconditioner or one of"):
        pc.get("adam")


# ---------------------------------------------------------------------------------------------
# the registry contract: every registered preconditioner, present and future, checked the same way
# ---------------------------------------------------------------------------------------------

REGISTERED = pc.names()


def test_registry_names_round_trip():
    assert "maml" in REGISTERED and "kfo-nonpsd" in REGISTERED
    for name in REGISTERED:
        p = pc.get(name)
        assert isinstance(p, pc.Preconditioner)
        assert p.name == name and pc.get(p.name) == p
    # a configuration's name finds an equal configuration, also for ones built by hand
    for p in (pc.KFO(psd=False), pc.KFO(update_factors=True), pc.MetaCurvature(update_factors=True)):
        assert pc.get(p.name) == p


def test_register_refuses_a_clash_and_a_non_preconditioner():
    with pytest.raises(ValueError, match="already registered"):
        pc.register(pc.MetaSGD(init_value=0.5))  # named "meta-sgd", but not the registered configuration
    with pytest.raises(TypeError, match="Preconditioner instance"):
        pc.register("kfo")
    assert isinstance(pc.Identity(), pc.Preconditioner) and not isinstance(pc.KFO(), pc.Identity)


def _perturbed(phi, rng, scale=0.3):
    return tuple(tuple(p + scale * rng.standard_normal(p.shape) for p in pl) for pl in phi)


@pytest.mark.parametrize("name", REGISTERED)
@pytest.mark.parametrize("depth,layers,steps", [(1, "all", 2), (2, "all", 2), (3, (0, 2), 1)])
def test_registered_meta_gradient_against_complex_step(name, depth, layers, steps):
    """Gradient in the layers and in φ (at a random φ near the identity) against complex-step differences."""
    transform = pc.get(name)
    rng, params, support, query, rule = _meta_problem(20 + depth, depth, layers, steps)
    phi = _perturbed(transform.init(params, rule.adapted_layers(depth)), rng)
    mg = lm.meta_value_and_grad(params, support, query, rule, transform, phi)
    for l in range(depth):
        def f(x, l=l):
            p = list(params)
            p[l] = x
            return lm.meta_loss(tuple(p), support, query, rule, transform, phi)
        assert rel_err(mg.params[l], complex_step_grad(f, params[l])) <= 1e-9
        for i in range(len(phi[l])):
            def h(x, l=l, i=i):
                q = [list(pl) for pl in phi]
                q[l][i] = x
                return lm.meta_loss(params, support, query, rule, transform, tuple(tuple(pl) for pl in q))
            assert rel_err(mg.phi[l][i], complex_step_grad(h, phi[l][i])) <= 1e-9


@pytest.mark.parametrize("name", REGISTERED)
def test_registered_reduces_to_maml_at_its_identity(name):
    """At its initialisation every transform is MAML: exactly for one inner step, and for several steps unless its
    own parameters update inside the inner loop (then they leave the identity after the first step)."""
    transform = pc.get(name)
    rng, params, support, query, _ = _meta_problem(31, 3, "all", 1)
    for steps in (1, 3):
        rule = lm.InnerLoop(steps, 0.07)
        got = lm.meta_value_and_grad(params, support, query, rule, transform)
        ref = lm.meta_value_and_grad(params, support, query, rule)
        same = rel_err(got.value, ref.value) <= 1e-13 and all(
            rel_err(a, b) <= 1e-12 for a, b in zip(got.params, ref.params))
        assert same == (steps == 1 or not transform.updates_in_inner_loop)


@pytest.mark.torch
@pytest.mark.parametrize("name", REGISTERED)
def test_registered_torch_agrees_with_numpy(name):
    torch = pytest.importorskip("torch")
    from linmeta._backend import to_backend

    transform = pc.get(name)
    rng, params, support, query, rule = _meta_problem(41, 2, "all", 2)
    phi = _perturbed(transform.init(params, rule.adapted_layers(2)), rng)
    ref = lm.meta_value_and_grad(params, support, query, rule, transform, phi)
    got = lm.meta_value_and_grad(to_backend(params, "torch"), support.to("torch"), query.to("torch"), rule,
                                 transform, tuple(to_backend(pl, "torch") for pl in phi))
    assert isinstance(got.value, torch.Tensor)
    assert rel_err(got.value.numpy(), ref.value) <= 1e-13
    for a, b in zip(got.params, ref.params):
        assert rel_err(a.numpy(), b) <= 1e-12
    for al, bl in zip(got.phi, ref.phi):
        for a, b in zip(al, bl):
            assert rel_err(a.numpy(), b) <= 1e-12
