r"""Closed forms for explicit and implicit meta-optimizers of linear models (Arnold et al., items 3–4).

**The optimal one-step preconditioner.**  A shallow model ``M`` (out x d) takes one
right-preconditioned inner step on a K-shot support set,

    M⁺ = M − G P,        G = (M − W*) Σ̂ − N,   Σ̂ = XᵀX/K,   N = εᵀX/K,

and is scored on the population loss ``½ tr((M⁺ − W*) Σ (M⁺ − W*)ᵀ) + ½ out σ²``.
Every rule studied here is of this form for a scalar output: Meta-SGD (``P = α diag λ``),
KFO (``P = α L̃ R̃`` with ``L̃`` a 1 x 1 factor), Meta-Curvature, a deep linear net that adapts
only its top layer (``P = α W_{L-1:1}ᵀ W_{L-1:1}``, :mod:`linmeta.theory.precondition`) or only its
bottom layer (``P = α ‖w_{L:2}‖² I``).  With ``R = E[(M − W*)ᵀ(M − W*)]`` (d x d, summed
over the output rows) the expected loss over tasks and support sets is the quadratic
(``derivations/kfo_identities.py``)

    ℒ(P) = ½ [tr(Σ R) − 2 tr(P Σ R Σ) + tr(P Σ Pᵀ H)] + ½ out σ²,
    H    = E[Σ̂ R Σ̂] + out σ² Σ / K = Σ R Σ + (Σ R Σ + tr(R Σ) Σ)/K + out σ² Σ / K,

(``H = Σ R Σ`` for the population inner loss, ``K = None``), minimised over

* all matrices by            ``P* = H⁻¹ Σ R``  (``→ Σ⁻¹`` as ``K → ∞``, σ = 0);
* diagonal matrices by       ``p* = (Σ ∘ H)⁻¹ diag(Σ R Σ)``  (Hadamard product; Meta-SGD);
* multiples of the identity by ``a* = tr(Σ R Σ) / tr(Σ H)``  (the optimal scalar step).

ℒ is linear and increasing in ``R = (M − μ)ᵀ(M − μ) + Σ_o C_o``, so jointly over ``(M, P)``
the optimum is ``M = E[W*]`` with ``R = Σ_o C_o``.  Since ``H = Σ (a RΣ + c I)`` with ``a = 1 + 1/K`` and
``c = (tr(RΣ) + out σ²)/K``, the push-through identity gives

    P* = (a RΣ + c I)⁻¹ R = R^½ (a R^½ Σ R^½ + c I)⁻¹ R^½,

symmetric positive definite whenever R is: the PSD-constrained rules (KFO with ``psd=True``, a deep
net's top-only factor) reach the same optimum as the unconstrained ones (KFO without PSD, Meta-Curvature).

**The α-polynomial of a deep linear inner step.**  One simultaneous gradient step on a set of
layers with a fixed end-to-end gradient ``G`` gives ``M⁺(α) = Π_l (W_l − α g_l)`` with
``g_l = S_lᵀ G P_lᵀ``: a polynomial of degree (number of adapted layers) in α whose linear
coefficient is minus the implicit preconditioner's update (``derivations/implicit_preconditioner.py``).  :func:`step_polynomial` returns
its coefficients, which bound the O(α²) residual of that identity rigorously (:func:`residual_ratio_interval`).

**LogR at the zero initialisation.**  For binary tasks ``y = 1[w*ᵀx > 0]`` (labels flipped with
probability p), isotropic inputs and any task distribution, one inner step of size α from
``w = 0`` gives ``w₁ = (α/K) Σ_i (y_i − ½) x_i``, a multiple of the class-mean difference: its
direction, hence the post-adaptation accuracy, does not depend on α.  Projected on ``ŵ*`` and
its complement, ``w₁ = a ŵ* + b`` with ``a = (α/2K) Σ_i s_i |t_i|`` (``t_i ~ N(0,1)``,
``s_i = ±1`` the label flips) and ``b ~ N(0, (α²/4K) I_{d−1})`` independent of ``a``; so the
accuracy is ``(1 − p)(1 − θ/π) + p θ/π`` with ``θ = atan2(‖b‖, a)``, and the expected query loss
(logistic, exact over the query set) is ``E S(‖w₁‖) − (1 − 2p) E[a] / √(2π)``, with
``S(s) = E softplus(s u)``, ``u ~ N(0, 1)`` and ``E[a] = (α/2)(1 − 2p)√(2/π)``.
:func:`expected_softplus` evaluates ``S`` by Gauss–Hermite quadrature; the average over the two
scalars ``(a, ‖b‖)`` is a Monte Carlo estimate, :func:`linmeta.sim.montecarlo.logr_zero_init_limits`.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from .. import _validate
from ..models import mm_eye, prefix_products, real_params, suffix_products, tmm_eye
from ..tasks import GaussianRegression


# ----------------------------------------------------------------------------------------------
# the optimal one-step preconditioner
# ----------------------------------------------------------------------------------------------


def _check_moments(input_cov, R):
    S = _validate.psd_matrix("input_cov", input_cov)
    R = _validate.psd_matrix("R", R)
    if S.ndim != 2 or R.shape != S.shape:
        raise ValueError(f"input_cov and R must both be (d, d) matrices of the same size, got {S.shape} and {R.shape}")
    return S, R


def _check_K(K):
    return _validate.optional_int("K", K, none="the population inner loss")


@_validate.finite_result
def error_moment(M, family: GaussianRegression) -> np.ndarray:
    """``R = E[(M − W*)ᵀ(M − W*)]`` (d x d) for tasks of a Gaussian family.

    Parameters
    ----------
    M : array (out, d), the initialisation.
    family : :class:`~linmeta.tasks.GaussianRegression`; its (out·d)-covariance of the row-major
        ``vec W*`` contributes the sum of its diagonal (d x d) blocks.
    """
    _validate.instance("family", family, GaussianRegression, "a linmeta.GaussianRegression")
    M = _validate.real_array("M", M)
    if M.shape != (family.out, family.d):
        raise ValueError(f"M must have shape (out, d) = ({family.out}, {family.d}), got {M.shape}")
    d, E = family.d, M - family.mean
    blocks = sum(family.cov[o * d:(o + 1) * d, o * d:(o + 1) * d] for o in range(family.out))
    return E.T @ E + blocks


@_validate.finite_result
def one_step_curvature(input_cov, R, K: int | None, noise_std: float = 0.0, out: int = 1) -> np.ndarray:
    """``H = E[Σ̂ R Σ̂] + out σ² Σ / K`` (d x d); ``Σ R Σ`` for the population inner loss (``K=None``).

    Uses the Gaussian identity ``E[Σ̂ R Σ̂] = Σ R Σ + (Σ R Σ + tr(R Σ) Σ)/K`` (``R`` symmetric).
    """
    S, R = _check_moments(input_cov, R)
    K = _check_K(K)
    s2 = _validate.finite_float("noise_std", noise_std, non_negative=True) ** 2
    out = _validate.positive_int("out", out)
    SRS = S @ R @ S
    if K is None:
        return SRS
    return SRS + (SRS + np.trace(R @ S) * S) / K + out * s2 * S / K


@_validate.finite_result
def one_step_loss(P, input_cov, R, K: int | None, noise_std: float = 0.0, out: int = 1) -> float:
    """Exact expected population loss after one step ``M⁺ = M − G P`` (see the module docstring).

    Parameters
    ----------
    P : array (d, d), the right preconditioner (including the step size).
    input_cov : array (d, d), Σ.
    R : array (d, d), the error second moment ``E[(M − W*)ᵀ(M − W*)]`` (:func:`error_moment`).
    K : support shots, or ``None`` for the population inner loss.
    noise_std, out : label noise σ and output dimension.
    """
    S, R = _check_moments(input_cov, R)
    P = _validate.real_array("P", P)
    if P.shape != S.shape:
        raise ValueError(f"P must be a (d, d) = {S.shape} matrix, got shape {P.shape}")
    H = one_step_curvature(S, R, K, noise_std, out)
    value = np.trace(S @ R) - 2.0 * np.trace(P @ S @ R @ S) + np.trace(P @ S @ P.T @ H)
    return float(0.5 * value + 0.5 * out * float(noise_std) ** 2)


def _solve(name, H, rhs):
    try:
        return np.linalg.solve(H, rhs)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name}: the one-step curvature H is singular (e.g. R = 0 or a singular input_cov with the "
                         "population inner loss), so the optimal preconditioner is not unique") from None


@_validate.finite_result
def optimal_preconditioner(input_cov, R, K: int | None, noise_std: float = 0.0, out: int = 1) -> np.ndarray:
    """The unconstrained minimiser ``P* = H⁻¹ Σ R`` of :func:`one_step_loss` (d x d)."""
    S, R = _check_moments(input_cov, R)
    H = one_step_curvature(S, R, K, noise_std, out)
    return _solve("optimal_preconditioner", H, S @ R)


@_validate.finite_result
def optimal_diagonal_preconditioner(input_cov, R, K: int | None, noise_std: float = 0.0, out: int = 1) -> np.ndarray:
    """The best diagonal ``P = diag(p)``: ``p* = (Σ ∘ H)⁻¹ diag(Σ R Σ)``, returned as a (d,) vector."""
    S, R = _check_moments(input_cov, R)
    H = one_step_curvature(S, R, K, noise_std, out)
    return _solve("optimal_diagonal_preconditioner", S * H, np.diag(S @ R @ S))


@_validate.finite_result
def optimal_scalar_step(input_cov, R, K: int | None, noise_std: float = 0.0, out: int = 1) -> float:
    """The best ``P = a I``: ``a* = tr(Σ R Σ) / tr(Σ H)``."""
    S, R = _check_moments(input_cov, R)
    H = one_step_curvature(S, R, K, noise_std, out)
    den = np.trace(S @ H)
    if den <= 0:
        raise ValueError("optimal_scalar_step: tr(Σ H) = 0 (R = 0 or input_cov = 0), so every step is optimal")
    return float(np.trace(S @ R @ S) / den)


@_validate.finite_result
def preconditioner_floors(family: GaussianRegression, K: int | None, alpha: float) -> dict:
    """Optimal one-step preconditioners of a Gaussian family and the losses they reach.

    Returns
    -------
    dict with the optimal ``P`` (d x d) and expected post-adaptation loss (at ``M = E[W*]``) of each
    class: ``fixed`` (``P = α I``, plain MAML at this α), ``scalar`` (best ``a I``), ``diagonal``
    (best ``diag p``, Meta-SGD) and ``full`` (best ``P``, KFO / Meta-Curvature), as
    ``{"P_<class>": array, "loss_<class>": float}``.
    """
    _validate.instance("family", family, GaussianRegression, "a linmeta.GaussianRegression")
    _check_K(K)
    alpha = _validate.finite_float("alpha", alpha)
    S = family.input_cov
    R = error_moment(family.mean, family)
    args = (S, R, K, family.noise_std, family.out)
    Ps = {
        "fixed": alpha * np.eye(family.d),
        "scalar": optimal_scalar_step(*args) * np.eye(family.d),
        "diagonal": np.diag(optimal_diagonal_preconditioner(*args)),
        "full": optimal_preconditioner(*args),
    }
    out = {}
    for name, P in Ps.items():
        out[f"P_{name}"] = P
        out[f"loss_{name}"] = one_step_loss(P, *args)
    return out


# ----------------------------------------------------------------------------------------------
# the α-polynomial of one deep linear inner step
# ----------------------------------------------------------------------------------------------


@_validate.finite_result
def step_polynomial(params, G, layers=None) -> list:
    """Coefficients ``[C_0, ..., C_n]`` of ``M⁺(α) = Σ_k α^k C_k = Π_l (W_l − α g_l)``.

    One simultaneous step on ``layers`` (default all; 0-based) with the fixed end-to-end gradient
    ``G`` and ``g_l = S_lᵀ G P_lᵀ``.  ``C_0 = M``; ``C_1`` is minus the implicit preconditioner's
    update ``Σ_l S_lS_lᵀ G P_lᵀP_l`` (T4); ``C_k = (−1)^k Σ_{|A| = k} Π_l (g_l if l ∈ A else W_l)``.

    Parameters
    ----------
    params : tuple of arrays (..., n_l, n_{l-1}).
    G : array (..., out, d).
    layers : adapted layer indices (default: all).

    Returns
    -------
    list of ``n + 1`` arrays (..., out, d), ``n`` the number of adapted layers.
    """
    params = real_params(params)
    G = _validate.real_array("G", G, min_ndim=2)
    L = len(params)
    if G.shape[-2:] != (params[-1].shape[-2], params[0].shape[-1]):
        raise ValueError(f"G must have trailing shape (out, d) = {(params[-1].shape[-2], params[0].shape[-1])}, "
                         f"got {G.shape}")
    layers = _layer_indices(layers, L)
    P, S = prefix_products(params), suffix_products(params)
    g = {l: mm_eye(mm_eye(tmm_eye(S[l]), G), tmm_eye(P[l])) for l in layers}
    coeffs = []
    for k in range(len(layers) + 1):
        total = 0.0
        for subset in combinations(layers, k):
            prod = None
            for l in range(L):
                factor = g[l] if l in subset else params[l]
                prod = factor if prod is None else factor @ prod
            total = total + prod
        coeffs.append((-1.0) ** k * total)
    return coeffs


def _layer_indices(layers, L) -> list:
    """0-based adapted layers (default all; negative indices count from the top), each once, never rounded."""
    if layers is None:
        return list(range(L))
    idx = _validate.sequence_of_ints("layers", layers, what="0-based layer indices")
    for i in idx:
        if not -L <= i < L:
            raise ValueError(f"layers contains index {i}, but the model has {L} layers (0..{L - 1})")
    out = sorted({i % L for i in idx})
    if len(out) != len(idx):
        raise ValueError(f"layers {tuple(idx)} name the same layer twice")
    return out


def residual_ratio_interval(coeffs, alpha: float, rounding: float = 0.0) -> tuple:
    """Rigorous bounds on ``‖R(α)‖ / ‖R(α/2)‖`` for the residual ``R(α) = Σ_{k≥2} α^k C_k``.

    With ``c_2 = ‖C_2‖_F`` and ``ε(a) = Σ_{k≥3} a^{k−2} ‖C_k‖_F`` the triangle inequality gives
    ``a²(c_2 − ε(a)) ≤ ‖R(a)‖ ≤ a²(c_2 + ε(a))``, so the ratio lies in
    ``[4 (c_2 − ε(α)) / (c_2 + ε(α/2)), 4 (c_2 + ε(α)) / (c_2 − ε(α/2))]``; it tends to 4 as α → 0
    and its distance from 4 is O(α), set by the O(α³) term.

    Parameters
    ----------
    coeffs : list of arrays, from :func:`step_polynomial`.
    alpha : the larger step α > 0.
    rounding : relative floating-point error of a computed residual: a residual computed as a
        difference of terms of size ``Σ_k a^k ‖C_k‖`` is allowed an absolute error of ``rounding``
        times that size (``0`` for the exact-arithmetic bound).

    Returns
    -------
    (low, high) : floats (``high = inf`` when α is too large for a finite upper bound).
    """
    alpha = _validate.finite_float("alpha", alpha, positive=True)
    rounding = _validate.finite_float("rounding", rounding, non_negative=True)
    if isinstance(coeffs, (str, bytes, np.ndarray)) or not isinstance(coeffs, (tuple, list)):
        raise _validate.ArgumentTypeError(f"coeffs must be a list of arrays (from step_polynomial), got "
                                          f"{type(coeffs).__name__}")
    norms = [float(np.linalg.norm(_validate.real_array(f"coeffs[{k}]", C))) for k, C in enumerate(coeffs)]
    if len(norms) < 3 or norms[2] == 0.0:
        raise ValueError("coeffs must have a non-zero second-order coefficient (at least two adapted layers)")
    c2 = norms[2]
    # bounds on ‖R(a)‖ / a², the second including the rounding allowance
    eps = lambda a: sum(a ** (k - 2) * norms[k] for k in range(3, len(norms))) \
        + rounding * sum(a**k * n for k, n in enumerate(norms)) / a**2
    lo = 4.0 * (c2 - eps(alpha)) / (c2 + eps(alpha / 2))
    hi = 4.0 * (c2 + eps(alpha)) / (c2 - eps(alpha / 2)) if c2 > eps(alpha / 2) else np.inf
    return float(lo), float(hi)


# ----------------------------------------------------------------------------------------------
# logistic regression from the zero initialisation
# ----------------------------------------------------------------------------------------------


@_validate.finite_result
def expected_softplus(s, nodes: int = 160) -> np.ndarray:
    """``S(s) = E softplus(s u)``, ``u ~ N(0, 1)``, by Gauss–Hermite quadrature (any shape of ``s``)."""
    s = _validate.real_array("s", s)
    nodes = _validate.positive_int("nodes", nodes, high=300)  # numpy's Gauss–Hermite nodes overflow beyond ~350
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    z = s[..., None] * x
    sp = np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
    return sp @ w / np.sqrt(2.0 * np.pi)
