r"""Linear CKA (and CCA) of linear representations of Gaussian inputs, in closed form.

Setting: a layer represents ``x ~ N(0, Σ)`` by ``h = A x`` (p x d) and,
after adaptation, by ``h' = A' x`` (q x d).  On n samples ``X`` (n x d) the features are
``H = X Aᵀ`` and ``H' = X A'ᵀ``; with the centring matrix ``C = I − 11ᵀ/n``, linear CKA
(Kornblith et al. 2019) is

    CKA_n = ‖H'ᵀ C H‖²_F / (‖Hᵀ C H‖_F ‖H'ᵀ C H'‖_F).

Step 1 (exact, symbolic below).  ``Hᵀ C H = A (XᵀCX) Aᵀ`` and ``H'ᵀ C H = A' (XᵀCX) Aᵀ``, so with
the centred sample covariance ``Σ̂_c = XᵀCX / n`` (the powers of n cancel in the ratio)

    CKA_n = ‖A Σ̂_c A'ᵀ‖²_F / (‖A Σ̂_c Aᵀ‖_F ‖A' Σ̂_c A'ᵀ‖_F),

i.e. the sample CKA *is* the population formula evaluated at ``Σ̂_c``.

Step 2 (limit).  ``Σ̂_c → Σ`` almost surely and at rate ``1/√n`` (CLT), and the formula is smooth
where the denominators are non-zero, so

    CKA = ‖A Σ A'ᵀ‖²_F / (‖A Σ Aᵀ‖_F ‖A' Σ A'ᵀ‖_F)

(``Cov(h, h') = E[A x xᵀ A'ᵀ] = A Σ A'ᵀ``), implemented in ``linmeta.theory.similarity.linear_cka``;
the sample estimator is ``linmeta.representations.linear_cka_samples``.

The same step-1 argument for CCA: sample canonical correlations are the singular values of
``U₁ᵀU₂`` for orthonormal bases of ``col(C X Aᵀ)`` and ``col(C X A'ᵀ)``.  With
``C X = Z Σ̂_c^{1/2}``-type factorisations, the canonical correlations of the samples equal the
population canonical correlations at ``Σ = Σ̂_c``: the cosines of the principal angles between the
row spaces of ``A Σ̂_c^{1/2}`` and ``A' Σ̂_c^{1/2}`` (checked numerically in ``verify``).  For a
single feature (p = q = 1) the canonical correlation is ``|aΣbᵀ| / √(aΣaᵀ · bΣbᵀ)``, the cosine of
the angle between ``Σ^{1/2}aᵀ`` and ``Σ^{1/2}bᵀ`` (symbolic below).  For invertible square maps the
row spaces are all of R^d, so every canonical correlation is 1 (the "CCA trap").
"""
from __future__ import annotations

import numpy as np
import sympy as sp


def _sym(name, rows, cols):
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}{i}{j}", real=True))


def derive():
    """Symbolic step 1 for small sizes and the single-feature CCA identity; returns the CKA expression."""
    n, d, p, q = 4, 3, 2, 2
    X, A, A2 = _sym("x", n, d), _sym("a", p, d), _sym("b", q, d)
    C = sp.eye(n) - sp.ones(n, n) / n
    H, H2 = X * A.T, X * A2.T
    Sc = X.T * C * X
    assert sp.expand(H.T * C * H - A * Sc * A.T) == sp.zeros(p, p)
    assert sp.expand(H2.T * C * H - A2 * Sc * A.T) == sp.zeros(q, p)
    # population cross-covariance: E[h h'ᵀ] = A E[xxᵀ] A'ᵀ with E[xxᵀ] = Σ
    S = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"s{min(i, j)}{max(i, j)}", real=True))
    fro2 = lambda Mx: sum(v**2 for v in Mx)
    cka = fro2(A * S * A2.T) / sp.sqrt(fro2(A * S * A.T) * fro2(A2 * S * A2.T))
    # single feature: CCA = |corr| = |aΣbᵀ| / √(aΣaᵀ bΣbᵀ); with Σ = L Lᵀ every Σ-inner product is a
    # Euclidean inner product of Lᵀaᵀ, Lᵀbᵀ, so |corr| is the cosine between Σ^{1/2}-images
    a, b = A[0, :], A2[0, :]
    Lc = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"l{i}{j}", real=True) if j <= i else 0)
    on_L = {S[i, j]: (Lc * Lc.T)[i, j] for i in range(d) for j in range(d)}
    u, v = Lc.T * a.T, Lc.T * b.T
    for left, right in (((a * S * b.T)[0], u.dot(v)), ((a * S * a.T)[0], u.dot(u)), ((b * S * b.T)[0], v.dot(v))):
        assert sp.expand(left.subs(on_L) - right) == 0
    return cka, (A, A2, S)


def verify(seed: int = 0) -> None:
    from linmeta.sim.representations import canonical_correlations_samples, linear_cka_samples
    from linmeta.theory.similarity import canonical_correlations, linear_cka

    cka, (A_s, A2_s, S_s) = derive()
    rng = np.random.default_rng(seed)
    d, p, q = A_s.shape[1], A_s.shape[0], A2_s.shape[0]
    A, A2 = rng.standard_normal((p, d)), rng.standard_normal((q, d))
    Lm = rng.standard_normal((d, d))
    S = Lm @ Lm.T + 0.1 * np.eye(d)
    subs = {A_s[i, j]: A[i, j] for i in range(p) for j in range(d)}
    subs.update({A2_s[i, j]: A2[i, j] for i in range(q) for j in range(d)})
    subs.update({S_s[i, j]: S[i, j] for i in range(d) for j in range(d)})
    sym_val = float(cka.subs(subs))
    num_val = float(linear_cka(A, A2, S))
    assert abs(sym_val - num_val) <= 1e-10 * abs(sym_val), (sym_val, num_val)

    # step 1 numerically, at a larger size: sample CKA == closed form at the centred sample covariance
    d, n = 7, 40
    A, A2 = rng.standard_normal((3, d)), rng.standard_normal((5, d))
    X = rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
    Xc = X - X.mean(axis=0)
    Sc = Xc.T @ Xc / n
    s_cka, p_cka = linear_cka_samples(X @ A.T, X @ A2.T), linear_cka(A, A2, Sc)
    assert abs(s_cka - p_cka) <= 1e-10 * abs(p_cka), (s_cka, p_cka)
    # CCA: sample canonical correlations == population ones at Σ̂_c (bottleneck maps: rank 3 < d)
    C1 = rng.standard_normal((3, d))
    B1 = rng.standard_normal((6, 3)) @ C1
    B2 = rng.standard_normal((6, 3)) @ (C1 + 0.5 * rng.standard_normal((3, d)))
    rs, rp = canonical_correlations_samples(X @ B1.T, X @ B2.T), canonical_correlations(B1, B2, Sc)
    assert rs.shape == rp.shape and np.max(np.abs(rs - rp)) <= 1e-9, (rs, rp)
    assert np.max(rp) <= 1 + 1e-12 and np.min(rp) < 0.999  # informative for bottleneck layers
    # the CCA trap: invertible square maps have every canonical correlation equal to 1
    Q1, Q2 = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    assert np.max(np.abs(canonical_correlations(Q1, Q2, Sc) - 1)) <= 1e-10


if __name__ == "__main__":
    expr, _ = derive()
    print("Population linear CKA of h = A x, h' = A' x, x ~ N(0, Σ):")
    print("  CKA = ||A Σ A'^T||_F^2 / (||A Σ A^T||_F ||A' Σ A'^T||_F)")
    verify()
    print("verified")
