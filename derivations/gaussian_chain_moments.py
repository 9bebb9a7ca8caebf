"""Derivation: moments of the Gaussian sample covariance, from the moment generating function.

For one vector ``x ~ N(0, Σ)`` the moments are derivatives of ``E exp(tᵀx) = exp(½ tᵀΣt)``:
``E[x_i x_j x_k x_l] = ∂⁴/∂t_i∂t_j∂t_k∂t_l exp(½ tᵀΣt) |_{t=0}``.  With ``Σ̂ = (1/K) Σ_s x_s x_sᵀ``
and independent samples, a product of Σ̂'s splits by which factors share a sample:

    E[Σ̂ C Σ̂]     = (1/K) E[x xᵀ C x xᵀ] + (1 − 1/K) Σ C Σ,
    E[Σ̂ D Σ̂ E Σ̂] = (1/K²) E[xxᵀDxxᵀExxᵀ] + (K−1)/K² (E[xxᵀDxxᵀ] E Σ + Σ D E[xxᵀExxᵀ]
                    + E[xxᵀ (DΣE) xxᵀ]) + (K−1)(K−2)/K² Σ D Σ E Σ.

sympy shows that the first equals ``Σ C Σ + (Σ Cᵀ Σ + tr(CΣ) Σ)/K`` for symbolic Σ, C (d = 2), and
both are compared with ``linmeta.theory.gaussian_moments.chain_moment`` (Wick enumeration) on random
instances.
"""
from functools import lru_cache
from itertools import product

import numpy as np
import sympy as sp

D_DIM = 2


@lru_cache(maxsize=None)
def _mgf_moments(order: int):
    """Symbolic E[x_{i1} ⋯ x_{i_order}] for x ~ N(0, Σ) in d = 2, Σ = [[s00, s01], [s01, s11]]."""
    t = sp.symbols(f"t0:{D_DIM}")
    S = sp.Matrix(D_DIM, D_DIM, lambda i, j: sp.Symbol(f"s{min(i, j)}{max(i, j)}"))
    tv = sp.Matrix(t)
    mgf = sp.exp((tv.T * S * tv)[0, 0] / 2)
    moments = {}
    for idx in product(range(D_DIM), repeat=order):
        key = tuple(sorted(idx))
        if key not in moments:
            expr = mgf
            for i in key:
                expr = sp.diff(expr, t[i])
            moments[key] = sp.expand(expr.subs({ti: 0 for ti in t}))
    return S, moments


def _m(moments, *idx):
    return moments[tuple(sorted(idx))]


def single_vector_fourth(C):
    """E[x xᵀ C x xᵀ] (a d x d symbolic matrix)."""
    S, mom = _mgf_moments(4)
    return S, sp.Matrix(D_DIM, D_DIM, lambda p, q: sum(
        C[i, j] * _m(mom, p, i, j, q) for i in range(D_DIM) for j in range(D_DIM)))


def single_vector_sixth(D, E):
    """E[x xᵀ D x xᵀ E x xᵀ]."""
    S, mom = _mgf_moments(6)
    r = range(D_DIM)
    return sp.Matrix(D_DIM, D_DIM, lambda p, q: sum(
        D[i, j] * E[k, l] * _m(mom, p, i, j, k, l, q) for i in r for j in r for k in r for l in r))


@lru_cache(maxsize=None)
def derive_second_moment():
    """Prove E[Σ̂CΣ̂] = ΣCΣ + (ΣCᵀΣ + tr(CΣ)Σ)/K symbolically (d = 2, generic Σ and C)."""
    K = sp.Symbol("K", positive=True)
    C = sp.Matrix(D_DIM, D_DIM, lambda i, j: sp.Symbol(f"c{i}{j}"))
    S, fourth = single_vector_fourth(C)
    lhs = fourth / K + (1 - 1 / K) * S * C * S
    rhs = S * C * S + (S * C.T * S + (C * S).trace() * S) / K
    assert sp.simplify(sp.expand(lhs - rhs)) == sp.zeros(D_DIM, D_DIM)
    return rhs


def _num(expr_matrix, subs):
    return np.array(expr_matrix.subs(subs), dtype=float)


def verify(seed: int = 0) -> None:
    from linmeta.theory.gaussian_moments import chain_moment

    derive_second_moment()
    rng = np.random.default_rng(seed)
    L = rng.standard_normal((D_DIM, D_DIM))
    Sig = L @ L.T + 0.2 * np.eye(D_DIM)
    subs = {sp.Symbol("s00"): Sig[0, 0], sp.Symbol("s01"): Sig[0, 1], sp.Symbol("s11"): Sig[1, 1]}
    Cn, Dn, En = (rng.standard_normal((D_DIM, D_DIM)) for _ in range(3))
    C, D, E = (sp.Matrix(x) for x in (Cn, Dn, En))
    Sm = sp.Matrix(Sig)
    for K in (1, 2, 5):
        _, fourth_C = single_vector_fourth(C)
        second = _num(fourth_C / K + (1 - sp.Rational(1, K)) * Sm * C * Sm, subs)
        assert np.allclose(chain_moment(Sig, K, 2, {1: Cn}), second, rtol=1e-12, atol=1e-12)
        _, fourth_D = single_vector_fourth(D)
        _, fourth_E = single_vector_fourth(E)
        _, fourth_DSE = single_vector_fourth(D * Sm * E)
        sixth = single_vector_sixth(D, E)
        third = (sixth / K**2
                 + sp.Rational(K - 1, K**2) * (fourth_D * E * Sm + Sm * D * fourth_E + fourth_DSE)
                 + sp.Rational((K - 1) * (K - 2), K**2) * Sm * D * Sm * E * Sm)
        assert np.allclose(chain_moment(Sig, K, 3, {1: Dn, 2: En}), _num(third, subs), rtol=1e-11, atol=1e-11)


if __name__ == "__main__":
    print("E[Σ̂ C Σ̂] =", sp.latex(derive_second_moment()))
    verify()
    print("verified: chain_moment (Wick enumeration) equals the MGF derivation for n = 2, 3")
