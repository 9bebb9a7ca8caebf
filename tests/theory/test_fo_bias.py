"""Tests of linmeta.theory.fo_bias: the FO-MAML bias against independent computations."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.theory import fo_bias as FB
from linmeta.theory import landscape


def _spd(rng, d=2):
    X = rng.standard_normal((d, d))
    S = X @ X.T / d + 0.2 * np.eye(d)
    return S / np.linalg.eigvalsh(S)[-1]


def test_discrete_fixed_points_are_the_zeros_of_the_two_gradients():
    rng = np.random.default_rng(0)
    H = np.stack([_spd(rng, 3) for _ in range(4)])
    w = rng.standard_normal((4, 3))
    p = rng.dirichlet(np.ones(4))
    r = FB.discrete_fixed_points(H, w, 0.4, 2, p)
    P = [np.linalg.matrix_power(np.eye(3) - 0.4 * h, 2) for h in H]
    # MAML meta-gradient Σ p P H P (w − w_i) and FO gradient Σ p H P (w − w_i), written out per task
    g_maml = sum(pi * Pi @ h @ Pi @ (r.w_maml[0] - wi) for pi, Pi, h, wi in zip(p, P, H, w))
    g_fo = sum(pi * h @ Pi @ (r.w_fo[0] - wi) for pi, Pi, h, wi in zip(p, P, H, w))
    assert np.max(np.abs(g_maml)) < 1e-13 and np.max(np.abs(g_fo)) < 1e-13
    assert r.norm > 1e-2
    # excess and gradient at the FO point from the quadratic itself
    Hm = sum(pi * Pi @ h @ Pi for pi, Pi, h in zip(p, P, H))
    F = lambda v: sum(pi * 0.5 * (v - wi) @ Pi @ h @ Pi @ (v - wi) for pi, Pi, h, wi in zip(p, P, H, w))
    assert np.isclose(F(r.w_fo[0]) - F(r.w_maml[0]), r.excess, rtol=1e-10)
    assert np.isclose(np.linalg.norm(Hm @ (r.w_fo[0] - r.w_maml[0])), r.grad_norm, rtol=1e-12)


def test_family_bias_uses_the_landscape_optima_and_sees_k_shot_supports():
    rng = np.random.default_rng(1)
    fam = lm.TaskMixture((lm.GaussianRegression(d=2, mean=rng.standard_normal((1, 2)), cov=0.2, input_cov=_spd(rng)),
                          lm.GaussianRegression(d=2, mean=rng.standard_normal((1, 2)), cov=0.5, input_cov=_spd(rng))),
                         (0.3, 0.7))
    r = FB.fo_bias(fam, 6, 0.3, 2)
    assert np.allclose(r.w_maml, landscape.maml_optimum(fam, 6, 0.3, 2), atol=0, rtol=0)
    assert np.allclose(r.w_fo, landscape.fo_maml_optimum(fam, 6, 0.3, 2), atol=0, rtol=0)
    e = landscape.expected_excess_risk(r.w_fo, fam, 6, 0.3, 2) - landscape.expected_excess_risk(r.w_maml, fam, 6, 0.3, 2)
    assert np.isclose(float(e), r.excess, rtol=1e-9)
    assert not np.allclose(r.bias, FB.fo_bias(fam, None, 0.3, 2).bias)  # the support size matters


def test_two_type_closed_form_equals_the_family_version():
    for k in (1, 2, 3):
        fam = FB.isotropic_two_type_family(0.35, 0.6, 1.4, [1.0, 0.5, 0.0], [-0.5, 0.2, 1.0], spread=0.3)
        t = FB.two_type_bias(0.35, 0.6, 1.4, 0.25, k)
        r = FB.fo_bias(fam, None, 0.25, k)
        dmu = np.array([1.5, 0.3, -1.0])
        assert np.max(np.abs(r.bias[0] - t.kappa * dmu)) < 1e-13
        assert np.isclose(r.excess, t.excess_per_distance2 * dmu @ dmu, rtol=1e-12)
        assert np.isclose(r.grad_norm, t.grad_per_distance * np.linalg.norm(dmu), rtol=1e-12)


def test_vanishing_conditions_are_exactly_the_zeros():
    rng = np.random.default_rng(2)
    # shared Hessian and identical optima: exact zero in the family version
    S = _spd(rng)
    fam_h = lm.TaskMixture((lm.GaussianRegression(d=2, mean=np.array([[1.0, 0.0]]), input_cov=S),
                            lm.GaussianRegression(d=2, mean=np.array([[-1.0, 2.0]]), input_cov=S)), (0.4, 0.6))
    assert FB.fo_bias(fam_h, None, 0.3, 2).norm < 1e-14
    fam_w = lm.TaskMixture((lm.GaussianRegression(d=2, mean=np.array([[1.0, 0.3]]), input_cov=_spd(rng)),
                            lm.GaussianRegression(d=2, mean=np.array([[1.0, 0.3]]), input_cov=_spd(rng))), (0.4, 0.6))
    assert FB.fo_bias(fam_w, None, 0.3, 2).norm < 1e-14
    # scalar zeros: solved type, even k at α(λ1 + λ2) = 2; and a scan finds no other zero
    for k in (1, 2, 3, 4):
        assert FB.two_type_bias_vanishes(0.5, 0.5, 1.5, 2.0, k)
        assert FB.two_type_bias(0.5, 0.5, 1.5, 2.0, k).kappa == 0.0
        assert FB.two_type_bias_vanishes(0.5, 0.5, 1.5, 1.0, k) == (k % 2 == 0)
        a = np.linspace(0.01, 0.6, 300)
        kap = np.array([FB.two_type_bias(0.5, 0.5, 1.5, x, k).kappa for x in a])
        assert np.all(kap < 0)  # no zero on (0, 0.6]: the only zeros are the derived ones


def test_bias_is_linear_in_alpha_at_small_alpha():
    for k in (1, 3):
        t = [FB.two_type_bias(0.3, 0.4, 1.1, a, k) for a in (1e-4, 2e-4)]
        assert np.isclose(t[0].kappa / t[0].first_order, 1.0, atol=1e-3)
        assert np.isclose(t[1].kappa / t[0].kappa, 2.0, rtol=1e-3)


def test_bad_input():
    with pytest.raises(ValueError, match="p must"):
        FB.two_type_bias(1.0, 0.5, 1.0, 0.1)
    with pytest.raises(ValueError, match="lam1"):
        FB.two_type_bias(0.5, -0.5, 1.0, 0.1)
    with pytest.raises(ValueError, match="steps"):
        FB.two_type_bias(0.5, 0.5, 1.0, 0.1, 0)
    with pytest.raises(ValueError, match="optima"):
        FB.discrete_fixed_points(np.stack([np.eye(2)] * 2), np.zeros((3, 2)), 0.1)
    with pytest.raises(ValueError, match="not unique"):
        FB.two_type_bias(0.5, 1.0, 1.0, 1.0, 1)
    with pytest.raises(ValueError, match="mu1 and mu2"):
        FB.isotropic_two_type_family(0.5, 1.0, 2.0, [1.0], [1.0, 2.0])
