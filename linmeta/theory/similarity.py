r"""Population similarity of linear representations of Gaussian inputs: linear CKA, CCA, subspace distance.

A layer of a deep linear network represents an input ``x ~ N(0, Σ)`` by ``h = A x`` with
``A = W_l ⋯ W_1`` (``n_l x d``).  Comparing two representations ``h = A x`` and ``h' = A' x`` of
the same input (e.g. a layer before and after the inner loop; ``derivations/linear_cka.py``):

* **linear CKA** (Kornblith et al. 2019) in the population: the cross-covariance is
  ``Cov(h, h') = A Σ A'ᵀ``, so (``derivations/linear_cka.py``)

      CKA(A, A') = ‖A Σ A'ᵀ‖²_F / (‖A Σ Aᵀ‖_F ‖A' Σ A'ᵀ‖_F)   ∈ [0, 1].

  It is not invariant to invertible maps, so it registers inner-loop change in linear nets.
* **canonical correlations** (CCA): with ``Ã = A Σ^{1/2}``, ``h = Ã z`` for ``z ~ N(0, I)``; the
  canonical correlations of ``h`` and ``h'`` are the cosines of the principal angles between the
  row spaces of ``Ã`` and ``Ã'`` (there are ``min(rank A, rank A')`` of them).  For full-rank square
  layers both row spaces are the whole input space, so every canonical correlation is 1 however
  much the weights moved (the "CCA trap"); CCA says something only for bottleneck / rank-deficient layers.
* **subspace distance** (Collins et al. 2022): ``dist(B, B*) = ‖(I − Q* Q*ᵀ) Q_B‖₂`` with ``Q_B``,
  ``Q*`` orthonormal bases of the column spaces; the sine of the largest principal angle.

All functions take numpy arrays and broadcast over leading axes unless stated otherwise.
"""
from __future__ import annotations

import numpy as np

from .. import _validate


def _sqrt_psd(S: np.ndarray) -> np.ndarray:
    lam, U = np.linalg.eigh(S)
    return (U * np.sqrt(np.clip(lam, 0.0, None))[..., None, :]) @ np.swapaxes(U, -1, -2)


def _pair(A, A2, input_cov, names=("A", "A2")):
    A = _validate.real_array(names[0], A)
    A2 = _validate.real_array(names[1], A2)
    for name, X in zip(names, (A, A2)):
        if X.ndim < 2 or 0 in X.shape[-2:]:
            raise ValueError(f"{name} must be a matrix (..., n, d) mapping inputs to features, got shape {X.shape}")
    if A.shape[-1] != A2.shape[-1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must act on the same input dimension d; got {A.shape[-1]} and {A2.shape[-1]}"
        )
    d = A.shape[-1]
    if input_cov is None:
        S = np.eye(d)
    else:
        S = _validate.psd_matrix("input_cov", input_cov)
        if S.shape[-2:] != (d, d):
            raise ValueError(f"input_cov must have shape (d, d) = ({d}, {d}), got {S.shape}")
    return A, A2, S


@_validate.finite_result
def linear_cka(A, A2, input_cov=None) -> np.ndarray:
    """Population linear CKA between ``h = A x`` and ``h' = A2 x`` for ``x ~ N(0, input_cov)``.

    Parameters
    ----------
    A : array (..., p, d), first representation map.
    A2 : array (..., q, d), second representation map (same d; leading axes broadcast).
    input_cov : array (d, d) or (..., d, d), Σ; identity if None.

    Returns
    -------
    array (...): ``‖AΣA2ᵀ‖²_F / (‖AΣAᵀ‖_F ‖A2ΣA2ᵀ‖_F)``.
    """
    A, A2, S = _pair(A, A2, input_cov)
    # CKA is invariant to rescaling either map: normalise them so that A Σ Aᵀ neither overflows nor underflows
    A, A2, S = (X / np.maximum(np.max(np.abs(X), axis=(-2, -1), keepdims=True), np.finfo(float).tiny)
                for X in (A, A2, S))
    At, A2t = np.swapaxes(A, -1, -2), np.swapaxes(A2, -1, -2)
    cross = A @ S @ A2t
    K1 = A @ S @ At
    K2 = A2 @ S @ A2t
    n1 = np.sqrt(np.sum(K1 * K1, axis=(-2, -1)))
    n2 = np.sqrt(np.sum(K2 * K2, axis=(-2, -1)))
    if np.any(n1 == 0) or np.any(n2 == 0):
        raise ValueError("A and A2 must give non-constant representations (A Σ Aᵀ ≠ 0); CKA is undefined otherwise")
    return np.sum(cross * cross, axis=(-2, -1)) / (n1 * n2)


def _row_basis(A: np.ndarray, rtol: float) -> np.ndarray:
    """Orthonormal basis (d x r) of the row space of a single matrix A (p x d), numerical rank r."""
    U, s, _ = np.linalg.svd(A.T, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return U[:, :0]
    r = int(np.sum(s > rtol * s[0]))
    return U[:, :r]


@_validate.finite_result
def principal_cosines(Q1: np.ndarray, Q2: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between the column spaces of orthonormal ``Q1`` (d x r1) and ``Q2`` (d x r2).

    Returns the ``min(r1, r2)`` cosines in decreasing order, clipped to [0, 1].
    """
    Q1, Q2 = _validate.matrix_pair(("Q1", "Q2"), Q1, Q2, shape="(d, r)", shared="rows d")
    for name, Q in (("Q1", Q1), ("Q2", Q2)):
        if Q.ndim != 2:
            raise ValueError(f"{name} must be a (d, r) matrix, got shape {Q.shape}")
        if not np.allclose(Q.T @ Q, np.eye(Q.shape[1]), atol=1e-8):
            raise ValueError(f"{name} must have orthonormal columns (Q.T @ Q = I); orthonormalise it with "
                             "numpy.linalg.qr")
    if Q1.shape[1] == 0 or Q2.shape[1] == 0:
        return np.zeros(0)
    return np.clip(np.linalg.svd(Q1.T @ Q2, compute_uv=False), 0.0, 1.0)


@_validate.finite_result
def canonical_correlations(A, A2, input_cov=None, rtol: float = 1e-10) -> np.ndarray:
    """Population canonical correlations of ``h = A x`` and ``h' = A2 x``, ``x ~ N(0, input_cov)``.

    Parameters
    ----------
    A : array (p, d); A2 : array (q, d) (a single pair, no leading axes).
    input_cov : array (d, d), Σ; identity if None.
    rtol : singular values below ``rtol`` times the largest count as zero when taking ranks.

    Returns
    -------
    array (r,), ``r = min(rank(AΣ^{1/2}), rank(A2Σ^{1/2}))``: the cosines of the principal angles
    between the row spaces of ``AΣ^{1/2}`` and ``A2Σ^{1/2}``, decreasing.
    """
    A, A2, S = _pair(A, A2, input_cov)
    if A.ndim != 2 or A2.ndim != 2 or S.ndim != 2:
        raise ValueError("canonical_correlations takes one pair of 2-D maps; use mean_cca for leading axes")
    rtol = _validate.finite_float("rtol", rtol, positive=True)
    R = _sqrt_psd(S)
    return principal_cosines(_row_basis(A @ R, rtol), _row_basis(A2 @ R, rtol))


@_validate.finite_result
def mean_cca(A, A2, input_cov=None, rtol: float = 1e-10) -> np.ndarray:
    """Mean canonical correlation (the SVCCA-style summary) of ``A x`` and ``A2 x``, batched.

    Parameters
    ----------
    A : array (..., p, d); A2 : array (..., q, d); leading axes broadcast.
    input_cov : array (d, d), Σ; identity if None.

    Returns
    -------
    array (...): mean of :func:`canonical_correlations` for each pair.
    """
    A, A2, S = _pair(A, A2, input_cov)
    lead = np.broadcast_shapes(A.shape[:-2], A2.shape[:-2])
    A = np.broadcast_to(A, lead + A.shape[-2:])
    A2 = np.broadcast_to(A2, lead + A2.shape[-2:])
    out = np.empty(lead)
    for idx in np.ndindex(lead):
        rho = canonical_correlations(A[idx], A2[idx], S, rtol)
        if rho.size == 0:
            raise ValueError("a representation map is zero: canonical correlations are undefined")
        out[idx] = rho.mean()
    return out


@_validate.finite_result
def subspace_distance(B, B_star) -> np.ndarray:
    """Principal-angle distance ``‖(I − Q*Q*ᵀ) Q_B‖₂`` between column spaces (Collins et al. 2022).

    Parameters
    ----------
    B : array (..., d, k), the learned representation (full column rank).
    B_star : array (d, k*) or (..., d, k*), the true representation (full column rank).

    Returns
    -------
    array (...): the sine of the largest principal angle between col(B) and col(B*) when k ≤ k*
    (1 if col(B) has a direction orthogonal to col(B*)).
    """
    B, Bs = _validate.matrix_pair(("B", "B_star"), B, B_star, shape="(..., d, k)", shared="rows d")
    Q, Rb = np.linalg.qr(B)
    Qs, Rs = np.linalg.qr(Bs)
    for name, Rm in (("B", Rb), ("B_star", Rs)):
        diag = np.abs(np.diagonal(Rm, axis1=-2, axis2=-1))
        if np.any(diag <= 1e-12 * np.max(diag, axis=-1, keepdims=True)) or np.any(np.max(diag, axis=-1) == 0):
            raise ValueError(f"{name} must have full column rank (its columns are a basis of the subspace)")
    resid = Q - Qs @ (np.swapaxes(Qs, -1, -2) @ Q)
    return np.linalg.norm(resid, ord=2, axis=(-2, -1))
