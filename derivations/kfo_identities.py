"""Derivation: Kronecker-factored meta-optimizers (KFO) and the optimal one-step preconditioner.

1. **vec identity.**  With column-major ``vec``, ``vec(L̃ G R̃) = (R̃ᵀ ⊗ L̃) vec G`` ,
   shown entry by entry with symbolic matrices; ``verify`` checks the engine's ``KFO.apply`` (psd: L̃ = LᵀL,
   R̃ = RᵀR; non-psd: L̃ = L, R̃ = R) and ``MetaSGD.apply`` (``vec(λ ⊙ g) = diag(vec λ) vec g``) against it.

2. **P7: a deep net's frozen upper layers are a KFO.**  For ``M = S W_1`` (``S = W_{L:2}``), bottom-only
   adaptation gives ``W_1 − α Sᵀ G`` so ``M⁺ = M − α (S Sᵀ) G`` (T2): exactly the KFO step ``M − α L̃ G R̃`` of a
   shallow model with ``L̃ = S Sᵀ`` (psd: ``L = Cᵀ`` for the Cholesky factor ``S Sᵀ = C Cᵀ``) and ``R̃ = I``, for
   every inner step since S does not adapt (sympy: one step from any ``M = S W_1``, hence all by induction).  Hence the two meta-losses agree as functions of ``M = S W_1``
   and the chain rule gives ``∂F_deep/∂W_1 = Sᵀ ∂F_KFO/∂M``; ``verify`` checks all three in the engine.

3. **The optimal one-step preconditioner** (``linmeta.theory.metaopt``).  One step ``M⁺ = M − G P`` with
   ``G = E Σ̂ − N`` (``E = M − W*``, ``Σ̂ = XᵀX/K``, ``N = εᵀX/K``), scored on ``½ tr(E⁺ Σ E⁺ᵀ) + ½ out σ²``.
   Isserlis' theorem gives, per sample, ``E[x xᵀ R x xᵀ] = 2 Σ R Σ + tr(RΣ) Σ`` (R symmetric), hence
   ``H = E[Σ̂ R Σ̂] + out σ² Σ/K = Σ R Σ + (Σ R Σ + tr(RΣ) Σ)/K + out σ² Σ/K`` with ``R = E[EᵀE]``, and

       ℒ(P) = ½ [tr(ΣR) − 2 tr(P Σ R Σ) + tr(P Σ Pᵀ H)] + ½ out σ²,
       ∂ℒ/∂P = H P Σ − Σ R Σ   ⇒   P* = H⁻¹ Σ R,
       P = diag(p):  ∂ℒ/∂p = (Σ ∘ H) p − diag(Σ R Σ),     P = a I:  dℒ/da = a tr(ΣH) − tr(ΣRΣ),

   and ``ΣR H = H RΣ``, so ``P* = H⁻¹ΣR`` equals its transpose ``RΣH⁻¹``: it is symmetric (and positive
   definite for R ≻ 0), so PSD-constrained KFO reaches the unconstrained optimum.

   sympy builds ℒ(P) from the moments (d = 2, symbolic Σ, R, P, K, σ) and checks these gradients.
"""
from functools import lru_cache

import numpy as np
import sympy as sp


def _sym(name, n, m):
    return sp.Matrix(n, m, lambda i, j: sp.Symbol(f"{name}{i}{j}"))


def _sym_sym(name, n):
    return sp.Matrix(n, n, lambda i, j: sp.Symbol(f"{name}{min(i, j)}{max(i, j)}"))


def vec(A):
    """Column-major vec of a sympy or numpy matrix."""
    if isinstance(A, np.ndarray):
        return A.T.reshape(-1)
    return A.T.reshape(A.shape[0] * A.shape[1], 1)


def derive_vec_identity(n=2, m=3):
    L, G, R = _sym("l", n, n), _sym("g", n, m), _sym("r", m, m)
    assert sp.expand(vec(L * G * R) - sp.kronecker_product(R.T, L) * vec(G)) == sp.zeros(n * m, 1)


def derive_p7():
    """T2 as the KFO step with L̃ = S Sᵀ, R̃ = I, for one step from any ``M = S W_1``.

    The step maps ``(S, W_1)`` to ``(S, W_1⁺)`` with ``M⁺ = S W_1⁺``, so by induction the identity holds
    for every number of inner steps (``verify`` runs three in the engine).
    """
    alpha = sp.Symbol("alpha")
    S, W1 = _sym("s", 2, 3), _sym("a", 3, 2)  # S = W_{L:2} (out x n_1), W_1 (n_1 x d)
    A, B = _sym_sym("A", 2), _sym("B", 2, 2)  # a quadratic support loss ½tr(MAMᵀ) − tr(MB)
    grad = lambda M: M * A - B.T
    M = S * W1
    deep = S * (W1 - alpha * S.T * grad(M))  # bottom-only: ∂ℓ/∂W_1 = Sᵀ G
    kfo = M - alpha * (S * S.T) * grad(M) * sp.eye(2)  # shallow KFO with L̃ = S Sᵀ, R̃ = I
    assert sp.expand(deep - kfo) == sp.zeros(2, 2)


def _isserlis_fourth(Sigma, R):
    """``E[x xᵀ R x xᵀ]`` for ``x ~ N(0, Σ)`` by Isserlis' theorem, entry by entry."""
    d = Sigma.shape[0]
    E4 = lambda i, j, k, l: Sigma[i, j] * Sigma[k, l] + Sigma[i, k] * Sigma[j, l] + Sigma[i, l] * Sigma[j, k]
    return sp.Matrix(d, d, lambda i, l: sum(R[j, k] * E4(i, j, k, l) for j in range(d) for k in range(d)))


@lru_cache(maxsize=None)
def derive_one_step_loss(d=2):
    """ℒ(P) from the moments and its gradients; returns ``(symbols, H, loss)``."""
    Sigma, R, P = _sym_sym("S", d), _sym_sym("R", d), _sym("p", d, d)
    K, s2, out = sp.symbols("K sigma2 out", positive=True)
    # E[Σ̂ R Σ̂] = (1/K) E[x xᵀ R x xᵀ] + (1 − 1/K) Σ R Σ  (K independent samples)
    fourth = _isserlis_fourth(Sigma, R)
    assert sp.expand(fourth - (2 * Sigma * R * Sigma + (R * Sigma).trace() * Sigma)) == sp.zeros(d, d)
    ESRS = fourth / K + (1 - 1 / K) * Sigma * R * Sigma
    H = ESRS + out * s2 * Sigma / K  # E[NᵀN] = out σ² Σ / K; N is independent of E and has mean 0
    # E⁺ = E (I − Σ̂ P) + N P;  ½ E tr(E⁺ Σ E⁺ᵀ) expanded term by term, with E[Σ̂] = Σ and E[EᵀE] = R
    loss = ((Sigma * R).trace() - 2 * (P * Sigma * R * Sigma).trace() + (P * Sigma * P.T * H).trace()) / 2 \
        + out * s2 / 2
    grad = sp.Matrix(d, d, lambda i, j: sp.diff(loss, P[i, j]))
    assert sp.expand(grad - (H * P * Sigma - Sigma * R * Sigma)) == sp.zeros(d, d)
    p = sp.symbols(f"q0:{d}")
    diag_loss = loss.subs({P[i, j]: (p[i] if i == j else 0) for i in range(d) for j in range(d)})
    SH = Sigma.multiply_elementwise(H)
    target = sp.Matrix([(Sigma * R * Sigma)[i, i] for i in range(d)])
    grad_p = sp.Matrix([sp.diff(diag_loss, q) for q in p])
    assert sp.expand(grad_p - (SH * sp.Matrix(p) - target)) == sp.zeros(d, 1)
    a = sp.Symbol("a")
    scalar_loss = loss.subs({P[i, j]: (a if i == j else 0) for i in range(d) for j in range(d)})
    assert sp.expand(sp.diff(scalar_loss, a) - (a * (Sigma * H).trace() - (Sigma * R * Sigma).trace())) == 0
    # P* = H⁻¹ΣR is symmetric: (H⁻¹ΣR)ᵀ = RΣH⁻¹ and ΣR H = H RΣ (H is a polynomial in ΣR times Σ)
    assert sp.expand(Sigma * R * H - H * R * Sigma) == sp.zeros(d, d)
    return (Sigma, R, P, K, s2, out), H, loss


def verify(seed: int = 0) -> None:
    import linmeta as lm
    from linmeta.theory import metaopt
    from linmeta.preconditioners import KFO, MetaCurvature, MetaSGD

    derive_vec_identity()
    derive_p7()
    (Sigma, R, P, K, s2, out), H, loss = derive_one_step_loss(2)
    rng = np.random.default_rng(seed)
    rel = lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(np.asarray(b))), 1e-300))

    # 1. the engine's transforms in vec form
    n, m = 3, 4
    g = rng.standard_normal((2, 5, n, m))  # (runs, T, n, m)
    phi = (rng.standard_normal((2, n, n)), rng.standard_normal((2, m, m)))
    for pc in (KFO(psd=True), KFO(psd=False), MetaCurvature()):
        Lt, Rt = pc.effective_factors(phi)
        U = pc.apply(phi, g)
        for r in range(2):
            for t in range(5):
                assert rel(vec(U[r, t]), np.kron(Rt[r].T, Lt[r]) @ vec(g[r, t])) <= 1e-12
    lam = (rng.standard_normal((2, n, m)),)
    U = MetaSGD().apply(lam, g)
    assert rel(vec(U[1, 3]), np.diag(vec(lam[0][1])) @ vec(g[1, 3])) <= 1e-12

    # 2. P7 in the engine: deep bottom-only = shallow KFO(psd) with LᵀL = S Sᵀ, R = I (3 inner steps)
    d, o = 3, 2
    params = lm.init_deep_linear(d, (4, 3), o, rng=rng)
    S = params[2] @ params[1]
    Lf = np.linalg.cholesky(S @ S.T).T  # LᵀL = S Sᵀ
    X, Y = rng.standard_normal((4, 7, d)), rng.standard_normal((4, 7, o))
    Xq, Yq = rng.standard_normal((4, 9, d)), rng.standard_normal((4, 9, o))
    support, query = lm.sample_moments(X, Y), lm.sample_moments(Xq, Yq)
    rule_deep = lm.InnerLoop(3, 0.05, layers="first")
    rule_kfo = lm.InnerLoop(3, 0.05, layers="all")
    kfo_phi = ((Lf, np.eye(d)),)
    M = lm.end_to_end(params)
    deep = lm.adapted_map(params, support, rule_deep)
    shallow = lm.adapted_map((M,), support, rule_kfo, KFO(psd=True), kfo_phi)
    assert rel(shallow, deep) <= 1e-12
    gd = lm.meta_value_and_grad(params, support, query, rule_deep)
    gs = lm.meta_value_and_grad((M,), support, query, rule_kfo, KFO(psd=True), kfo_phi)
    assert rel(gs.value, gd.value) <= 1e-12
    assert rel(S.T @ gs.params[0], gd.params[0]) <= 1e-10

    # 3. the optimal one-step preconditioner: sympy at a random instance against linmeta.theory.metaopt
    A = rng.standard_normal((2, 2))
    Sn = A @ A.T + 0.5 * np.eye(2)
    B = rng.standard_normal((2, 2))
    Rn = B @ B.T + 0.2 * np.eye(2)
    Kn, sn, on = int(rng.integers(2, 20)), float(rng.uniform(0.1, 1.0)), int(rng.integers(1, 4))
    Pn = rng.standard_normal((2, 2))
    point = {Sigma[0, 0]: Sn[0, 0], Sigma[0, 1]: Sn[0, 1], Sigma[1, 1]: Sn[1, 1],
             R[0, 0]: Rn[0, 0], R[0, 1]: Rn[0, 1], R[1, 1]: Rn[1, 1], K: Kn, s2: sn**2, out: on}
    point_P = {**point, **{P[i, j]: Pn[i, j] for i in range(2) for j in range(2)}}
    Hn = np.array(H.subs(point), dtype=float)
    assert rel(metaopt.one_step_curvature(Sn, Rn, Kn, sn, on), Hn) <= 1e-12
    assert rel(metaopt.one_step_loss(Pn, Sn, Rn, Kn, sn, on), float(loss.subs(point_P))) <= 1e-12
    # stationary points of the sympy loss, solved exactly by sympy at this instance
    grad_at = sp.Matrix(2, 2, lambda i, j: sp.diff(loss, P[i, j])).subs(point)
    sol = sp.solve(list(grad_at), list(P))
    P_star = np.array([[float(sol[P[i, j]]) for j in range(2)] for i in range(2)])
    assert rel(metaopt.optimal_preconditioner(Sn, Rn, Kn, sn, on), P_star) <= 1e-10
    assert rel(P_star, P_star.T) <= 1e-10 and np.linalg.eigvalsh(P_star)[0] > 0
    q = sp.symbols("q0:2")
    diag_loss = loss.subs(point).subs({P[0, 0]: q[0], P[1, 1]: q[1], P[0, 1]: 0, P[1, 0]: 0})
    sol = sp.solve([sp.diff(diag_loss, v) for v in q], q)
    assert rel(metaopt.optimal_diagonal_preconditioner(Sn, Rn, Kn, sn, on), [float(sol[v]) for v in q]) <= 1e-10
    a = sp.Symbol("a")
    scalar_loss = loss.subs(point).subs({P[0, 0]: a, P[1, 1]: a, P[0, 1]: 0, P[1, 0]: 0})
    a_star = float(sp.solve(sp.diff(scalar_loss, a), a)[0])
    assert rel(metaopt.optimal_scalar_step(Sn, Rn, Kn, sn, on), a_star) <= 1e-10


if __name__ == "__main__":
    derive_vec_identity()
    print("vec(L G R) = (R^T ⊗ L) vec(G)  (column-major) verified symbolically")
    derive_p7()
    print("P7: a deep bottom-only step = the shallow KFO step with L̃ = S S^T, R̃ = I (symbolic, any step)")
    _, H, loss = derive_one_step_loss(2)
    print("one-step loss ℒ(P) = ½[tr(ΣR) − 2tr(PΣRΣ) + tr(PΣPᵀH)] + ½ out σ²;  P* = H⁻¹ΣR")
    verify()
    print("verified against linmeta.preconditioners, linmeta.meta and linmeta.theory.metaopt")
