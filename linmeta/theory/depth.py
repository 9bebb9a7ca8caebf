r"""Closed forms for the smallest depth example: ``ŷ = w₂ w₁ x`` against ``ŷ = w x`` (d = 1).

Task family (the hero figure of Arnold et al.'s project page): ``x ~ N(0, ρ)``, ``w* ~ N(μ, s²)``,
``y = w* x + σ ε``.  The population task loss of the end-to-end scalar ``m`` is

    ℓ(m) = ½ ρ (m − w*)² + ½ σ²,        ∂ℓ/∂m = ρ (m − w*).

One inner step of size α on the population loss (``derivations/scalar_surface.py``):

* shallow, ``m = w``:  ``e' = (1 − αρ) e`` with ``e = m − w*``;
* deep, ``m = w₁w₂``, both layers adapt (MAML):
  ``w₁' = w₁ − α w₂ ρ e``, ``w₂' = w₂ − α w₁ ρ e``, hence

      e' = (1 − αρ r) e + α²ρ² m e²,      r = w₁² + w₂².

  The first-order effective step on ``m`` is ``α r`` (T5 with d = 1); the shallow one is ``α``.

The meta-loss is the expected post-adaptation population loss ``F = ½ρ E[e'²] + ½σ²`` over
``w*``; ``e ~ N(m − μ, s²)``, so it needs only the Gaussian moments of ``e`` up to order 4.
For ``μ = 0`` the deep meta-loss reaches its lower bound ``½σ²`` exactly where ``m = 0`` and
``αρ r = 1``: the four points ``(0, ±1/√(αρ))`` and ``(±1/√(αρ), 0)``, where one inner step
lands on every task's solution ``w₁'w₂' = w*``.  The shallow model's floor is
``½ρ(1 − αρ)² s² + ½σ²`` at ``w = μ``: it cannot change its step.
"""
from __future__ import annotations

import numpy as np

from .. import _validate


def _check(alpha, rho, s, noise_std):
    alpha = _validate.finite_float("alpha", alpha)
    rho = _validate.finite_float("rho", rho, positive=True)
    s = _validate.finite_float("s", s, non_negative=True)
    noise_std = _validate.finite_float("noise_std", noise_std, non_negative=True)
    return alpha, rho, s, noise_std


def _points(**named):
    """Real finite arrays that broadcast together (the point arguments), in the order given."""
    arrays = {name: _validate.real_array(name, x) for name, x in named.items()}
    try:
        np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{n} {a.shape}" for n, a in arrays.items())
        raise ValueError(f"{', '.join(arrays)} must broadcast against each other; got shapes {shapes}") from None
    return tuple(arrays.values())


def _error_moments(delta, s):
    """``E[e²], E[e³], E[e⁴]`` for ``e ~ N(delta, s²)``."""
    d2, s2 = delta * delta, s * s
    return d2 + s2, delta * (d2 + 3.0 * s2), d2 * d2 + 6.0 * d2 * s2 + 3.0 * s2 * s2


@_validate.finite_result
def scalar_adapted(w1, w2, w_star, alpha: float, rho: float = 1.0):
    """One MAML inner step of the deep scalar model on the population loss of task ``w_star``.

    Parameters
    ----------
    w1, w2 : arrays (broadcastable), the two layers.
    w_star : array (broadcastable), the task.
    alpha : inner step size.
    rho : input variance ρ.

    Returns
    -------
    (w1', w2') : the adapted layers, broadcast shape.
    """
    alpha, rho, _, _ = _check(alpha, rho, 0.0, 0.0)
    w1, w2, w_star = _points(w1=w1, w2=w2, w_star=w_star)
    g = rho * (w1 * w2 - w_star)  # ∂ℓ/∂m
    return w1 - alpha * w2 * g, w2 - alpha * w1 * g


@_validate.finite_result
def scalar_deep_meta_loss(w1, w2, alpha: float, rho: float = 1.0, mu: float = 0.0, s: float = 1.0,
                          noise_std: float = 0.0):
    """Expected post-adaptation population loss of ``ŷ = w₂w₁x`` after one MAML step, exactly.

    Parameters
    ----------
    w1, w2 : arrays (broadcastable), the initialisation (e.g. a grid).
    alpha : inner step size α.
    rho : input variance ρ > 0.
    mu, s : mean and standard deviation of the task ``w* ~ N(μ, s²)``.
    noise_std : label noise σ (adds ``½σ²``).

    Returns
    -------
    array of the broadcast shape of ``w1`` and ``w2``.
    """
    alpha, rho, s, noise_std = _check(alpha, rho, s, noise_std)
    mu = _validate.finite_float("mu", mu)
    w1, w2 = _points(w1=w1, w2=w2)
    m, r = w1 * w2, w1 * w1 + w2 * w2
    a = 1.0 - alpha * rho * r  # e' = a e + b e²   (module docstring)
    b = alpha**2 * rho**2 * m
    e2, e3, e4 = _error_moments(m - mu, s)
    return 0.5 * rho * (a * a * e2 + 2.0 * a * b * e3 + b * b * e4) + 0.5 * noise_std**2


@_validate.finite_result
def scalar_shallow_meta_loss(w, alpha: float, rho: float = 1.0, mu: float = 0.0, s: float = 1.0,
                             noise_std: float = 0.0):
    """Expected post-adaptation population loss of ``ŷ = w x`` after one step: ``½ρ(1−αρ)²((w−μ)²+s²) + ½σ²``.

    Parameters and shapes as in :func:`scalar_deep_meta_loss` (``w`` any array).
    """
    alpha, rho, s, noise_std = _check(alpha, rho, s, noise_std)
    mu = _validate.finite_float("mu", mu)
    (w,) = _points(w=w)
    return 0.5 * rho * (1.0 - alpha * rho) ** 2 * ((w - mu) ** 2 + s * s) + 0.5 * noise_std**2


@_validate.finite_result
def scalar_effective_step(w1, w2, alpha: float):
    """First-order step size on the end-to-end scalar, ``α (w₁² + w₂²)`` (the shallow model's is ``α``)."""
    alpha = _validate.finite_float("alpha", alpha)
    w1, w2 = _points(w1=w1, w2=w2)
    return alpha * (w1 * w1 + w2 * w2)


@_validate.finite_result
def scalar_deep_minima(alpha: float, rho: float = 1.0) -> np.ndarray:
    """The four global minimisers of :func:`scalar_deep_meta_loss` for a centred task family (μ = 0).

    ``(0, ±1/√(αρ))`` and ``(±1/√(αρ), 0)``, where ``m = 0`` and ``αρ(w₁² + w₂²) = 1``; the
    meta-loss there is ``½σ²`` (its lower bound: one step lands on every task).

    Returns
    -------
    array (4, 2) of ``(w1, w2)``.
    """
    alpha = _validate.finite_float("alpha", alpha, positive=True)
    rho = _validate.finite_float("rho", rho, positive=True)
    r = 1.0 / np.sqrt(alpha * rho)
    return np.array([[0.0, r], [0.0, -r], [r, 0.0], [-r, 0.0]])
