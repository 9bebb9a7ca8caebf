r"""Head or body?  Splitting one MAML step's loss reduction into the head's and the body's parts.

Network ``M = W_L ⋯ W_1``; support gradient ``G_s``, query gradient ``G_q`` (both in M); the query
loss is quadratic, ``ℓ_q(M) = ½tr(MAMᵀ) − tr(MB) + c``, so for any move ``M → M − αΔ``

    ℓ_q(M) − ℓ_q(M − αΔ) = α⟨G_q, Δ⟩ − ½α² tr(Δ A Δᵀ).                                  (1)

**Two layers** (``M = W_2 W_1``, ``R = W_1ᵀW_1``, ``F = W_2W_2ᵀ``).  One MAML step
``W_2 ← W_2 − α G_s W_1ᵀ``, ``W_1 ← W_1 − α W_2ᵀ G_s`` gives exactly

    M⁺ = M − α G_s R − α F G_s + α² G_s W_1ᵀ W_2ᵀ G_s;                                   (2)

the head alone moves M by ``Δ_head = G_s R`` (ANIL, right-preconditioned), the body alone by
``Δ_body = F G_s`` (left-preconditioned).  With ``out = 1``, ``W_2 = wᵀ``, ``W_1 = W`` and ``g = G_sᵀ``
this is the two-layer identity ``θ⁺ = θ − α(WᵀW + |w|²I)g + α²(wᵀWg)g``.  By (1) the head
and body reductions are exact quadratics in the task error ``E = M − W*`` when ``G = EΣ``
(population support and query):

    Δℓ_head = tr(E [αΣRΣ − ½α²ΣRΣRΣ] Eᵀ),   Δℓ_body = α tr(F EΣ²Eᵀ) − ½α² tr(F² EΣ³Eᵀ).

**Gaussian tasks.**  For ``vec_row(W*) ~ N(vec_row μ, C)`` and ``D = M − μ``,

    E tr(F E Q Eᵀ) = tr(F D Q Dᵀ) + Σ_{o,o',i,j} F_{oo'} Q_{ij} C_{(o,i),(o',j)}.           (3)

**Any depth, first order.**  ``d/dα [ℓ_q(M) − ℓ_q(M⁺)]`` at α = 0 is ``Σ_l ⟨G_q, S_lS_lᵀ G_s P_lᵀP_l⟩``
(the implicit preconditioner, ``derivations/implicit_preconditioner.py``): the head's term ``⟨G_q, G_s R⟩`` plus the
body's terms.  ``verify`` checks it through the exact polynomial (degree 2L in α) of the engine's step.
"""
from __future__ import annotations

import numpy as np
import sympy as sp


def _sym(name, rows, cols):
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}{i}{j}", real=True))


def derive():
    """Symbolic checks of (1), (2) and (3) on small sizes."""
    alpha = sp.Symbol("alpha", real=True)
    d, p, out = 2, 2, 2
    W1, W2, G = _sym("u", p, d), _sym("v", out, p), _sym("g", out, d)
    M = W2 * W1
    M_new = (W2 - alpha * G * W1.T) * (W1 - alpha * W2.T * G)
    R, F = W1.T * W1, W2 * W2.T
    assert sp.expand(M_new - (M - alpha * G * R - alpha * F * G + alpha**2 * G * W1.T * W2.T * G)) == sp.zeros(out, d)
    # (1): quadratic loss in M, with symmetric A
    A = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"a{min(i, j)}{max(i, j)}", real=True))
    B, Dl = _sym("b", d, out), _sym("D", out, d)
    loss = lambda X: (X * A * X.T).trace() / 2 - (X * B).trace()
    Gq = M * A - B.T
    lhs = loss(M) - loss(M - alpha * Dl)
    rhs = alpha * sum(Gq[i, j] * Dl[i, j] for i in range(out) for j in range(d)) - alpha**2 / 2 * (Dl * A * Dl.T).trace()
    assert sp.expand(lhs - rhs) == 0
    # (3): E tr(F E Q Eᵀ) with E = D + Z, E[Z] = 0, E[Z_a Z_b] = C_ab (row-major index a = o*d + i)
    Fs = sp.Matrix(out, out, lambda i, j: sp.Symbol(f"F{min(i, j)}{max(i, j)}", real=True))
    Qs = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"Q{min(i, j)}{max(i, j)}", real=True))
    Z = _sym("z", out, d)
    n = out * d
    C = sp.Matrix(n, n, lambda a, b: sp.Symbol(f"C{min(a, b)}_{max(a, b)}", real=True))
    expr = sp.expand((Fs * (Dl + Z) * Qs * (Dl + Z).T).trace())
    zs = list(Z)  # row-major order, matching vec_row
    poly = sp.Poly(expr, *zs)
    mean = 0
    for powers, coeff in poly.terms():
        idx = [a for a, k in enumerate(powers) for _ in range(k)]
        if len(idx) == 0:
            mean += coeff
        elif len(idx) == 2:
            mean += coeff * C[idx[0], idx[1]]
        # degree-1 terms have zero mean; the expression has no higher degree
    closed = (Fs * Dl * Qs * Dl.T).trace() + sum(
        Fs[o, o2] * Qs[i, j] * C[o * d + i, o2 * d + j] for o in range(out) for o2 in range(out) for i in range(d)
        for j in range(d))
    assert sp.expand(mean - closed) == 0
    # the scalar-output form of (2) quoted in the research note
    w, W, g = _sym("w", p, 1), _sym("W", p, d), _sym("c", d, 1)
    theta = W.T * w
    theta_new = (W - alpha * w * g.T).T * (w - alpha * W * g)
    note = theta - alpha * (W.T * W + (w.T * w)[0] * sp.eye(d)) * g + alpha**2 * (w.T * W * g)[0] * g
    assert sp.expand(theta_new - note) == sp.zeros(d, 1)
    return M_new


def _sigma_point_tasks(mean, cov):
    """2n tasks whose first and second moments equal those of N(mean, cov) exactly (n = out·d)."""
    out, d = mean.shape
    lam, U = np.linalg.eigh(cov)
    root = U * np.sqrt(np.clip(lam, 0, None) * len(lam))
    pts = [mean.reshape(-1) + s * root[:, i] for i in range(len(lam)) for s in (1.0, -1.0)]
    return np.array(pts).reshape(-1, out, d)


def verify(seed: int = 0) -> None:
    from linmeta import GaussianRegression, TaskBatch, init_deep_linear, sample_moments
    from linmeta.sim.head_body import head_body_split
    from linmeta.theory import anil

    derive()
    rng = np.random.default_rng(seed)
    d, out, T = 4, 2, 5

    # (1)+(2): engine split == closed-form quadratics, two layers, sampled support and query
    W1, W2 = init_deep_linear(d, (3,), out, rng=rng)
    Xs, Ys = rng.standard_normal((T, 6, d)), rng.standard_normal((T, 6, out))
    Xq, Yq = rng.standard_normal((T, 9, d)), rng.standard_normal((T, 9, out))
    sup, qry = sample_moments(Xs, Ys), sample_moments(Xq, Yq)
    alpha = 0.21
    split = head_body_split((W1, W2), sup, qry, alpha)
    M = (W2 @ W1)[None]
    Gs, Gq = sup.grad(M), qry.grad(M)
    R, F = W1.T @ W1, W2 @ W2.T
    red = lambda Dl: alpha * np.sum(Gq * Dl, axis=(-2, -1)) - 0.5 * alpha**2 * np.einsum("tod,tde,toe->t", Dl, qry.A, Dl)
    head, body = red(Gs @ R), red(F @ Gs)
    total = red(Gs @ R + F @ Gs - alpha * Gs @ W1.T @ W2.T @ Gs)
    for got, want in ((split.head, head), (split.body, body), (split.total, total)):
        assert np.max(np.abs(got - want)) <= 1e-10 * np.max(np.abs(want))

    # first order, depth 3: the α-coefficient of the exact polynomial (degree 2L) of each reduction
    params = init_deep_linear(d, (3, 4), out, rng=rng)
    L = len(params)
    alphas = np.linspace(-0.3, 0.3, 2 * L + 3)
    rows = [head_body_split(params, sup, qry, a) for a in alphas]
    base = head_body_split(params, sup, qry, 1.0)
    for name, lin in (("total", base.head_linear + base.body_linear), ("head", base.head_linear),
                      ("body", base.body_linear)):
        vals = np.array([getattr(r, name) for r in rows])  # (n_alpha, T)
        coef = np.polynomial.polynomial.polyfit(alphas, vals, 2 * L)[1]  # linear coefficient per task
        assert np.max(np.abs(coef - lin)) <= 1e-10 * np.max(np.abs(lin)), (name, coef, lin)

    # (3) through the engine: sigma-point tasks reproduce Gaussian first and second moments exactly,
    # and the two-layer head/body reductions are quadratic in E, so their average is the expectation
    Lc = rng.standard_normal((d, d))
    S = Lc @ Lc.T / d + 0.2 * np.eye(d)
    C = rng.standard_normal((out * d, out * d))
    fam = GaussianRegression(d=d, out=out, mean=rng.standard_normal((out, d)), cov=C @ C.T / (out * d), input_cov=S)
    W = _sigma_point_tasks(fam.mean, fam.cov)
    tasks = TaskBatch(W, np.broadcast_to(S, (len(W), d, d)), np.zeros(len(W)))
    pop = tasks.population()
    s = head_body_split((W1, W2), pop, pop, alpha)
    ex = anil.two_layer_split_expectation((W1, W2), fam, alpha)
    for name in ("head", "body", "head_linear", "body_linear"):
        got = getattr(s, name).mean()
        assert abs(got - float(ex[name])) <= 1e-10 * abs(float(ex[name])), (name, got, ex[name])


if __name__ == "__main__":
    print("one MAML step of a two-layer net: M+ =", derive()[0, 0], "...")
    verify()
    print("verified")
