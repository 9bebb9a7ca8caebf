"""Population CKA, CCA and subspace distance of linear representations (linmeta.theory.similarity)."""
import numpy as np
import pytest
from scipy.linalg import subspace_angles, sqrtm

from linmeta.theory.similarity import (canonical_correlations, linear_cka, mean_cca, principal_cosines,
                                       subspace_distance)


def _spd(rng, d):
    L = rng.standard_normal((d, d))
    return L @ L.T / d + 0.2 * np.eye(d)


def test_cka_matches_the_definition_from_covariances():
    # CKA = ‖Cov(h', h)‖²_F / (‖Cov(h)‖_F ‖Cov(h')‖_F), covariances written out by hand via vec/kron
    rng = np.random.default_rng(0)
    d, p, q = 5, 3, 4
    A, A2, S = rng.standard_normal((p, d)), rng.standard_normal((q, d)), _spd(rng, d)
    # Cov(h, h')_{ij} = Σ_{a,b} A_{ia} S_{ab} A2_{jb}
    cross = np.einsum("ia,ab,jb->ij", A, S, A2)
    c1, c2 = np.einsum("ia,ab,jb->ij", A, S, A), np.einsum("ia,ab,jb->ij", A2, S, A2)
    want = np.sum(cross**2) / np.sqrt(np.sum(c1**2) * np.sum(c2**2))
    assert abs(linear_cka(A, A2, S) - want) <= 1e-12 * want


def test_cka_properties():
    rng = np.random.default_rng(1)
    d = 6
    A, S = rng.standard_normal((4, d)), _spd(rng, d)
    Q = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    assert abs(linear_cka(A, A, S) - 1) <= 1e-12
    assert abs(linear_cka(A, 3.0 * Q @ A, S) - 1) <= 1e-12  # invariant to orthogonal maps and scaling
    G = rng.standard_normal((4, 4))  # an invertible, non-orthogonal map: CKA registers it (unlike CCA)
    assert linear_cka(A, G @ A, S) < 1 - 1e-3
    B = rng.standard_normal((2, d))
    v = linear_cka(A, B, S)
    assert 0 <= v <= 1
    assert abs(v - linear_cka(B, A, S)) <= 1e-14  # symmetric


def test_cka_batched_and_broadcast():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3, 1, 2, 5))
    A2 = rng.standard_normal((3, 4, 6, 5))
    out = linear_cka(A, A2)
    assert out.shape == (3, 4)
    assert abs(out[1, 2] - linear_cka(A[1, 0], A2[1, 2])) <= 1e-14


def test_canonical_correlations_are_cosines_of_principal_angles():
    # independent reference: scipy's principal angles between the row spaces of A Σ^{1/2}
    rng = np.random.default_rng(3)
    d = 7
    S = _spd(rng, d)
    A = rng.standard_normal((2, 3)) @ rng.standard_normal((3, d))  # rank 2 of 2 rows
    A2 = rng.standard_normal((5, 4)) @ rng.standard_normal((4, d))  # rank 4
    R = np.real(sqrtm(S))
    ref = np.sort(np.cos(subspace_angles((A @ R).T, (A2 @ R).T)))[::-1]
    got = canonical_correlations(A, A2, S)
    assert got.shape == (2,)
    assert np.max(np.abs(got - ref)) <= 1e-10


def test_canonical_correlations_match_the_cross_covariance_form():
    # full-rank case: canonical correlations = singular values of C11^{-1/2} C12 C22^{-1/2}
    rng = np.random.default_rng(4)
    d = 6
    S = _spd(rng, d)
    A, A2 = rng.standard_normal((3, d)), rng.standard_normal((2, d))
    C11, C22, C12 = A @ S @ A.T, A2 @ S @ A2.T, A @ S @ A2.T
    inv_sqrt = lambda C: np.linalg.inv(np.real(sqrtm(C)))
    ref = np.linalg.svd(inv_sqrt(C11) @ C12 @ inv_sqrt(C22), compute_uv=False)
    assert np.max(np.abs(canonical_correlations(A, A2, S) - ref)) <= 1e-10


def test_cca_trap_square_invertible_layers_have_cca_one():
    rng = np.random.default_rng(5)
    d = 8
    W, W2 = rng.standard_normal((d, d)), rng.standard_normal((d, d))  # unrelated but invertible
    rho = canonical_correlations(W, W2, _spd(rng, d))
    assert rho.shape == (d,) and np.max(np.abs(rho - 1)) <= 1e-10
    assert linear_cka(W, W2) < 0.99


def test_mean_cca_batched():
    rng = np.random.default_rng(6)
    A = rng.standard_normal((2, 3, 3, 6))
    A2 = rng.standard_normal((2, 3, 3, 6))
    out = mean_cca(A, A2)
    assert out.shape == (2, 3)
    assert abs(out[1, 2] - canonical_correlations(A[1, 2], A2[1, 2]).mean()) <= 1e-14


def test_subspace_distance_is_sine_of_largest_principal_angle():
    rng = np.random.default_rng(7)
    d, k = 9, 3
    B, Bs = rng.standard_normal((4, d, k)), rng.standard_normal((d, k))
    got = subspace_distance(B, Bs)
    ref = np.array([np.sin(np.max(subspace_angles(b, Bs))) for b in B])
    assert np.max(np.abs(got - ref)) <= 1e-10
    assert subspace_distance(Bs @ rng.standard_normal((k, k)), Bs) <= 1e-12  # same span
    assert abs(principal_cosines(np.eye(3)[:, :2], np.eye(3)[:, 1:]).min() - 0.0) <= 1e-15


@pytest.mark.parametrize("call, match", [
    (lambda: linear_cka(np.ones(3), np.ones((2, 3))), "A must be a matrix"),
    (lambda: linear_cka(np.ones((2, 3)), np.ones((2, 4))), "same input dimension"),
    (lambda: linear_cka(np.ones((2, 3)), np.ones((2, 3)), np.eye(4)), "input_cov must have shape"),
    (lambda: linear_cka(np.zeros((2, 3)), np.ones((2, 3))), "non-constant"),
    (lambda: linear_cka(np.ones((2, 3)), np.ones((2, 3)), -np.eye(3)), "positive semi-definite"),
    (lambda: canonical_correlations(np.ones((1, 2, 3)), np.ones((2, 3))), "one pair"),
    (lambda: mean_cca(np.zeros((2, 3)), np.ones((2, 3))), "zero"),
    (lambda: subspace_distance(np.ones((4, 2)), np.eye(4)[:, :2]), "full column rank"),
    (lambda: subspace_distance(np.eye(4)[:, :2], np.eye(5)[:, :2]), "same number of rows"),
])
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
