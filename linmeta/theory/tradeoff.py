r"""Exact expected losses in Gao & Sener's linear-regression trade-off study (NeurIPS 2020).

Task distribution (isl-org/MetaLearningTradeoffs, ``linear_regression/algorithms.py``): a task draws
``Θ ~ U(0, β)^p`` i.i.d., a Haar rotation ``U`` of ``R^p``, and a noise *variance* ``σ ~ U(0, β)``;
inputs are ``x ~ N(0, Q)`` with ``Q = U diag(Θ) Uᵀ`` and labels ``y = xᵀΘ + N(0, σ)`` (the regressor is
the eigenvalue vector ``Θ`` itself).  A model ``θ`` has the task loss ``½(θ − Θ)ᵀQ(θ − Θ) + σ/2``.

One test-time SGD step of size α on N fresh points of the task (gradient of ``½ mean (y − xᵀθ)²``)
gives ``θ' − Θ = (I − α Q̂)(θ − Θ) + α Σ xε / N`` with ``Q̂ = Σ xxᵀ/N``.  Averaging over the points
(Isserlis: ``E[xxᵀ Q xxᵀ] = 2Q³ + tr(Q²) Q``, so ``E[Q̂ Q Q̂] = Q³ + V/N`` with ``V = Q³ + tr(Q²) Q``)
and then over tasks, the expected loss after the step is the quadratic (``derivations/tradeoff.py``)

    L_{N,α}(θ) = ½ θᵀ A θ − bᵀθ + c,
    𝒜 = Q − 2αQ² + α²(Q³ + V/N),   A = E𝒜,   b = E[𝒜Θ],
    c = ½ E[Θᵀ𝒜Θ] + ½ Eσ + α² E[σ tr Q²]/(2N).

This is exactly the expression Gao & Sener's code evaluates (``Qterm − 2α Q2term + α² Q3term +
α² Vterm/N + Eσ/2 + α² E[σ tr Q²]/(2N)``), where every expectation is a Monte Carlo average over 1000
sampled tasks and ``V`` a further average over 1000 inputs per task.  Here they are exact: ``U`` is
Haar and independent of ``Θ``, so ``E_U[U D Uᵀ] = tr(D)/p · I``; with ``μ_k = E Θ_i^k = β^k/(k + 1)``
every coefficient is a polynomial in the ``μ_k`` and ``p`` (power sums of i.i.d. uniforms, averaged
over the coincidences of their indices).  ``A = a I`` and ``b = b₁ 1`` (all entries equal).  The
pre-update loss is ``α = 0``.

The minimisers are the large-data limits of the two estimators: pooled least squares ("DRS",
``M → ∞``) converges to ``argmin L₀ = b₀/a₀ · 1``; the MAML estimator (support/query split of N points
each, inner step α) to ``argmin L_{N,α}``, because its outer objective is the query loss after an
N-point step, whose expectation is ``L_{N,α}``.  The estimators at finite M, N are ratios of random
matrices: the probability that MAML beats DRS stays a Monte Carlo average over trials
(:mod:`linmeta.sim.tradeoff`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .. import _validate


@dataclass(frozen=True)
class TradeoffTasks:
    """Gao & Sener's task distribution.

    Parameters
    ----------
    p : dimension.
    beta : ``Θ ~ U(0, β)^p`` (eigenvalues of Q and the regressor) and noise variance ``σ ~ U(0, β)``.
    """

    p: int = 1
    beta: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "p", _validate.positive_int("p", self.p))
        object.__setattr__(self, "beta", _validate.finite_float("beta", self.beta, positive=True))

    def moment(self, k: int) -> float:
        """``μ_k = E Θ_i^k = β^k/(k + 1)``."""
        return self.beta**k / (k + 1)


@dataclass(frozen=True)
class QuadraticLoss:
    """``L(θ) = ½ a |θ|² − b₁ Σ θ_i + c`` (``A = a I``, ``b = b₁ 1``)."""

    a: float
    b1: float
    c: float

    def __call__(self, theta):
        """Loss of models ``theta`` (..., p); returns (...)."""
        t = np.asarray(theta, dtype=float)
        return 0.5 * self.a * np.sum(t * t, -1) - self.b1 * np.sum(t, -1) + self.c

    def minimiser(self, p: int) -> np.ndarray:
        """``A⁻¹ b`` (p,); needs ``a > 0``."""
        if not self.a > 0:
            raise ValueError(f"the loss is not strictly convex (a = {self.a:.3g}); it has no unique minimiser")
        return np.full(p, self.b1 / self.a)


def _set_partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1:]
        yield [[first]] + part


@lru_cache(maxsize=None)
def _power_sum_plan(powers: tuple, fixed: int) -> tuple:
    """``E[∏_l Σ_j Θ_j^{a_l} · Θ_1^{fixed}]`` as ``((count_poly, exponents), ...)`` over index coincidences.

    Each set partition of the sums' indices (plus the fixed index, if ``fixed > 0``) gives
    ``∏_blocks μ_{Σ exponents}`` times the number of ways to give the free blocks distinct indices:
    ``(p − f)(p − f − 1)⋯`` with ``f`` = 1 if a fixed index is present.  Returned as
    ``(f, number of free blocks, block exponent sums)`` per partition.
    """
    labels = list(range(len(powers))) + (["fixed"] if fixed else [])
    plan = []
    for part in _set_partitions(labels):
        sums, free = [], 0
        for block in part:
            e = sum(powers[i] for i in block if i != "fixed") + (fixed if "fixed" in block else 0)
            sums.append(e)
            free += "fixed" not in block
        plan.append((1 if fixed else 0, free, tuple(sums)))
    return tuple(plan)


def power_sum_moment(tasks: TradeoffTasks, powers, fixed: int = 0) -> float:
    """``E[∏_l (Σ_j Θ_j^{a_l}) · Θ_1^{fixed}]`` for ``Θ ~ U(0, β)^p`` i.i.d. (exact).

    Parameters
    ----------
    tasks : :class:`TradeoffTasks`.
    powers : sequence of positive ints ``a_l`` (the power sums).
    fixed : power of one fixed coordinate (0: none).
    """
    powers = tuple(_validate.positive_int("powers entry", a) for a in powers)
    fixed = _validate.positive_int("fixed", fixed, allow_zero=True)
    p, total = tasks.p, 0.0
    for f, free, sums in _power_sum_plan(powers, fixed):
        ways = float(np.prod([p - f - j for j in range(free)])) if free else 1.0
        total += ways * float(np.prod([tasks.moment(e) for e in sums]))
    return total


def loss_coefficients(tasks: TradeoffTasks, N: int | None = None, alpha: float = 0.0) -> QuadraticLoss:
    """Exact expected loss after one SGD step of size ``alpha`` on ``N`` points (``N=None`` or ``alpha=0``: none).

    Returns
    -------
    :class:`QuadraticLoss` with ``L(θ) = ½ a|θ|² − b₁ Σθ_i + c``.
    """
    if not isinstance(tasks, TradeoffTasks):
        raise TypeError(f"tasks must be a TradeoffTasks, got {type(tasks).__name__}")
    alpha = _validate.finite_float("alpha", alpha)
    if N is None:
        if alpha != 0:
            raise ValueError("N=None means no test-time step; pass the number of points N with alpha != 0")
        inv_N = 0.0
    else:
        inv_N = 1.0 / _validate.positive_int("N", N)
    p, mu = tasks.p, tasks.moment
    E = lambda *powers, fixed=0: power_sum_moment(tasks, powers, fixed)  # noqa: E731
    # 𝒜 = Q − 2αQ² + α²Q³ + α²/N (Q³ + tr(Q²) Q); E_U[Q^k] = (Σ_j Θ_j^k / p) I
    w = {1: 1.0, 2: -2 * alpha, 3: alpha**2 * (1 + inv_N)}
    a = sum(wk * mu(k) for k, wk in w.items()) + alpha**2 * inv_N * E(2, 1) / p
    # b_i = E[𝒜Θ]_i = Σ_k w_k E[(Σ_j Θ_j^k/p) Θ_i] + α²/N E[tr Q² (Σ_j Θ_j/p) Θ_i]
    b1 = (sum(wk * E(k, fixed=1) for k, wk in w.items()) + alpha**2 * inv_N * E(2, 1, fixed=1)) / p
    # E[Θᵀ𝒜Θ] = Σ_k w_k E[(Σ Θ^k/p)(Σ Θ²)] + α²/N E[tr Q² (Σ Θ/p)(Σ Θ²)]
    quad = (sum(wk * E(k, 2) for k, wk in w.items()) + alpha**2 * inv_N * E(2, 1, 2)) / p
    c = 0.5 * quad + 0.5 * mu(1) + alpha**2 * inv_N * mu(1) * p * mu(2) / 2
    return QuadraticLoss(float(a), float(b1), float(c))


def expected_loss(tasks: TradeoffTasks, theta, N: int | None = None, alpha: float = 0.0):
    """Expected loss of models ``theta`` (..., p) after one test-time step (none for ``N=None``); shape (...)."""
    t = np.asarray(theta, dtype=float)
    if t.shape[-1:] != (tasks.p,):
        raise ValueError(f"theta must have shape (..., {tasks.p}), got {t.shape}")
    _validate.finite_array("theta", t)
    return loss_coefficients(tasks, N, alpha)(t)


def population_drs(tasks: TradeoffTasks) -> np.ndarray:
    """The pooled least-squares limit ``argmin L₀`` (p,)."""
    return loss_coefficients(tasks).minimiser(tasks.p)


def population_maml(tasks: TradeoffTasks, N: int, alpha: float) -> np.ndarray:
    """The MAML limit (many tasks, N support and N query points, inner step α): ``argmin L_{N,α}`` (p,)."""
    return loss_coefficients(tasks, N, alpha).minimiser(tasks.p)


def moment_table(tasks: TradeoffTasks) -> dict:
    """The expectations Gao & Sener estimate by Monte Carlo, exactly (each ∝ I, ∝ 1 or a scalar).

    Returns
    -------
    dict of floats: ``EQk`` (k = 1..3; E[Q^k] = value · I), ``EV`` (E[V] = value · I), ``EQkT`` and
    ``EVT`` (E[Q^kΘ], E[VΘ] = value · 1), ``ETQkT`` and ``ETVT`` (scalars), ``Es`` = E σ and
    ``EsQ2`` = E[σ tr Q²].
    """
    p, mu = tasks.p, tasks.moment
    E = lambda *powers, fixed=0: power_sum_moment(tasks, powers, fixed)  # noqa: E731
    out = {}
    for k in (1, 2, 3):
        out[f"EQ{k}"] = mu(k)
        out[f"EQ{k}T"] = E(k, fixed=1) / p
        out[f"ETQ{k}T"] = E(k, 2) / p
    out["EV"] = mu(3) + E(2, 1) / p
    out["EVT"] = (E(3, fixed=1) + E(2, 1, fixed=1)) / p
    out["ETVT"] = (E(3, 2) + E(2, 1, 2)) / p
    out["Es"] = mu(1)
    out["EsQ2"] = mu(1) * p * mu(2)
    return out
