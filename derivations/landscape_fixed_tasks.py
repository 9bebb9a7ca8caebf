"""Derivation: MAML and NAL fitted on a fixed sample of two-cluster tasks, and gradient descent on it.

Two-cluster landscape (``derivations/landscape_gain.py``), one inner step with population gradients:
every hard task has the post-adaptation excess ``c_H ‖w − w_i‖²`` (``c = ½ρ(1 − αρ)²``), every easy one
``c_E ‖w − w_i‖²``.  A fixed sample has exactly ``n_H`` hard and ``n_E`` easy tasks, with cluster means
``w̄_H = w_H + u_H``, ``w̄_E = w_E + u_E`` (``E u = 0``, ``E‖u_c‖² = R_c²/n_c``, independent).

1. The sample's MAML objective ``Σ_i c_i ‖w − w_i‖²`` is minimised at ``ŵ = (1 − q_T) w̄_H + q_T w̄_E`` with
   ``q_T = n_E c_E / (n_H c_H + n_E c_E)``; NAL's (curvatures ``ρ_i``) at the same form with
   ``s_T = n_E ρ_E / (n_H ρ_H + n_E ρ_E)``.
2. The landscape's excess risk is ``e(w) = E_MAML + P ‖w − w_MAML‖²`` (``P = p_H c_H + p_E c_E``), so
   ``E e(ŵ) = E_MAML + P [(w_T − q_E)² D² + (1 − w_T)² R_H²/n_H + w_T² R_E²/n_E]`` for either weight ``w_T``.
3. Gradient descent on ``F(w) = mean_i ½ a_i ‖w − w_i‖²`` from ``w_0`` with step ``η`` is exactly
   ``w_t = ŵ + (1 − η ā)^t (w_0 − ŵ)``, ``ā = mean_i a_i``, ``ŵ = Σ a_i w_i / Σ a_i``.

``verify`` checks (1)–(3) symbolically and compares with
:func:`linmeta.theory.landscape.two_cluster_fixed_tasks` and
:func:`~linmeta.theory.landscape.gd_on_isotropic_quadratics`.
"""
from functools import lru_cache

import numpy as np
import sympy as sp

pH, cH, cE, D, RH, RE, nH, nE, n = sp.symbols("p_H c_H c_E D R_H R_E n_H n_E n", positive=True)
t, uH, uE, sH2, sE2 = sp.symbols("t u_H u_E sigma_H2 sigma_E2", real=True)
pE = 1 - pH


def _expect(expr):
    """E over the cluster-mean errors u_H, u_E: E u = 0, E u_c² = R_c²/n_c (per coordinate of the axis; the
    orthogonal coordinates add the rest of the trace, which enters the same way)."""
    poly = sp.Poly(sp.expand(expr), uH, uE)
    out = 0
    for (a, b), coef in poly.terms():
        if a % 2 or b % 2:
            continue  # odd moments vanish
        if a > 2 or b > 2:
            raise AssertionError("only second moments enter")
        out += coef * (sH2 if a == 2 else 1) * (sE2 if b == 2 else 1)
    return out


@lru_cache(maxsize=None)
def derive():
    P = pH * cH + pE * cE
    qE = pE * cE / P
    # (1) the sample minimiser: along the axis through the centres (w_H = 0, w_E = D)
    F = nH * cH * (t - uH) ** 2 + nE * cE * (t - D - uE) ** 2
    t_hat = sp.solve(sp.diff(F, t), t)[0]
    qT = nE * cE / (nH * cH + nE * cE)
    assert sp.simplify(t_hat - ((1 - qT) * uH + qT * (D + uE))) == 0
    # (2) e(w) = E_MAML + P (t − q_E D)² along the axis (the landscape objective of landscape_gain.py)
    E_axis = pH * cH * (t**2 + RH**2) + pE * cE * ((t - D) ** 2 + RE**2) + n
    e_maml = E_axis.subs(t, qE * D)
    assert sp.simplify(E_axis - (e_maml + P * (t - qE * D) ** 2)) == 0
    w = sp.Symbol("w", real=True)
    fitted = (1 - w) * uH + w * (D + uE)
    mean_sq = _expect((fitted - qE * D) ** 2)
    claimed = (w - qE) ** 2 * D**2 + (1 - w) ** 2 * sH2 + w**2 * sE2
    assert sp.simplify(mean_sq - claimed) == 0
    expected = e_maml + P * claimed.subs({sH2: RH**2 / nH, sE2: RE**2 / nE})
    # (3) one GD step maps the closed form at t to the closed form at t + 1
    # (induction on t, with r = (1 − η ā)^t a symbol: the step multiplies r by 1 − η ā; two tasks suffice for
    # the algebra, since ∇F is linear in the task terms)
    a, b, eta, w0, r = sp.symbols("a_1 a_2 eta w_0 r", real=True)
    w1, w2 = sp.symbols("w_1 w_2", real=True)
    abar, what = (a + b) / 2, (a * w1 + b * w2) / (a + b)
    w_t = what + r * (w0 - what)
    grad = (a * (w_t - w1) + b * (w_t - w2)) / 2
    assert sp.simplify(w_t - eta * grad - (what + r * (1 - eta * abar) * (w0 - what))) == 0
    args = (pH, cH, cE, D, RH, RE, nH, nE, n, w)
    return sp.lambdify(args, expected), sp.lambdify((pH, cH, cE, nH, nE), qT)


def verify(seed: int = 0) -> None:
    from linmeta.theory import landscape

    expected, q_of = derive()
    rng = np.random.default_rng(seed)
    for _ in range(6):
        rho_e = float(rng.uniform(0.2, 1.5))
        tc = landscape.TwoCluster(float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.05, 1.0)) * rho_e, rho_e,
                                  float(rng.uniform(0.1, 1.5)), float(rng.uniform(0.0, 6.0)), float(rng.uniform(0.2, 2)),
                                  float(rng.uniform(0.0, 2.0)), int(rng.integers(1, 6)), noise=float(rng.uniform(0, 1)))
        n_h, n_e = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        got = landscape.two_cluster_fixed_tasks(tc, n_h, n_e)
        r = landscape.two_cluster(tc)
        nbar = r.noise  # population gradients: 0
        q_t = q_of(tc.p_hard, r.c_hard, r.c_easy, n_h, n_e)
        s_t = n_e * tc.rho_easy / (n_h * tc.rho_hard + n_e * tc.rho_easy)
        args = (tc.p_hard, r.c_hard, r.c_easy, tc.distance, tc.radius_hard, tc.radius_easy, n_h, n_e, nbar)
        for value, w in ((got.excess_maml, q_t), (got.excess_nal, s_t)):
            ref = expected(*args, w)
            assert abs(value - ref) <= 1e-10 * abs(ref), (value, ref)
    # (3) against a literal gradient-descent loop
    a = rng.uniform(0.1, 1.0, (3, 7))
    w = rng.standard_normal((3, 7, 4))
    w0 = rng.standard_normal((3, 4))
    x = w0.copy()
    for _ in range(25):
        x = x - 0.7 * np.einsum("rt,rtd->rd", a, x[:, None, :] - w) / a.shape[1]
    got = landscape.gd_on_isotropic_quadratics(a, w, w0, 0.7, 25)
    assert np.max(np.abs(got - x)) <= 1e-12 * np.max(np.abs(x))


if __name__ == "__main__":
    derive()
    verify()
    print("verified: fixed-sample MAML/NAL excess risks and the GD path (linmeta.theory.landscape)")
