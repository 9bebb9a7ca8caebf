r"""The implicit meta-optimizer: how a deep linear network's inner step preconditions the end-to-end gradient.

With ``M = W_L ⋯ W_1``, ``G = ∂ℓ/∂M`` and, for layer ``l``, ``S_l`` the product above it
and ``P_l`` the product below it (``derivations/implicit_preconditioner.py``):

* **bottom-only** adaptation (only ``W_1``) is *exactly* left-preconditioned gradient descent:
  ``M⁺ = M − α (S_1 S_1ᵀ) G``, for any α (T2);
* **top-only** adaptation (only ``W_L``, ANIL) is *exactly* right-preconditioned:
  ``M⁺ = M − α G (P_Lᵀ P_L)`` (T3);
* **all layers** (MAML), to first order in α, apply a sum of Kronecker-factored PSD terms:
  ``M⁺ = M − α Σ_l (S_l S_lᵀ) G (P_lᵀ P_l) + O(α²)`` (T4); in column-major vec form the
  preconditioner is ``Σ_l (P_lᵀP_l) ⊗ (S_l S_lᵀ)``, the form of a KFO with PSD factors;
* under **balanced** layers (``W_{l+1}ᵀW_{l+1} = W_l W_lᵀ``) the terms become fractional powers
  (Arora et al. 2018): ``Σ_{j=1}^{L} (MMᵀ)^{(L−j)/L} G (MᵀM)^{(j−1)/L}``.

Indices here are 0-based: layer ``l`` is ``params[l]``.  All functions take and return numpy arrays
and broadcast over leading axes.
"""
from __future__ import annotations

import numpy as np

from .. import _validate
from ..models import mm_eye, tmm_eye
from ..models import prefix_products, real_params, suffix_products


def _eye_like(n, lead):
    return np.broadcast_to(np.eye(n), tuple(lead) + (n, n)).copy()


@_validate.finite_result
def factors(params, layers=None) -> list:
    """``[(S_l S_lᵀ, P_lᵀ P_l)]`` for each adapting layer: left (out x out) and right (d x d) factors.

    Parameters
    ----------
    params : tuple of arrays (..., n_l, n_{l-1}).
    layers : indices of the adapting layers (default: all).
    """
    params = real_params(params)
    L = len(params)
    layers = range(L) if layers is None else _validate.sequence_of_ints("layers", layers, what="0-based layer indices")
    for l in layers:
        if not 0 <= l < L:
            raise ValueError(f"layers contains {l}, but the model has layers 0..{L - 1}")
    P, S = prefix_products(params), suffix_products(params)
    lead = params[0].shape[:-2]
    d, out = params[0].shape[-1], params[-1].shape[-2]
    out_list = []
    for l in layers:
        left = _eye_like(out, lead) if S[l] is None else S[l] @ np.swapaxes(S[l], -1, -2)
        right = _eye_like(d, lead) if P[l] is None else np.swapaxes(P[l], -1, -2) @ P[l]
        out_list.append((left, right))
    return out_list


@_validate.finite_result
def bottom_only_factor(params) -> np.ndarray:
    """``S_1 S_1ᵀ`` (out x out): bottom-only adaptation gives exactly ``M⁺ = M − α S_1S_1ᵀ G``."""
    return factors(params, [0])[0][0]


@_validate.finite_result
def top_only_factor(params) -> np.ndarray:
    """``P_Lᵀ P_L`` (d x d): top-only adaptation gives exactly ``M⁺ = M − α G P_LᵀP_L``."""
    return factors(params, [len(params) - 1])[0][1]


@_validate.finite_result
def implicit_update(params, G, layers=None) -> np.ndarray:
    """First-order end-to-end update direction ``Σ_l S_lS_lᵀ G P_lᵀP_l`` (exact for a single layer)."""
    G = _gradient(G, params)
    return sum(left @ G @ right for left, right in factors(params, layers))


def _gradient(G, params):
    """The end-to-end gradient ``G`` (..., out, d) of the model ``params``, checked."""
    if not isinstance(params, (tuple, list)) or not params:
        real_params(params)  # raises naming params
    G = _validate.real_array("G", G, min_ndim=2)
    out, d = np.shape(params[-1])[-2], np.shape(params[0])[-1]
    _validate.shape("G", G, (..., out, d), describe=f"(..., out, d) = (..., {out}, {d})")
    return G


@_validate.finite_result
def batched_kron(a, b) -> np.ndarray:
    """Kronecker product over the last two axes, broadcasting leading axes: (..., m, n) ⊗ (..., p, q)."""
    a = _validate.real_array("a", a, min_ndim=2)
    b = _validate.real_array("b", b, min_ndim=2)
    m, n = a.shape[-2:]
    p, q = b.shape[-2:]
    out = a[..., :, None, :, None] * b[..., None, :, None, :]
    return out.reshape(out.shape[:-4] + (m * p, n * q))


@_validate.finite_result
def implicit_matrix(params, layers=None) -> np.ndarray:
    """The preconditioner as a matrix on column-major ``vec(G)``: ``Σ_l (P_lᵀP_l) ⊗ (S_lS_lᵀ)``.

    Shape ``(..., out·d, out·d)`` (leading run axes kept).
    """
    return sum(batched_kron(right, left) for left, right in factors(params, layers))


@_validate.finite_result
def implicit_step_size(params, alpha: float, layers=None):
    """Effective step size ``α λ_max(Σ_l (P_lᵀP_l) ⊗ (S_lS_lᵀ))`` of the inner step (P11); per run if batched."""
    alpha = _validate.finite_float("alpha", alpha)
    lam = alpha * np.linalg.eigvalsh(implicit_matrix(params, layers))[..., -1]
    return float(lam) if np.ndim(lam) == 0 else lam


@_validate.finite_result
def psd_power(A, p: float) -> np.ndarray:
    """``A^p`` for a symmetric PSD ``A``; ``A^0`` is the identity.

    Eigenvalues below ``n·eps·λ_max`` are round-off of a singular matrix and are set to 0
    (a fractional power would otherwise blow them up: (1e-16)^{1/3} ≈ 5e-6).
    """
    A = _validate.psd_matrix("A", A)
    p = _validate.finite_float("p", p, non_negative=True)
    lam, U = np.linalg.eigh(A)
    cutoff = A.shape[-1] * np.finfo(float).eps * np.max(np.abs(lam), axis=-1, keepdims=True)
    lam = np.where(lam > cutoff, lam, 0.0)
    powered = np.ones_like(lam) if p == 0 else lam**p
    return (U * powered[..., None, :]) @ np.swapaxes(U, -1, -2)


@_validate.finite_result
def balanced_factors(M, depth: int) -> list:
    """``[((MMᵀ)^{(L−j)/L}, (MᵀM)^{(j−1)/L})]`` for ``j = 1..L``: the factors of a balanced network."""
    M = _validate.real_array("M", M)
    if M.ndim < 2:
        raise ValueError(f"M must be a matrix (..., out, d), got shape {M.shape}")
    depth = _validate.positive_int("depth", depth)
    MMt, MtM = M @ np.swapaxes(M, -1, -2), np.swapaxes(M, -1, -2) @ M
    return [(psd_power(MMt, (depth - j) / depth), psd_power(MtM, (j - 1) / depth)) for j in range(1, depth + 1)]


@_validate.finite_result
def exact_one_step_map(params, G, alpha: float, layers=None) -> np.ndarray:
    """The end-to-end map after one simultaneous gradient step on ``layers`` with the fixed gradient ``G``.

    ``W_l ← W_l − α S_lᵀ G P_lᵀ``; used to measure the O(α²) residual of :func:`implicit_update`.
    """
    params = list(real_params(params))
    G = _gradient(G, params)
    alpha = _validate.finite_float("alpha", alpha)
    L = len(params)
    layers = list(range(L)) if layers is None else list(
        _validate.sequence_of_ints("layers", layers, what="0-based layer indices"))
    for l in layers:
        if not 0 <= l < L:
            raise ValueError(f"layers contains {l}, but the model has layers 0..{L - 1}")
    P, S = prefix_products(params), suffix_products(params)
    new = list(params)
    for l in layers:
        new[l] = params[l] - alpha * mm_eye(mm_eye(tmm_eye(S[l]), G), tmm_eye(P[l]))
    M = new[0]
    for W in new[1:]:
        M = W @ M
    return M
