"""Derivation: the implicit meta-optimizer of deep linear networks (the layer gradient, bottom-, top- and all-layer adaptation, balanced form).

With ``M = W_L ⋯ W_1``, ``G = ∂ℓ/∂M``, ``S_l`` the product above layer l and ``P_l`` the one below
(``M = S_l W_l P_l``), a gradient step on a set of layers gives ``M⁺(α) = Π_l (W_l − α S_lᵀ G P_lᵀ)``.
With symbolic entries, sympy shows

* (T1) ``∂ℓ/∂W_l = S_lᵀ G P_lᵀ`` for a loss that depends on the layers only through ``M``;
* (T2) bottom-only adaptation: ``M⁺ = M − α (S_1 S_1ᵀ) G`` exactly (a polynomial identity in α);
* (T3) top-only adaptation:    ``M⁺ = M − α G (P_Lᵀ P_L)`` exactly;
* (T4) all layers: ``M⁺ = M − α Σ_l (S_lS_lᵀ) G (P_lᵀP_l) + O(α²)``: the α¹ coefficient of the
  expanded product, whose full coefficient list is ``linmeta.theory.metaopt.step_polynomial``;
  in column-major vec form the linear term is ``(Σ_l (P_lᵀP_l) ⊗ (S_lS_lᵀ)) vec G``;
* balanced layers ``W_l = U_l D U_{l-1}ᵀ`` (orthogonal ``U_l``, diagonal ``D``; these satisfy
  ``W_{l+1}ᵀW_{l+1} = W_lW_lᵀ`` and are what ``init_deep_linear(scheme="balanced")`` builds), with
  noncommutative symbols and the single rule ``U_lᵀU_l = I``:
  ``S_lS_lᵀ = U_L D^{2(L−l)} U_Lᵀ = (MMᵀ)^{(L−l)/L}`` and ``P_lᵀP_l = U_0 D^{2(l−1)} U_0ᵀ = (MᵀM)^{(l−1)/L}``,
  since ``MMᵀ = U_L D^{2L} U_Lᵀ``; so the T4 sum is ``Σ_l (MMᵀ)^{(L−l)/L} G (MᵀM)^{(l−1)/L}`` (Arora et al. 2018).

``verify`` compares these with ``linmeta.theory.precondition`` and ``linmeta.theory.metaopt`` on random
instances, and with the engine's actual one-step adaptation (``linmeta.inner_loop``).
"""
from functools import lru_cache

import numpy as np
import sympy as sp


def _sym(name, n, m):
    return sp.Matrix(n, m, lambda i, j: sp.Symbol(f"{name}{i}_{j}"))


def _grad(expr, W):
    return sp.Matrix(W.shape[0], W.shape[1], lambda i, j: sp.diff(expr, W[i, j]))


def _chain(sizes):
    """Symbolic layers for widths ``sizes = (d, n_1, ..., out)``, their products and a gradient."""
    L = len(sizes) - 1
    W = [_sym(f"w{l}_", sizes[l + 1], sizes[l]) for l in range(L)]
    P = [sp.eye(sizes[0])]
    for l in range(1, L):
        P.append(W[l - 1] * P[-1])
    S = [None] * L
    S[L - 1] = sp.eye(sizes[-1])
    for l in range(L - 2, -1, -1):
        S[l] = S[l + 1] * W[l + 1]
    M = S[0] * W[0]
    G = _sym("g", sizes[-1], sizes[0])
    return W, P, S, M, G


def derive_layer_gradient():
    """T1 for a generic smooth loss of M, realised as a cubic polynomial in the entries of M."""
    W, P, S, M, _ = _chain((2, 2, 1, 2))
    coeffs, Msym = _sym("c", *M.shape), _sym("m", *M.shape)
    ell = lambda X: sum(coeffs[i, j] * X[i, j] + X[i, j] ** 3 / 3 for i in range(X.shape[0]) for j in range(X.shape[1]))
    at_M = dict(zip(Msym, M))
    G = _grad(ell(Msym), Msym).subs(at_M, simultaneous=True)  # ∂ℓ/∂M, evaluated at M = W_3 W_2 W_1
    loss = ell(M)
    for l in range(3):
        assert sp.expand(_grad(loss, W[l]) - S[l].T * G * P[l].T) == sp.zeros(*W[l].shape)


def one_step(W, P, S, G, alpha, layers):
    new = [W[l] - alpha * S[l].T * G * P[l].T if l in layers else W[l] for l in range(len(W))]
    out = new[0]
    for Wl in new[1:]:
        out = Wl * out
    return out


def derive_exact_and_first_order(sizes=(2, 2, 2, 2)):
    """T2, T3 exactly and T4's linear term; returns the expanded coefficients of M⁺(α) (all layers)."""
    alpha = sp.Symbol("alpha")
    W, P, S, M, G = _chain(sizes)
    L = len(W)
    bottom = one_step(W, P, S, G, alpha, {0})
    assert sp.expand(bottom - (M - alpha * S[0] * S[0].T * G)) == sp.zeros(*M.shape)
    top = one_step(W, P, S, G, alpha, {L - 1})
    assert sp.expand(top - (M - alpha * G * P[L - 1].T * P[L - 1])) == sp.zeros(*M.shape)
    full = sp.expand(one_step(W, P, S, G, alpha, set(range(L))))
    coeffs = [full.applyfunc(lambda e: e.coeff(alpha, k)) for k in range(L + 1)]
    assert sp.expand(coeffs[0] - M) == sp.zeros(*M.shape)
    linear = sum((S[l] * S[l].T * G * P[l].T * P[l] for l in range(L)), sp.zeros(*M.shape))
    assert sp.expand(coeffs[1] + linear) == sp.zeros(*M.shape)
    # vec form (column-major): vec(A G B) = (Bᵀ ⊗ A) vec G
    vecG = G.T.reshape(G.shape[0] * G.shape[1], 1)  # column-major vec
    kron = sum((sp.kronecker_product(P[l].T * P[l], S[l] * S[l].T) for l in range(L)),
               sp.zeros(G.shape[0] * G.shape[1], G.shape[0] * G.shape[1]))
    assert sp.expand(kron * vecG - linear.T.reshape(len(vecG), 1)) == sp.zeros(len(vecG), 1)
    return W, G, coeffs


def derive_balanced(L=4):
    """Balanced layers ``W_l = U_l D U_{l-1}ᵀ`` with orthogonal ``U_l`` and diagonal ``D``.

    Noncommutative symbols ``U_l`` and ``V_l = U_lᵀ``; the only rule used is ``V_l U_l = I``.
    Shows balancedness, ``MMᵀ = U_L D^{2L} V_L``, ``MᵀM = U_0 D^{2L} V_0`` and, for every layer
    (1-based l), ``S_lS_lᵀ = U_L D^{2(L−l)} V_L`` and ``P_lᵀP_l = U_0 D^{2(l−1)} V_0``: the
    fractional powers ``(MMᵀ)^{(L−l)/L}`` and ``(MᵀM)^{(l−1)/L}`` of the eigendecompositions.
    """
    U = sp.symbols(f"U0:{L + 1}", commutative=False)
    V = sp.symbols(f"V0:{L + 1}", commutative=False)
    D = sp.Symbol("D", commutative=False)
    W = [U[l + 1] * D * V[l] for l in range(L)]
    Wt = [U[l] * D * V[l + 1] for l in range(L)]  # transposes (D is diagonal)
    rules = {V[l] * U[l]: 1 for l in range(L + 1)}

    def reduce(e):
        e = sp.expand(e)
        for _ in range(2 * L + 2):
            e, prev = sp.expand(e.subs(rules)), e
            if e == prev:
                break
        return e

    prod = lambda factors: sp.Mul(*factors) if factors else sp.Integer(1)
    for l in range(L - 1):
        assert reduce(Wt[l + 1] * W[l + 1] - W[l] * Wt[l]) == 0
    M, Mt = prod(W[::-1]), prod(Wt)
    assert reduce(M * Mt - U[L] * D ** (2 * L) * V[L]) == 0
    assert reduce(Mt * M - U[0] * D ** (2 * L) * V[0]) == 0
    for l in range(1, L + 1):
        S, St = prod(W[l:][::-1]), prod(Wt[l:])  # S_l = W_L ⋯ W_{l+1}
        P, Pt = prod(W[: l - 1][::-1]), prod(Wt[: l - 1])  # P_l = W_{l-1} ⋯ W_1
        left = U[L] * D ** (2 * (L - l)) * V[L] if l < L else 1
        right = U[0] * D ** (2 * (l - 1)) * V[0] if l > 1 else 1
        assert reduce(S * St - left) == 0
        assert reduce(Pt * P - right) == 0
    return M


@lru_cache(maxsize=None)
def derive_all():
    """Run every symbolic derivation once (cached: ``verify`` is called for several seeds)."""
    derive_layer_gradient()
    derive_balanced(4)
    return derive_exact_and_first_order((2, 2, 1, 2))


def verify(seed: int = 0) -> None:
    import linmeta as lm
    from linmeta.theory import metaopt, precondition

    Wsym, Gsym, coeffs = derive_all()

    rng = np.random.default_rng(seed)
    rel = lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(np.asarray(b))), 1e-300))
    # the sympy coefficients of M⁺(α) against metaopt.step_polynomial and precondition.implicit_update
    params = [rng.standard_normal(W.shape) for W in Wsym]
    G = rng.standard_normal(Gsym.shape)
    subs = {s: v for W, Wn in zip(Wsym, params) for s, v in zip(W, Wn.ravel())}
    subs.update({s: v for s, v in zip(Gsym, G.ravel())})
    sym_coeffs = [np.array(C.subs(subs), dtype=float) for C in coeffs]
    num_coeffs = metaopt.step_polynomial(params, G)
    for a, b in zip(num_coeffs, sym_coeffs):
        assert rel(a, b) <= 1e-12
    assert rel(-precondition.implicit_update(params, G), sym_coeffs[1]) <= 1e-12
    vec = lambda A: A.T.reshape(-1)
    assert rel(precondition.implicit_matrix(params) @ vec(G), -vec(sym_coeffs[1])) <= 1e-12

    # the exact identities against the engine's one-step adaptation on a real support loss, any α
    d, out = 3, 2
    params = lm.init_deep_linear(d, (4, 3), out, rng=rng)
    X, Y = rng.standard_normal((1, 6, d)), rng.standard_normal((1, 6, out))
    support = lm.sample_moments(X, Y)
    M = lm.end_to_end(params)
    G = support.grad(M[None])[0]
    for alpha in (1e-3, 0.7, 50.0):
        bottom = lm.adapted_map(params, support, lm.InnerLoop(1, alpha, layers="first"))[0]
        assert rel(bottom - M, -alpha * precondition.bottom_only_factor(params) @ G) <= 1e-12
        top = lm.adapted_map(params, support, lm.InnerLoop(1, alpha, layers="last"))[0]
        assert rel(top - M, -alpha * G @ precondition.top_only_factor(params)) <= 1e-12
        full = lm.adapted_map(params, support, lm.InnerLoop(1, alpha, layers="all"))[0]
        poly = sum(alpha**k * C for k, C in enumerate(metaopt.step_polynomial(params, G)))
        assert rel(full, poly) <= 1e-12

    # balanced form against balanced initialisation (rank-deficient M: out < d)
    for depth in (2, 3, 4):
        params = lm.init_deep_linear(4, (3,) * (depth - 1), 2, scheme="balanced", rng=rng)
        M = lm.end_to_end(params)
        G = rng.standard_normal(M.shape)
        balanced = sum(left @ G @ right for left, right in precondition.balanced_factors(M, depth))
        assert rel(precondition.implicit_update(params, G), balanced) <= 1e-10


if __name__ == "__main__":
    _, _, coeffs = derive_all()
    print("T1, T2, T3 and T4's linear term verified symbolically; M⁺(α) has degree", len(coeffs) - 1, "in α")
    print("M⁺(α) coefficient of α: −Σ_l S_l S_lᵀ G P_lᵀ P_l")
    print("balanced factors: S_l S_lᵀ = (MMᵀ)^{(L−l)/L}, P_lᵀP_l = (MᵀM)^{(l−1)/L} verified for L = 4")
    verify()
    print("verified against linmeta.theory.precondition, linmeta.theory.metaopt and linmeta.inner_loop")
