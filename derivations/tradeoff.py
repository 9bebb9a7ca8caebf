"""Gao & Sener's linear-regression losses in closed form (``linmeta/theory/tradeoff.py``).

Tasks: ``Θ ~ U(0, β)^p``, a Haar rotation U, ``Q = U diag(Θ) Uᵀ``, noise variance ``σ ~ U(0, β)``;
``x ~ N(0, Q)``, ``y = xᵀΘ + N(0, σ)``; task loss ``½(θ − Θ)ᵀQ(θ − Θ) + σ/2``.  Steps derived here:

1. **Haar average.**  ``E_U[U D Uᵀ] = tr(D)/p · I`` (symbolic, p = 2: a uniform rotation angle).
2. **Isserlis.**  ``E[xxᵀ Q xxᵀ] = 2Q³ + tr(Q²) Q`` for ``x = L z ~ N(0, Q = LLᵀ)`` (symbolic L, p = 2),
   hence ``E[Q̂ Q Q̂] = Q³ + V/N`` with ``V = Q³ + tr(Q²)Q``.
3. **The test-time step (p = 1, symbolic N).**  ``θ' − Θ = (1 − α q̂)(θ − Θ) + α n̄`` with
   ``E q̂ = q``, ``E q̂² = q²(1 + 2/N)`` (χ²_N moments), ``E n̄² = σ q/N``, ``E q̂ n̄ = 0``; the expected
   loss ``½ q E(θ' − Θ)² + σ/2`` equals ``½ (θ − Θ)²(q − 2αq² + α²(q³ + V/N)) + σ/2 + α²σ q²/(2N)``.
4. **Task averages.**  Every expectation of the moment table (``E[Q^k]``, ``E[Q^kΘ]``, ``E[ΘᵀQ^kΘ]``,
   ``E[V]``, ``E[VΘ]``, ``E[ΘᵀVΘ]``, ``E σ``, ``E[σ tr Q²]``) is computed by brute force for p = 1, 2, 3:
   the U average of step 1 leaves a polynomial in the ``Θ_i``, whose monomials average to products of
   ``μ_k = β^k/(k + 1)``; this is compared with ``tradeoff.moment_table`` (index-coincidence counting).
5. **Assembly.**  ``L_{N,α}(θ) = ½θᵀAθ − bᵀθ + c`` with ``A = E[Q] − 2αE[Q²] + α²(E[Q³] + E[V]/N)``,
   ``b`` the same with ``·Θ``, ``c = ½(...) + ½Eσ + α²E[σ tr Q²]/(2N)`` is compared with
   ``tradeoff.loss_coefficients``.

``verify`` asserts each step against the numeric module (1e-12 relative).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

al, N, q, sig, th, Th, beta = sp.symbols("alpha N q sigma theta Theta beta", real=True)


def haar_average_p2():
    """``E_φ[R(φ) D R(φ)ᵀ] − tr(D)/2 · I`` for a uniform rotation angle φ; must be 0.

    The entries are trigonometric polynomials of degree 2 in φ, so their mean over the four angles
    ``kπ/2`` equals the integral over the circle exactly.
    """
    d1, d2 = sp.symbols("d1 d2", real=True)
    total = sp.zeros(2, 2)
    for c, s in ((1, 0), (0, 1), (-1, 0), (0, -1)):                 # (cos, sin) at φ = 0, π/2, π, 3π/2
        R = sp.Matrix([[c, -s], [s, c]])
        total += R * sp.diag(d1, d2) * R.T / 4
    return sp.simplify(total - (d1 + d2) / 2 * sp.eye(2))


def _gauss(expr, zs):
    poly = sp.Poly(sp.expand(expr), *zs)
    total = sp.Integer(0)
    for powers, coeff in poly.terms():
        if all(k % 2 == 0 for k in powers):
            total += coeff * sp.prod([sp.factorial2(k - 1) for k in powers])
    return total


def isserlis_p2():
    """``E[xxᵀQxxᵀ] − (2Q³ + tr(Q²)Q)`` for x = Lz, Q = LLᵀ, symbolic lower-triangular L; must be 0."""
    l11, l21, l22 = sp.symbols("l11 l21 l22", real=True)
    L = sp.Matrix([[l11, 0], [l21, l22]])
    z = sp.Matrix(sp.symbols("z1 z2", real=True))
    x = L * z
    Q = L * L.T
    E = (x * x.T * Q * x * x.T).applyfunc(lambda e: _gauss(e, list(z)))
    return sp.expand(E - (2 * Q**3 + (Q**2).trace() * Q))


@lru_cache(maxsize=None)
def one_step_p1():
    """Step 3: the expected loss after one step (p = 1) minus the assembled form; must be 0."""
    qh1, qh2, n2 = q, q**2 * (1 + 2 / N), sig * q / N          # E q̂, E q̂², E n̄² (E q̂ n̄ = 0)
    e = th - Th
    Ee2 = e**2 * (1 - 2 * al * qh1 + al**2 * qh2) + al**2 * n2
    loss = sp.Rational(1, 2) * q * Ee2 + sig / 2
    V = q**3 + q**2 * q                                         # Q³ + tr(Q²) Q for p = 1
    assembled = (sp.Rational(1, 2) * e**2 * (q - 2 * al * q**2 + al**2 * (q**3 + V / N)) + sig / 2
                 + al**2 * sig * q**2 / (2 * N))
    return sp.simplify(loss - assembled)


def _uniform_average(expr, thetas):
    """E over Θ_i ~ U(0, β) i.i.d. of a polynomial: monomial Θ^k → β^k/(k + 1)."""
    poly = sp.Poly(sp.expand(expr), *thetas)
    return sp.expand(sum(coeff * sp.prod([beta**k / (k + 1) for k in powers]) for powers, coeff in poly.terms()))


def brute_force_moments(p: int) -> dict:
    """The moment table for dimension p by brute force (step 4), as expressions in β."""
    t = sp.symbols(f"t1:{p + 1}", positive=True)
    T = sp.Matrix(t)
    # after the Haar average, Q^k → (Σ t_j^k / p) I, and tr(Q²) is U-invariant
    Qk = {k: sum(ti**k for ti in t) / p for k in (1, 2, 3)}
    trQ2 = sum(ti**2 for ti in t)
    norm2 = (T.T * T)[0]
    out = {}
    for k in (1, 2, 3):
        out[f"EQ{k}"] = _uniform_average(Qk[k], t)
        out[f"EQ{k}T"] = _uniform_average(Qk[k] * t[0], t)
        out[f"ETQ{k}T"] = _uniform_average(Qk[k] * norm2, t)
    out["EV"] = _uniform_average(Qk[3] + trQ2 * Qk[1], t)
    out["EVT"] = _uniform_average((Qk[3] + trQ2 * Qk[1]) * t[0], t)
    out["ETVT"] = _uniform_average((Qk[3] + trQ2 * Qk[1]) * norm2, t)
    out["Es"] = beta / 2
    out["EsQ2"] = beta / 2 * _uniform_average(trQ2, t)
    return out


def assemble(m: dict, Nv, a):
    """Step 5: (a, b₁, c) of the quadratic from a moment table."""
    inv = 0 if Nv is None else sp.Rational(1, Nv)
    A = m["EQ1"] - 2 * a * m["EQ2"] + a**2 * (m["EQ3"] + inv * m["EV"])
    b1 = m["EQ1T"] - 2 * a * m["EQ2T"] + a**2 * (m["EQ3T"] + inv * m["EVT"])
    quad = m["ETQ1T"] - 2 * a * m["ETQ2T"] + a**2 * (m["ETQ3T"] + inv * m["ETVT"])
    return A, b1, quad / 2 + m["Es"] / 2 + a**2 * inv * m["EsQ2"] / 2


def verify(seed: int = 0) -> None:
    from linmeta.theory import tradeoff as T

    rng = np.random.default_rng(seed)
    assert haar_average_p2() == sp.zeros(2, 2)
    assert isserlis_p2() == sp.zeros(2, 2)
    assert one_step_p1() == 0
    close = lambda a, b: abs(float(a) - float(b)) <= 1e-12 * max(abs(float(b)), 1e-300)  # noqa: E731
    for p in (1, 2, 3):
        sym = brute_force_moments(p)
        for trial in range(2):
            bv = float(rng.uniform(0.3, 3.0))
            tk = T.TradeoffTasks(p, bv)
            table = T.moment_table(tk)
            vals = {k: v.subs(beta, bv) for k, v in sym.items()}
            for k, v in vals.items():
                assert close(table[k], v), (p, k, table[k], v)
            for Nv, a in ((None, 0.0), (int(rng.integers(1, 50)), float(rng.uniform(0, 1.5)))):
                A, b1, c = assemble(vals, Nv, sp.Float(a))
                got = T.loss_coefficients(tk, Nv, a)
                assert close(got.a, A) and close(got.b1, b1) and close(got.c, c), (p, Nv, a, got, A, b1, c)


if __name__ == "__main__":
    print("Haar average (p=2) residual:", haar_average_p2())
    print("Isserlis (p=2) residual:", isserlis_p2())
    print("one-step (p=1) residual:", one_step_p1())
    for k, v in brute_force_moments(2).items():
        print(f"p=2 {k} =", sp.latex(sp.factor(v)))
    verify()
    print("verified against linmeta.theory.tradeoff")
