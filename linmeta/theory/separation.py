r"""The convex / non-convex sample-complexity separation (Saunshi, Zhang, Khodak & Arora 2020), closed forms.

Instance: a new task is a linear regression ``y = w*ᵀx + σε`` with ``w* = ±c·u`` (fair sign, a unit
vector u: the regressors lie on one line and have mean zero), ``x ~ N(0, I_d)``, and ``n`` samples.  The
error of a learned predictor ``ŵ`` is the excess risk ``½‖ŵ − w*‖²``; the zero predictor has ``½c²``.
All expectations below are exact for every finite n and d (``derivations/separation.py``).

**Convex side: a linear model with a learned initialisation w₀.**  Every expectation depends on w₀
only through ``E‖w₀ − w*‖² = c² + ‖w₀‖²`` (the task mean is zero), so the best initialisation is
``w₀ = 0`` whatever the within-task learner — the initialisation carries no information about u.

* Least squares run to convergence from w₀ (gradient descent's limit, the interpolant closest to w₀):
  ``½[(1 − n/d)(c² + ‖w₀‖²) + σ² n/(d − n − 1)]`` for ``n ≤ d − 2`` and ``½ σ² d/(n − d − 1)`` for
  ``n ≥ d + 2`` (noiseless: ``½(1 − n/d)₊ (c² + ‖w₀‖²)``).  With ``w₀ = 0`` the error falls only
  linearly in n and reaches zero at ``n = d``: Ω(d) samples for any fixed relative error.
* One gradient step of size α: ``½[(c² + ‖w₀‖²)((1 − α)² + α²(d + 1)/n) + α²σ²d/n]``; at the best
  step ``α*(n) = c̃²/(c̃²(1 + (d + 1)/n) + σ²d/n)`` (``c̃² = c² + ‖w₀‖²``) it is ``½c̃²(1 − α*)``, i.e.
  ``½c² (d + 1)/(n + d + 1)`` noiseless at w₀ = 0.

**Non-convex side: a learned first layer.**  A deep linear net with end-to-end map ``M = 0`` whose
one-step adaptation moves ``M`` by ``ĝ P`` (``ĝ = w*ᵀΣ̂ + εᵀX/n`` the negative support gradient)
has the error (exact, for any symmetric P):

    E(n; P) = ½ [tr(P S_n P) − 2c² uᵀPu + c²],   S_n = E[ĝᵀĝ] = c²(1 + 1/n) uuᵀ + (c² + σ²)/n · I.

``P = αI`` is the convex one-step learner above.  A two-layer net with a zero head adapting its head
(``W₂ ← −t∇_{W₂}``) has ``P = t W₁ᵀW₁``; with the learned Gram ``G = W₁ᵀW₁`` and the best step
``t*(n) = c² uᵀGu / tr(G S_n G)`` the error is ``E*(n; G) = ½[c² − c⁴(uᵀGu)²/tr(G S_n G)]``.  The learned
projection ``G ∝ uuᵀ`` gives ``½c²(2c² + σ²)/(c²(n + 2) + σ²)`` — ``c²/(n + 2)`` noiseless, *independent of
d*: O(1) samples — against ``½c²(d + 1)/(n + d + 1)`` for ``G = I``.  With a fixed step along u,
``P = γuuᵀ``, the error is ``½[c²(γ²(1 + 2/n) − 2γ + 1) + γ²σ²/n]``.
**MAML learns the projection.**  For a two-layer net trained by MAML (one step of size α on K-shot
supports, both layers adapting) the meta-objective is even in W₂ (the task distribution is symmetric),
so ``W₂ = 0`` is a critical manifold; on it the adapted map is ``ĝ·αW₁ᵀW₁`` and the objective is
``E(K; αW₁ᵀW₁)``, minimised over symmetric ``P = αW₁ᵀW₁`` by ``P = S_K⁻¹ c² uuᵀ = γ*(K) uuᵀ`` with
``γ*(K) = K c² / (c²(K + 2) + σ²)`` — a rank-one Gram along u: the projection uuᵀ, scaled.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _validate


def _n(n):
    return _validate.positive_int("n", n)


def _cs(c, sigma):
    return _validate.finite_float("c", c, positive=True), _validate.finite_float("sigma", sigma, non_negative=True)


def _w0(w0_norm2):
    return _validate.finite_float("w0_norm2", w0_norm2, non_negative=True)


def convex_gd_error(n: int, d: int, c: float, sigma: float, w0_norm2: float = 0.0) -> float:
    """Expected excess risk of least squares run to convergence from ``w₀`` (``‖w₀‖² = w0_norm2``) on n samples.

    ``inf`` at ``n ∈ {d − 1, d, d + 1}`` with label noise (the inverse-Wishart moment diverges).
    """
    n, d = _n(n), _validate.positive_int("d", d)
    c, sigma = _cs(c, sigma)
    r2 = c**2 + _w0(w0_norm2)
    if sigma == 0:
        return 0.5 * max(0.0, 1.0 - n / d) * r2
    if n <= d - 2:
        return 0.5 * ((1.0 - n / d) * r2 + sigma**2 * n / (d - n - 1))
    if n >= d + 2:
        return 0.5 * sigma**2 * d / (n - d - 1)
    return float("inf")


def convex_one_step_error(n: int, d: int, c: float, sigma: float, alpha: float, w0_norm2: float = 0.0) -> float:
    """Expected excess risk after one gradient step of size α from ``w₀`` on n samples."""
    n, d = _n(n), _validate.positive_int("d", d)
    c, sigma = _cs(c, sigma)
    alpha = _validate.finite_float("alpha", alpha)
    r2 = c**2 + _w0(w0_norm2)
    return 0.5 * (r2 * ((1 - alpha) ** 2 + alpha**2 * (d + 1) / n) + alpha**2 * sigma**2 * d / n)


def convex_best_step(n: int, d: int, c: float, sigma: float, w0_norm2: float = 0.0) -> float:
    """The step ``α*(n)`` minimising :func:`convex_one_step_error`."""
    n, d = _n(n), _validate.positive_int("d", d)
    c, sigma = _cs(c, sigma)
    r2 = c**2 + _w0(w0_norm2)
    return r2 / (r2 * (1 + (d + 1) / n) + sigma**2 * d / n)


def convex_best_one_step_error(n: int, d: int, c: float, sigma: float, w0_norm2: float = 0.0) -> float:
    """``½ c̃² (1 − α*(n))``: the best a single gradient step from ``w₀`` can do."""
    r2 = _cs(c, sigma)[0] ** 2 + _w0(w0_norm2)
    return 0.5 * r2 * (1 - convex_best_step(n, d, c, sigma, w0_norm2))


def _u(u):
    u = np.asarray(u, dtype=float).reshape(-1)
    _validate.finite_array("u", u)
    nrm = float(np.linalg.norm(u))
    if not np.isclose(nrm, 1.0, rtol=1e-10):
        raise ValueError(f"u must be a unit vector, got norm {nrm:.6g}")
    return u


def support_second_moment(u, n: int, c: float, sigma: float) -> np.ndarray:
    """``S_n = E[ĝᵀĝ] = c²(1 + 1/n)uuᵀ + (c² + σ²)/n · I`` for the line tasks: array (d, d)."""
    u, n = _u(u), _n(n)
    c, sigma = _cs(c, sigma)
    return c**2 * (1 + 1 / n) * np.outer(u, u) + (c**2 + sigma**2) / n * np.eye(u.size)


def _sym(name, P, d):
    P = np.asarray(P, dtype=float)
    if P.shape[-2:] != (d, d):
        raise ValueError(f"{name} must have trailing shape (d, d) = ({d}, {d}), got {P.shape}")
    _validate.finite_array(name, P)
    return 0.5 * (P + np.swapaxes(P, -1, -2))


def one_step_error(P, u, n: int, c: float, sigma: float):
    """``E(n; P) = ½[tr(P S_n P) − 2c² uᵀPu + c²]``: one step ``M = ĝP`` from ``M = 0``.

    Parameters
    ----------
    P : array (..., d, d), symmetric preconditioner (``αI``: the convex step; ``t W₁ᵀW₁``: a head step).
    u : array (d,), unit task direction. n : support samples. c, sigma : task scale and label noise.

    Returns
    -------
    float or array (...).
    """
    u = _u(u)
    P = _sym("P", P, u.size)
    S = support_second_moment(u, n, c, sigma)
    c = float(c)
    val = 0.5 * (np.einsum("...ij,jk,...ki->...", P, S, P) - 2 * c**2 * np.einsum("i,...ij,j->...", u, P, u) + c**2)
    return float(val) if np.ndim(val) == 0 else val


def best_head_step(G, u, n: int, c: float, sigma: float):
    """``t*(n) = c² uᵀGu / tr(G S_n G)``, the step minimising ``E(n; tG)``: float or array (...)."""
    u = _u(u)
    G = _sym("G", G, u.size)
    S = support_second_moment(u, n, c, sigma)
    den = np.einsum("...ij,jk,...ki->...", G, S, G)
    if np.any(den <= 0):
        raise ValueError("G must be non-zero (tr(G S_n G) > 0)")
    t = float(c) ** 2 * np.einsum("i,...ij,j->...", u, G, u) / den
    return float(t) if np.ndim(t) == 0 else t


def best_head_error(G, u, n: int, c: float, sigma: float):
    """``E*(n; G) = ½[c² − c⁴(uᵀGu)²/tr(G S_n G)]``: the best one-step head fit on the representation Gram G."""
    u = _u(u)
    G = _sym("G", G, u.size)
    S = support_second_moment(u, n, c, sigma)
    c = float(c)
    val = 0.5 * (c**2 - c**4 * np.einsum("i,...ij,j->...", u, G, u) ** 2 / np.einsum("...ij,jk,...ki->...", G, S, G))
    return float(val) if np.ndim(val) == 0 else val


def projection_error(n: int, c: float, sigma: float, gamma: float) -> float:
    """``½[c²(γ²(1 + 2/n) − 2γ + 1) + γ²σ²/n]``: one step ``P = γuuᵀ`` (the projection, fixed step)."""
    n = _n(n)
    c, sigma = _cs(c, sigma)
    gamma = _validate.finite_float("gamma", gamma)
    return 0.5 * (c**2 * (gamma**2 * (1 + 2 / n) - 2 * gamma + 1) + gamma**2 * sigma**2 / n)


def projection_best_gamma(n: int, c: float, sigma: float) -> float:
    """``γ*(n) = n c²/(c²(n + 2) + σ²)``; also the MAML-optimal ``αW₁ᵀW₁ = γ*(K) uuᵀ`` of a two-layer net."""
    n = _n(n)
    c, sigma = _cs(c, sigma)
    return n * c**2 / (c**2 * (n + 2) + sigma**2)


def projection_best_error(n: int, c: float, sigma: float) -> float:
    """``½c²(2c² + σ²)/(c²(n + 2) + σ²)``: the learned projection with its best step (independent of d)."""
    n = _n(n)
    c, sigma = _cs(c, sigma)
    return 0.5 * c**2 * (2 * c**2 + sigma**2) / (c**2 * (n + 2) + sigma**2)


def sample_complexity(curve, eps: float, c: float, n_max: int = 10_000) -> float:
    """Smallest integer ``n ≥ 1`` with ``curve(n) ≤ eps · ½c²`` (``inf`` if none up to ``n_max``), by a scan.

    ``curve`` is one of the error functions above with everything but ``n`` fixed (e.g. a lambda).
    Noiseless closed forms: least squares ``⌈(1 − ε)d⌉``, best convex step ``⌈(d + 1)(1 − ε)/ε⌉``,
    best projection step ``⌈2(1 − ε)/ε⌉`` (d-free): :func:`noiseless_sample_complexities`.
    """
    eps = _validate.finite_float("eps", eps, positive=True)
    c = _validate.finite_float("c", c, positive=True)
    n_max = _validate.positive_int("n_max", n_max)
    target = eps * 0.5 * c**2 * (1 + 1e-12)  # ties at the closed-form thresholds count as reached
    for n in range(1, n_max + 1):
        if curve(n) <= target:
            return float(n)
    return float("inf")


def noiseless_sample_complexities(d: int, eps: float) -> dict:
    """The three noiseless closed forms of :func:`sample_complexity` (least squares, best step, projection)."""
    d = _validate.positive_int("d", d)
    eps = _validate.finite_float("eps", eps, positive=True)
    tiny = 1e-12
    return {"least_squares": float(max(1, math.ceil((1 - eps) * d - tiny))),
            "convex_step": float(max(1, math.ceil((d + 1) * (1 - eps) / eps - tiny))),
            "projection": float(max(1, math.ceil(2 * (1 - eps) / eps - tiny)))}
