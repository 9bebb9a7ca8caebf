r"""Representations of a deep linear network and their similarity estimated from samples.

Layer ``l`` (1-based) of ``M = W_L ⋯ W_1`` represents an input ``x`` by ``h_l = A_l x`` with
``A_l = W_l ⋯ W_1`` (:func:`layer_maps`).  On a sample ``X`` (n x d) the features are
``H_l = X A_lᵀ`` (n x n_l, :func:`layer_features`).

Estimators (their population limits are in :mod:`linmeta.theory.similarity`):

* :func:`linear_cka_samples` – linear CKA of column-centred features (Kornblith et al. 2019, the
  "feature-space" form): ``‖H̃'ᵀ H̃‖²_F / (‖H̃ᵀH̃‖_F ‖H̃'ᵀH̃'‖_F)``, ``H̃ = H − mean``.  For
  ``H = X Aᵀ`` this is exactly the population formula evaluated at the centred sample covariance
  of ``X`` (``derivations/linear_cka.py``), so it converges at the rate of that covariance, ``1/√n``.
* :func:`canonical_correlations_samples` / :func:`mean_cca_samples` – sample CCA as in SVCCA
  (Raghu et al. 2017): orthonormal bases of the centred feature matrices' column spaces (optionally
  truncated to the directions holding a fraction ``keep`` of the variance), then the singular values
  of ``U₁ᵀU₂``; the SVCCA similarity is their mean.
"""
from __future__ import annotations

import numpy as np

from .. import _validate


@_validate.finite_result
def layer_maps(params) -> list:
    """``[A_1, ..., A_L]`` with ``A_l = W_l ⋯ W_1``, shapes ``(*lead, n_l, d)``.

    Parameters
    ----------
    params : tuple of arrays ``W_l`` of shape ``(*lead, n_l, n_{l-1})`` (leading run/task axes
        broadcast against each other, as in adapted parameters).
    """
    if not isinstance(params, (tuple, list)) or not params:
        raise _validate.ArgumentTypeError("params must be a non-empty tuple of layer matrices (W_1, ..., W_L), got "
                                          f"{type(params).__name__}")
    maps = [_validate.real_array("params[0]", params[0], finite=False)]
    if maps[0].ndim < 2:
        raise ValueError(f"params[0] must be a matrix (..., n_1, d), got shape {maps[0].shape}")
    for l, W in enumerate(params[1:], start=1):
        W = _validate.real_array(f"params[{l}]", W, finite=False)
        if W.ndim < 2 or W.shape[-1] != maps[-1].shape[-2]:
            raise ValueError(
                f"params[{l}] must have shape (..., n_{l + 1}, {maps[-1].shape[-2]}) to chain with the layer below, "
                f"got {W.shape}"
            )
        maps.append(W @ maps[-1])
    for l, A in enumerate(maps):
        _validate.finite_array(f"params[{l}]", A)
    return maps


@_validate.finite_result
def layer_features(params, X) -> list:
    """Features ``H_l = X A_lᵀ`` of every layer for inputs ``X``.

    Parameters
    ----------
    params : tuple of arrays (*lead, n_l, n_{l-1}).
    X : array (*lead, n, d), inputs (leading axes broadcast with the parameters').

    Returns
    -------
    list of arrays (*lead, n, n_l), one per layer.
    """
    maps = layer_maps(params)
    X = _validate.real_array("X", X)
    if X.ndim < 2 or X.shape[-1] != maps[0].shape[-1]:
        raise ValueError(f"X must have shape (..., n, d) with d = {maps[0].shape[-1]}, got {X.shape}")
    return [X @ np.swapaxes(A, -1, -2) for A in maps]


def _features_pair(H, H2):
    H, H2 = _validate.matrix_pair(("H", "H2"), H, H2, shape="(..., n, features)", shared="samples n")
    if H.shape[-2] < 2:
        raise ValueError("at least 2 samples are needed to centre the features")
    return H - H.mean(axis=-2, keepdims=True), H2 - H2.mean(axis=-2, keepdims=True)


@_validate.finite_result
def linear_cka_samples(H, H2) -> np.ndarray:
    """Linear CKA of two feature matrices of the same samples (centred along the sample axis).

    Parameters
    ----------
    H : array (..., n, p); H2 : array (..., n, q).

    Returns
    -------
    array (...): ``‖H̃2ᵀH̃‖²_F / (‖H̃ᵀH̃‖_F ‖H̃2ᵀH̃2‖_F)`` in [0, 1].
    """
    Hc, H2c = _features_pair(H, H2)
    cross = np.swapaxes(H2c, -1, -2) @ Hc
    K1 = np.swapaxes(Hc, -1, -2) @ Hc
    K2 = np.swapaxes(H2c, -1, -2) @ H2c
    n1 = np.sqrt(np.sum(K1 * K1, axis=(-2, -1)))
    n2 = np.sqrt(np.sum(K2 * K2, axis=(-2, -1)))
    if np.any(n1 == 0) or np.any(n2 == 0):
        raise ValueError("H and H2 must not be constant over the samples; CKA is undefined otherwise")
    return np.sum(cross * cross, axis=(-2, -1)) / (n1 * n2)


def _kept_rank(s: np.ndarray, keep: float | None, rtol: float) -> int:
    """Number of singular values kept: above ``rtol·s_max``, then (SVCCA) enough to hold ``keep`` of the variance."""
    if s.size == 0 or s[0] == 0:
        return 0
    r = int(np.sum(s > rtol * s[0]))
    if keep is not None:
        frac = np.cumsum(s[:r] ** 2) / np.sum(s[:r] ** 2)
        r = min(r, int(np.searchsorted(frac, keep - 1e-12)) + 1)
    return r


def _column_basis(F: np.ndarray, keep: float | None, rtol: float) -> np.ndarray:
    U, s, _ = np.linalg.svd(F, full_matrices=False)
    return U[:, :_kept_rank(s, keep, rtol)]


@_validate.finite_result
def canonical_correlations_samples(H, H2, keep: float | None = None, rtol: float = 1e-10) -> np.ndarray:
    """Sample canonical correlations of two feature matrices of the same samples (one pair).

    Parameters
    ----------
    H : array (n, p); H2 : array (n, q).
    keep : SVCCA truncation: keep the top singular directions of each centred feature matrix that
        hold this fraction of its variance (e.g. 0.99); ``None`` keeps every direction above ``rtol``.
    rtol : singular values below ``rtol`` times the largest count as zero (numerical rank).

    Returns
    -------
    array (r,): canonical correlations in decreasing order, ``r = min(r1, r2)`` for the kept ranks.
    """
    Hc, H2c = _features_pair(H, H2)
    if Hc.ndim != 2 or H2c.ndim != 2:
        raise ValueError("canonical_correlations_samples takes one pair of 2-D feature matrices; use mean_cca_samples")
    if keep is not None:
        keep = _validate.finite_float("keep", keep, positive=True)
        if keep > 1:
            raise ValueError(f"keep must be a variance fraction in (0, 1], got {keep}")
    rtol = _validate.finite_float("rtol", rtol, positive=True)
    U1, U2 = _column_basis(Hc, keep, rtol), _column_basis(H2c, keep, rtol)
    if U1.shape[1] == 0 or U2.shape[1] == 0:
        return np.zeros(0)
    return np.clip(np.linalg.svd(U1.T @ U2, compute_uv=False), 0.0, 1.0)


@_validate.finite_result
def mean_cca_samples(H, H2, keep: float | None = None, rtol: float = 1e-10) -> np.ndarray:
    """Mean sample canonical correlation (SVCCA similarity), batched over leading axes.

    Parameters
    ----------
    H : array (..., n, p); H2 : array (..., n, q) (leading axes broadcast).
    keep, rtol : see :func:`canonical_correlations_samples`.

    Returns
    -------
    array (...).

    Notes
    -----
    Batched: thin QR factorisations ``H̃ = Q R`` of all pairs at once, then the left singular vectors
    ``Q U_R`` of each centred feature matrix come from the small SVD of ``R``, so the per-pair work
    is on p x q matrices only (same result as :func:`canonical_correlations_samples`).
    """
    Hc, H2c = _features_pair(H, H2)
    if keep is not None:
        keep = _validate.finite_float("keep", keep, positive=True)
        if keep > 1:
            raise ValueError(f"keep must be a variance fraction in (0, 1], got {keep}")
    rtol = _validate.finite_float("rtol", rtol, positive=True)
    lead = np.broadcast_shapes(Hc.shape[:-2], H2c.shape[:-2])
    Hc = np.broadcast_to(Hc, lead + Hc.shape[-2:])
    H2c = np.broadcast_to(H2c, lead + H2c.shape[-2:])
    Q1, R1 = np.linalg.qr(Hc)
    Q2, R2 = np.linalg.qr(H2c)
    U1, s1, _ = np.linalg.svd(R1)
    U2, s2, _ = np.linalg.svd(R2)
    cross = np.swapaxes(U1, -1, -2) @ (np.swapaxes(Q1, -1, -2) @ Q2) @ U2  # (..., p, q) in singular bases
    out = np.empty(lead)
    for idx in np.ndindex(lead):
        r1 = _kept_rank(s1[idx], keep, rtol)
        r2 = _kept_rank(s2[idx], keep, rtol)
        if r1 == 0 or r2 == 0:
            raise ValueError("a feature matrix is constant over the samples: canonical correlations are undefined")
        rho = np.clip(np.linalg.svd(cross[idx][:r1, :r2], compute_uv=False), 0.0, 1.0)
        out[idx] = rho.mean()
    return out
