r"""Closed forms for the task landscape of MAML versus NAL (Collins, Mokhtari & Shakkottai).

Setting (Collins, Mokhtari & Shakkottai, arXiv 2010.14672; every formula here is our own
derivation for that setting, not quoted from the paper).  Task ``i``: ``x ~ N(0, Σ_i)``,
``y = W_i* x + ν ε``; its population loss is the quadratic

    f_i(W) = ½ tr((W − W_i*) Σ_i (W − W_i*)ᵀ) + ½ out ν².

Adaptation: ``k`` steps of gradient descent with step ``α`` on the task loss, with
population gradients (``K=None``) or with the ``K``-sample stochastic gradient
``ĝ = (W X̂ᵀ − Ŷᵀ) X̂ / K`` (Gaussian inputs).  Two sampling models for ``k > 1``:

``sampling="same"``
    one support set of ``K`` samples is reused for all ``k`` steps — the model of the
    engine's inner loop (:func:`linmeta.inner_loop.run_inner_loop`).  Exact through the
    Gaussian chain moments of :mod:`linmeta.theory.gaussian_moments` (via
    :func:`linmeta.theory.shallow.shallow_quadratic`); with ``K`` finite it is limited to
    ``k ≤ 3`` (the chain of ``2k+1`` sample covariances must have at most 8 factors).
``sampling="fresh"``
    a new batch of ``K`` samples at every step.  Then the curvature composes step by step,
    ``C_k = Σ``, ``C_j = E[(I − αΣ̂) C_{j+1} (I − αΣ̂)]``, with the fourth-moment identity
    ``E[Σ̂ C Σ̂] = Σ C Σ + (Σ C Σ + tr(CΣ) Σ)/K`` (``derivations/landscape_one_step.py``), and
    each step's label noise ``n_j = X_jᵀε_j/K`` (covariance ``ν²Σ/K``) adds
    ``½ α² ν² tr(C_{j+1} Σ)/K``.  Any ``k``.

For ``k = 1`` (or ``K=None``) the two coincide.  Every function takes the adaptation in one
order, ``(..., K, alpha, steps=1, *, sampling=...)``, as :mod:`linmeta.theory.shallow` does.  Either way the expected excess risk after
adaptation, ``E[f_i(W') − f_i(W_i*)]``, is the quadratic

    ½ tr((W − W_i*) A_i (W − W_i*)ᵀ) + out·noise_i,

so with components ``c`` of the task distribution (probability ``p_c``, mean task ``μ_c``,
task covariance ``C_c``, input covariance ``Σ_c``) everything is closed form:

* NAL optimum (minimises ``E f_i(W)``): ``W_NAL = [Σ p_c μ_c Σ_c][Σ p_c Σ_c]⁻¹``;
* MAML optimum (minimises the expected post-adaptation loss): ``W_MAML = [Σ p_c μ_c A_c][Σ p_c A_c]⁻¹``;
* FO-MAML fixed point (first-order meta-gradient ``E[(W' − W*) Σ]`` vanishes):
  ``W_FO = [Σ p_c μ_c B_c Σ_c][Σ p_c B_c Σ_c]⁻¹`` with ``B_c = E[(I − αΣ̂_1)⋯(I − αΣ̂_k)]``;
* Hessians (in each row of ``W``): ``∇²F_NAL = Σ p_c Σ_c``, ``∇²F_MAML = Σ p_c A_c``
  (``derivations/landscape_optima.py``).

The isotropic easy/hard two-cluster mixture (:class:`TwoCluster`, :func:`two_cluster`)
reduces all of this to scalars (``derivations/landscape_gain.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .. import _validate
from ..tasks import GaussianRegression, TaskMixture, mixture_components
from .gaussian_moments import gd_polynomial, poly_sandwich
from .shallow import shallow_quadratic

SAMPLING = ("same", "fresh")
MAX_SAME_BATCH_STEPS = 3  # 2k + 1 ≤ gaussian_moments.MAX_FACTORS = 8


# --------------------------------------------------------------------------- per-task curvature


@dataclass(frozen=True)
class Curvature:
    """Expected post-adaptation excess risk of one task type, as a quadratic in the error.

    ``E[f(W') − f(W*)] = ½ tr((W − W*) A (W − W*)ᵀ) + out · noise``.

    Attributes
    ----------
    A : array (..., d, d), the post-adaptation curvature (``Σ`` when ``steps=0``).
    noise : array (...), the excess due to label noise in the stochastic inner gradient,
        per output (0 for population gradients).
    B : array (..., d, d), ``E[(I − αΣ̂_1)⋯(I − αΣ̂_k)]``, the mean error map (FO-MAML).
    """

    A: np.ndarray
    noise: np.ndarray
    B: np.ndarray


def _check_adapt(K, alpha, steps, sampling, noise_std=0.0):
    alpha = _validate.finite_float("alpha", alpha)
    steps = _validate.positive_int("steps", steps, allow_zero=True)
    K = _validate.optional_int("K", K, none="population gradients")
    _validate.one_of("sampling", sampling, SAMPLING)
    noise_std = _validate.finite_float("noise_std", noise_std, non_negative=True)
    if sampling == "same" and K is not None and steps > MAX_SAME_BATCH_STEPS:
        raise ValueError(
            f"steps={steps} with a reused support set of K={K} samples needs chain moments of {2 * steps + 1} "
            f"sample covariances; at most steps={MAX_SAME_BATCH_STEPS} is exact. Use sampling='fresh' "
            "(a new batch per step) or K=None (population gradients)"
        )
    return K, alpha, steps, noise_std


def _psd(name, S):
    S = _validate.psd_matrix(name, S)
    return S


@_validate.finite_result
def curvature(input_cov, K: int | None, alpha: float, steps: int = 1, *, noise_std: float = 0.0,
              sampling: str = "same") -> Curvature:
    """Post-adaptation curvature ``A``, label-noise excess and mean error map ``B`` of a task type.

    Parameters
    ----------
    input_cov : array (..., d, d), the input covariance Σ (batched over task types if needed).
    K : support samples per inner gradient, or ``None`` for population gradients.
    alpha : inner step size α.
    steps : inner steps k ≥ 0 (``0``: no adaptation, ``A = Σ``).
    noise_std : label noise ν.
    sampling : ``"same"`` (one support set reused for all steps, as the engine does) or
        ``"fresh"`` (a new batch each step); see the module docstring.

    Returns
    -------
    :class:`Curvature` with ``A`` and ``B`` of shape (..., d, d) and ``noise`` of shape (...).
    """
    K, alpha, steps, noise_std = _check_adapt(K, alpha, steps, sampling, noise_std)
    S = _psd("input_cov", input_cov)
    d, lead = S.shape[-1], S.shape[:-2]
    eye = np.broadcast_to(np.eye(d), S.shape)
    if steps == 0:
        return Curvature(S.copy(), np.zeros(lead), eye.copy())
    if K is None or sampling == "same":
        # population gradients, or the engine's reused support set: exact Wishart chain moments
        q = shallow_quadratic(S, noise_std, 1, K, alpha, steps)
        noise = np.asarray(q.const, dtype=float) - 0.5 * noise_std**2
        if K is None:
            B = np.linalg.matrix_power(eye - alpha * S, steps)
            noise = np.zeros(lead)
        else:
            B = poly_sandwich(S, K, gd_polynomial(alpha, steps), None, [1.0])
        return Curvature(np.asarray(q.A, dtype=float), np.broadcast_to(noise, lead).copy(), np.asarray(B, dtype=float))
    # fresh batch per step: compose E[(I − αΣ̂) C (I − αΣ̂)] backwards from C_k = Σ
    C = S.copy()
    noise = np.zeros(lead)
    tr = lambda X: np.trace(X, axis1=-2, axis2=-1)
    for _ in range(steps):
        noise = noise + 0.5 * alpha**2 * noise_std**2 * tr(C @ S) / K
        SCS = S @ C @ S
        C = C - alpha * (S @ C + C @ S) + alpha**2 * (SCS + (SCS + tr(C @ S)[..., None, None] * S) / K)
    B = np.linalg.matrix_power(eye - alpha * S, steps)  # independent batches: E[P_1⋯P_k] = (I − αΣ)^k
    return Curvature(0.5 * (C + np.swapaxes(C, -1, -2)), noise, B)


# --------------------------------------------------------------------------- task distributions


def _family_components(family):
    if not isinstance(family, (GaussianRegression, TaskMixture)):
        raise _validate.ArgumentTypeError(
            f"family must be a linmeta GaussianRegression or a TaskMixture of them, got {type(family).__name__}"
        )
    return mixture_components(family)


def _curvatures(family, K, alpha, steps, sampling):
    comps = _family_components(family)
    out = []
    for p, c in comps:
        out.append((p, c, curvature(c.input_cov, K, alpha, steps, noise_std=c.noise_std, sampling=sampling)))
    return out


@_validate.finite_result
def expected_excess_risk(W, family, K: int | None, alpha: float, steps: int = 1, *,
                         sampling: str = "same") -> np.ndarray:
    r"""Expected excess risk after adaptation, ``E_i E_data[f_i(W') − f_i(W_i*)]``, of the initialisation ``W``.

    Exact: ``Σ_c p_c [½ tr((W − μ_c) A_c (W − μ_c)ᵀ) + ½ tr((I_out ⊗ A_c) C_c) + out·noise_c]``.
    ``steps=0`` gives the un-adapted excess risk (the NAL objective minus ``½ out ν²``).

    Parameters
    ----------
    W : array (..., out, d), one or many initialisations (a vector (d,) is read as out = 1).
    family : :class:`~linmeta.tasks.GaussianRegression` or :class:`~linmeta.tasks.TaskMixture` of them.
    K, alpha, steps, sampling : the adaptation, see :func:`curvature`.

    Returns
    -------
    array (...), the expected excess risk of each initialisation.
    """
    _check_adapt(K, alpha, steps, sampling)
    _family_components(family)
    W = _as_init(W, family)
    total = 0.0
    for p, c, q in _curvatures(family, K, alpha, steps, sampling):
        E = W - c.mean
        spread = np.trace(np.kron(np.eye(c.out), q.A) @ c.cov)
        total = total + p * (0.5 * np.einsum("...od,de,...oe->...", E, q.A, E) + 0.5 * spread + c.out * float(q.noise))
    return np.asarray(total, dtype=float)


@_validate.finite_result
def noise_floor(family) -> float:
    """The irreducible loss ``E_i ½ out ν_i²`` (the same for every initialisation)."""
    return float(sum(p * 0.5 * c.out * c.noise_std**2 for p, c in _family_components(family)))


def _as_init(W, family):
    W = _validate.real_array("W", W, min_ndim=1)
    if W.ndim == 1:
        W = W[None, :]
    if W.shape[-2:] != (family.out, family.d):
        raise ValueError(f"W must have trailing shape (out, d) = ({family.out}, {family.d}), got {W.shape}")
    return W


def _weighted_solve(terms):
    """``[Σ μ_c G_c][Σ G_c]⁻¹`` from pairs ``(μ_c, G_c)`` with weights folded into ``G_c``."""
    num = sum(mu @ G for mu, G in terms)
    den = sum(G for _, G in terms)
    if np.linalg.matrix_rank(den) < den.shape[-1]:
        raise ValueError("the objective is flat in some direction (singular Hessian): its minimiser is not unique; "
                         "change alpha, the input covariances or K")
    return np.linalg.solve(den.T, num.T).T


@_validate.finite_result
def nal_optimum(family) -> np.ndarray:
    """NAL (non-adaptive learning) optimum ``W_NAL = [Σ p_c μ_c Σ_c][Σ p_c Σ_c]⁻¹``, shape (out, d)."""
    return _weighted_solve([(c.mean, p * c.input_cov) for p, c in _family_components(family)])


@_validate.finite_result
def maml_optimum(family, K: int | None, alpha: float, steps: int = 1, *, sampling: str = "same") -> np.ndarray:
    """MAML optimum ``W_MAML = [Σ p_c μ_c A_c][Σ p_c A_c]⁻¹`` (minimiser of the expected post-adaptation loss).

    Returns
    -------
    array (out, d).
    """
    return _weighted_solve([(c.mean, p * q.A) for p, c, q in _curvatures(family, K, alpha, steps, sampling)])


@_validate.finite_result
def fo_maml_optimum(family, K: int | None, alpha: float, steps: int = 1, *, sampling: str = "same") -> np.ndarray:
    """FO-MAML fixed point ``[Σ p_c μ_c B_c Σ_c][Σ p_c B_c Σ_c]⁻¹``, shape (out, d).

    The first-order meta-gradient with a population (or independent) query loss is
    ``E[(W' − W*) Σ] = E[(W − W*) B Σ]``: label noise in the support set has mean zero.
    """
    if _validate.positive_int("steps", steps, allow_zero=True) == 0:
        raise ValueError("steps must be at least 1 for FO-MAML (with steps=0 it is NAL: use nal_optimum)")
    return _weighted_solve([(c.mean, p * q.B @ c.input_cov) for p, c, q in _curvatures(family, K, alpha, steps, sampling)])


@_validate.finite_result
def gain(family, K: int | None, alpha: float, steps: int = 1, *, sampling: str = "same",
         include_floor: bool = False) -> float:
    """``E_NAL / E_MAML``: expected post-adaptation excess risk from the NAL optimum over that from the MAML optimum.

    ``include_floor=True`` adds the irreducible ``½ out ν²`` to both (which lowers the ratio).
    """
    floor = noise_floor(family) if _validate.boolean("include_floor", include_floor) else 0.0
    e_nal = expected_excess_risk(nal_optimum(family), family, K, alpha, steps, sampling=sampling) + floor
    e_maml = expected_excess_risk(maml_optimum(family, K, alpha, steps, sampling=sampling), family, K, alpha, steps,
                                  sampling=sampling) + floor
    if e_maml <= 0:
        raise ValueError("the MAML optimum has zero expected excess risk here (every task is solved exactly after "
                         "adaptation), so the gain E_NAL / E_MAML is undefined; use include_floor=True with label noise "
                         "or compare the excess risks directly")
    return float(e_nal / e_maml)


# --------------------------------------------------------------------------- optimisation landscape


@dataclass(frozen=True)
class Hessians:
    """Hessians (per output row) of the MAML and NAL objectives and their spectra.

    Attributes
    ----------
    maml, nal : arrays (d, d).
    eig_maml, eig_nal : ascending eigenvalues, arrays (d,).
    kappa_maml, kappa_nal : condition numbers ``λ_max/λ_min`` (inf if singular).
    """

    maml: np.ndarray
    nal: np.ndarray
    eig_maml: np.ndarray
    eig_nal: np.ndarray
    kappa_maml: float
    kappa_nal: float


def condition_number(H) -> float:
    """``λ_max / λ_min`` of a symmetric PSD matrix (inf when ``λ_min ≤ 0``)."""
    H = _validate.psd_matrix("H", H)
    if H.ndim != 2 or H.shape[0] == 0:
        raise ValueError(f"H must be one (d, d) matrix with d >= 1, got shape {H.shape}")
    lam = np.linalg.eigvalsh(H)
    return float(lam[-1] / lam[0]) if lam[0] > 0 else float("inf")


def hessians(family, K: int | None, alpha: float, steps: int = 1, *, sampling: str = "same") -> Hessians:
    """``∇²F_MAML = Σ p_c A_c`` and ``∇²F_NAL = Σ p_c Σ_c`` (the same for every output row)."""
    curv = _curvatures(family, K, alpha, steps, sampling)
    H_maml = sum(p * q.A for p, _, q in curv)
    H_nal = sum(p * c.input_cov for p, c, _ in curv)
    em, en = np.linalg.eigvalsh(H_maml), np.linalg.eigvalsh(H_nal)
    return Hessians(H_maml, H_nal, em, en, condition_number(H_maml), condition_number(H_nal))


@_validate.finite_result
def mean_gd_path(H, w0, w_opt, lr: float, steps: int) -> np.ndarray:
    """Distance to the optimum of the *mean* SGD iterate on a quadratic objective, ``‖(I − lr H)^t (w0 − w*)‖``.

    For a quadratic objective with unbiased stochastic gradients ``E[g(w)] = H (w − w*)``,
    the mean iterate obeys ``E[w_{t+1}] − w* = (I − lr H)(E[w_t] − w*)`` exactly.

    Parameters
    ----------
    H : array (d, d). w0, w_opt : arrays (..., d) (rows of an (out, d) initialisation).
    lr : outer learning rate. steps : number of steps.

    Returns
    -------
    array (steps + 1,), Frobenius distance at t = 0..steps.
    """
    H = _validate.psd_matrix("H", H)
    if H.ndim != 2:
        raise ValueError(f"H must be one (d, d) matrix, got shape {H.shape}")
    lr = _validate.finite_float("lr", lr, positive=True)
    steps = _validate.positive_int("steps", steps, allow_zero=True)
    w0 = _validate.real_array("w0", w0, min_ndim=1)
    w_opt = _validate.real_array("w_opt", w_opt, min_ndim=1)
    for name, w in (("w0", w0), ("w_opt", w_opt)):
        _validate.shape(name, w, (..., H.shape[-1]), describe=f"(..., d) with d = {H.shape[-1]}")
    try:
        e = w0 - w_opt
    except ValueError:
        raise ValueError(f"w0 {w0.shape} and w_opt {w_opt.shape} must broadcast") from None
    P = np.eye(H.shape[-1]) - lr * H
    out = [np.linalg.norm(e)]
    for _ in range(steps):
        e = e @ P.T
        out.append(np.linalg.norm(e))
    return np.asarray(out)


def gd_iterations(H, tol: float, lr: float | None = None) -> float:
    """Worst-case gradient-descent iterations to shrink the error by ``tol`` on the quadratic with Hessian ``H``.

    ``⌈log tol / log r⌉`` with ``r = max_i |1 − lr λ_i|``; ``lr`` defaults to ``1/λ_max``, for which
    ``r = 1 − 1/κ`` and the count grows like ``κ log(1/tol)``.  ``inf`` when ``r ≥ 1`` (a flat
    direction, or ``lr ≥ 2/λ_max``).
    """
    H = _validate.psd_matrix("H", H)
    if H.ndim != 2 or H.shape[0] == 0:
        raise ValueError(f"H must be one (d, d) matrix with d >= 1, got shape {H.shape}")
    tol = _validate.finite_float("tol", tol, positive=True)
    if tol >= 1:
        raise ValueError(f"tol must be in (0, 1), got {tol}")
    lam = np.linalg.eigvalsh(H)
    if lr is None:
        if lam[-1] <= 0:
            raise ValueError("H is zero, so the default lr = 1/lambda_max is undefined: pass lr")
        lr = 1.0 / lam[-1]
    lr = _validate.finite_float("lr", lr, positive=True)
    r = float(np.max(np.abs(1.0 - lr * lam)))
    if r >= 1.0:
        return float("inf")
    if r == 0.0:
        return 1.0
    return float(np.ceil(np.log(tol) / np.log(r)))


# --------------------------------------------------------------------------- isotropic two-cluster mixture


@dataclass(frozen=True)
class TwoCluster:
    """The isotropic easy/hard two-cluster task landscape.

    A task is hard with probability ``p_hard``: then ``Σ = rho_hard·I`` and its optimum is
    ``w_H + δ`` with ``E‖δ‖² = radius_hard²``; otherwise ``Σ = rho_easy·I`` around ``w_E``,
    ``‖w_H − w_E‖ = distance``.  Only these two moments of the optima matter; the sampler
    (:meth:`family`) uses Gaussian optima ``δ ~ N(0, R²/d I)``, ``w_H = 0``, ``w_E = D e_1``.

    Parameters
    ----------
    p_hard, rho_hard, rho_easy, alpha, distance, radius_hard, radius_easy : see above.
    d : dimension.
    K : inner-gradient samples, ``None`` for population gradients.
    noise : label noise ν.
    steps : inner steps k.
    sampling : ``"same"`` or ``"fresh"`` (see the module docstring).
    """

    p_hard: float
    rho_hard: float
    rho_easy: float
    alpha: float
    distance: float
    radius_hard: float
    radius_easy: float
    d: int
    K: int | None = None
    noise: float = 0.0
    steps: int = 1
    sampling: str = "same"

    def __post_init__(self):
        p = _validate.finite_float("p_hard", self.p_hard)
        if not 0.0 < p < 1.0:
            raise ValueError(f"p_hard must be in (0, 1) (both clusters present), got {p}")
        for name in ("rho_hard", "rho_easy"):
            _validate.finite_float(name, getattr(self, name), positive=True)
        for name in ("distance", "radius_hard", "radius_easy"):
            _validate.finite_float(name, getattr(self, name), non_negative=True)
        _validate.positive_int("d", self.d)
        _check_adapt(self.K, self.alpha, self.steps, self.sampling, self.noise)

    def components(self) -> tuple:
        """``(w_H, w_E)`` centres, arrays (d,)."""
        w_E = np.zeros(self.d)
        w_E[0] = self.distance
        return np.zeros(self.d), w_E

    def family(self) -> TaskMixture:
        """A :class:`~linmeta.tasks.TaskMixture` sampling this landscape (hard component first)."""
        w_H, w_E = self.components()
        comps = tuple(
            GaussianRegression(d=self.d, out=1, mean=w[None, :], cov=R**2 / self.d, input_cov=rho * np.eye(self.d),
                               noise_std=self.noise)
            for w, R, rho in ((w_H, self.radius_hard, self.rho_hard), (w_E, self.radius_easy, self.rho_easy))
        )
        return TaskMixture(comps, (self.p_hard, 1.0 - self.p_hard))


@_validate.finite_result
def isotropic_curvature(rho: float, d: int, K: int | None, alpha: float, steps: int = 1,
                        noise: float = 0.0, sampling: str = "same") -> tuple:
    r"""``(c, n)`` for ``Σ = ρI``: the excess risk is ``c ‖w − w*‖² + n`` after adaptation.

    Population or one step: ``c = ½ρ γ^k`` with ``γ = (1 − αρ)² + α²ρ²(d+1)/K`` (``K=None``:
    ``γ = (1 − αρ)²``; for ``k>1`` this is the ``"fresh"`` model), ``n = ½α²ν²dρ² Σ_{i<k} γ^i / K``.
    ``"same"`` with ``k > 1`` and finite ``K``: from the exact chain moments (:func:`curvature`).
    """
    K, alpha, steps, noise = _check_adapt(K, alpha, steps, sampling, noise)
    rho = _validate.finite_float("rho", rho, positive=True)
    d = _validate.positive_int("d", d)
    return _isotropic_curvature(rho, d, K, alpha, steps, noise, sampling)


@lru_cache(maxsize=4096)
def _isotropic_curvature(rho, d, K, alpha, steps, noise, sampling):
    if sampling == "same" and K is not None and steps > 1:
        q = curvature(rho * np.eye(d), K, alpha, steps, noise_std=noise, sampling="same")
        return 0.5 * float(q.A[0, 0]), float(q.noise)
    gamma = (1.0 - alpha * rho) ** 2 + (0.0 if K is None else alpha**2 * rho**2 * (d + 1) / K)
    c = 0.5 * rho * gamma**steps
    n = 0.0 if K is None else 0.5 * alpha**2 * noise**2 * d * rho**2 * sum(gamma**i for i in range(steps)) / K
    return c, n


@dataclass(frozen=True)
class TwoClusterGain:
    """Closed forms of the isotropic two-cluster landscape (``derivations/landscape_gain.py``).

    Attributes
    ----------
    c_hard, c_easy : curvature coefficients (excess ``c‖w − w*‖² + n``).
    noise : ``p_H n_H + p_E n_E``, the label-noise part of the excess risk (same for every init).
    P : ``p_H c_H + p_E c_E``.
    q_easy : MAML's weight on the easy centre, ``p_E c_E / P`` (``w_MAML = q_H w_H + q_E w_E``).
    s_easy : NAL's weight on the easy centre, ``p_E ρ_E / (p_H ρ_H + p_E ρ_E)``.
    excess_maml : ``base + D² p_H p_E c_H c_E / P`` with ``base = p_H c_H R_H² + p_E c_E R_E² + noise``.
    excess_nal : ``excess_maml + D² P (s_E − q_E)²``.
    gain : ``excess_nal / excess_maml``.
    gain_with_floor : the same ratio with the irreducible ``½ν²`` added to both.
    bound : ``1 + s_E² D² / R_H²`` (inf if ``R_H = 0 < D``).
    bound_applies : whether ``q_E ≤ s_E (2 − s_E)``, which implies ``gain ≤ bound``; it holds with
        population gradients whenever ``ρ_H ≤ ρ_E ≤ 1/α``.
    gain_limit : ``lim_{D→∞} gain = 1 + P² (s_E − q_E)² / (p_H p_E c_H c_E)`` (inf if ``c_H c_E = 0``).
    """

    c_hard: float
    c_easy: float
    noise: float
    P: float
    q_easy: float
    s_easy: float
    excess_maml: float
    excess_nal: float
    gain: float
    gain_with_floor: float
    bound: float
    bound_applies: bool
    gain_limit: float


def two_cluster(tc: TwoCluster) -> TwoClusterGain:
    """All closed forms of the isotropic two-cluster landscape ``tc``."""
    if not isinstance(tc, TwoCluster):
        raise ValueError(f"tc must be a TwoCluster, got {type(tc).__name__}")
    pH, pE = tc.p_hard, 1.0 - tc.p_hard
    cH, nH = isotropic_curvature(tc.rho_hard, tc.d, tc.K, tc.alpha, tc.steps, tc.noise, tc.sampling)
    cE, nE = isotropic_curvature(tc.rho_easy, tc.d, tc.K, tc.alpha, tc.steps, tc.noise, tc.sampling)
    P = pH * cH + pE * cE
    if P <= 0:
        raise ValueError("both clusters are solved exactly by the inner loop (alpha*rho = 1 with population "
                         "gradients for both): the MAML objective is flat and its optimum is not unique")
    D2, RH2, RE2 = tc.distance**2, tc.radius_hard**2, tc.radius_easy**2
    qE = pE * cE / P
    sE = pE * tc.rho_easy / (pH * tc.rho_hard + pE * tc.rho_easy)
    noise = pH * nH + pE * nE
    base = pH * cH * RH2 + pE * cE * RE2 + noise
    e_maml = base + D2 * pH * pE * cH * cE / P
    e_nal = e_maml + D2 * P * (sE - qE) ** 2
    floor = 0.5 * tc.noise**2
    if e_maml > 0:
        g = e_nal / e_maml
    else:  # every task is fitted exactly after adaptation from w_MAML
        g = 1.0 if e_nal == 0 else float("inf")
    if RH2 > 0:
        bound = 1.0 + sE**2 * D2 / RH2
    else:
        bound = 1.0 if D2 == 0 else float("inf")
    limit = 1.0 + P**2 * (sE - qE) ** 2 / (pH * pE * cH * cE) if cH * cE > 0 else float("inf")
    g_floor = (e_nal + floor) / (e_maml + floor) if e_maml + floor > 0 else 1.0
    return TwoClusterGain(float(cH), float(cE), float(noise), float(P), float(qE), float(sE), float(e_maml),
                          float(e_nal), float(g), float(g_floor), float(bound), bool(qE <= sE * (2.0 - sE)),
                          float(limit))


@_validate.finite_result
def two_cluster_optima(tc: TwoCluster) -> tuple:
    """``(w_MAML, w_NAL)`` of the two-cluster landscape, arrays (1, d) on the segment from ``w_H`` to ``w_E``."""
    r = two_cluster(tc)
    w_H, w_E = tc.components()
    return ((1 - r.q_easy) * w_H + r.q_easy * w_E)[None, :], ((1 - r.s_easy) * w_H + r.s_easy * w_E)[None, :]


# --------------------------------------------------------------------------- generic quadratic landscapes


@dataclass(frozen=True)
class QuadraticGain:
    """MAML and NAL optima and excess risks of a landscape given its curvatures (see :func:`quadratic_gain`)."""

    w_maml: np.ndarray
    w_nal: np.ndarray
    excess_maml: float
    excess_nal: float
    gain: float


def quadratic_gain(weights, means, spreads, nal_hessians, maml_curvatures, noise=None) -> QuadraticGain:
    r"""Gain of a landscape of task types given directly by their curvatures (any feature distribution).

    Task type ``c`` (probability ``weights[c]``) has optima with mean ``means[c]`` and covariance
    ``spreads[c]``, loss Hessian ``nal_hessians[c]`` (``Σ_c``) and post-adaptation curvature
    ``maml_curvatures[c]`` (``A_c``), so that ``E(w) = Σ_c p_c [½(w − μ_c)ᵀA_c(w − μ_c) + ½tr(A_c C_c) + n_c]``.
    The optima use a pseudo-inverse: along directions flat for every type the minimiser is not
    unique but the minimum is (the minimum-norm minimiser is returned).

    Parameters
    ----------
    weights : array (C,). means : array (C, p). spreads, nal_hessians, maml_curvatures : arrays (C, p, p).
    noise : array (C,) or None, label-noise excess per type.
    """
    p = _validate.real_array("weights", weights)
    mu = _validate.real_array("means", means)
    C = _validate.psd_matrix("spreads", spreads)
    S = _validate.psd_matrix("nal_hessians", nal_hessians)
    A = _validate.psd_matrix("maml_curvatures", maml_curvatures)
    if p.ndim != 1 or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"weights must be a vector of non-negative numbers summing to 1, got {weights!r}")
    n_types, dim = p.shape[0], mu.shape[-1]
    for name, arr, shape in (("means", mu, (n_types, dim)), ("spreads", C, (n_types, dim, dim)),
                             ("nal_hessians", S, (n_types, dim, dim)), ("maml_curvatures", A, (n_types, dim, dim))):
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    if mu.ndim != 2:
        raise ValueError(f"means must have shape (C, p), got {mu.shape}")
    if noise is None:
        n = np.zeros(n_types)
    else:
        n = _validate.real_array("noise", noise)
        _validate.shape("noise", n, (n_types,), describe=f"(C,) = ({n_types},)")

    def solve(G):
        H = np.einsum("c,cij->ij", p, G)
        rhs = np.einsum("c,cij,cj->i", p, G, mu)
        return np.linalg.pinv(H, hermitian=True) @ rhs

    def excess(w):
        e = w - mu
        return float(np.sum(p * (0.5 * np.einsum("ci,cij,cj->c", e, A, e)
                                 + 0.5 * np.einsum("cij,cji->c", A, C) + n)))

    w_maml, w_nal = solve(A), solve(S)
    e_maml, e_nal = excess(w_maml), excess(w_nal)
    return QuadraticGain(w_maml, w_nal, e_maml, e_nal, e_nal / e_maml if e_maml > 0 else float("inf"))


def coincidence_shots(rho_hard: float, rho_easy: float, alpha: float, d: int) -> float:
    r"""The inner-sample count ``K*`` at which the MAML and NAL optima coincide (gain exactly 1).

    In the isotropic two-cluster landscape with population-or-fresh-batch steps, ``q_E = s_E``
    iff ``c_E/ρ_E = c_H/ρ_H`` iff ``γ_E = γ_H`` with ``γ = (1 − αρ)² + α²ρ²(d+1)/K``, i.e.

        K* = α²(d + 1)(ρ_E² − ρ_H²) / ((1 − αρ_H)² − (1 − αρ_E)²)

    (``derivations/landscape_gain.py``), independent of k, p_H and the geometry.  Above ``K*``
    MAML leans to the hard centre and the gain grows with K; below it the noisy step
    over-weights the easy tasks and the gain rises again as K falls.  ``nan`` if there is no
    positive solution (e.g. ``ρ_H = ρ_E``, where the optima coincide for every K).
    """
    rho_hard = _validate.finite_float("rho_hard", rho_hard, positive=True)
    rho_easy = _validate.finite_float("rho_easy", rho_easy, positive=True)
    alpha = _validate.finite_float("alpha", alpha)
    d = _validate.positive_int("d", d)
    num = alpha**2 * (d + 1) * (rho_easy**2 - rho_hard**2)
    den = (1 - alpha * rho_hard) ** 2 - (1 - alpha * rho_easy) ** 2
    if den == 0 or num == 0 or num / den <= 0:
        return float("nan")
    return float(num / den)


# --------------------------------------------------------------------------- a fixed, finite task sample


@dataclass(frozen=True)
class FixedTaskGain:
    """Expected post-adaptation excess risks of the optima fitted on a fixed sample of tasks.

    The sample holds exactly ``n_hard`` hard and ``n_easy`` easy tasks of a :class:`TwoCluster`
    landscape (population inner gradients); the MAML and NAL objectives on it are minimised exactly,
    and each minimiser is scored on the whole landscape (``derivations/landscape_fixed_tasks.py``).

    Attributes
    ----------
    q_sample, s_sample : the easy-centre weights of the sample's MAML and NAL minimisers,
        ``n_E c_E / (n_H c_H + n_E c_E)`` and ``n_E ρ_E / (n_H ρ_H + n_E ρ_E)``.
    excess_maml, excess_nal : ``E[e(ŵ)]`` over samples, ``e`` the landscape's expected post-adaptation
        excess risk: ``E_MAML + P [(w_T − q_E)² D² + (1 − w_T)² R_H²/n_H + w_T² R_E²/n_E]`` with ``w_T`` the
        sample weight (``q_sample`` or ``s_sample``).
    gain : ``excess_nal / excess_maml``; it tends to :func:`two_cluster`'s gain as the sample grows.
    """

    q_sample: float
    s_sample: float
    excess_maml: float
    excess_nal: float
    gain: float


def two_cluster_fixed_tasks(tc: TwoCluster, n_hard: int, n_easy: int) -> FixedTaskGain:
    """:class:`FixedTaskGain` of ``tc`` for a sample of ``n_hard`` hard and ``n_easy`` easy tasks.

    Needs population inner gradients (``tc.K is None``) and one inner step, where every task of a cluster
    has the same curvature, so the sample's minimisers are weighted means of the two cluster means.
    """
    if not isinstance(tc, TwoCluster):
        raise ValueError(f"tc must be a TwoCluster, got {type(tc).__name__}")
    if tc.K is not None or tc.steps != 1:
        raise ValueError("two_cluster_fixed_tasks needs population inner gradients (K=None) and steps=1, "
                         f"got K={tc.K}, steps={tc.steps}")
    n_hard = _validate.positive_int("n_hard", n_hard)
    n_easy = _validate.positive_int("n_easy", n_easy)
    r = two_cluster(tc)
    cH, cE = r.c_hard, r.c_easy
    q_t = n_easy * cE / (n_hard * cH + n_easy * cE)
    s_t = n_easy * tc.rho_easy / (n_hard * tc.rho_hard + n_easy * tc.rho_easy)
    D2, RH2, RE2 = tc.distance**2, tc.radius_hard**2, tc.radius_easy**2

    def expected(w):
        # e(w) = E_MAML + P‖w − w_MAML‖²; the fitted centre is (1 − w) w̄_H + w w̄_E with E‖w̄_c − w_c‖² = R_c²/n_c
        return r.excess_maml + r.P * ((w - r.q_easy) ** 2 * D2 + (1 - w) ** 2 * RH2 / n_hard + w**2 * RE2 / n_easy)

    e_maml, e_nal = expected(q_t), expected(s_t)
    return FixedTaskGain(float(q_t), float(s_t), float(e_maml), float(e_nal),
                         float(e_nal / e_maml) if e_maml > 0 else float("inf"))


@_validate.finite_result
def gd_on_isotropic_quadratics(curvatures, optima, w0, lr: float, steps: int) -> np.ndarray:
    r"""The gradient-descent iterate on ``F(w) = mean_i ½ a_i ‖w − w_i‖²`` after ``steps`` steps, in closed form.

    ``∇F = ā (w − ŵ)`` with ``ā = mean_i a_i`` and ``ŵ = Σ a_i w_i / Σ a_i``, so
    ``w_t = ŵ + (1 − lr·ā)^t (w_0 − ŵ)`` exactly.  This is one inner step of MAML (``a_i = ρ_i (1 − αρ_i)²``)
    or NAL (``a_i = ρ_i``) on tasks with isotropic inputs ``Σ_i = ρ_i I`` and population gradients.

    Parameters
    ----------
    curvatures : array (..., T), the ``a_i`` (non-negative, not all zero).
    optima : array (..., T, d), the ``w_i``.
    w0 : array (..., d), the starting point.
    lr : the (outer) learning rate; steps : the number of steps (≥ 0).

    Returns
    -------
    array (..., d).
    """
    a = _validate.real_array("curvatures", curvatures, min_ndim=1)
    w = _validate.real_array("optima", optima, min_ndim=2)
    w0 = _validate.real_array("w0", w0, min_ndim=1)
    if np.any(a < 0) or np.any(a.sum(axis=-1) == 0):
        raise ValueError("curvatures must be non-negative and not all zero along the task axis")
    if w.shape[:-1] != a.shape or w0.shape[:-1] != a.shape[:-1] or w0.shape[-1] != w.shape[-1]:
        raise ValueError(f"curvatures (..., T), optima (..., T, d) and w0 (..., d) must agree; got {a.shape}, "
                         f"{w.shape} and {w0.shape}")
    lr = _validate.finite_float("lr", lr, positive=True)
    steps = _validate.positive_int("steps", steps, allow_zero=True)
    w_hat = np.einsum("...t,...td->...d", a, w) / a.sum(axis=-1)[..., None]
    factor = (1.0 - lr * a.mean(axis=-1)) ** steps
    return w_hat + factor[..., None] * (w0 - w_hat)
