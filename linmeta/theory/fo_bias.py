r"""FO-MAML's fixed-point bias on quadratic tasks (Fallah, Mokhtari & Ozdaglar 2020).

Setting (``derivations/fo_bias.py``).  Task type ``c`` (probability ``p_c``): inputs ``x ~ N(0, Σ_c)``
and optima ``w*`` with mean ``μ_c``; ``k`` inner steps of size α on the task loss (population
gradients, or an ``m``-sample support set reused for every step).  With ``A_c`` the post-adaptation
curvature and ``B_c = E[(I − αΣ̂)^k]`` the mean error map (:func:`linmeta.theory.landscape.curvature`),

    MAML optimum      w_MAML = [Σ p_c μ_c A_c][Σ p_c A_c]⁻¹        (∇F_MAML = 0),
    FO-MAML fixed pt  w_FO   = [Σ p_c μ_c B_c Σ_c][Σ p_c B_c Σ_c]⁻¹  (E[∇f(w')] = 0),

(:func:`~linmeta.theory.landscape.maml_optimum`, :func:`~linmeta.theory.landscape.fo_maml_optimum`).
For population gradients ``A_c = P_c Σ_c P_c`` and ``B_c Σ_c = Σ_c P_c`` with ``P_c = (I − αΣ_c)^k``.
FO-MAML drops the factor ``(I − α∇²f)^k`` of the meta-gradient, so it weights task type ``c`` by
``Σ_c P_c`` instead of ``P_c Σ_c P_c``.  The *bias* is ``b = w_FO − w_MAML``; since ``F_MAML`` is a
quadratic with Hessian ``H = Σ p_c A_c``, the FO fixed point has the exact excess meta-loss
``F_MAML(w_FO) − F_MAML(w_MAML) = ½ tr(b H bᵀ)`` and meta-gradient ``∇F_MAML(w_FO) = b H`` —
nonzero whenever ``b`` is: FO-MAML stalls at a point that is not ε-stationary for any ε below
``‖b H‖`` (Fallah et al.'s claim).

**Vanishing conditions** (exact).  The two weightings give the same weighted mean iff the weights are
proportional, which for a generic task set means: (i) a *shared Hessian* ``Σ_c ≡ Σ`` — then both
fixed points are ``Σ p_c μ_c`` (every weight matrix is the same); or (ii) *identical optima*
``μ_c ≡ μ`` — then both are ``μ``.  For two isotropic types ``Σ_c = λ_c I`` (weights ``p, q = 1 − p``,
``f_c = λ_c(1 − αλ_c)^k``, ``g_c = λ_c(1 − αλ_c)^{2k}``) everything is scalar:

    b = κ (μ_1 − μ_2),   κ = p q (f_1 g_2 − f_2 g_1) / ((p f_1 + q f_2)(p g_1 + q g_2)),
    f_1 g_2 − f_2 g_1 = λ_1 λ_2 (1 − αλ_1)^k (1 − αλ_2)^k [(1 − αλ_2)^k − (1 − αλ_1)^k],

so ``b = 0`` iff ``μ_1 = μ_2``, or ``λ_1 = λ_2``, or one type is solved exactly by the inner loop
(``αλ_c = 1``: both fixed points then sit at the other type's centre), or — for even ``k`` only —
``α(λ_1 + λ_2) = 2`` (the two contraction factors are opposite).  To first order in α,

    κ = k α p q λ_1 λ_2 (λ_1 − λ_2) / (p λ_1 + q λ_2)² + O(α²),

linear in the step size, in the number of steps and in the curvature spread; ``‖b‖`` is linear in the
optimum distance ``‖μ_1 − μ_2‖``.  The excess meta-loss is ``½ (p g_1 + q g_2) ‖b‖²``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate
from ..tasks import GaussianRegression, TaskMixture
from . import landscape as _landscape


@dataclass(frozen=True)
class FOBias:
    """The MAML optimum, the FO-MAML fixed point and the gap between them.

    Attributes
    ----------
    w_maml, w_fo : arrays (out, d).
    bias : array (out, d), ``w_fo − w_maml``.
    norm : float, ``‖bias‖`` (Frobenius).
    excess : float, ``F_MAML(w_fo) − F_MAML(w_maml) = ½ tr(bias H biasᵀ)``.
    grad_norm : float, ``‖∇F_MAML(w_fo)‖ = ‖bias H‖``.
    hessian : array (d, d), the MAML Hessian H (per output row).
    """

    w_maml: np.ndarray
    w_fo: np.ndarray
    bias: np.ndarray
    norm: float
    excess: float
    grad_norm: float
    hessian: np.ndarray


def _result(w_maml, w_fo, H) -> FOBias:
    b = w_fo - w_maml
    return FOBias(w_maml, w_fo, b, float(np.linalg.norm(b)), float(0.5 * np.einsum("od,de,oe->", b, H, b)),
                  float(np.linalg.norm(b @ H)), H)


def fo_bias(family, K: int | None, alpha: float, steps: int = 1, *, sampling: str = "same") -> FOBias:
    """FO-MAML bias of a Gaussian task family (a :class:`~linmeta.tasks.TaskMixture` of regressions).

    Parameters
    ----------
    family : :class:`~linmeta.tasks.GaussianRegression` or :class:`~linmeta.tasks.TaskMixture` of them.
    K : support samples per inner step, or ``None`` for population gradients.
    alpha : inner step size α. steps : inner steps k ≥ 1.
    sampling : ``"same"`` (one support set for all steps, as the engine) or ``"fresh"``.

    Returns
    -------
    :class:`FOBias`.
    """
    w_maml = _landscape.maml_optimum(family, K, alpha, steps, sampling=sampling)
    w_fo = _landscape.fo_maml_optimum(family, K, alpha, steps, sampling=sampling)
    H = _landscape.hessians(family, K, alpha, steps, sampling=sampling).maml
    return _result(w_maml, w_fo, H)


def _tasks(hessians, optima, weights):
    H = _validate.psd_matrix("hessians", hessians)
    if H.ndim != 3:
        raise ValueError(f"hessians must have shape (T, d, d), got {H.shape}")
    T, d = H.shape[0], H.shape[-1]
    w = np.asarray(optima, dtype=float)
    if w.shape != (T, d):
        raise ValueError(f"optima must have shape (T, d) = ({T}, {d}), got {w.shape}")
    _validate.finite_array("optima", w)
    if weights is None:
        p = np.full(T, 1.0 / T)
    else:
        p = np.asarray(weights, dtype=float)
        if p.shape != (T,) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
            raise ValueError(f"weights must be {T} non-negative numbers summing to 1, got {weights!r}")
    return H, w, p


def _solve(G, w, p, name):
    den = np.einsum("t,tij->ij", p, G)
    if np.linalg.matrix_rank(den) < den.shape[-1]:
        raise ValueError(f"the {name} weight matrix Σ p_i G_i is singular: its fixed point is not unique "
                         "(change alpha, steps or the Hessians)")
    return np.linalg.solve(den, np.einsum("t,tij,tj->i", p, G, w))


def discrete_fixed_points(hessians, optima, alpha: float, steps: int = 1, weights=None) -> FOBias:
    """MAML optimum and FO-MAML fixed point of a finite task set, population inner steps.

    Task ``i``: ``f_i(w) = ½ (w − w_i)ᵀ H_i (w − w_i)`` with weight ``p_i``.  With ``P_i = (I − αH_i)^k``,
    ``w_MAML = (Σ p P H P)⁻¹ Σ p P H P w_i`` and ``w_FO = (Σ p H P)⁻¹ Σ p H P w_i``.

    Parameters
    ----------
    hessians : array (T, d, d) PSD. optima : array (T, d). alpha, steps : the inner loop. weights : (T,) or None.

    Returns
    -------
    :class:`FOBias` with ``w_maml``, ``w_fo``, ``bias`` of shape (1, d).
    """
    H, w, p = _tasks(hessians, optima, weights)
    alpha = _validate.finite_float("alpha", alpha)
    steps = _validate.positive_int("steps", steps)
    P = np.linalg.matrix_power(np.eye(H.shape[-1]) - alpha * H, steps)
    G = P @ H @ P
    F = H @ P  # = P H: they commute
    w_maml = _solve(G, w, p, "MAML")
    w_fo = _solve(0.5 * (F + np.swapaxes(F, -1, -2)), w, p, "FO-MAML")
    return _result(w_maml[None], w_fo[None], np.einsum("t,tij->ij", p, G))


@dataclass(frozen=True)
class TwoTypeBias:
    """Scalar closed forms of two isotropic task types (see the module docstring).

    Attributes
    ----------
    kappa : the bias coefficient, ``w_FO − w_MAML = κ (μ_1 − μ_2)``.
    excess_per_distance2 : ``½ (p g_1 + q g_2) κ²``: the excess meta-loss per unit ``‖μ_1 − μ_2‖²``.
    grad_per_distance : ``(p g_1 + q g_2) |κ|``: ``‖∇F_MAML(w_FO)‖`` per unit distance.
    first_order : ``k α p q λ_1 λ_2 (λ_1 − λ_2) / (p λ_1 + q λ_2)²``, the leading term of κ in α.
    """

    kappa: float
    excess_per_distance2: float
    grad_per_distance: float
    first_order: float


def _two_type_args(p, lam1, lam2, alpha, steps):
    p = _validate.finite_float("p", p)
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1) (both task types present), got {p}")
    lam1 = _validate.finite_float("lam1", lam1, positive=True)
    lam2 = _validate.finite_float("lam2", lam2, positive=True)
    alpha = _validate.finite_float("alpha", alpha)
    steps = _validate.positive_int("steps", steps)
    return p, lam1, lam2, alpha, steps


def two_type_bias(p: float, lam1: float, lam2: float, alpha: float, steps: int = 1) -> TwoTypeBias:
    """The isotropic two-type bias coefficient κ and what follows from it (population inner steps).

    Parameters
    ----------
    p : probability of type 1. lam1, lam2 : curvatures (``Σ_c = λ_c I``). alpha, steps : the inner loop.
    """
    p, l1, l2, alpha, steps = _two_type_args(p, lam1, lam2, alpha, steps)
    q = 1.0 - p
    f = [lam * (1 - alpha * lam) ** steps for lam in (l1, l2)]
    g = [lam * (1 - alpha * lam) ** (2 * steps) for lam in (l1, l2)]
    den_f, den_g = p * f[0] + q * f[1], p * g[0] + q * g[1]
    if den_f == 0 or den_g == 0:
        raise ValueError("a weight p f_1 + q f_2 or p g_1 + q g_2 vanishes: the MAML or FO-MAML fixed point is not "
                         "unique for this alpha (both types solved exactly, or FO weights cancelling)")
    # f_1 g_2 − f_2 g_1 in its factored form (derivations/fo_bias.py), exact zero at the vanishing conditions
    x1, x2 = 1 - alpha * l1, 1 - alpha * l2
    cross = l1 * l2 * x1**steps * x2**steps * (x2**steps - x1**steps)
    kappa = p * q * cross / (den_f * den_g)
    first = steps * alpha * p * q * l1 * l2 * (l1 - l2) / (p * l1 + q * l2) ** 2
    return TwoTypeBias(float(kappa), float(0.5 * den_g * kappa**2), float(den_g * abs(kappa)), float(first))


def two_type_bias_vanishes(p: float, lam1: float, lam2: float, alpha: float, steps: int = 1) -> bool:
    """The derived vanishing conditions of κ (given distinct centres): shared curvature, an exactly solved
    type, or (even ``k``) ``α(λ_1 + λ_2) = 2``."""
    p, l1, l2, alpha, steps = _two_type_args(p, lam1, lam2, alpha, steps)
    return bool(l1 == l2 or alpha * l1 == 1 or alpha * l2 == 1 or (steps % 2 == 0 and alpha * (l1 + l2) == 2))


def isotropic_two_type_family(p: float, lam1: float, lam2: float, mu1, mu2, spread: float = 0.0):
    """The :class:`~linmeta.tasks.TaskMixture` of two isotropic types (optima ``N(μ_c, spread²/d I)``).

    A family *description* for :func:`fo_bias` and the samplers; ``mu1``, ``mu2`` are arrays (d,).
    """
    p, l1, l2, _, _ = _two_type_args(p, lam1, lam2, 0.0, 1)
    mu1, mu2 = (np.asarray(m, dtype=float).reshape(1, -1) for m in (mu1, mu2))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 must have the same shape (d,), got {mu1.shape[1:]} and {mu2.shape[1:]}")
    d = mu1.shape[1]
    spread = _validate.finite_float("spread", spread, non_negative=True)
    comps = tuple(GaussianRegression(d=d, mean=mu, cov=spread**2 / d, input_cov=lam * np.eye(d))
                  for mu, lam in ((mu1, l1), (mu2, l2)))
    return TaskMixture(comps, (p, 1.0 - p))
