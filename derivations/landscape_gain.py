"""Derivation: the isotropic easy/hard two-cluster gain, the bound 1 + s_E²D²/R_H², and its limits.

Hard tasks (probability p_H): Σ = ρ_H I, optima w_H + δ with E‖δ‖² = R_H²; easy tasks likewise with
ρ_E, w_E, R_E; D = ‖w_H − w_E‖.  After adaptation the excess risk of a task is c‖w − w*‖² + n with
c = ½ρ γ^k, γ = (1 − αρ)² + α²ρ²(d + 1)/m (``derivations/landscape_one_step.py``).  Along the axis
through the centres (w = t·(w_E − w_H)/D, the orthogonal part only adds), the objectives are

    E(t)    = p_H c_H (t² + R_H²) + p_E c_E ((t − D)² + R_E²) + n̄,
    F_NAL(t) = ½ p_H ρ_H t² + ½ p_E ρ_E (t − D)² + const,

minimised at t_MAML = q_E D, q_E = p_E c_E / P (P = p_H c_H + p_E c_E), and t_NAL = s_E D,
s_E = p_E ρ_E / (p_H ρ_H + p_E ρ_E).  Then (all checked symbolically below)

    E_MAML = base + D² p_H p_E c_H c_E / P,    base = p_H c_H R_H² + p_E c_E R_E² + n̄,
    E_NAL  = E_MAML + D² P (s_E − q_E)²,        gain = E_NAL / E_MAML,
    lim_{D→∞} gain = 1 + P²(s_E − q_E)² / (p_H p_E c_H c_E).

Bound: p_H c_H s_E² − P (s_E − q_E)² = P q_E (s_E(2 − s_E) − q_E), so whenever q_E ≤ s_E(2 − s_E)
(e.g. population gradients with ρ_H ≤ ρ_E ≤ 1/α, where q_E ≤ s_E), and since E_MAML ≥ p_H c_H R_H²,

    gain ≤ 1 + D² p_H c_H s_E² / (p_H c_H R_H²) = 1 + s_E² D² / R_H²,

with equality when c_E = 0 and n̄ = 0 (αρ_E = 1, population gradients).  Equal hardness gives
q_E = s_E and gain 1.  MAML's and NAL's optima coincide (gain 1) when c_E/ρ_E = c_H/ρ_H, i.e. γ_E = γ_H,
m* = α²(d + 1)(ρ_E² − ρ_H²)/((1 − αρ_H)² − (1 − αρ_E)²).
``verify`` compares with ``linmeta.theory.landscape.two_cluster`` and ``coincidence_shots``.
"""
from functools import lru_cache

import numpy as np
import sympy as sp

pH, cH, cE, rH, rE, D, RH, RE, n = sp.symbols("p_H c_H c_E rho_H rho_E D R_H R_E n", positive=True)
t = sp.Symbol("t", real=True)
pE = 1 - pH


@lru_cache(maxsize=None)
def derive():
    """Symbolic E_MAML, E_NAL, gain, limit; asserts the identities of the module docstring."""
    E = pH * cH * (t**2 + RH**2) + pE * cE * ((t - D) ** 2 + RE**2) + n
    F = pH * rH * t**2 / 2 + pE * rE * (t - D) ** 2 / 2
    t_maml = sp.solve(sp.diff(E, t), t)[0]
    t_nal = sp.solve(sp.diff(F, t), t)[0]
    P = pH * cH + pE * cE
    qE, sE = pE * cE / P, pE * rE / (pH * rH + pE * rE)
    assert sp.simplify(t_maml - qE * D) == 0 and sp.simplify(t_nal - sE * D) == 0
    e_maml, e_nal = E.subs(t, t_maml), E.subs(t, t_nal)
    base = pH * cH * RH**2 + pE * cE * RE**2 + n
    assert sp.simplify(e_maml - (base + D**2 * pH * pE * cH * cE / P)) == 0
    assert sp.simplify(e_nal - e_maml - D**2 * P * (sE - qE) ** 2) == 0
    gain = e_nal / e_maml
    # both excess risks are a + b D² (b > 0): the D → ∞ limit is the ratio of the D² coefficients
    lead = lambda e: sp.Poly(sp.expand(sp.together(e) * P), D).coeff_monomial(D**2) / P
    assert sp.Poly(sp.expand(sp.together(e_maml) * P), D).degree() == 2
    limit = sp.simplify(lead(e_nal) / lead(e_maml))
    assert sp.simplify(limit - (1 + P**2 * (sE - qE) ** 2 / (pH * pE * cH * cE))) == 0
    # the bound identity and attainment
    assert sp.simplify(pH * cH * sE**2 - P * (sE - qE) ** 2 - P * qE * (sE * (2 - sE) - qE)) == 0
    bound = 1 + sE**2 * D**2 / RH**2
    assert sp.simplify(gain.subs({cE: 0, n: 0}) - bound) == 0
    # equal hardness: with ρ_H = ρ_E = ρ and c from the same γ, q_E = s_E, so gain = 1
    rho, gam, k = sp.symbols("rho gamma k", positive=True)
    eq = {rH: rho, rE: rho, cH: rho * gam**k / 2, cE: rho * gam**k / 2}
    assert sp.simplify((sE - qE).subs(eq)) == 0
    # coincidence: q_E = s_E  <=>  c_E ρ_H = c_H ρ_E; with k = 1 solve γ_E = γ_H for m
    a, m, d = sp.symbols("alpha m d", positive=True)
    gamma = lambda r: (1 - a * r) ** 2 + a**2 * r**2 * (d + 1) / m
    assert sp.simplify((qE - sE) * P * (pH * rH + pE * rE) - pH * pE * (cE * rH - cH * rE)) == 0
    m_star = sp.solve(sp.Eq(gamma(rE), gamma(rH)), m)[0]
    claimed = a**2 * (d + 1) * (rE**2 - rH**2) / ((1 - a * rH) ** 2 - (1 - a * rE) ** 2)
    assert sp.simplify(m_star - claimed) == 0
    args = (pH, cH, cE, rH, rE, D, RH, RE, n)
    return {"maml": sp.lambdify(args, e_maml), "nal": sp.lambdify(args, e_nal), "gain": sp.lambdify(args, gain),
            "limit": sp.lambdify(args, limit), "bound": sp.lambdify(args, bound),
            "m_star": sp.lambdify((a, rH, rE, d), claimed)}


def verify(seed: int = 0) -> None:
    from linmeta.theory import landscape

    f = derive()
    rng = np.random.default_rng(seed)
    cases = [dict(K=None, steps=1), dict(K=int(rng.integers(3, 40)), steps=1), dict(K=None, steps=3),
             dict(K=int(rng.integers(3, 40)), steps=2, sampling="fresh"), dict(K=int(rng.integers(3, 40)), steps=2)]
    for case in cases:
        alpha = float(rng.uniform(0.3, 1.5))
        rho_h, rho_e = np.sort(rng.uniform(0.05, 1.0, 2)) / alpha
        tc = landscape.TwoCluster(float(rng.uniform(0.1, 0.9)), float(rho_h), float(rho_e), alpha,
                                  float(rng.uniform(0.5, 8)), float(rng.uniform(0.2, 2)), float(rng.uniform(0, 2)),
                                  int(rng.integers(1, 8)), noise=float(rng.uniform(0, 1)), **case)
        r = landscape.two_cluster(tc)
        args = (tc.p_hard, r.c_hard, r.c_easy, tc.rho_hard, tc.rho_easy, tc.distance, tc.radius_hard,
                tc.radius_easy, r.noise)
        for key, got in (("maml", r.excess_maml), ("nal", r.excess_nal), ("gain", r.gain), ("limit", r.gain_limit),
                         ("bound", r.bound)):
            want = float(f[key](*args))
            assert abs(got - want) <= 1e-10 * abs(want), (case, key, got, want)
        if tc.K is None:
            assert r.bound_applies and r.gain <= r.bound * (1 + 1e-12), (case, r.gain, r.bound)
    a, rh, re, d = 1.0, 0.2, 0.9, 5
    assert abs(landscape.coincidence_shots(rh, re, a, d) - float(f["m_star"](a, rh, re, d))) <= 1e-12 * 10


if __name__ == "__main__":
    derive()
    print("E_NAL − E_MAML = D² P (s_E − q_E)²; gain ≤ 1 + s_E²D²/R_H² when q_E ≤ s_E(2 − s_E); equality at c_E = n = 0;")
    print("D → ∞ limit 1 + P²(s_E − q_E)²/(p_H p_E c_H c_E); m* from γ_E = γ_H: all verified symbolically")
    verify()
    print("verified against linmeta.theory.landscape.two_cluster and coincidence_shots")
