r"""Exact stability region of N-step MAML meta-training on quadratic tasks (Ji, Yang & Liang 2022).

Setting (``derivations/multistep_stability.py``).  Task ``i`` (weight ``p_i``) has the quadratic loss
``f_i(w) = ½ (w − w_i)ᵀ H_i (w − w_i)`` with a symmetric, possibly *indefinite* curvature ``H_i``
(negative eigenvalues are the non-convex case).  The inner loop takes ``N`` gradient steps of size ``α``
on ``f_i`` itself (population inner and query loss), so the adapted error is

    w_N − w_i = P_i (w − w_i),    P_i = (I − α H_i)^N,

and the N-step meta-objective is the quadratic ``F(w) = Σ_i p_i ½ (w − w_i)ᵀ P_i H_i P_i (w − w_i)`` with
the *meta-Hessian*

    H_meta(α, N) = Σ_i p_i P_i H_i P_i,    eigenvalues  μ_1 ≤ … ≤ μ_d.

Outer gradient descent with learning rate ``β`` on ``F`` moves the error to the stationary point as
``e_{t+1} = (I − β H_meta) e_t`` (the linear term of ``F`` only moves the stationary point), so

**Exact criterion.**  Meta-training converges from every start iff every ``μ_j`` lies in ``(0, 2/β)``;
its rate is ``ρ(α, N, β) = max_j |1 − β μ_j|``.  It diverges from a generic start iff some ``μ_j < 0``
(``F`` is unbounded below: the iterate runs off to infinity along that direction, for *every* β > 0) or
some ``μ_j > 2/β`` (the outer step overshoots).  ``μ_j = 0`` or ``2/β`` is marginal.

When the ``H_i`` commute (share eigenvectors, "co-diagonal") each eigen-direction ``j`` decouples and
``μ_j = Σ_i p_i λ_ij (1 − α λ_ij)^{2N}`` is a polynomial of degree 2N in α built from the task
curvature spectra ``λ_ij`` alone.  Derived consequences (Λ = max_i λ_max(H_i) > 0):

1. *No instability below 2/Λ from the outer step.*  For every eigenvalue ``λ`` and ``0 ≤ α ≤ 2/Λ``,
   ``λ (1 − αλ)^{2N} ≤ λ`` (for ``λ > 0`` because ``|1 − αλ| ≤ 1``; for ``λ < 0`` because
   ``(1 − αλ)^{2N} ≥ 1``), hence ``H_meta ⪯ Σ_i p_i H_i`` for every N, commuting or not.  So if
   ``β < 2/λ_max(Σ p_i H_i)`` the upper condition ``μ_j < 2/β`` can only fail once ``α > 2/Λ``.
2. *Convex tasks (all H_i ⪰ 0): the boundary does not shrink with N.*  Then ``H_meta ⪰ 0``, so on
   ``0 < α ≤ 2/Λ`` meta-training is stable for every N (up to the degenerate case of a direction that
   every task either ignores or solves exactly in one step).  For any ``α > 2/Λ`` the top task term
   ``Λ (αΛ − 1)^{2N}`` grows without bound, so the first unstable step size ``α_c(N)`` decreases to
   ``2/Λ`` from above: ``α_c(N) Λ → 2``, with ``α_c(N) − 2/Λ = O(1/N)`` — a constant, *not* ``1/N``.
3. *Tasks with negative curvature (Σ p_i H_i ≻ 0 but some H_i indefinite): the 1/N law.*  The first
   instability is ``μ_min`` crossing zero — the meta-objective loses convexity — and it does not depend
   on β.  With ``α = s/N``, ``P_i → exp(−s H_i)`` as ``N → ∞``, so ``N α_c(N) → s*``, the first zero of
   ``λ_min(Σ_i p_i e^{−sH_i} H_i e^{−sH_i})`` (co-diagonal: the first zero over directions of
   ``Σ_i p_i λ_ij e^{−2sλ_ij}``, i.e. the minimiser of the moment generating function ``Σ_i p_i e^{−2sλ_ij}``,
   unique by log-convexity).  Hence ``α_c(N) ≈ s*/N``: **α·N ≈ const at the boundary**, the inner step
   must shrink like 1/N.  For one direction with two curvatures ``λ₊ > 0 > λ₋`` (weights ``p₊, p₋``)
   everything is explicit: with ``R = p₊λ₊ / (p₋|λ₋|) > 1`` and ``ρ = R^{1/(2N)}``::

       α_c(N) = (ρ − 1) / (ρ λ₊ + |λ₋|),        N α_c(N) → s* = ln R / (2 (λ₊ + |λ₋|)),

   so the invariant is ``α · N · (λ₊ − λ₋) → ½ ln R``: the constant is set by the *spread* of the task
   curvatures ``λ_max − λ_min`` along the direction and by the log of the weight-curvature ratio, not by
   ``λ_max`` alone (``α·N·λ_max`` is constant only at fixed ratios λ₋/λ₊ and p₊/p₋); the relative
   correction to ``N α_c(N)`` is ``O(1/N)``.  The mechanism is Ji et al.'s: with eigenvalues in
   ``[−L, L]`` the meta-objective's curvature is bounded by ``L (1 + αL)^{2N} ≤ L e^{2αNL}``, bounded
   in N only when ``αN`` is.

Above ``α_c`` the region need not be a single interval (a second stable band can open for small N
where a positive-curvature task's inner loop overshoots faster than the negative one grows);
:func:`stable_intervals` returns all of it on a range.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _validate

__all__ = [
    "inner_error_maps", "meta_hessian", "meta_spectrum", "outer_rate", "is_stable", "stability_margin",
    "stable_intervals", "critical_alpha", "limit_meta_hessian", "scaling_limit", "two_point_boundary",
    "two_point_limit", "convex_limit", "smoothness_bound",
]


# --------------------------------------------------------------------------- validation


def _hessians(hessians) -> np.ndarray:
    """``hessians`` as a finite symmetric stack (T, d, d) (a single (d, d) matrix is one task)."""
    H = np.asarray(hessians, dtype=float)
    if H.ndim == 2:
        H = H[None]
    if H.ndim != 3 or H.shape[-1] != H.shape[-2] or H.shape[0] == 0:
        raise ValueError(f"hessians must be a stack of square matrices (T, d, d), got shape {np.shape(hessians)}")
    _validate.finite_array("hessians", H)
    scale = max(1.0, float(np.max(np.abs(H))))
    asym = float(np.max(np.abs(H - np.swapaxes(H, -1, -2))))
    if asym > 1e-10 * scale:
        raise ValueError(f"hessians must be symmetric; max |H - H^T| = {asym:.3g}. Pass (H + H^T)/2 if this is round-off")
    return 0.5 * (H + np.swapaxes(H, -1, -2))


def _weights(weights, T: int) -> np.ndarray:
    if weights is None:
        return np.full(T, 1.0 / T)
    p = np.asarray(weights, dtype=float)
    if p.shape != (T,) or not np.all(np.isfinite(p)) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"weights must be {T} non-negative numbers summing to 1 (one per task), got {weights!r}")
    return p


def _alpha(alpha):
    a = np.asarray(alpha, dtype=float)
    _validate.finite_array("alpha", a)
    if np.any(a < 0):
        raise ValueError(f"alpha must be non-negative (the inner step size), got {alpha!r}")
    return a


def _eig(H):
    lam, U = np.linalg.eigh(H)  # (T, d), (T, d, d)
    return lam, U


def _sandwich(lam, U, p, factor):
    """``Σ_i p_i U_i diag(factor(λ_i)) U_iᵀ`` for factor values of shape (..., T, d): returns (..., d, d)."""
    return np.einsum("t,tij,...tj,tkj->...ik", p, U, factor, U)


# --------------------------------------------------------------------------- the meta-Hessian


def inner_error_maps(hessians, alpha: float, steps: int) -> np.ndarray:
    """``P_i = (I − α H_i)^N``, the map from initial to adapted error of each task: array (T, d, d)."""
    H = _hessians(hessians)
    alpha = _validate.finite_float("alpha", alpha, non_negative=True)
    steps = _validate.positive_int("steps", steps, allow_zero=True)
    return np.linalg.matrix_power(np.eye(H.shape[-1]) - alpha * H, steps)


def meta_hessian(hessians, alpha, steps: int, weights=None) -> np.ndarray:
    """``H_meta = Σ_i p_i (I − αH_i)^N H_i (I − αH_i)^N``, the Hessian of the N-step meta-objective.

    Parameters
    ----------
    hessians : array (T, d, d), symmetric task curvatures (indefinite allowed).
    alpha : float or array (...), inner step size(s) α ≥ 0 (an array gives one Hessian per value).
    steps : inner steps N ≥ 0.
    weights : array (T,) of task probabilities (default uniform).

    Returns
    -------
    array (..., d, d).
    """
    H = _hessians(hessians)
    a = _alpha(alpha)
    steps = _validate.positive_int("steps", steps, allow_zero=True)
    p = _weights(weights, H.shape[0])
    lam, U = _eig(H)
    factor = lam * (1.0 - a[..., None, None] * lam) ** (2 * steps)  # (..., T, d)
    out = _sandwich(lam, U, p, factor)
    return 0.5 * (out + np.swapaxes(out, -1, -2))


def meta_spectrum(hessians, alpha, steps: int, weights=None) -> np.ndarray:
    """Ascending eigenvalues ``μ_1 ≤ … ≤ μ_d`` of :func:`meta_hessian`: array (..., d)."""
    return np.linalg.eigvalsh(meta_hessian(hessians, alpha, steps, weights))


def _beta(beta):
    return _validate.finite_float("beta", beta, positive=True)


def outer_rate(hessians, alpha, steps: int, beta: float, weights=None):
    """Contraction factor ``ρ = max_j |1 − β μ_j|`` of outer gradient descent (``ρ < 1``: converges).

    Returns a float, or an array (...) for an array ``alpha``.
    """
    mu = meta_spectrum(hessians, alpha, steps, weights)
    r = np.max(np.abs(1.0 - _beta(beta) * mu), axis=-1)
    return float(r) if np.ndim(r) == 0 else r


def stability_margin(hessians, alpha, steps: int, beta: float, weights=None):
    """``min(β μ_min, 2 − β μ_max)``: positive exactly where outer gradient descent converges."""
    mu = meta_spectrum(hessians, alpha, steps, weights)
    b = _beta(beta)
    m = np.minimum(b * mu[..., 0], 2.0 - b * mu[..., -1])
    return float(m) if np.ndim(m) == 0 else m


def is_stable(hessians, alpha, steps: int, beta: float, weights=None):
    """Whether every eigenvalue of ``H_meta`` lies in ``(0, 2/β)`` (bool, or bool array for array ``alpha``)."""
    m = np.asarray(stability_margin(hessians, alpha, steps, beta, weights)) > 0
    return bool(m) if m.ndim == 0 else m


# --------------------------------------------------------------------------- the region in α


def _alpha_grid(alpha_max, grid):
    """A grid on (0, alpha_max]: geometric near zero (where the 1/N boundaries live) and linear."""
    geo = np.geomspace(alpha_max * 1e-6, alpha_max, grid // 2)
    lin = np.linspace(0.0, alpha_max, grid // 2 + 1)[1:]
    return np.unique(np.concatenate([geo, lin]))


def stable_intervals(hessians, steps: int, beta: float, alpha_max: float, weights=None, *,
                     grid: int = 4096) -> np.ndarray:
    """The step sizes ``α ∈ (0, alpha_max]`` at which N-step meta-training is stable, as intervals.

    The margin :func:`stability_margin` is evaluated on a grid (geometric near 0, linear up to
    ``alpha_max``) and each sign change is refined by Brent's method to ~1e-14 relative.  A pair
    of boundaries closer together than the grid spacing could be missed (use a finer ``grid``).

    Returns
    -------
    array (n, 2) of ``[start, end]`` (``start`` is the grid's first point, ~1e-6·alpha_max, when the
    region reaches down to 0; ``end = alpha_max`` when it extends past the range).
    """
    H = _hessians(hessians)
    steps = _validate.positive_int("steps", steps, allow_zero=True)
    beta = _beta(beta)
    alpha_max = _validate.finite_float("alpha_max", alpha_max, positive=True)
    grid = _validate.positive_int("grid", grid)
    p = _weights(weights, H.shape[0])
    a = _alpha_grid(alpha_max, max(grid, 16))
    m = np.asarray(stability_margin(H, a, steps, beta, p))
    f = lambda x: float(stability_margin(H, x, steps, beta, p))
    edges = []
    for i in np.flatnonzero(np.sign(m[:-1]) != np.sign(m[1:])):
        if m[i] == 0.0:
            edges.append(a[i])
            continue
        if m[i + 1] == 0.0:
            continue
        edges.append(_brentq()(f, a[i], a[i + 1], xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500))
    out, start = [], a[0] if m[0] > 0 else None
    for e in edges:
        if start is None:
            start = e
        else:
            out.append((start, e))
            start = None
    if start is not None:
        out.append((start, alpha_max))
    return np.asarray(out, dtype=float).reshape(-1, 2)


def critical_alpha(hessians, steps: int, beta: float, alpha_max: float, weights=None, *, grid: int = 4096) -> float:
    """The smallest inner step at which N-step meta-training stops converging (the lower boundary).

    Returns ``0`` when it is unstable already as ``α → 0`` (outer GD on the average loss diverges),
    ``inf`` when it stays stable on all of ``(0, alpha_max]``.
    """
    H = _hessians(hessians)
    p = _weights(weights, H.shape[0])
    alpha_max = _validate.finite_float("alpha_max", alpha_max, positive=True)
    if stability_margin(H, alpha_max * 1e-12, steps, beta, p) <= 0:
        return 0.0
    iv = stable_intervals(H, steps, beta, alpha_max, p, grid=grid)
    return float("inf") if iv[0, 1] >= alpha_max else float(iv[0, 1])


# --------------------------------------------------------------------------- N → ∞ with α N = s


def limit_meta_hessian(hessians, s, weights=None) -> np.ndarray:
    """``K(s) = Σ_i p_i e^{−sH_i} H_i e^{−sH_i}``, the limit of ``H_meta(s/N, N)`` as N → ∞: array (..., d, d)."""
    H = _hessians(hessians)
    s = _alpha(s)
    p = _weights(weights, H.shape[0])
    lam, U = _eig(H)
    out = _sandwich(lam, U, p, lam * np.exp(-2.0 * s[..., None, None] * lam))
    return 0.5 * (out + np.swapaxes(out, -1, -2))


def scaling_limit(hessians, weights=None) -> float:
    r"""``s* = lim_{N→∞} N α_c(N)``: the first ``s > 0`` with ``λ_min(K(s)) = 0``.

    Returns ``0`` if ``Σ p_i H_i`` is not positive definite (unstable at any α), ``inf`` if no task has a
    negative eigenvalue (convex tasks: ``K(s) ⪰ 0`` for all s, and the boundary tends to ``2/Λ``
    instead, :func:`convex_limit`).  Refined by Brent's method on a geometric grid.
    """
    H = _hessians(hessians)
    p = _weights(weights, H.shape[0])
    lam = np.linalg.eigvalsh(H)
    if np.linalg.eigvalsh(np.einsum("t,tij->ij", p, H))[0] <= 0:
        return 0.0
    neg = lam[(lam < 0) & (p[:, None] > 0)]
    if neg.size == 0:
        return float("inf")
    scale = float(np.max(np.abs(lam)))
    s_grid = np.geomspace(1e-6, 200.0, 2048) / scale
    f = lambda s: float(np.linalg.eigvalsh(limit_meta_hessian(H, s, p))[0])
    vals = np.linalg.eigvalsh(limit_meta_hessian(H, s_grid, p))[:, 0]
    idx = np.flatnonzero(vals <= 0)
    if idx.size == 0:
        return float("inf")
    i = int(idx[0])
    if i == 0:
        return float(s_grid[0])
    return float(_brentq()(f, s_grid[i - 1], s_grid[i], xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500))


def _two_point_args(lam_pos, lam_neg, p_pos):
    lp = _validate.finite_float("lam_pos", lam_pos, positive=True)
    ln = _validate.finite_float("lam_neg", lam_neg)
    if ln >= 0:
        raise ValueError(f"lam_neg must be negative (the curvature of the non-convex task), got {lam_neg}")
    p = _validate.finite_float("p_pos", p_pos)
    if not 0 < p < 1:
        raise ValueError(f"p_pos must be in (0, 1) (both tasks present), got {p_pos}")
    R = p * lp / ((1 - p) * -ln)
    if R <= 1:
        raise ValueError(f"the mean curvature p_pos*lam_pos + (1-p_pos)*lam_neg = {p * lp + (1 - p) * ln:.4g} must be "
                         "positive: otherwise meta-training diverges already at alpha -> 0")
    return lp, ln, p, R


def two_point_boundary(lam_pos: float, lam_neg: float, p_pos: float, steps: int) -> float:
    r"""Closed-form first zero of ``μ(α) = p₊λ₊(1 − αλ₊)^{2N} + p₋λ₋(1 − αλ₋)^{2N}`` (λ₊ > 0 > λ₋).

    ``α_c(N) = (ρ − 1)/(ρλ₊ + |λ₋|)`` with ``ρ = R^{1/(2N)}``, ``R = p₊λ₊/(p₋|λ₋|)``
    (``derivations/multistep_stability.py``); it lies in ``(0, 1/λ₊)``.  It is the stability boundary of the
    whole problem when this direction loses convexity first and ``β`` is below ``2/λ_max(Σ p_i H_i)``.
    """
    lp, ln, p, R = _two_point_args(lam_pos, lam_neg, p_pos)
    steps = _validate.positive_int("steps", steps)
    rho = math.exp(math.log(R) / (2 * steps))
    return float((rho - 1.0) / (rho * lp - ln))


def two_point_limit(lam_pos: float, lam_neg: float, p_pos: float) -> float:
    """``s* = lim N α_c(N) = ln R / (2(λ₊ − λ₋))`` for :func:`two_point_boundary`."""
    lp, ln, p, R = _two_point_args(lam_pos, lam_neg, p_pos)
    return float(math.log(R) / (2.0 * (lp - ln)))


def convex_limit(hessians) -> float:
    """``2/Λ``, ``Λ = max_i λ_max(H_i)``: the limit of the convex boundary ``α_c(N)`` as N → ∞."""
    lam = np.linalg.eigvalsh(_hessians(hessians))
    top = float(np.max(lam))
    if top <= 0:
        raise ValueError("no task has positive curvature: the convex limit 2/lambda_max is undefined")
    return 2.0 / top


def smoothness_bound(L: float, alpha, steps: int):
    """``L (1 + αL)^{2N}``: the bound on ``‖H_meta‖`` for task curvatures in ``[−L, L]`` (Ji et al.'s mechanism)."""
    L = _validate.finite_float("L", L, positive=True)
    a = _alpha(alpha)
    steps = _validate.positive_int("steps", steps, allow_zero=True)
    out = L * (1.0 + a * L) ** (2 * steps)
    return float(out) if out.ndim == 0 else out


def _brentq():
    """scipy's Brent root finder, imported on first use (scipy.optimize costs about 0.5 s to import)."""
    from scipy.optimize import brentq

    return brentq
