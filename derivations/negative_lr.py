"""MAML on mixed linear regression (Bernacchia 2021): expected test loss and optimal learning rates.

Setting (``linmeta/theory/negative_lr.py``): ``x ~ N(0, I_p)``, ``y = wᵀx + σε``,
``w ~ N(w₀, ν²/p · I)``; one inner step of size α on n points of the loss ``½|y − Xω|²/n`` maps ω to
``(I − αS)ω + α Xᵀy/n`` with ``S = XᵀX/n``.  Steps derived here with sympy:

1. **Wishart moments.**  ``E ∏ tr(W^{k_j})`` for ``W = XᵀX`` (X n × p, i.i.d. N(0, 1)) is a sum over
   Wick matchings of ``n^{#sample classes} p^{#feature classes}``; the enumeration
   (``negative_lr._wishart_plan``) is checked against brute-force Gaussian expectations of the
   expanded polynomials for small n, p.  Hence ``E tr S/p = 1``, ``E tr S²/p = 1 + (p+1)/n`` and, by
   rotation invariance, ``E[(I − αS)²] = h_n(α) I`` with ``h_n(α) = (1 − α)² + α²(p+1)/n``.
2. **Test stage (exact).**  After adaptation ``ω_r − w = (I − α S_r)(ω̂ − w) + α X_rᵀσε/n_r``; the cross
   term vanishes and ``E|α Xᵀσε/n|² = α²σ² E tr S/n``, so with ``B = E|ω̂ − w₀|²`` and the test task's
   spread ``E|w − w₀|² = ν²``: ``L = ½σ²(1 + α² p/n_r) + ½ h_{n_r}(α)(ν² + B)``.  ``∂L/∂α = 0`` gives
   ``α_r* = (ν² + B)/(σ² p/n_r + (ν² + B)(1 + (p+1)/n_r))``, and ``∂²L/∂α² > 0``.
3. **Per-row residual variance (exact) and the Gaussian-row form.**  A row of the MAML design is
   ``a = M z`` (``M = I − α_t S_t``, ``z ~ N(0, I)``), its residual at ``w₀`` is ``u = zᵀv + σε`` with
   ``v = Mδ − α_t X_tᵀσε_t/n_t``; ``E u² = ν²/p E tr M² + α_t²σ²/n_t E tr S + σ² = ν² h + σ²(1 + α_t² p/n_t)``.
   Rows i.i.d. ``N(0, hI)`` with white residuals of that variance and the inverse-Wishart means
   ``E[W⁻¹] = I/(dof − dim − 1)`` give ``V_G = N/(p − N − 1) · c`` (N < p), ``p/(N − p − 1) · c`` (N > p),
   ``c = ν² + σ²(1 + α_t² p/n_t)/h``.
3b. **Within-task structure of δ (N < p).**  Task i's deviation enters as ``A_iδ_i``, so
   ``E|A⁺[A_iδ_i]_i|² = ν²/p Σ_i E tr((G⁻¹)_ii G_ii)`` (``G = AAᵀ``, blocks of size n_v).  By the Schur
   complement ``(G⁻¹)_ii = W₂⁻¹`` and ``G_ii = W₁ + W₂`` with independent Wisharts (n_v × n_v, ``N − n_v``
   and ``p − N + n_v`` degrees of freedom) for Gaussian rows, so each block gives
   ``n_v + n_v(N − n_v)/(p − N − 1)`` and the sum ``N(p − n_v − 1)/(p − N − 1)``; the corrected
   ``V_C = N/(p − N − 1)[ν²(p − n_v − 1)/p + σ²(1 + α_t² p/n_t)/h]`` (exact at α_t = 0, where the rows are Gaussian).
4. **One task's gradient (exact).**  ``r = A_iᵀu_i = M Zᵀ(Z v + σε)``; Isserlis gives
   ``E[ZᵀZ B ZᵀZ] = n_v(n_v + 1) B + n_v tr(B) I`` (checked for symbolic B), ``E[vvᵀ] = ν²/p M² + α_t²σ² S/n_t``,
   so ``E|r|² = n_v(n_v+1)[ν²/p E tr M⁴ + α²σ²/n_t E tr SM²] + n_v[ν²/p E(tr M²)² + α²σ²/n_t E tr M² tr S]
   + σ² n_v E tr M²``, a polynomial in α_t through the step-1 moments.  ``V_C = V_G + E|r|²/(m n_v² h²) − p c/N``.
5. **Optimal training step.**  ``∂/∂α [(1 + α² p/n)/h_n(α)] = 0`` reduces to ``(p/n)α² + (1 + 1/n)α − 1 = 0``;
   the negative root is the minimum.  For ``V_C = Q/h²`` the stationary points are the roots of ``Q'h − 2Qh'``.

``verify`` compares each step with :mod:`linmeta.theory.negative_lr` on random instances (1e-10 relative;
the polynomial-root optimum to 1e-8).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

al, n, p, sig, nu, B = sp.symbols("alpha n p sigma nu B", real=True)
N_, m_, nv_ = sp.symbols("N m n_v", positive=True)


def _gauss_expectation(expr, xs):
    """E[expr] for independent standard normal ``xs`` (monomial moments (k − 1)!!)."""
    poly = sp.Poly(sp.expand(expr), *xs)
    total = sp.Integer(0)
    for powers, coeff in poly.terms():
        if any(k % 2 for k in powers):
            continue
        total += coeff * sp.prod([sp.factorial2(k - 1) for k in powers])
    return total


def brute_force_wishart(powers, nv: int, pv: int):
    """``E ∏ tr(W^k)`` by expanding the polynomial in the entries of a symbolic nv × pv matrix."""
    X = sp.Matrix(nv, pv, lambda i, j: sp.Symbol(f"x{i}_{j}"))
    W = X.T * X
    expr = sp.prod([(W**k).trace() for k in powers])
    return _gauss_expectation(expr, list(X))


def wishart_polynomial(powers):
    """``E ∏ tr(S^k)`` as a sympy expression in n, p, from the Wick plan of the numeric module."""
    from linmeta.theory.negative_lr import _wishart_plan

    return sum(c * n**a * p**b for c, a, b in _wishart_plan(tuple(sorted(powers)))) / n ** sum(powers)


def isserlis_wishart_sandwich(nv: int, pv: int):
    """``E[ZᵀZ B ZᵀZ] − (n_v(n_v+1) B + n_v tr(B) I)`` for Z nv × pv standard normal, symbolic symmetric B."""
    Z = sp.Matrix(nv, pv, lambda i, j: sp.Symbol(f"z{i}_{j}"))
    Bm = sp.Matrix(pv, pv, lambda i, j: sp.Symbol(f"b{min(i, j)}{max(i, j)}"))
    W = Z.T * Z
    E = (W * Bm * W).applyfunc(lambda e: _gauss_expectation(e, list(Z)))
    return sp.expand(E - (nv * (nv + 1) * Bm + nv * Bm.trace() * sp.eye(pv)))


# trace algebra: t[k] stands for tr S^k; a polynomial in the t's is averaged monomial by monomial
t = {k: sp.Symbol(f"t{k}") for k in range(1, 5)}


def _average(expr):
    """E of a polynomial in the trace symbols t1..t4 (each monomial a joint Wishart moment)."""
    poly = sp.Poly(sp.expand(expr), *t.values())
    total = sp.Integer(0)
    for powers, coeff in poly.terms():
        ks = tuple(k for k, e in zip(t, powers) for _ in range(e))
        total += coeff * (wishart_polynomial(ks) if ks else 1)
    return sp.expand(total)


@lru_cache(maxsize=None)
def derive():
    """The symbolic pieces: h, L(α_r), α_r*, per-row variance, V_G, E|r|², V_C numerator, α_t* quadratic."""
    # step 1: h from the moments (tr M² = p − 2α t1 + α² t2)
    trM2 = p - 2 * al * t[1] + al**2 * t[2]
    h = sp.expand(_average(trM2) / p)
    # step 2: test stage, with E tr S_r = p
    L = sp.Rational(1, 2) * sig**2 * (1 + al**2 * _average(t[1]) / n) + sp.Rational(1, 2) * h * (nu**2 + B)
    a_r = sp.solve(sp.diff(L, al), al)
    assert len(a_r) == 1
    # step 3: per-row residual variance and the Gaussian-row V
    s2 = sp.expand(nu**2 / p * _average(trM2) + al**2 * sig**2 / n * _average(t[1]) + sig**2)
    c = s2 / h
    V_over, V_under = N_ / (p - N_ - 1) * c, p / (N_ - p - 1) * c
    # step 3b: Σ_i E tr(W₂⁻¹(W₁ + W₂)) with E W₂⁻¹ = I/(dof − n_v − 1), dof = p − N + n_v
    block = nv_ + nv_ * (N_ - nv_) / ((p - N_ + nv_) - nv_ - 1)
    structure = (m_ * block).subs(m_, N_ / nv_)
    assert sp.cancel(structure - N_ * (p - nv_ - 1) / (p - N_ - 1)) == 0
    V_over_corr = V_over - N_ / (p - N_ - 1) * nu**2 + nu**2 / p * structure
    # step 4: one task's gradient
    trM4 = sp.expand((1 - al * sp.Symbol("s")) ** 4)
    trM4 = sum(trM4.coeff(sp.Symbol("s"), k) * (t[k] if k else p) for k in range(5))
    trSM2 = t[1] - 2 * al * t[2] + al**2 * t[3]
    r2 = (nv_ * (nv_ + 1) * (nu**2 / p * _average(trM4) + al**2 * sig**2 / n * _average(trSM2))
          + nv_ * (nu**2 / p * _average(trM2**2) + al**2 * sig**2 / n * _average(trM2 * t[1]))
          + sig**2 * nv_ * _average(trM2))
    V_corr = V_under + r2 / (m_ * nv_**2 * h**2) - p * c / N_
    # step 5: the Gaussian-row optimum
    f = (1 + al**2 * p / n) / h
    num = sp.factor(sp.numer(sp.together(sp.diff(f, al))))
    return {"h": h, "L": L, "alpha_r": a_r[0], "s2": s2, "V_over": V_over, "V_over_corr": V_over_corr, "V_under": V_under, "r2": sp.expand(r2),
            "V_corr": V_corr, "f": f, "dnum": num}


def verify(seed: int = 0) -> None:
    from linmeta.theory import negative_lr as T

    rng = np.random.default_rng(seed)
    # step 1: the Wick plan against brute force (small n, p), and h
    for powers in [(1,), (2,), (3,), (4,), (1, 1), (1, 2), (2, 2), (1, 3), (1, 1, 2)]:
        for nv, pv in [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (1, 3)]:
            if sum(powers) == 4 and nv * pv > 3:
                continue  # keep verify fast; smaller sizes already pin the polynomial
            ref = brute_force_wishart(powers, nv, pv)
            got = T.wishart_trace_moment(powers, nv, pv) * nv ** sum(powers)
            assert abs(got - float(ref)) <= 1e-10 * abs(float(ref)), (powers, nv, pv, got, ref)
    d = derive()
    assert sp.expand(d["h"] - ((1 - al) ** 2 + al**2 * (p + 1) / n)) == 0
    # step 4 identity (Isserlis) for symbolic B
    for nv, pv in [(1, 2), (2, 2)]:
        assert isserlis_wishart_sandwich(nv, pv) == sp.zeros(pv, pv)
    # dL/dα has one root and L is convex in α
    assert sp.expand(sp.diff(d["L"], al, 2) - (sig**2 * p / n + (nu**2 + B) * (1 + (p + 1) / n))) == 0  # > 0
    assert sp.cancel(d["dnum"] / (p * al**2 + (n + 1) * al - n)).free_symbols <= {n}
    f_h = sp.lambdify((al, n, p), d["h"], "numpy")
    f_L = sp.lambdify((al, n, p, sig, nu, B), d["L"], "numpy")
    f_ar = sp.lambdify((n, p, sig, nu, B), d["alpha_r"], "numpy")
    f_Vo = sp.lambdify((al, n, p, sig, nu, N_), d["V_over"], "numpy")
    f_Vu = sp.lambdify((al, n, p, sig, nu, N_), d["V_under"], "numpy")
    f_Voc = sp.lambdify((al, n, p, sig, nu, N_, nv_), d["V_over_corr"], "numpy")
    f_r2 = sp.lambdify((al, n, p, sig, nu, nv_), d["r2"], "numpy")
    f_Vc = sp.lambdify((al, n, p, sig, nu, N_, m_, nv_), d["V_corr"], "numpy")
    close = lambda a, b, tol=1e-10: abs(a - b) <= tol * max(abs(b), 1e-300)  # noqa: E731
    for trial in range(6):
        pv, nt, nvv, nr = int(rng.integers(5, 80)), int(rng.integers(2, 60)), int(rng.integers(1, 6)), int(rng.integers(2, 40))
        sg, nuv, off = rng.uniform(0.1, 2), rng.uniform(0, 2), rng.uniform(0, 1)
        over = trial % 2 == 0
        mv = int(rng.integers(1, max(2, (pv - 2) // nvv))) if over else int(rng.integers(pv // nvv + 2, pv // nvv + 40))
        if abs(mv * nvv - pv) <= 1:
            mv += 3
        over = mv * nvv < pv
        s = T.MixedRegression(pv, nt, nvv, nr, mv, sg, nuv, off)
        at, ar = rng.uniform(-2, 1.5), rng.uniform(-0.5, 1.5)
        assert close(float(T.h_factor(at, nt, pv)), f_h(at, nt, pv))
        Bv = float(T.estimator_error(s, at))
        assert close(float(T.test_loss_given_error(s, ar, Bv)), f_L(ar, nr, pv, sg, nuv, Bv))
        assert close(float(T.expected_test_loss(s, at, ar)), f_L(ar, nr, pv, sg, nuv, Bv))
        assert close(float(T.optimal_alpha_adapt(s, at)), f_ar(nr, pv, sg, nuv, Bv))
        assert close(float(T.task_gradient_moment(s, at)), f_r2(at, nt, pv, sg, nuv, nvv))
        N = mv * nvv
        VG = f_Vo(at, nt, pv, sg, nuv, N) if over else f_Vu(at, nt, pv, sg, nuv, N)
        assert close(float(T.fitted_noise(s, at, "gaussian")), VG)
        VC = f_Voc(at, nt, pv, sg, nuv, N, nvv) if over else f_Vc(at, nt, pv, sg, nuv, N, mv, nvv)
        assert close(float(T.fitted_noise(s, at, "corrected")), VC)
        assert close(Bv, VC + ((1 - N / pv) * off**2 if over else 0.0))
        # step 5: α_t*
        q, b = pv / nt, 1 + 1 / nt
        a_star = (-b - np.sqrt(b * b + 4 * q)) / (2 * q)
        assert close(T.optimal_alpha_train(s, "gaussian"), a_star)
        f_f = sp.lambdify(al, d["f"].subs({n: nt, p: pv}), "numpy")
        assert f_f(a_star) < min(f_f(a_star - 1e-3), f_f(a_star + 1e-3), 1.0)
        if not over:
            # the returned α_t* is a stationary point of the sympy V_C and its lowest value on a fine grid
            got = T.optimal_alpha_train(s, "corrected")
            args = (nt, pv, sg, nuv, N, mv, nvv)
            scale = abs(f_Vc(got, *args)) / max(1.0, abs(got))
            slope = f_Vc(got + 1e-30j, *args).imag / 1e-30          # complex step: exact derivative
            assert abs(slope) <= 1e-8 * scale, (got, slope)
            grid = np.linspace(-20, 20, 2001)
            assert f_Vc(got, *args) <= np.min(f_Vc(grid, *args)) * (1 + 1e-12)
        else:
            assert T.optimal_alpha_train(s, "corrected") == T.optimal_alpha_train(s, "gaussian")


if __name__ == "__main__":
    d = derive()
    print("h_n(alpha) =", sp.latex(sp.factor(d["h"])))
    print("L_test =", sp.latex(d["L"]))
    print("alpha_r* =", sp.latex(sp.simplify(d["alpha_r"])))
    print("E u^2 =", sp.latex(sp.factor(d["s2"])))
    print("V_G (N < p) =", sp.latex(sp.simplify(d["V_over"])))
    print("E|r|^2 =", sp.latex(sp.collect(d["r2"], al)))
    print("d/dalpha numerator of (1 + alpha^2 p/n)/h:", sp.latex(d["dnum"]))
    verify()
    print("verified against linmeta.theory.negative_lr")
