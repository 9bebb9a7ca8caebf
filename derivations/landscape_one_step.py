"""Derivation: expected excess risk after one m-sample gradient step, with its fourth-moment term.

Task: x ~ N(0, Σ), y = w*ᵀx + ν ε; population loss f(w) = ½(w − w*)ᵀΣ(w − w*) + ½ν².  With
m samples, ĝ = Σ̂(w − w*) − n, Σ̂ = (1/m) Σ_j x_j x_jᵀ, n = (1/m) Σ_j x_j ε_j ν, and w' = w − αĝ:

    e' = (I − αΣ̂) e + α n,   E[f(w') − f(w*)] = ½ eᵀ E[(I − αΣ̂) Σ (I − αΣ̂)] e + ½ α² E[nᵀ Σ n]

(the cross term vanishes: E[ε] = 0 given X).  The fourth moment of one Gaussian vector,
derived here symbolically in d = 2 (x = L z, z standard normal, E[z^a] = (a − 1)!!), is

    E[x xᵀ C x xᵀ] = 2 Σ C Σ + tr(CΣ) Σ      (C symmetric),

so E[Σ̂ C Σ̂] = (1/m) E[x xᵀ C x xᵀ] + (1 − 1/m) Σ C Σ = Σ C Σ + (Σ C Σ + tr(CΣ) Σ)/m and

    A^(m) = (I − αΣ) Σ (I − αΣ) + (α²/m)(Σ³ + tr(Σ²) Σ),   noise = ½ α² ν² tr(Σ²)/m.

Isotropic Σ = ρI: A^(m) = ρ[(1 − αρ)² + α²ρ²(d + 1)/m] I, noise = ½α²ν²dρ²/m.  With a fresh batch
per step the same identity composes step by step (C_k = Σ, C_j = E[(I − αΣ̂) C_{j+1} (I − αΣ̂)]).
``verify`` compares with ``linmeta.theory.landscape.curvature`` (same batch and fresh batches).
"""
from functools import lru_cache

import numpy as np
import sympy as sp

D = 2


def _gauss_expect(poly, z):
    """E over independent standard normals ``z`` of a polynomial: E[z^a] = (a − 1)!! for even a, else 0."""
    p = sp.Poly(sp.expand(poly), *z)
    total = 0
    for powers, coeff in p.terms():
        term = coeff
        for a in powers:
            term *= 0 if a % 2 else sp.factorial2(a - 1)
        total += term
    return sp.expand(total)


L_SYM = sp.Matrix([[sp.Symbol("l11", real=True), 0], [sp.Symbol("l21", real=True), sp.Symbol("l22", real=True)]])


def fourth_moment(C):
    """E[x xᵀ C x xᵀ] for x = L z, z ~ N(0, I_2), by expanding in z (d = 2)."""
    z = sp.symbols("z0:2", real=True)
    x = L_SYM * sp.Matrix(z)
    return (x * x.T * C * x * x.T).applyfunc(lambda e: _gauss_expect(e, z))


def fourth_moment_identity():
    """Symbolic E[x xᵀ C x xᵀ] and the claimed 2ΣCΣ + tr(CΣ)Σ (d = 2, Σ = LLᵀ), as matrices."""
    c11, c12, c22 = sp.symbols("c11 c12 c22", real=True)
    C = sp.Matrix([[c11, c12], [c12, c22]])
    S = L_SYM * L_SYM.T
    return fourth_moment(C), (2 * S * C * S + (C * S).trace() * S).applyfunc(sp.expand)


def one_step_curvature(S, alpha, m):
    """Symbolic A^(m) and the label-noise excess for a symbolic/numeric Σ (sympy Matrix)."""
    d = S.shape[0]
    I = sp.eye(d)
    A = (I - alpha * S) * S * (I - alpha * S) + alpha**2 / m * (S**3 + (S * S).trace() * S)
    return A


@lru_cache(maxsize=None)
def derive():
    lhs, rhs = fourth_moment_identity()
    assert (lhs - rhs).applyfunc(sp.simplify) == sp.zeros(D, D), "fourth-moment identity failed"
    # assemble E[(I − αΣ̂) Σ (I − αΣ̂)] from E[Σ̂] = Σ and, with m i.i.d. samples,
    # E[Σ̂ C Σ̂] = (1/m²)[m E(x xᵀ C x xᵀ) + m(m − 1) Σ C Σ]  (C = Σ)
    a, m = sp.symbols("alpha m", positive=True)
    S = L_SYM * L_SYM.T
    ESS = (fourth_moment(S) + (m - 1) * S * S * S) / m
    E_PSP = S - a * (S * S + S * S) + a**2 * ESS
    claimed = one_step_curvature(S, a, m)
    assert (E_PSP - claimed).applyfunc(sp.simplify) == sp.zeros(D, D)
    # isotropic case
    rho, d = sp.symbols("rho d", positive=True)
    iso = rho * (1 - a * rho) ** 2 + a**2 / m * (rho**3 + d * rho**2 * rho)
    assert sp.simplify(iso - rho * ((1 - a * rho) ** 2 + a**2 * rho**2 * (d + 1) / m)) == 0
    return claimed


def verify(seed: int = 0) -> None:
    from linmeta.theory import landscape

    derive()
    rng = np.random.default_rng(seed)
    for d in (2, 4):
        Lm = rng.standard_normal((d, d))
        S = Lm @ Lm.T / d + 0.2 * np.eye(d)
        alpha, m, nu = float(rng.uniform(0.1, 1.0)), int(rng.integers(1, 30)), float(rng.uniform(0, 1))
        Ssym = sp.Matrix(S)
        A = np.array(one_step_curvature(Ssym, sp.Float(alpha, 30), m), dtype=float)
        noise = 0.5 * alpha**2 * nu**2 * np.trace(S @ S) / m
        for sampling in ("same", "fresh"):
            q = landscape.curvature(S, m, alpha, 1, noise_std=nu, sampling=sampling)
            assert np.max(np.abs(q.A - A)) <= 1e-10 * np.max(np.abs(A)), (d, sampling)
            assert abs(float(q.noise) - noise) <= 1e-10 * noise, (d, sampling)
        # fresh batches: compose the one-step identity k times (C_k = Σ, C_j = E[P C_{j+1} P])
        k = 3
        C, n = S.copy(), 0.0
        for _ in range(k):
            n += 0.5 * alpha**2 * nu**2 * np.trace(C @ S) / m
            SCS = S @ C @ S
            C = C - alpha * (S @ C + C @ S) + alpha**2 * (SCS + (SCS + np.trace(C @ S) * S) / m)
        q = landscape.curvature(S, m, alpha, k, noise_std=nu, sampling="fresh")
        assert np.max(np.abs(q.A - C)) <= 1e-10 * np.max(np.abs(C))
        assert abs(float(q.noise) - n) <= 1e-10 * n
        # isotropic scalar form
        rho = float(rng.uniform(0.1, 1.5))
        c, nn = landscape.isotropic_curvature(rho, d, m, alpha, 1, nu)
        full = landscape.curvature(rho * np.eye(d), m, alpha, 1, noise_std=nu)
        assert abs(2 * c - full.A[0, 0]) <= 1e-12 * full.A[0, 0] and abs(nn - float(full.noise)) <= 1e-12 * nn


if __name__ == "__main__":
    lhs, rhs = fourth_moment_identity()
    print("E[x x^T C x x^T] (d = 2) equals 2ΣCΣ + tr(CΣ)Σ:", (lhs - rhs).applyfunc(sp.simplify) == sp.zeros(D, D))
    A = derive()
    print("A^(m) = (I − αΣ)Σ(I − αΣ) + (α²/m)(Σ³ + tr(Σ²)Σ):")
    sp.pprint(sp.simplify(A[0, 0]))
    verify()
    print("verified against linmeta.theory.landscape.curvature (d = 2, 4; same and fresh batches)")
