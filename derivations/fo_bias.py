"""Derivation: FO-MAML's fixed-point bias on quadratic tasks (``linmeta.theory.fo_bias``).

Population inner steps, task type c: curvature H_c, optimum mean μ_c, P_c = (I − αH_c)^k.
MAML meta-gradient  E[P H (w_k − w*)] = E[P H P](w − μ)  →  w_MAML = (Σ p G_c)⁻¹ Σ p G_c μ_c,  G = P H P;
FO-MAML gradient    E[H (w_k − w*)]   = E[H P](w − μ)    →  w_FO   = (Σ p F_c)⁻¹ Σ p F_c μ_c,  F = H P.

1. Matrix case (d = 2, two types): both fixed points are (Σ p W_c)⁻¹ Σ p W_c μ_c with W_c a function of H_c
   alone, so w_FO − w_MAML vanishes identically when H_1 = H_2 (shared Hessian: W_1 = W_2, for symbolic
   W) and when μ_1 = μ_2 (identical optima, any weights); an exact rational instance (k = 1, 2) shows it
   is non-zero otherwise.
2. Isotropic scalars H_c = λ_c I: b = w_FO − w_MAML = κ (μ_1 − μ_2) with
   κ = p q (f_1 g_2 − f_2 g_1)/((p f_1 + q f_2)(p g_1 + q g_2)), f = λ(1 − αλ)^k, g = λ(1 − αλ)^{2k},
   and f_1 g_2 − f_2 g_1 = λ_1λ_2 x_1^k x_2^k (x_2^k − x_1^k), x_c = 1 − αλ_c.  x_2^k − x_1^k has the
   factor (λ_1 − λ_2) for every k, and for even k also (x_1 + x_2) = 2 − α(λ_1 + λ_2) (checked for
   k = 1..4); for odd k the cofactor is positive unless x_1 = x_2 = 0.  κ = kαpqλ_1λ_2(λ_1 − λ_2)/(pλ_1 + qλ_2)²
   + O(α²) (series in α for k = 1, 2, 3).
3. F_MAML(w) = ½ (w − w_MAML)ᵀ H (w − w_MAML) + const with H = Σ p G_c, so the excess of w_FO is ½ bᵀ H b
   and ∇F_MAML(w_FO) = H b.
"""
from functools import lru_cache

import numpy as np
import sympy as sp

D = 2


def _sym(name):
    a, b, c = sp.symbols(f"{name}11 {name}12 {name}22", real=True)
    return sp.Matrix([[a, b], [b, c]])


def _fixed_point(weights, mus):
    den = sum(weights, sp.zeros(D, D))
    num = sum((G * mu for G, mu in zip(weights, mus)), sp.zeros(D, 1))
    return den.adjugate() * num / den.det()


@lru_cache(maxsize=None)
def derive_matrix():
    """The two vanishing conditions for any weight matrices, and a generic non-zero instance.

    Both fixed points have the form (Σ p_c W_c)⁻¹ Σ p_c W_c μ_c with W_c a function of H_c alone
    (W = P H P for MAML, H P for FO-MAML).  (i) H_1 = H_2 makes W_1 = W_2 = W for both methods, and then
    the fixed point is p μ_1 + q μ_2 for every invertible W; (ii) μ_1 = μ_2 = μ gives μ for all weights.
    """
    p = sp.Symbol("p", positive=True)
    W1, W2 = sp.Matrix(2, 2, sp.symbols("u0:4")), sp.Matrix(2, 2, sp.symbols("v0:4"))
    mu1, mu2 = sp.Matrix(sp.symbols("m1_0:2", real=True)), sp.Matrix(sp.symbols("m2_0:2", real=True))
    shared = _fixed_point([p * W1, (1 - p) * W1], [mu1, mu2]) - (p * mu1 + (1 - p) * mu2)
    assert shared.applyfunc(sp.simplify) == sp.zeros(D, 1), "shared Hessian"
    same = _fixed_point([p * W1, (1 - p) * W2], [mu1, mu1]) - mu1
    assert same.applyfunc(sp.simplify) == sp.zeros(D, 1), "identical optima"
    # generically non-zero: an exact rational instance, k = 1 and 2
    alpha = sp.Rational(1, 5)
    H1, H2 = sp.Matrix([[1, sp.Rational(1, 4)], [sp.Rational(1, 4), 2]]), sp.Matrix([[sp.Rational(1, 2), 0], [0, 1]])
    m1, m2 = sp.Matrix([1, 0]), sp.Matrix([-1, 2])
    for k in (1, 2):
        b = _bias_exact(H1, H2, m1, m2, sp.Rational(1, 3), alpha, k)
        assert b != sp.zeros(D, 1), "generically non-zero"
    return True


def _bias_exact(H1, H2, mu1, mu2, p, alpha, k):
    """w_FO − w_MAML from the defining weights, in sympy arithmetic (exact rationals or 30-digit floats)."""
    I = sp.eye(D)
    P1, P2 = (I - alpha * H1) ** k, (I - alpha * H2) ** k
    w_maml = _fixed_point([p * P1 * H1 * P1, (1 - p) * P2 * H2 * P2], [mu1, mu2])
    w_fo = _fixed_point([p * H1 * P1, (1 - p) * H2 * P2], [mu1, mu2])
    return (w_fo - w_maml).applyfunc(sp.nsimplify if all(x.is_Rational for x in H1) else (lambda x: x))


@lru_cache(maxsize=None)
def derive_scalar():
    """The isotropic two-type coefficient κ(p, λ_1, λ_2, α) for k = 1..4, its factorisation and its series."""
    p, l1, l2, alpha = sp.symbols("p lambda_1 lambda_2 alpha", positive=True)
    mu1, mu2 = sp.symbols("mu_1 mu_2", real=True)
    q = 1 - p
    out = {}
    for k in (1, 2, 3, 4):
        f = [lam * (1 - alpha * lam) ** k for lam in (l1, l2)]
        g = [lam * (1 - alpha * lam) ** (2 * k) for lam in (l1, l2)]
        w_maml = (p * g[0] * mu1 + q * g[1] * mu2) / (p * g[0] + q * g[1])
        w_fo = (p * f[0] * mu1 + q * f[1] * mu2) / (p * f[0] + q * f[1])
        kappa = p * q * (f[0] * g[1] - f[1] * g[0]) / ((p * f[0] + q * f[1]) * (p * g[0] + q * g[1]))
        assert sp.cancel(sp.together(w_fo - w_maml - kappa * (mu1 - mu2))) == 0
        x1, x2 = 1 - alpha * l1, 1 - alpha * l2
        cross = l1 * l2 * x1**k * x2**k * (x2**k - x1**k)
        assert sp.expand(f[0] * g[1] - f[1] * g[0] - cross) == 0
        diff = sp.factor(sp.expand(x2**k - x1**k))
        assert sp.simplify(diff.subs(l2, l1)) == 0  # factor (λ_1 − λ_2)
        if k % 2 == 0:
            assert sp.simplify(diff.subs(l2, 2 / alpha - l1)) == 0  # factor 2 − α(λ_1 + λ_2)
        else:
            # (x2^k − x1^k)/(x2 − x1) = Σ x1^i x2^(k−1−i) > 0 unless x1 = x2 = 0 (a positive-definite form for odd k)
            a, b = sp.symbols("a b", real=True)
            cof = sp.cancel((b**k - a**k) / (b - a))
            assert sp.simplify(cof.subs(b, 0) - a ** (k - 1)) == 0
        # first order in α: κ(0) = 0 and dκ/dα(0) = k p q λ_1 λ_2 (λ_1 − λ_2)/(p λ_1 + q λ_2)²
        claim = k * alpha * p * q * l1 * l2 * (l1 - l2) / (p * l1 + q * l2) ** 2
        assert kappa.subs(alpha, 0) == 0
        assert sp.cancel(sp.diff(kappa, alpha).subs(alpha, 0) * alpha - claim) == 0, k
        exc = sp.Rational(1, 2) * (p * g[0] + q * g[1]) * kappa**2
        out[k] = sp.lambdify([p, l1, l2, alpha], (kappa, exc, claim), "numpy")
    return out


def verify(seed: int = 0) -> None:
    import linmeta as lm
    from linmeta.theory import fo_bias as FB

    rng = np.random.default_rng(seed)

    def spd():
        L = rng.standard_normal((D, D))
        S = L @ L.T / 2 + 0.2 * np.eye(D)
        return S / np.linalg.eigvalsh(S)[-1]

    # 1. matrix case: the discrete closed form and the family (landscape) version both match the defining
    #    weights evaluated in 30-digit sympy arithmetic
    derive_matrix()
    F30 = lambda x: sp.Float(float(x), 30)
    for k in (1, 2):
        for _ in range(2):
            H1, H2 = spd(), spd()
            mu1, mu2 = rng.standard_normal(D), rng.standard_normal(D)
            p, alpha = float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.1, 0.6))
            expect = np.array(_bias_exact(sp.Matrix(H1).applyfunc(F30), sp.Matrix(H2).applyfunc(F30),
                                          sp.Matrix(mu1).applyfunc(F30), sp.Matrix(mu2).applyfunc(F30), F30(p),
                                          F30(alpha), k), dtype=float).reshape(-1)
            got = FB.discrete_fixed_points(np.stack([H1, H2]), np.stack([mu1, mu2]), alpha, k, [p, 1 - p]).bias[0]
            assert np.max(np.abs(got - expect)) <= 1e-10 * max(1e-3, np.max(np.abs(expect))), (k, got, expect)
            fam = lm.TaskMixture((lm.GaussianRegression(d=D, mean=mu1[None], cov=0.3, input_cov=H1),
                                  lm.GaussianRegression(d=D, mean=mu2[None], cov=0.1, input_cov=H2)), (p, 1 - p))
            fam_b = FB.fo_bias(fam, None, alpha, k).bias[0]
            assert np.max(np.abs(fam_b - expect)) <= 1e-10 * max(1e-3, np.max(np.abs(expect)))
    # 2. isotropic scalars: κ, excess, first-order term
    fs = derive_scalar()
    for k, fk in fs.items():
        for _ in range(3):
            p, l1, l2 = float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 1.5)), float(rng.uniform(0.2, 1.5))
            alpha = float(rng.uniform(0.05, 0.6))
            kappa, exc, first = (float(v) for v in fk(p, l1, l2, alpha))
            got = FB.two_type_bias(p, l1, l2, alpha, k)
            assert abs(got.kappa - kappa) <= 1e-12 * abs(kappa), (k, got.kappa, kappa)
            assert abs(got.excess_per_distance2 - exc) <= 1e-12 * exc
            assert abs(got.first_order - first) <= 1e-12 * abs(first)
        # exact zeros at the vanishing conditions
        assert FB.two_type_bias(0.3, 0.7, 0.7, 0.4, k).kappa == 0.0
        assert FB.two_type_bias(0.3, 0.5, 1.2, 2.0, k).kappa == 0.0  # α λ_1 = 1
        if k % 2 == 0:
            assert abs(FB.two_type_bias(0.3, 0.5, 1.5, 1.0, k).kappa) < 1e-15  # α(λ_1 + λ_2) = 2
        else:
            assert abs(FB.two_type_bias(0.3, 0.5, 1.5, 1.0, k).kappa) > 1e-3
    # 3. excess and gradient at the FO fixed point from the family objective itself
    fam = FB.isotropic_two_type_family(0.4, 0.6, 1.3, [1.0, -0.5], [-0.3, 0.8], spread=0.4)
    r = FB.fo_bias(fam, None, 0.35, 2)
    from linmeta.theory import landscape

    e = landscape.expected_excess_risk(r.w_fo, fam, None, 0.35, 2) - landscape.expected_excess_risk(r.w_maml, fam, None, 0.35, 2)
    assert abs(float(e) - r.excess) <= 1e-10 * r.excess


if __name__ == "__main__":
    derive_matrix()
    print("w_FO - w_MAML = 0 for a shared Hessian and for identical optima (any weight matrices, d = 2)")
    derive_scalar()
    print("kappa = p q (f1 g2 - f2 g1)/((p f1 + q f2)(p g1 + q g2)), f1 g2 - f2 g1 = l1 l2 x1^k x2^k (x2^k - x1^k)")
    print("kappa = k alpha p q l1 l2 (l1 - l2)/(p l1 + q l2)^2 + O(alpha^2)")
    verify()
    print("verified against linmeta.theory.fo_bias")
