"""Derivation: layer gradients, Hessian-vector products and the unrolled meta-gradient of deep linear models.

For ``ℓ(M) = ½ tr(M A Mᵀ) − tr(M B) + c`` and ``M = W_3 W_2 W_1`` with symbolic entries, sympy
differentiates ℓ entry by entry and checks the closed forms used by ``linmeta._chain_rule``:

    ∂ℓ/∂W_l = S_lᵀ G P_lᵀ,     G = M A − Bᵀ,
    (H V)_l = S_lᵀ dG P_lᵀ + dS_lᵀ G P_lᵀ + S_lᵀ G dP_lᵀ,   dG = dM A.

It then builds the one-step MAML meta-loss of a shallow model symbolically, F(M) = ℓ_q(M − α∇ℓ_s(M)),
and shows ∇F = G_q(M')(I − α A_s); finally it differentiates a symbolic two-layer, two-step meta-loss
and compares it with ``linmeta.meta_value_and_grad`` at a random point.
"""
from functools import lru_cache

import numpy as np
import sympy as sp


def _sym(name, n, m):
    return sp.Matrix(n, m, lambda i, j: sp.Symbol(f"{name}{i}{j}"))


def _sym_sym(name, n):
    return sp.Matrix(n, n, lambda i, j: sp.Symbol(f"{name}{min(i, j)}{max(i, j)}"))


def _grad(expr, W):
    return sp.Matrix(W.shape[0], W.shape[1], lambda i, j: sp.diff(expr, W[i, j]))


@lru_cache(maxsize=None)
def derive_layer_calculus():
    d, h1, h2, out = 2, 2, 1, 2
    W = [_sym("a", h1, d), _sym("b", h2, h1), _sym("e", out, h2)]
    A, B, c = _sym_sym("A", d), _sym("B", d, out), sp.Symbol("c")
    M = W[2] * W[1] * W[0]
    loss = (M * A * M.T).trace() / 2 - (M * B).trace() + c
    G = M * A - B.T
    P = [sp.eye(d), W[0], W[1] * W[0]]
    S = [W[2] * W[1], W[2], sp.eye(out)]
    for l in range(3):
        assert sp.expand(_grad(loss, W[l]) - S[l].T * G * P[l].T) == sp.zeros(*W[l].shape)
    # Hessian-vector product: the derivative of the gradient along V
    V = [_sym("v", h1, d), _sym("w", h2, h1), _sym("z", out, h2)]
    t = sp.Symbol("t")
    shifted = {W[l][i, j]: W[l][i, j] + t * V[l][i, j] for l in range(3) for i in range(W[l].shape[0])
               for j in range(W[l].shape[1])}
    dP = [sp.zeros(d, d), V[0], V[1] * W[0] + W[1] * V[0]]
    dS = [V[2] * W[1] + W[2] * V[1], V[2], sp.zeros(out, out)]
    dM = V[2] * W[1] * W[0] + W[2] * V[1] * W[0] + W[2] * W[1] * V[0]
    dG = dM * A
    for l in range(3):
        grad_t = (S[l].T * G * P[l].T).subs(shifted, simultaneous=True)
        directional = sp.diff(grad_t, t).subs(t, 0)
        formula = S[l].T * dG * P[l].T + dS[l].T * G * P[l].T + S[l].T * G * dP[l].T
        assert sp.expand(directional - formula) == sp.zeros(*W[l].shape)
    return G


@lru_cache(maxsize=None)
def derive_shallow_maml_gradient():
    d = 2
    M = _sym("m", 1, d)
    As, Aq = _sym_sym("S", d), _sym_sym("Q", d)
    Bs, Bq = _sym("s", d, 1), _sym("q", d, 1)
    alpha = sp.Symbol("alpha")
    Mp = M - alpha * (M * As - Bs.T)
    F = (Mp * Aq * Mp.T).trace() / 2 - (Mp * Bq).trace()
    formula = (Mp * Aq - Bq.T) * (sp.eye(d) - alpha * As)
    assert sp.expand(_grad(F, M) - formula) == sp.zeros(1, d)
    return formula


def verify(seed: int = 0) -> None:
    import linmeta as lm

    derive_layer_calculus()
    derive_shallow_maml_gradient()
    # a two-layer, two-step, all-layer MAML meta-loss, differentiated exactly by sympy one entry at a time
    # (all other entries substituted by rational numbers, so each derivative is of a univariate polynomial)
    rng = np.random.default_rng(seed)
    d, h, alpha = 2, 2, sp.Rational(1, 5)
    Xs, ys = rng.standard_normal((3, d)), rng.standard_normal((3, 1))
    Xq, yq = rng.standard_normal((4, d)), rng.standard_normal((4, 1))
    rat = lambda a: sp.Matrix(a.shape[0], a.shape[1], lambda i, j: sp.Float(float(a[i, j]), 30))
    As, Bs = rat(Xs.T @ Xs / 3), rat(Xs.T @ ys / 3)
    Aq, Bq, cq = rat(Xq.T @ Xq / 4), rat(Xq.T @ yq / 4), sp.Float(float(np.sum(yq**2) / 8), 30)
    x0 = [sp.Float(float(v), 30) for v in rng.standard_normal(h * d + h)]
    t = sp.Symbol("t")

    def meta_loss_along(k):
        x = [xi + (t if i == k else 0) for i, xi in enumerate(x0)]
        w1, w2 = sp.Matrix(h, d, x[: h * d]), sp.Matrix(1, h, x[h * d:])
        for _ in range(2):
            G = w2 * w1 * As - Bs.T
            w1, w2 = w1 - alpha * w2.T * G, w2 - alpha * G * w1.T
        Mk = w2 * w1
        return sp.expand((Mk * Aq * Mk.T).trace() / 2 - (Mk * Bq).trace() + cq)

    F0 = meta_loss_along(-1)
    grads = [sp.diff(meta_loss_along(k), t).subs(t, 0) for k in range(len(x0))]
    g1 = np.array(grads[: h * d], dtype=float).reshape(h, d)
    g2 = np.array(grads[h * d:], dtype=float).reshape(1, h)
    point = np.array(x0, dtype=float)
    params = (point[: h * d].reshape(h, d), point[h * d:].reshape(1, h))
    support = lm.sample_moments(Xs[None], ys[None])
    query = lm.sample_moments(Xq[None], yq[None])
    mg = lm.meta_value_and_grad(params, support, query, lm.InnerLoop(2, float(alpha)))
    assert abs(float(F0) - float(mg.value)) <= 1e-12 * abs(float(mg.value))
    for a, b in ((mg.params[0], g1), (mg.params[1], g2)):
        assert np.max(np.abs(a - b)) <= 1e-10 * np.max(np.abs(b))


if __name__ == "__main__":
    derive_layer_calculus()
    print("Layer gradient:  dℓ/dW_l = S_l^T G P_l^T,  G = M A − B^T   (symbolic identity, 3 layers)")
    print("HVP: (HV)_l = S_l^T dG P_l^T + dS_l^T G P_l^T + S_l^T G dP_l^T,  dG = dM A")
    derive_shallow_maml_gradient()
    print("Shallow one-step MAML: ∇F = G_q(M') (I − α A_s),  M' = M − α (M A_s − B_s^T)")
    verify()
    print("verified against linmeta._chain_rule and linmeta.meta")
