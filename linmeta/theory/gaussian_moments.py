r"""Exact moments of the sample covariance of Gaussian data.

With rows ``x_1..x_K`` of ``X`` i.i.d. ``N(0, Σ)`` and ``Σ̂ = XᵀX / K``, this
module computes, exactly, chain moments

.. math::  \mathbb E[\hat\Sigma D_1 \hat\Sigma D_2 \cdots D_{n-1} \hat\Sigma]

for fixed matrices ``D_i``, and from them any ``E[p(Σ̂) C q(Σ̂)]`` for
polynomials ``p``, ``q``.  These give the expected post-adaptation loss of k
inner steps on a K-shot support set (which is a degree-2k polynomial in Σ̂).

Method (Isserlis/Wick; ``derivations/gaussian_chain_moments.py``).  Expand
``Σ̂ = (1/K) Σ_s x_s x_sᵀ``; the chain has ``2n`` vector occurrences
(factor ``f`` contributes occurrences ``2f`` and ``2f+1``).  Wick's theorem sums over
perfect matchings μ of the occurrences, each pair contributing ``Σ``; a matching
only contributes when the matched occurrences come from the same sample.
Summing over all sample assignments, a matching whose pairs connect the factors
into ``c(μ)`` groups is counted ``K^{c(μ)}`` times, so

.. math::  \mathbb E[\text{chain}] = \sum_\mu K^{c(\mu) - n}\, \text{contract}_\mu(\Sigma, D).

Each contraction is a matrix product along the open path from the first to the
last occurrence times traces of the closed cycles, so it costs O(n) products.
The smallest case is the classical identity (see ``ARCHITECTURE.md``):
``E[Σ̂ C Σ̂] = Σ C Σ + (Σ Cᵀ Σ + tr(CΣ) Σ)/K``.
"""
from __future__ import annotations

from functools import lru_cache
from math import comb

import numpy as np

from .. import _validate
from .wick import count_components, perfect_matchings

MAX_FACTORS = 8  # (2n-1)!! matchings: 2,027,025 at n = 8; beyond that, use Monte Carlo


@lru_cache(maxsize=None)
def _plans(n: int) -> tuple:
    """For each matching of the 2n occurrences: (power of K, path ops, cycles ops).

    An op is ``"S"`` (multiply by Σ) or ``(i, transposed)`` (multiply by D_i or D_iᵀ,
    1-based ``i``).  The path runs from occurrence 0 to occurrence 2n-1.
    """
    occ = list(range(2 * n))
    # chain edges: occurrence 2i-1 -> 2i through D_i (i = 1..n-1)
    chain = {}
    for i in range(1, n):
        chain[2 * i - 1] = (2 * i, (i, False))
        chain[2 * i] = (2 * i - 1, (i, True))
    plans = []
    for mu in perfect_matchings(tuple(occ)):
        partner = {}
        for a, b in mu:
            partner[a], partner[b] = b, a
        # groups of factors connected by the matching
        groups = count_components(n, [(a // 2, b // 2) for a, b in mu])
        visited = set()
        path, o = [], 0
        while True:
            visited.add(o)
            o = partner[o]
            visited.add(o)
            path.append("S")
            if o == 2 * n - 1:
                break
            o, op = chain[o]
            path.append(op)
        cycles = []
        for start in occ:
            if start in visited:
                continue
            ops, o = [], start
            while True:
                visited.add(o)
                o = partner[o]
                visited.add(o)
                ops.append("S")
                o, op = chain[o]
                ops.append(op)
                if o == start:
                    break
            cycles.append(tuple(ops))
        plans.append((groups - n, tuple(path), tuple(cycles)))
    return tuple(plans)


def _apply(ops, Sigma, Ds, Dts, start):
    mat = start
    for op in ops:
        if op == "S":
            nxt = Sigma
        else:
            i, tr = op
            nxt = Dts[i] if tr else Ds[i]
            if nxt is None:  # identity
                continue
        mat = nxt if mat is None else mat @ nxt
    return mat


@_validate.finite_result
def chain_moment(Sigma, K: int, n: int, inserts=None) -> np.ndarray:
    """``E[Σ̂ D_1 Σ̂ ⋯ D_{n-1} Σ̂]`` for Gaussian data, exactly.

    Parameters
    ----------
    Sigma : array (..., d, d), the population covariance Σ (batched).
    K : number of samples behind Σ̂ (positive int).
    n : number of Σ̂ factors (0 gives the identity).
    inserts : dict ``{i: D_i}`` for 1 ≤ i ≤ n-1; missing ``D_i`` are the identity.
        Each ``D_i`` has shape (..., d, d) broadcastable with ``Sigma``.

    Returns
    -------
    array (..., d, d)
    """
    n = _validate.positive_int("n", n, allow_zero=True)
    if n > MAX_FACTORS:
        raise ValueError(f"n must be at most {MAX_FACTORS} (exact enumeration grows as (2n-1)!!), got {n}")
    K = _validate.positive_int("K", K)
    Sigma = _validate.psd_matrix("Sigma", Sigma)
    d = Sigma.shape[-1]
    inserts = _check_inserts(inserts, n, Sigma.shape)
    if n == 0:
        return np.broadcast_to(np.eye(d), Sigma.shape).copy()
    Ds = {i: inserts.get(i) for i in range(1, n)}
    Dts = {i: (None if D is None else np.swapaxes(D, -1, -2)) for i, D in Ds.items()}
    total = 0.0
    for power, path, cycles in _plans(n):
        term = _apply(path, Sigma, Ds, Dts, None)
        for cyc in cycles:
            c = _apply(cyc, Sigma, Ds, Dts, None)
            term = term * np.trace(c, axis1=-2, axis2=-1)[..., None, None]
        total = total + float(K) ** power * term
    return np.broadcast_to(total, np.broadcast_shapes(Sigma.shape, *[D.shape for D in Ds.values() if D is not None])).copy()


def _check_inserts(inserts, n, sigma_shape):
    """``inserts`` as ``{i: array (..., d, d)}`` with 1 <= i <= n-1, real and finite, broadcasting with Sigma."""
    if inserts is None:
        return {}
    if not isinstance(inserts, dict):
        raise _validate.ArgumentTypeError(f"inserts must be a dict {{i: D_i}} or None, got {type(inserts).__name__}")
    out = {}
    for i, D in inserts.items():
        i = _validate.integer("inserts key", i)
        if not 1 <= i <= n - 1:
            raise ValueError(f"inserts key {i} is out of range: the chain of n={n} factors has inserts 1..{n - 1}")
        if D is None:
            continue
        D = _validate.real_array(f"inserts[{i}]", D, min_ndim=2)
        d = sigma_shape[-1]
        _validate.shape(f"inserts[{i}]", D, (..., d, d), describe=f"(..., d, d) with d = {d}")
        try:
            np.broadcast_shapes(D.shape, sigma_shape)
        except ValueError:
            raise ValueError(f"inserts[{i}] of shape {D.shape} does not broadcast with Sigma {sigma_shape}") from None
        out[i] = D
    return out


def _coefficients(name, coef) -> list:
    arr = _validate.real_array(name, coef)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of polynomial coefficients (increasing powers), got shape "
                         f"{arr.shape}")
    return list(arr)


@_validate.finite_result
def poly_sandwich(Sigma, K: int, left, C, right) -> np.ndarray:
    """``E[p(Σ̂) C q(Σ̂)]`` with ``p(x) = Σ_a left[a] x^a`` and ``q(x) = Σ_b right[b] x^b``.

    ``C`` (..., d, d) or ``None`` for the identity.  Exact (see :func:`chain_moment`); the degrees must
    satisfy ``deg p + deg q <= MAX_FACTORS``, checked before anything is computed.
    """
    K = _validate.positive_int("K", K)
    Sigma = _validate.psd_matrix("Sigma", Sigma)
    left, right = _coefficients("left", left), _coefficients("right", right)
    deg = max((a for a, x in enumerate(left) if x != 0), default=0) + max(
        (b for b, x in enumerate(right) if x != 0), default=0)
    if deg > MAX_FACTORS:
        raise ValueError(f"deg(left) + deg(right) = {deg} is beyond exact enumeration (at most {MAX_FACTORS} sample "
                         "covariances in a chain)")
    if C is not None:
        C = _validate.real_array("C", C, min_ndim=2)
        _validate.shape("C", C, (..., Sigma.shape[-1], Sigma.shape[-1]), describe=f"(..., d, d) with d = {Sigma.shape[-1]}")
    total = 0.0
    for a, pa in enumerate(left):
        for b, qb in enumerate(right):
            if pa == 0 or qb == 0:
                continue
            total = total + pa * qb * _sandwich_monomial(Sigma, K, a, C, b)
    return total


def _sandwich_monomial(Sigma, K, a, C, b):
    """``E[Σ̂^a C Σ̂^b]``."""
    if C is None:
        return chain_moment(Sigma, K, a + b)
    if a == 0:
        return C @ chain_moment(Sigma, K, b)
    if b == 0:
        return chain_moment(Sigma, K, a) @ C
    return chain_moment(Sigma, K, a + b, {a: C})


@_validate.finite_result
def gd_polynomial(alpha: float, steps: int) -> list:
    """Coefficients of ``(1 - α x)^k`` in increasing powers of x."""
    alpha = _validate.finite_float("alpha", alpha)
    steps = _validate.positive_int("steps", steps, allow_zero=True)
    return [comb(steps, a) * (-alpha) ** a for a in range(steps + 1)]


@_validate.finite_result
def gd_noise_polynomial(alpha: float, steps: int) -> list:
    """Coefficients of ``Σ_{i<k} (1 - α x)^i`` in increasing powers of x."""
    alpha = _validate.finite_float("alpha", alpha)
    steps = _validate.positive_int("steps", steps, allow_zero=True)
    return [(-alpha) ** a * sum(comb(i, a) for i in range(a, steps)) for a in range(steps)]
