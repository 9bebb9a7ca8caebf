r"""Expected test loss of MAML on mixed linear regression, and its optimal learning rates (Bernacchia 2021).

Setting (Bernacchia, "Meta-learning with negative learning rates", ICLR 2021): inputs
``x ~ N(0, I_p)``, labels ``y = wᵀx + σε``, task regressors ``w ~ N(w₀, ν²/p · I_p)``, a linear model
``ω ∈ R^p`` and the mean squared loss ``½|y − Xω|²/n``.

* Training: ``m`` tasks; one inner gradient step of size ``α_t`` on ``n_t`` support points, then the
  exact outer least-squares solution ``ω̂`` on ``n_v`` query points per task: with ``N = m n_v``, the
  minimum-norm solution closest to ``ω₀`` if ``N < p`` (overparameterised), the unique one if ``N > p``.
* Testing: a fresh task, one step of size ``α_r`` on ``n_r`` points, scored by the population loss
  ``½(|ω_r − w|² + σ²)`` (the expectation over query points).

Let ``h_n(α) = (1 − α)² + α²(p + 1)/n``, which is exactly ``E[(I − αS)²]`` per direction for a
sample covariance ``S = XᵀX/n`` (``E S² = (1 + (p+1)/n) I``).  With ``B = E|ω̂ − w₀|²``:

**Exact** (``derivations/negative_lr.py``, steps 1-2)::

    L_test = ½ σ² (1 + α_r² p/n_r) + ½ h_{n_r}(α_r) (ν² + B),            (1)
    α_r*   = (ν² + B) / (σ² p/n_r + (ν² + B)(1 + (p+1)/n_r))   > 0,       (2)

and ``B = (1 − N/p)|ω₀ − w₀|² + V`` if ``N < p`` (the projection onto the row space of the
rotation-invariant design ``A`` has mean ``N/p · I``), ``B = V`` if ``N > p`` (``ω₀`` drops out).  ``V`` is
the mean squared norm of the fitted noise ``A⁺u``, with ``A`` the stacked MAML design (rows
``a = (I − α_t S_t) z``, ``z ~ N(0, I)``) and ``u`` the stacked residuals at ``w₀`` (task deviation and
label noise, which enter each row with variance ``s² = ν² h_{n_t}(α_t) + σ²(1 + α_t² p/n_t)``, exactly).
``V`` is a ratio of random matrices with no finite-``p`` closed form; two approximations are given.

**Gaussian rows** (``method="gaussian"``, the large-``p`` form; step 3): replace the rows of ``A`` by
i.i.d. ``N(0, h_{n_t} I)`` rows and the residuals by white noise of variance ``s²``; the inverse-Wishart
means ``E tr(AAᵀ)⁻¹ = N/(h(p − N − 1))`` and ``E tr(AᵀA)⁻¹ = p/(h(N − p − 1))`` give::

    V_G = N/(p − N − 1) · c   (N < p − 1),     V_G = p/(N − p − 1) · c   (N > p + 1),
    c   = ν² + σ² (1 + α_t² p/n_t) / h_{n_t}(α_t).                         (3)

Its leading order in ``1/p`` (``N`` fixed) is exact, ``E|u|²/(p h) = N s²/(p h)``; it ignores that the
rows of one task share ``S_t``, ``δ`` and the support noise, and that ``|a|²`` fluctuates more than a
Gaussian's.

**Corrected** (``method="corrected"``, the default; step 4).

* ``N < p``: the task deviation enters task ``i``'s residuals as ``A_i δ_i`` (the same ``δ_i`` for its
  ``n_v`` rows).  For Gaussian rows the Schur complement of the ``n_v × n_v`` block, two independent
  Wisharts with ``N − n_v`` and ``p − N + n_v`` degrees of freedom, gives exactly
  ``E|A⁺[A_iδ_i]|² = ν²/p · N (p − n_v − 1)/(p − N − 1)``, free of ``h`` (step 3b)::

      V_C = N/(p − N − 1) · [ν² (p − n_v − 1)/p + σ² (1 + α_t² p/n_t)/h].       (4a)

* ``N > p``: the leading order in ``1/m`` (many tasks; ``p``, ``n_t``, ``n_v`` finite) is exact:
  ``V ≈ E|r|²/(m n_v² h²)`` with ``r = A_iᵀu_i`` one task's gradient, whose mean square is a
  polynomial in the Wishart moments of ``S_t`` (:func:`task_gradient_moment`), while the Gaussian-row
  model's is ``p c/N``.  The corrected form adds the difference to ``V_G``::

      V_C = V_G + E|r|²/(m n_v² h²) − p c/N.                                  (4b)

Measured against simulation (:mod:`linmeta.sim.negative_lr`; ``|ω̂ − w₀|²`` of 6·10³-2·10⁴ runs at
α_t ∈ {−2, −1, −0.5, 0, 0.2, 0.6, 1}, SE 0.2-0.4 %), the relative error of ``V`` (range over α_t ≤ 0.6;
α_t = 1 in brackets), p = 60 and n_t = 30 unless stated::

    setting                                     corrected V_C                Gaussian-row V_G
    Fig. 2: n_v = 2, m = 3, σ = 1, ν = 0.5      −1.5 … −0.4 %  (−4.7 %)      −0.9 … +1.1 %  (−4.0 %)
      σ = 0 (task spread only)                  −0.3 … +0.3 %  (−0.3 %)      +5.0 … +5.6 %  (+4.9 %)
      ν = 0 (label noise only)                  −1.7 …  0.0 %  (−4.6 %)      the same
      σ = 0.5, ν = 2                            −0.6 … +0.1 %  (−0.3 %)      +4.4 … +4.8 %  (+4.5 %)
      n_v = 1, m = 6                            −1.2 … +0.5 %  (−2.6 %)      −0.7 … +1.6 %  (−2.1 %)
      n_v = 6, m = 1                            −1.9 … +0.7 %  (−8.0 %)      −0.4 … +3.8 %  (−6.4 %)
      n_t = 120                                 −1.8 … +1.0 %  (−3.7 %)      −1.5 … +3.4 %  (−3.4 %)
    N > p: n_v = 2, m = 60 (N = 120)            −0.3 … +1.1 %  (−1.3 %)      −6.7 … −0.2 %  (−6.8 %)
      σ = 0 / σ = 0.5, ν = 2                    +2.0 … +3.1 %  (+3.7 %)      −6.5 … +0.3 %  (−6.1 %)
      n_v = 1, m = 120                          −0.1 … +0.7 %  (−0.7 %)      −4.7 … +0.3 %  (−4.5 %)
      n_v = 5, m = 24                           −0.2 … +1.9 %  (−1.8 %)      −12.8 … −0.1 % (−12.1 %)
      p = 20, n_t = 10, m = 30                  −0.2 … +4.8 %  (+1.7 %)      −22.6 … −1.2 % (−19.0 %)
      few tasks: n_v = 60, m = 3                −4.6 … +26 %   (+33 %)       −67 … −6 %     (−49 %)

``V_C`` is exact at α_t = 0 for N < p.  The approximation is for many tasks when N > p; with few tasks
of many points it is not usable.  Since the minimum over α_t is flat, errors of 1 % that vary with α_t
move the minimiser noticeably: the simulated minimiser of ``B`` is compared with (5) in
``linmeta.experiments.bernacchia_negative_lr`` (panel f).

**Optimal training rate.**  ``α_t`` enters (1) only through ``B`` (with a positive coefficient), so
``α_t*`` minimises ``V`` and does not depend on ``α_r``, ``n_r`` or ``|ω₀ − w₀|``.  For ``V_G``, and for
``V_C`` with N < p (whose ν² term does not depend on ``α_t``), it minimises
``(1 + α² p/n_t)/h_{n_t}(α)``, whose stationary points solve ``(p/n_t) α² + (1 + 1/n_t) α − 1 = 0``;
the minimum is the negative root::

    α_t* = −[(1 + 1/n_t) + √((1 + 1/n_t)² + 4p/n_t)] / (2p/n_t)   < 0,      (5)

independent of σ (> 0), ν, m and n_v.  For ``V_C`` (N > p), ``V = Q(α)/h(α)²`` with ``Q`` a polynomial
of degree 4, so ``α_t*`` is the best real root of the degree-5 polynomial ``Q'h − 2Qh'`` (step 5); it
depends on σ, ν, m and n_v through the correction.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.polynomial import Polynomial

from .. import _validate
from .wick import count_components, perfect_matchings

METHODS = ("corrected", "gaussian")


@dataclass(frozen=True)
class MixedRegression:
    """Bernacchia's mixed linear regression with MAML training and testing sizes.

    Parameters
    ----------
    p : input dimension (number of parameters).
    n_t : support points per training task (inner step).
    n_v : query points per training task (outer least squares).
    n_r : adaptation points per test task.
    m : training tasks.
    sigma : label noise σ ≥ 0.
    nu : task spread ν ≥ 0 (``w ~ N(w₀, ν²/p · I)``).
    offset : ``|ω₀ − w₀|``, distance of the min-norm reference point from the mean task.
    """

    p: int
    n_t: int
    n_v: int
    n_r: int
    m: int
    sigma: float = 1.0
    nu: float = 0.5
    offset: float = 0.0

    def __post_init__(self):
        for name in ("p", "n_t", "n_v", "n_r", "m"):
            object.__setattr__(self, name, _validate.positive_int(name, getattr(self, name)))
        for name in ("sigma", "nu", "offset"):
            object.__setattr__(self, name, _validate.finite_float(name, getattr(self, name), non_negative=True))

    @property
    def N(self) -> int:
        """Outer data points ``m n_v``."""
        return self.m * self.n_v

    @property
    def overparameterised(self) -> bool:
        return self.N < self.p


def _check_setting(setting):
    if not isinstance(setting, MixedRegression):
        raise TypeError(f"setting must be a MixedRegression, got {type(setting).__name__}")
    if abs(setting.N - setting.p) <= 1:
        raise ValueError(f"m*n_v = {setting.N} is within 1 of p = {setting.p}: the expected test loss is infinite "
                         f"there; use m*n_v < p - 1 or m*n_v > p + 1")


def _alpha(name, alpha):
    a = np.asarray(alpha, dtype=float)
    _validate.finite_array(name, a)
    return a


def _method(method):
    _validate.one_of("method", method, METHODS)
    return method


def h_factor(alpha, n: int, p: int):
    """``h_n(α) = (1 − α)² + α²(p + 1)/n = E[(I − αS)²]`` per direction, ``S = XᵀX/n``; shape of ``alpha``."""
    n, p = _validate.positive_int("n", n), _validate.positive_int("p", p)
    a = _alpha("alpha", alpha)
    return (1 - a) ** 2 + a**2 * (p + 1) / n


def _h_poly(n, p) -> Polynomial:
    return Polynomial([1.0, -2.0, 1.0 + (p + 1) / n])


# ---------------------------------------------------------------------------------------------
# exact Wishart trace moments (Wick enumeration; derivations/negative_lr.py checks them by brute force)


@lru_cache(maxsize=None)
def _wishart_plan(powers: tuple) -> tuple:
    """``E ∏_j tr(W^{k_j}) = Σ count · n^a p^b`` for ``W = XᵀX``, X n × p i.i.d. N(0, 1): ``((count, a, b), ...)``.

    ``tr W^k = Σ ∏_i X[s_i, a_i] X[s_i, a_{i+1}]``; Wick pairs the 2Σk factors, each pair identifying
    their sample and feature labels; every connected class of labels gives a factor n (or p).
    """
    # factor 2i of a trace is X[s_i, a_i], factor 2i+1 is X[s_i, a_{i+1}] (labels numbered across traces)
    factors, base = [], 0
    for k in powers:
        for i in range(k):
            factors.append((base + i, base + i))
            factors.append((base + i, base + (i + 1) % k))
        base += k
    n_labels = base

    def classes(pairs, which):
        return count_components(n_labels, [(factors[f][which], factors[g][which]) for f, g in pairs])

    counts = {}
    for match in perfect_matchings(tuple(range(len(factors)))):
        key = (classes(match, 0), classes(match, 1))
        counts[key] = counts.get(key, 0) + 1
    return tuple((c, a, b) for (a, b), c in sorted(counts.items()))


def wishart_trace_moment(powers, n: int, p: int) -> float:
    """``E ∏_j tr(S^{k_j})`` for the sample covariance ``S = XᵀX/n`` of n points ``x ~ N(0, I_p)``.

    Parameters
    ----------
    powers : sequence of positive ints ``(k_1, ..., k_J)`` with ``Σ k_j ≤ 5``.
    n, p : sample size and dimension.

    Returns
    -------
    float (exact: a polynomial in n, p over ``n^{Σk}``).
    """
    n, p = _validate.positive_int("n", n), _validate.positive_int("p", p)
    powers = tuple(int(_validate.positive_int("powers entry", k)) for k in powers)
    if sum(powers) > 5:
        raise ValueError(f"powers {powers} sum to {sum(powers)}; at most 5 (the enumeration grows as (2K-1)!!)")
    total = sum(float(c) * float(n) ** a * float(p) ** b for c, a, b in _wishart_plan(tuple(sorted(powers))))
    return total / float(n) ** sum(powers)


def task_gradient_moment(setting: MixedRegression, alpha_t):
    """Exact ``E|A_iᵀu_i|²`` of one training task's least-squares gradient at ``w₀`` (step 4).

    With ``M = I − α_t S_t``, ``A_i = Z M`` (``Z`` the n_v × p query inputs) and ``u_i = Z v + σε``,
    ``v = Mδ − α_t g`` (``δ ~ N(0, ν²/p I)`` the task deviation, ``g = X_tᵀ σε_t/n_t``), the Wishart
    identity ``E[ZᵀZ B ZᵀZ] = n_v(n_v + 1) B + n_v tr(B) I`` gives::

        E|r|² = n_v(n_v+1) [ν²/p E tr M⁴ + α²σ²/n_t E tr(S M²)]
              + n_v [ν²/p E (tr M²)² + α²σ²/n_t E tr M² tr S] + σ² n_v E tr M².

    Parameters
    ----------
    setting : :class:`MixedRegression` (p, n_t, n_v, σ, ν).
    alpha_t : float or array.

    Returns
    -------
    array, shape of ``alpha_t``.
    """
    a = _alpha("alpha_t", alpha_t)
    return _task_gradient_poly(setting)(a)


def _task_gradient_poly(s: MixedRegression) -> Polynomial:
    """``E|r|²`` as a polynomial in α_t (degree 4)."""
    n, p = s.n_t, s.p
    E = lambda *k: wishart_trace_moment(k, n, p)  # noqa: E731
    e1, e2, e3, e4 = E(1), E(2), E(3), E(4)
    e11, e12, e22 = E(1, 1), E(1, 2), E(2, 2)
    trM2 = Polynomial([p, -2 * e1, e2])
    trM4 = Polynomial([p, -4 * e1, 6 * e2, -4 * e3, e4])
    trSM2 = Polynomial([e1, -2 * e2, e3])
    trM2sq = Polynomial([p**2, -4 * p * e1, 2 * p * e2 + 4 * e11, -4 * e12, e22])
    trM2trS = Polynomial([p * e1, -2 * e11, e12])
    a2 = Polynomial([0.0, 0.0, 1.0])
    nu2, sg2, nv = s.nu**2, s.sigma**2, s.n_v
    return (nv * (nv + 1) * (nu2 / p * trM4 + sg2 / n * a2 * trSM2)
            + nv * (nu2 / p * trM2sq + sg2 / n * a2 * trM2trS) + sg2 * nv * trM2)


def _noise_poly(s: MixedRegression) -> Polynomial:
    """``c · h = ν² h + σ²(1 + α² p/n_t)`` = the exact per-row residual variance ``s²``."""
    return s.nu**2 * _h_poly(s.n_t, s.p) + s.sigma**2 * Polynomial([1.0, 0.0, s.p / s.n_t])


def _numerator(s: MixedRegression, method: str) -> Polynomial:
    """``Q`` with ``V = Q(α)/h(α)²`` (``V_G = K s² h / h²``)."""
    N, p = s.N, s.p
    K = N / (p - N - 1) if N < p else p / (N - p - 1)
    Q = K * _noise_poly(s) * _h_poly(s.n_t, p)
    if method == "corrected" and N < p:
        # the task deviation with its within-task structure (4a): ν² (p − n_v − 1)/p instead of ν² (h cancels)
        Q = Q - K * s.nu**2 * (s.n_v + 1) / p * _h_poly(s.n_t, p) ** 2
    if method == "corrected" and N > p:
        Q = Q + _task_gradient_poly(s) / (s.m * s.n_v**2) - (p / N) * _noise_poly(s) * _h_poly(s.n_t, p)
    return Q


def fitted_noise(setting: MixedRegression, alpha_t, method: str = "corrected"):
    """``V ≈ E|A⁺u|²``, the mean squared norm of the fitted noise (equations (3)-(4)); shape of ``alpha_t``."""
    _check_setting(setting)
    method = _method(method)
    a = _alpha("alpha_t", alpha_t)
    h = h_factor(a, setting.n_t, setting.p)
    return _numerator(setting, method)(a) / h**2


def estimator_error(setting: MixedRegression, alpha_t, method: str = "corrected"):
    """``B = E|ω̂ − w₀|²`` of the MAML training estimator; shape of ``alpha_t``.

    ``(1 − N/p)|ω₀ − w₀|² + V`` for N < p (the first term exact), ``V`` for N > p.
    """
    V = fitted_noise(setting, alpha_t, method)
    s = setting
    return V + (1 - s.N / s.p) * s.offset**2 if s.overparameterised else V


def test_loss_given_error(setting: MixedRegression, alpha_r, error2):
    """Exact expected test loss (1) of a trained model with ``E|ω̂ − w₀|² = error2``.

    Parameters
    ----------
    setting : :class:`MixedRegression` (p, n_r, σ, ν).
    alpha_r : float or array, adaptation step size.
    error2 : float or array (broadcast with ``alpha_r``), non-negative.
    """
    if not isinstance(setting, MixedRegression):
        raise TypeError(f"setting must be a MixedRegression, got {type(setting).__name__}")
    a = _alpha("alpha_r", alpha_r)
    e = _alpha("error2", error2)
    if np.any(e < 0):
        raise ValueError("error2 must be non-negative (a mean squared distance)")
    s = setting
    return 0.5 * s.sigma**2 * (1 + a**2 * s.p / s.n_r) + 0.5 * h_factor(a, s.n_r, s.p) * (s.nu**2 + e)


def expected_test_loss(setting: MixedRegression, alpha_t, alpha_r, method: str = "corrected"):
    """Expected test loss of MAML after training with ``α_t`` and adapting with ``α_r``.

    ``alpha_t`` and ``alpha_r`` broadcast against each other; exact given ``B``, with ``B`` from
    :func:`estimator_error` (see the module docstring for the approximation and its measured error).
    """
    B = estimator_error(setting, alpha_t, method)
    return test_loss_given_error(setting, alpha_r, B)


def optimal_alpha_adapt(setting: MixedRegression, alpha_t, method: str = "corrected"):
    """``α_r*`` (2) for a model trained with ``α_t``; positive whenever ``ν² + B > 0``; shape of ``alpha_t``."""
    s = setting
    Bnu = s.nu**2 + estimator_error(s, alpha_t, method)
    return Bnu / (s.sigma**2 * s.p / s.n_r + Bnu * (1 + (s.p + 1) / s.n_r))


def optimal_alpha_train(setting: MixedRegression, method: str = "corrected") -> float:
    """``α_t*``, the training step that minimises the expected test loss (for every ``α_r``).

    ``V_G`` (N < p, or ``method="gaussian"``): the closed form (5); it needs σ > 0 (for σ = 0, ``V_G``
    does not depend on ``α_t``).  ``V_C`` with N > p: the real stationary point of ``Q/h²`` (roots of
    the degree-5 polynomial ``Q'h − 2Qh'``) with the smallest ``V``.
    """
    _check_setting(setting)
    method = _method(method)
    s = setting
    if method == "gaussian" or s.overparameterised:
        if s.sigma == 0:
            raise ValueError("with sigma = 0 the Gaussian-row expected loss does not depend on alpha_t; "
                             "alpha_t* is undefined (use sigma > 0, or method='corrected' with m*n_v > p)")
        q, b = s.p / s.n_t, 1 + 1 / s.n_t
        return float(-(b + np.sqrt(b * b + 4 * q)) / (2 * q))
    Q, h = _numerator(s, method), _h_poly(s.n_t, s.p)
    roots = (Q.deriv() * h - 2 * Q * h.deriv()).roots()
    real = roots[np.abs(roots.imag) <= 1e-9 * np.maximum(1.0, np.abs(roots.real))].real
    if real.size == 0:
        raise ValueError("no real stationary point of the expected loss in alpha_t (degenerate setting)")
    values = Q(real) / h(real) ** 2
    best = int(np.argmin(values))
    limit = Q.coef[-1] / h.coef[-1] ** 2 if Q.degree() == 4 else 0.0   # V(α) as |α| → ∞
    if values[best] >= limit:
        raise ValueError("the expected loss has no interior minimum in alpha_t (it decreases towards |alpha_t| -> inf)")
    return float(real[best])


def gaussian_optimal_alpha_train(p: int, n_t: int) -> float:
    """The closed form (5) from ``p`` and ``n_t`` alone (the negative root of ``(p/n_t)α² + (1+1/n_t)α − 1``)."""
    p, n_t = _validate.positive_int("p", p), _validate.positive_int("n_t", n_t)
    q, b = p / n_t, 1 + 1 / n_t
    return float(-(b + np.sqrt(b * b + 4 * q)) / (2 * q))
