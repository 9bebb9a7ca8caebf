"""Derivation: closed forms of the convex / non-convex separation (``linmeta.theory.separation``).

Line tasks w* = ±c·u, x ~ N(0, I_d), y = w*ᵀx + σε, n samples, Σ̂ = XᵀX/n.

1. Gaussian fourth moment (Isserlis, derived below for d = 3): E[x xᵀ C x xᵀ] = 2C + tr(C) I for symmetric
   C, hence with n samples E[Σ̂ C Σ̂] = C + (C + tr(C) I)/n  (n symbolic: the n² − n cross pairs give C).
2. The negative support gradient at M = 0 is ĝ = w*ᵀΣ̂ + εᵀX/n, so
   S_n = E[ĝᵀĝ] = c² E[Σ̂uuᵀΣ̂] + σ² E[XᵀX]/n² = c²(1 + 1/n) uuᵀ + (c² + σ²)/n · I   and   E[ĝᵀw*ᵀ] = c² uuᵀ.
3. One step M' = ĝP: E ½‖ĝP − w*ᵀ‖² = ½[tr(P S_n P) − 2c² uᵀPu + c²] (expanded symbolically, d = 2).
   P = tG: quadratic in t, minimised at t* = c² uᵀGu / tr(G S_n G) with value ½[c² − c⁴(uᵀGu)²/tr(G S_n G)];
   G = uuᵀ gives ½c²(2c² + σ²)/(c²(n + 2) + σ²), G = I gives the best convex step (item 4).
4. Convex one step from w₀: the error (I − αΣ̂)(w₀ − w*) + αXᵀε/n has E‖·‖² =
   (c² + ‖w₀‖²)((1 − α)² + α²(d + 1)/n) + α²σ²d/n by item 1 with C = vvᵀ (E over the sign kills the cross
   term w₀·w*); minimised at α* = c̃²/(c̃²(1 + (d + 1)/n) + σ²d/n), value ½c̃²(1 − α*).
5. Least squares to convergence from w₀: ŵ − w* = (I − Π)(w₀ − w*) + X⁺ε with Π the projection on the row
   space of X.  By rotation invariance E[Π] = (n/d) I (tr Π = n), and E‖X⁺ε‖² = σ² tr E[(XXᵀ)⁻¹] =
   σ² n/(d − n − 1) for n ≤ d − 2 (inverse-Wishart mean, Muirhead 1982, Thm 3.2.12); for n ≥ d + 2,
   Π = I and σ² tr E[(XᵀX)⁻¹] = σ² d/(n − d − 1).  (These two moments are checked by Monte Carlo in
   ``tests/theory/test_separation.py`` and the experiment.)
6. MAML on the W₂ = 0 manifold of a two-layer net: minimise E(K; P) over symmetric P: the stationarity
   condition P S_K + S_K P = 2c² uuᵀ is solved by P = c² S_K⁻¹ uuᵀ = γ*(K) uuᵀ, γ* = K c²/(c²(K + 2) + σ²).
"""
from functools import lru_cache
from itertools import product

import numpy as np
import sympy as sp


def _isserlis(i, j, k, l):
    d = lambda a, b: 1 if a == b else 0
    return d(i, j) * d(k, l) + d(i, k) * d(j, l) + d(i, l) * d(j, k)


@lru_cache(maxsize=None)
def derive():
    D = 3
    C = sp.Matrix(D, D, lambda i, j: sp.Symbol(f"C{min(i, j)}{max(i, j)}"))
    # 1. E[x xᵀ C x xᵀ]_{il} = Σ_{jk} C_jk E[x_i x_j x_k x_l]
    four = sp.Matrix(D, D, lambda i, l: sum(C[j, k] * _isserlis(i, j, k, l) for j, k in product(range(D), repeat=2)))
    assert (four - (2 * C + C.trace() * sp.eye(D))).applyfunc(sp.expand) == sp.zeros(D, D)
    n = sp.Symbol("n", positive=True)
    pair = ((n**2 - n) * C + n * (2 * C + C.trace() * sp.eye(D))) / n**2
    assert (pair - (C + (C + C.trace() * sp.eye(D)) / n)).applyfunc(sp.simplify) == sp.zeros(D, D)
    # 2-3. d = 2, u = e₁ (rotation invariance), symbolic symmetric P
    c, sig, t = sp.symbols("c sigma t", positive=True)
    u = sp.Matrix([1, 0])
    uu = u * u.T
    S = c**2 * (uu + (uu + sp.eye(2)) / n) + sig**2 * sp.eye(2) / n
    assert (S - (c**2 * (1 + 1 / n) * uu + (c**2 + sig**2) / n * sp.eye(2))).applyfunc(sp.simplify) == sp.zeros(2, 2)
    p11, p12, p22 = sp.symbols("p11 p12 p22", real=True)
    P = sp.Matrix([[p11, p12], [p12, p22]])
    # E ½‖ĝP − w*ᵀ‖² = ½[E tr(Pᵀ ĝᵀ ĝ P) − 2 E tr(P ĝᵀ w*ᵀ) + ‖w*‖²] with E ĝᵀĝ = S, E ĝᵀ w*ᵀ = c² uuᵀ
    err = sp.Rational(1, 2) * ((P * S * P).trace() - 2 * (P * c**2 * uu).trace() + c**2)
    g11, g12, g22 = sp.symbols("g11 g12 g22", real=True)
    G = sp.Matrix([[g11, g12], [g12, g22]])
    eG = sp.expand(err.subs({p11: t * g11, p12: t * g12, p22: t * g22}))
    t_star = sp.solve(sp.diff(eG, t), t)[0]
    assert sp.simplify(t_star - c**2 * (u.T * G * u)[0] / (G * S * G).trace()) == 0
    best = sp.simplify(eG.subs(t, t_star))
    assert sp.simplify(best - sp.Rational(1, 2) * (c**2 - c**4 * (u.T * G * u)[0] ** 2 / (G * S * G).trace())) == 0
    proj = sp.simplify(best.subs({g11: 1, g12: 0, g22: 0}))
    assert sp.simplify(proj - c**2 * (2 * c**2 + sig**2) / (2 * (c**2 * (n + 2) + sig**2))) == 0
    # 4. convex one step from w₀ in d dims: E‖(I − αΣ̂)v‖² = vᵀ E[(I − αΣ̂)²] v with E Σ̂² = (1 + (d + 1)/n) I
    a, dd, r2 = sp.symbols("alpha d r2", positive=True)
    conv = sp.Rational(1, 2) * (r2 * (1 - 2 * a + a**2 * (1 + (dd + 1) / n)) + a**2 * sig**2 * dd / n)
    a_star = sp.solve(sp.diff(conv, a), a)[0]
    assert sp.simplify(a_star - r2 / (r2 * (1 + (dd + 1) / n) + sig**2 * dd / n)) == 0
    assert sp.simplify(conv.subs(a, a_star) - r2 * (1 - a_star) / 2) == 0
    # the general P formula with P = αI in d = 2 reproduces the convex one (w₀ = 0, so r2 = c²)
    assert sp.simplify(err.subs({p11: a, p12: 0, p22: a}) - conv.subs({r2: c**2, dd: 2})) == 0
    # 6. MAML on W₂ = 0: P = c² S⁻¹ uuᵀ solves P S + S P = 2c² uuᵀ and equals γ* uuᵀ
    Pm = c**2 * S.inv() * uu
    assert (Pm * S + S * Pm - 2 * c**2 * uu).applyfunc(sp.simplify) == sp.zeros(2, 2)
    gam = n * c**2 / (c**2 * (n + 2) + sig**2)
    assert (Pm - gam * uu).applyfunc(sp.simplify) == sp.zeros(2, 2)
    grad = sp.Matrix([[sp.diff(err, x) for x in (p11, p12, p22)]]).subs({p11: gam, p12: 0, p22: 0})
    assert grad.applyfunc(sp.simplify) == sp.zeros(1, 3)
    return {"err": sp.lambdify([p11, p12, p22, n, c, sig], err, "numpy"),
            "best": sp.lambdify([g11, g12, g22, n, c, sig], best, "numpy"),
            "tstar": sp.lambdify([g11, g12, g22, n, c, sig], t_star, "numpy"),
            "conv": sp.lambdify([a, n, dd, r2, sig], conv, "numpy"), "gamma": sp.lambdify([n, c, sig], gam, "numpy")}


def verify(seed: int = 0) -> None:
    from linmeta.theory import separation as T

    f = derive()
    rng = np.random.default_rng(seed)
    for _ in range(5):
        n, c, sig = int(rng.integers(1, 40)), float(rng.uniform(0.5, 2)), float(rng.uniform(0, 0.5))
        L = rng.standard_normal((2, 2))
        G = L @ L.T
        theta = rng.uniform(0, 2 * np.pi)
        R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        u = R[:, 0]  # the sympy forms use u = e₁: rotate the matrices into that frame
        Gr = R @ G @ R.T
        for got, want in ((T.one_step_error(Gr, u, n, c, sig), f["err"](G[0, 0], G[0, 1], G[1, 1], n, c, sig)),
                          (T.best_head_error(Gr, u, n, c, sig), f["best"](G[0, 0], G[0, 1], G[1, 1], n, c, sig)),
                          (T.best_head_step(Gr, u, n, c, sig), f["tstar"](G[0, 0], G[0, 1], G[1, 1], n, c, sig)),
                          (T.projection_best_gamma(n, c, sig), f["gamma"](n, c, sig))):
            assert abs(got - float(want)) <= 1e-10 * max(1.0, abs(float(want))), (got, want)
        d, alpha, w2 = int(rng.integers(2, 50)), float(rng.uniform(0, 1)), float(rng.uniform(0, 1))
        want = float(f["conv"](alpha, n, d, c**2 + w2, sig))
        assert abs(T.convex_one_step_error(n, d, c, sig, alpha, w2) - want) <= 1e-12 * want
        assert abs(T.convex_best_one_step_error(n, d, c, sig, w2) - 0.5 * (c**2 + w2) * (1 - T.convex_best_step(
            n, d, c, sig, w2))) <= 1e-14
        # the general head formula with G = I at the best step is the best convex step (w₀ = 0)
        e = np.zeros(d)
        e[0] = 1.0
        assert abs(T.best_head_error(np.eye(d), e, n, c, sig) - T.convex_best_one_step_error(n, d, c, sig)) <= 1e-12
        assert abs(T.projection_best_error(n, c, sig) - T.best_head_error(np.outer(e, e), e, n, c, sig)) <= 1e-12
        g = T.projection_best_gamma(n, c, sig)
        assert abs(T.projection_error(n, c, sig, g) - T.projection_best_error(n, c, sig)) <= 1e-12
    # noiseless sample complexities: the scan equals the closed forms
    for d in (8, 32):
        for eps in (0.1, 0.25, 0.5):
            cf = T.noiseless_sample_complexities(d, eps)
            assert T.sample_complexity(lambda m: T.convex_gd_error(m, d, 1.0, 0.0), eps, 1.0) == cf["least_squares"]
            assert T.sample_complexity(lambda m: T.convex_best_one_step_error(m, d, 1.0, 0.0), eps, 1.0) == cf[
                "convex_step"]
            assert T.sample_complexity(lambda m: T.projection_best_error(m, 1.0, 0.0), eps, 1.0) == cf["projection"]


if __name__ == "__main__":
    derive()
    print("E[Sigma_hat C Sigma_hat] = C + (C + tr C I)/n;  S_n = c^2(1 + 1/n) uu^T + (c^2 + sigma^2)/n I")
    print("E(n; P) = 1/2 [tr(P S_n P) - 2 c^2 u^T P u + c^2];  best head step t* = c^2 u^T G u / tr(G S_n G)")
    print("projection: 1/2 c^2 (2c^2 + sigma^2)/(c^2(n+2) + sigma^2); MAML on W2 = 0: alpha W1^T W1 = gamma*(K) uu^T")
    verify()
    print("verified against linmeta.theory.separation")
