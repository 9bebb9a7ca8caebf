"""The meta-loss surface of ``ŷ = w₂w₁x`` (and of ``ŷ = wx``) after one MAML step, in closed form.

Derivation (sympy, no hand algebra):

1. population task loss ``ℓ(w₁, w₂) = ½ρ(w₁w₂ − w*)² + ½σ²`` for ``x ~ N(0, ρ)``;
2. one inner step on both layers, ``wᵢ' = wᵢ − α ∂ℓ/∂wᵢ`` (gradients by ``sympy.diff``);
3. post-adaptation loss ``ℓ(w₁', w₂')``, a polynomial in ``w*``;
4. expectation over ``w* = μ + s z``, ``z ~ N(0, 1)``: replace ``zⁿ`` by its moment ``(n−1)!!`` (0 for odd n).

The result is compared with :func:`linmeta.theory.depth.scalar_deep_meta_loss` (and the shallow
analogue with :func:`~linmeta.theory.depth.scalar_shallow_meta_loss`) on random instances, and the
minimisers for ``μ = 0`` (:func:`~linmeta.theory.depth.scalar_deep_minima`) are checked to be
zeros of the (σ-free part of the) meta-loss and stationary points.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

w1, w2, w, alpha, rho, mu, s, sigma, z, wstar = sp.symbols("w1 w2 w alpha rho mu s sigma z wstar", real=True)


def _gaussian_expectation(expr):
    """E over z ~ N(0, 1) of a polynomial in z."""
    poly = sp.Poly(sp.expand(expr), z)
    total = 0
    for (n,), coeff in poly.terms():
        moment = 0 if n % 2 else sp.factorial2(n - 1)
        total += coeff * moment
    return sp.expand(total)


@lru_cache(maxsize=None)
def derive():
    """Return (F_deep(w1, w2), F_shallow(w), adapted (w1', w2')) as sympy expressions."""
    loss = lambda m: sp.Rational(1, 2) * rho * (m - wstar) ** 2 + sp.Rational(1, 2) * sigma**2
    deep = loss(w1 * w2)
    w1a = w1 - alpha * sp.diff(deep, w1)
    w2a = w2 - alpha * sp.diff(deep, w2)
    post_deep = loss(w1a * w2a).subs(wstar, mu + s * z)
    wa = w - alpha * sp.diff(loss(w), w)
    post_shallow = loss(wa).subs(wstar, mu + s * z)
    return _gaussian_expectation(post_deep), sp.factor(_gaussian_expectation(post_shallow)), (w1a, w2a)


def verify(seed: int = 0) -> None:
    from linmeta.theory import depth

    rng = np.random.default_rng(seed)
    F_deep, F_shallow, (w1a, w2a) = derive()
    f_deep = sp.lambdify((w1, w2, alpha, rho, mu, s, sigma), F_deep, "numpy")
    f_shallow = sp.lambdify((w, alpha, rho, mu, s, sigma), F_shallow, "numpy")
    f_adapt = sp.lambdify((w1, w2, wstar, alpha, rho), (w1a, w2a), "numpy")
    for _ in range(20):
        a_, r_, m_, s_, n_ = rng.uniform(0.01, 0.6), rng.uniform(0.3, 3), rng.normal(), rng.uniform(0.1, 2), rng.uniform(0, 1)
        x1, x2 = rng.normal(scale=2, size=(2, 7))
        ref = f_deep(x1, x2, a_, r_, m_, s_, n_)
        got = depth.scalar_deep_meta_loss(x1, x2, a_, r_, m_, s_, n_)
        assert np.max(np.abs(got - ref) / np.abs(ref)) < 1e-10, (got, ref)
        ref = f_shallow(x1, a_, r_, m_, s_, n_)
        got = depth.scalar_shallow_meta_loss(x1, a_, r_, m_, s_, n_)
        assert np.max(np.abs(got - ref) / np.abs(ref)) < 1e-10
        ws = rng.normal(size=7)
        ref = np.array(f_adapt(x1, x2, ws, a_, r_))
        got = np.array(depth.scalar_adapted(x1, x2, ws, a_, r_))
        assert np.max(np.abs(got - ref)) <= 1e-12 * np.max(np.abs(ref))
    # the centred family's minimisers: F = ½σ² there and the gradient vanishes
    F0 = F_deep.subs({mu: 0, sigma: 0})
    grad = [sp.diff(F0, v) for v in (w1, w2)]
    for _ in range(5):
        a_, r_ = rng.uniform(0.01, 0.6), rng.uniform(0.3, 3)
        for p in depth.scalar_deep_minima(a_, r_):
            sub = {w1: p[0], w2: p[1], alpha: a_, rho: r_, s: rng.uniform(0.1, 2)}
            assert abs(float(F0.subs(sub))) < 1e-12
            assert max(abs(float(g.subs(sub))) for g in grad) < 1e-10


if __name__ == "__main__":
    F_deep, F_shallow, _ = derive()
    print("F_shallow(w) - sigma^2/2 =", sp.latex(sp.factor(F_shallow - sigma**2 / 2)))
    print("F_deep(w1, w2) =", sp.latex(sp.collect(F_deep, [mu, s])))
    verify()
    print("verified against linmeta.theory.depth")
