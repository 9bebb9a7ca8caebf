"""Derivation: the MAML, FO-MAML and NAL optima of a mixture of quadratic tasks, and the isotropic weights.

Task type c (probability p_c): optima w* with mean μ_c and covariance C_c, input covariance Σ_c,
post-adaptation curvature A_c (``derivations/landscape_one_step.py``).  The expected objectives are

    F_NAL(w)  = Σ_c p_c [½ (w − μ_c)ᵀ Σ_c (w − μ_c) + ½ tr(Σ_c C_c)] + const,
    F_MAML(w) = Σ_c p_c [½ (w − μ_c)ᵀ A_c (w − μ_c) + ½ tr(A_c C_c)] + const,

so setting the gradients to zero (solved symbolically below for two types in d = 2):

    w_NAL = (Σ p_c Σ_c)⁻¹ Σ p_c Σ_c μ_c,    w_MAML = (Σ p_c A_c)⁻¹ Σ p_c A_c μ_c,

with Hessians Σ p_c Σ_c and Σ p_c A_c.  FO-MAML follows E[∇f(w')] = Σ_c p_c Σ_c B_c (w − μ_c) with
B_c = E[(I − αΣ̂)^k] (the adapted error is (I − αΣ̂)^k(w − w*) plus zero-mean noise), so
w_FO = (Σ p_c Σ_c B_c)⁻¹ Σ p_c Σ_c B_c μ_c.  Isotropic types (Σ_c = ρ_c I, A_c = 2 c_c I): the optima are
weighted means of the centres with weights ∝ p_c ρ_c (NAL) and ∝ p_c c_c (MAML).
``verify`` compares with ``linmeta.theory.landscape``'s optima on random non-isotropic mixtures.
"""
from functools import lru_cache

import numpy as np
import sympy as sp

D = 2


def _sym(name):
    a, b, c = sp.symbols(f"{name}11 {name}12 {name}22", real=True)
    return sp.Matrix([[a, b], [b, c]])


def _linear_parts(field, w):
    """``field = H w − b`` (linear in w): returns (H, b) by differentiation, expanded."""
    H = field.jacobian(w).applyfunc(sp.expand)
    b = (-field.subs({wi: 0 for wi in w})).applyfunc(sp.expand)
    return H, b


@lru_cache(maxsize=None)
def derive():
    """Symbolic stationarity conditions for two task types in d = 2.

    Returns lambdified ``(H, b)`` of ``∇F = H w − b``; the minimiser is ``H⁻¹ b``.
    """
    p = sp.Symbol("p", positive=True)
    G1, G2 = _sym("g"), _sym("h")
    mu1, mu2 = sp.Matrix(sp.symbols("m1_0:2", real=True)), sp.Matrix(sp.symbols("m2_0:2", real=True))
    w = sp.Matrix(sp.symbols("w0:2", real=True))
    F = p * ((w - mu1).T * G1 * (w - mu1))[0, 0] / 2 + (1 - p) * ((w - mu2).T * G2 * (w - mu2))[0, 0] / 2
    grad = sp.Matrix([sp.diff(F, wi) for wi in w])
    H, b = _linear_parts(grad, w)
    zero = lambda M: M.applyfunc(sp.expand) == sp.zeros(*M.shape)
    assert zero(H - (p * G1 + (1 - p) * G2)), "Hessian"
    assert zero(b - (p * G1 * mu1 + (1 - p) * G2 * mu2)), "right-hand side"
    assert zero(sp.hessian(F, list(w)) - H)
    # FO-MAML: the (non-symmetric) first-order field E[Σ B (w − μ)]
    B1, B2 = sp.Matrix(2, 2, sp.symbols("b1_0:4")), sp.Matrix(2, 2, sp.symbols("b2_0:4"))
    Hf, bf = _linear_parts(p * G1 * B1 * (w - mu1) + (1 - p) * G2 * B2 * (w - mu2), w)
    assert zero(Hf - (p * G1 * B1 + (1 - p) * G2 * B2)) and zero(bf - (p * G1 * B1 * mu1 + (1 - p) * G2 * B2 * mu2))
    args = [p, G1[0, 0], G1[0, 1], G1[1, 1], G2[0, 0], G2[0, 1], G2[1, 1], *mu1, *mu2]
    return sp.lambdify(args, H, "numpy"), sp.lambdify(args, b, "numpy")


def _minimiser(p, G1, G2, mu1, mu2):
    fH, fb = derive()
    args = [p, G1[0, 0], G1[0, 1], G1[1, 1], G2[0, 0], G2[0, 1], G2[1, 1], *mu1, *mu2]
    return np.linalg.solve(np.array(fH(*args), dtype=float), np.array(fb(*args), dtype=float).reshape(-1))


def verify(seed: int = 0) -> None:
    import linmeta as lm
    from linmeta.theory import landscape

    derive()
    rng = np.random.default_rng(seed)

    def spd():
        L = rng.standard_normal((D, D))
        return L @ L.T / 2 + 0.1 * np.eye(D)

    S1, S2 = spd() / 2, spd()
    mu1, mu2 = rng.standard_normal(D), rng.standard_normal(D)
    p, alpha, m = float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8)), int(rng.integers(2, 20))
    fam = lm.TaskMixture((lm.GaussianRegression(d=D, mean=mu1[None], cov=0.3, input_cov=S1, noise_std=0.4),
                          lm.GaussianRegression(d=D, mean=mu2[None], cov=0.7, input_cov=S2, noise_std=0.2)), (p, 1 - p))
    expect = _minimiser(p, S1, S2, mu1, mu2)
    got = landscape.nal_optimum(fam)[0]
    assert np.max(np.abs(got - expect)) <= 1e-10 * np.max(np.abs(expect)), ("NAL", got, expect)
    for steps, sampling in ((1, "same"), (2, "same"), (3, "fresh")):
        A1, A2 = (landscape.curvature(S, m, alpha, steps, sampling=sampling).A for S in (S1, S2))
        expect = _minimiser(p, A1, A2, mu1, mu2)
        got = landscape.maml_optimum(fam, m, alpha, steps, sampling=sampling)[0]
        assert np.max(np.abs(got - expect)) <= 1e-10 * np.max(np.abs(expect)), ("MAML", steps, got, expect)
        # the minimiser has zero gradient of the exact expected excess risk (central differences of a
        # quadratic are exact up to round-off)
        g = np.array([(landscape.expected_excess_risk(got + e, fam, m, alpha, steps, sampling=sampling)
                       - landscape.expected_excess_risk(got - e, fam, m, alpha, steps, sampling=sampling)) / 2
                      for e in np.eye(D)])
        scale = float(landscape.expected_excess_risk(got, fam, m, alpha, steps, sampling=sampling))
        assert np.max(np.abs(g)) <= 1e-10 * scale, ("MAML gradient", g)
        # FO-MAML: B = E[(I − αΣ̂)^k], exact and simple for population gradients
        B1, B2 = (np.linalg.matrix_power(np.eye(D) - alpha * S, steps) for S in (S1, S2))
        expect_fo = np.linalg.solve(p * S1 @ B1 + (1 - p) * S2 @ B2, p * S1 @ B1 @ mu1 + (1 - p) * S2 @ B2 @ mu2)
        got_fo = landscape.fo_maml_optimum(fam, None, alpha, steps)[0]
        assert np.max(np.abs(got_fo - expect_fo)) <= 1e-10 * np.max(np.abs(expect_fo))
    # isotropic weights
    rho = rng.uniform(0.1, 1.0, 2)
    iso = lm.TaskMixture(tuple(lm.GaussianRegression(d=3, mean=mu[None], cov=0.5, input_cov=r * np.eye(3))
                               for mu, r in zip(rng.standard_normal((2, 3)), rho)), (p, 1 - p))
    c = [landscape.isotropic_curvature(float(r), 3, m, alpha, 1)[0] for r in rho]
    mus = np.array([cc.mean[0] for cc in iso.components])
    for weights, got in (([p * rho[0], (1 - p) * rho[1]], landscape.nal_optimum(iso)[0]),
                         ([p * c[0], (1 - p) * c[1]], landscape.maml_optimum(iso, m, alpha, 1)[0])):
        expect = (weights[0] * mus[0] + weights[1] * mus[1]) / sum(weights)
        assert np.max(np.abs(got - expect)) <= 1e-10 * np.max(np.abs(expect))


if __name__ == "__main__":
    derive()
    print("grad F = (p G1 + (1-p) G2) w - (p G1 mu1 + (1-p) G2 mu2): verified symbolically (d = 2),")
    print("so w* = (p G1 + (1-p) G2)^-1 (p G1 mu1 + (1-p) G2 mu2) (G = Σ: NAL, G = A: MAML, G = ΣB: FO-MAML)")
    verify()
    print("verified against linmeta.theory.landscape optima")
