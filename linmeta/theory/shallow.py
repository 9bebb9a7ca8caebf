r"""Closed forms for MAML on the shallow linear model (``M`` itself adapts).

Setting: task ``(W*, Σ, σ)``; support set of K Gaussian samples reused for k inner
steps of size α; the query loss is scored on fresh samples, whose expectation is
the population loss.  With the error ``E = M − W*``, ``Σ̂`` the support covariance,
``P = I − αΣ̂`` and label noise ``n = εᵀX/K`` (``derivations/shallow_expected_loss.py``):

    E_k = E P^k + α n Σ_{i<k} P^i,

so the expected post-adaptation loss is the quadratic (``derivations/shallow_expected_loss.py``)

    ℒ(M) = ½ tr(E 𝔸 Eᵀ) + ½ α² out σ² tr(Σ 𝔑)/K + ½ out σ²,
    𝔸 = E[P^k Σ P^k],    𝔑 = E[S Σ̂ S],    S = Σ_{i<k} P^i,

whose Gaussian moments are exact (:mod:`linmeta.theory.gaussian_moments`).  With
the population loss in the inner loop (``K=None``), ``P = I − αΣ`` and the noise
term vanishes.  Averaged over ``W* ~ N(μ, C)``:
``E tr(E𝔸Eᵀ) = tr((M−μ)𝔸(M−μ)ᵀ) + tr((I_out ⊗ 𝔸) C)``.  ℒ is minimised at

    M* = [Σ_c p_c μ_c 𝔸_c] [Σ_c p_c 𝔸_c]⁻¹

over mixture components ``c``; with one shared Σ this is ``E[W*]`` (P9).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate
from ..tasks import TaskBatch, mixture_components
from .gaussian_moments import MAX_FACTORS, gd_noise_polynomial, gd_polynomial, poly_sandwich

#: most inner steps on one K-shot support set with an exact expectation: the curvature needs chain moments
#: of 2·steps sample covariances, at most :data:`~linmeta.theory.gaussian_moments.MAX_FACTORS`
MAX_SUPPORT_STEPS = MAX_FACTORS // 2


@dataclass(frozen=True)
class ShallowQuadratic:
    """Coefficients of the expected post-adaptation loss of one task type.

    ``ℒ(M) = ½ tr((M − W*) A (M − W*)ᵀ) + const``.

    Attributes
    ----------
    A : array (..., d, d), the curvature 𝔸 = E[P^k Σ P^k].
    const : array (...), the noise terms ``½ α² out σ² tr(Σ 𝔑)/K + ½ out σ²``.
    """

    A: np.ndarray
    const: np.ndarray


def _check_inner(K, alpha, steps):
    """``(K, alpha, steps)`` checked, with the domain of the exact expectation (steps <= 4 for finite K)."""
    K = _validate.optional_int("K", K, none="the population inner loss")
    alpha = _validate.finite_float("alpha", alpha)
    steps = _validate.positive_int("steps", steps, allow_zero=True)
    if K is not None and steps > MAX_SUPPORT_STEPS:
        raise ValueError(
            f"steps={steps} with a K={K}-shot support set is beyond the exact closed form: its curvature needs "
            f"Gaussian chain moments of 2*steps = {2 * steps} sample covariances, at most {MAX_FACTORS} "
            f"(steps <= {MAX_SUPPORT_STEPS}). Use K=None (population inner loss), or estimate it by Monte Carlo "
            "(linmeta.sim.montecarlo.expected_meta_loss_mc)")
    return K, alpha, steps


def _family(family):
    """The mixture components of a regression family (raises naming ``family`` otherwise)."""
    return mixture_components(family)


def _init(M, out, d):
    """The initialisation ``M`` (out, d) as a finite float array."""
    M = _validate.real_array("M", M)
    _validate.shape("M", M, (out, d), describe=f"(out, d) = ({out}, {d})")
    return M


@_validate.finite_result
def shallow_quadratic(input_cov, noise_std, out: int, K: int | None, alpha: float, steps: int) -> ShallowQuadratic:
    """Exact expected-loss coefficients for tasks with input covariance Σ and noise σ.

    Parameters
    ----------
    input_cov : array (..., d, d), Σ (batched over tasks if needed).
    noise_std : float or array (...), σ.
    out : output dimension.
    K : support shots, or ``None`` for the population inner loss.
    alpha, steps : inner step size and number of steps.
    """
    K, alpha, steps = _check_inner(K, alpha, steps)
    S = _validate.psd_matrix("input_cov", input_cov)
    out = _validate.positive_int("out", out)
    noise = _validate.real_array("noise_std", noise_std)
    if np.any(noise < 0):
        raise ValueError("noise_std must be non-negative")
    try:
        np.broadcast_shapes(noise.shape, S.shape[:-2])
    except ValueError:
        raise ValueError(f"noise_std must be a float or an array broadcastable to input_cov's leading shape "
                         f"{S.shape[:-2]}, got shape {noise.shape}") from None
    sigma2 = noise**2
    if K is None:
        d = S.shape[-1]
        P = np.eye(d) - alpha * S
        Pk = np.linalg.matrix_power(P, steps) if S.ndim == 2 else _batched_power(P, steps)
        A = Pk @ S @ Pk
        return ShallowQuadratic(A, 0.5 * out * sigma2 * np.ones(S.shape[:-2]))
    A = poly_sandwich(S, K, gd_polynomial(alpha, steps), S, gd_polynomial(alpha, steps))
    if steps == 0:
        return ShallowQuadratic(np.asarray(A, dtype=float), 0.5 * out * sigma2 * np.ones(S.shape[:-2]))
    s = gd_noise_polynomial(alpha, steps)
    # x s(x)^2 as a polynomial: E[S Σ̂ S] = E[r(Σ̂)], r(x) = x s(x)²
    r = np.zeros(2 * len(s))
    r[1:] = np.convolve(s, s)
    N = poly_sandwich(S, K, list(r), None, [1.0])
    noise = 0.5 * alpha**2 * out * sigma2 * np.trace(S @ N, axis1=-2, axis2=-1) / K
    return ShallowQuadratic(np.asarray(A, dtype=float), noise + 0.5 * out * sigma2)


def _batched_power(P, k):
    out = np.broadcast_to(np.eye(P.shape[-1]), P.shape).copy()
    for _ in range(k):
        out = out @ P
    return out


@_validate.finite_result
def expected_task_loss(M, tasks: TaskBatch, K: int | None, alpha: float, steps: int = 1) -> np.ndarray:
    """Expected post-adaptation population loss of each task, exactly.

    Parameters
    ----------
    M : array (out, d) or (*runs, 1, out, d) broadcastable to the tasks, the initialisation.
    tasks : the tasks (W*, Σ, σ).
    K : support shots (``None``: population inner loss).

    Returns
    -------
    array (..., T): expectation over the support set (and the query set) of the
    post-adaptation loss, for each given task.
    """
    K, alpha, steps = _check_inner(K, alpha, steps)
    _validate.instance("tasks", tasks, TaskBatch, "a linmeta.TaskBatch (from family.sample_tasks(n, rng))")
    M = _validate.real_array("M", M)
    _validate.shape("M", M, (..., tasks.out, tasks.d), describe=f"(..., out, d) = (..., {tasks.out}, {tasks.d})")
    try:
        np.broadcast_shapes(M.shape, tasks.w_star.shape)
    except ValueError:
        raise ValueError(f"M of shape {M.shape} does not broadcast against the tasks' w_star {tasks.w_star.shape}; "
                         "pass (out, d) or (*runs, 1, out, d)") from None
    # task families share Σ and σ across many tasks: compute each distinct (Σ, σ) once
    lead, d = tasks.input_cov.shape[:-2], tasks.d
    keys = np.concatenate([tasks.input_cov.reshape(-1, d * d), tasks.noise_std.reshape(-1, 1)], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    q = shallow_quadratic(uniq[:, :-1].reshape(-1, d, d), uniq[:, -1], tasks.out, K, alpha, steps)
    A = q.A[inverse.reshape(-1)].reshape(lead + (d, d))
    const = np.asarray(q.const)[inverse.reshape(-1)].reshape(lead)
    E = np.asarray(M, dtype=float) - tasks.w_star
    return 0.5 * np.einsum("...od,...de,...oe->...", E, A, E) + const


@_validate.finite_result
def expected_meta_loss(M, family, K: int | None, alpha: float, steps: int = 1) -> float:
    """Expected meta-loss of the shallow model at ``M`` over the task family and the K-shot support sets.

    Parameters
    ----------
    M : array (out, d).
    family : :class:`GaussianRegression` or :class:`TaskMixture` of them.
    """
    K, alpha, steps = _check_inner(K, alpha, steps)
    comps = _family(family)
    M = _init(M, comps[0][1].out, comps[0][1].d)
    total = 0.0
    for p, c in comps:
        q = shallow_quadratic(c.input_cov, c.noise_std, c.out, K, alpha, steps)
        E = M - c.mean
        spread = np.trace(np.kron(np.eye(c.out), q.A) @ c.cov)
        total += p * (0.5 * np.einsum("od,de,oe->", E, q.A, E) + 0.5 * spread + float(q.const))
    return float(total)


@_validate.finite_result
def maml_optimum(family, K: int | None, alpha: float, steps: int = 1) -> np.ndarray:
    """The shallow MAML optimum ``M* = [Σ p_c μ_c 𝔸_c][Σ p_c 𝔸_c]⁻¹`` (= E[W*] for a shared Σ)."""
    K, alpha, steps = _check_inner(K, alpha, steps)
    num, den = 0.0, 0.0
    for p, c in _family(family):
        A = shallow_quadratic(c.input_cov, c.noise_std, c.out, K, alpha, steps).A
        num = num + p * c.mean @ A
        den = den + p * A
    # 𝔸 is singular when a step solves some direction exactly (α = 1/λ with population gradients):
    # then the optimum is not unique in that direction and the minimum-norm one is returned
    try:
        return np.linalg.solve(den.T, num.T).T
    except np.linalg.LinAlgError:
        return num @ np.linalg.pinv(den, hermitian=True)


@_validate.finite_result
def shallow_floor(family, K: int | None, alpha: float, steps: int = 1) -> float:
    """The best expected post-adaptation loss a shallow model reaches with MAML at this fixed ``alpha``."""
    _check_inner(K, alpha, steps)
    return expected_meta_loss(maml_optimum(family, K, alpha, steps), family, K, alpha, steps)


@_validate.finite_result
def optimal_alpha(family, K: int | None, steps: int, bracket=(0.0, None)) -> tuple:
    """The inner step that minimises :func:`shallow_floor`: ``(alpha*, floor(alpha*))``.

    The search runs on ``[0, 2/λ_max(Σ)]`` (components' largest input variance) by bounded
    scalar minimisation of the exact closed form.
    """
    _check_inner(K, 0.0, steps)
    comps = _family(family)
    if isinstance(bracket, (str, bytes)) or not isinstance(bracket, (tuple, list)) or len(bracket) != 2:
        raise _validate.ArgumentTypeError(f"bracket must be a pair (low, high) with high None for 2/lambda_max, "
                                          f"got {bracket!r}")
    lo = _validate.finite_float("bracket[0]", bracket[0])
    lam = max(np.linalg.eigvalsh(c.input_cov)[-1] for _, c in comps)
    if bracket[1] is None and lam <= 0:
        raise ValueError("every input covariance is zero, so 2/lambda_max is infinite: pass bracket=(low, high)")
    hi = _validate.finite_float("bracket[1]", bracket[1]) if bracket[1] is not None else 2.0 / lam
    if not hi > lo:
        raise ValueError(f"bracket must have low < high, got ({lo}, {hi})")
    from scipy.optimize import minimize_scalar  # imported on use: scipy.optimize costs 0.5 s to import

    res = minimize_scalar(lambda a: shallow_floor(family, K, a, steps), bounds=(lo, hi),
                          method="bounded", options={"xatol": 1e-10 * hi})
    return float(res.x), float(res.fun)
