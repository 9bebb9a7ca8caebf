"""Exact sample-covariance moments (linmeta.theory.gaussian_moments)."""
import numpy as np
import pytest

from linmeta.theory.gaussian_moments import (_plans, chain_moment, gd_noise_polynomial, gd_polynomial,
                                             poly_sandwich)


def _sigma(rng, d):
    L = rng.standard_normal((d, d))
    return L @ L.T / d + 0.3 * np.eye(d)


def test_matching_counts():
    for n in range(1, 6):
        total = 1
        for j in range(1, 2 * n, 2):
            total *= j
        assert len(_plans(n)) == total  # (2n-1)!! perfect matchings


def test_second_moment_identity():
    """E[Σ̂ C Σ̂] = Σ C Σ + (Σ Cᵀ Σ + tr(CΣ) Σ)/K (design.md)."""
    rng = np.random.default_rng(0)
    S, C = _sigma(rng, 4), rng.standard_normal((4, 4))
    for K in (1, 3, 50):
        ref = S @ C @ S + (S @ C.T @ S + np.trace(C @ S) * S) / K
        assert np.allclose(chain_moment(S, K, 2, {1: C}), ref, rtol=1e-13, atol=1e-14)


def test_first_moment_and_identity():
    S = _sigma(np.random.default_rng(1), 3)
    assert np.allclose(chain_moment(S, 7, 1), S)
    assert np.allclose(chain_moment(S, 7, 0), np.eye(3))


def test_large_K_limit_is_the_population_product():
    rng = np.random.default_rng(2)
    S, D = _sigma(rng, 3), rng.standard_normal((3, 3))
    exact = chain_moment(S, 10**9, 3, {1: D})
    assert np.allclose(exact, S @ D @ S @ S, rtol=1e-7)


@pytest.mark.parametrize("n, inserts", [(3, {1: "D1", 2: "D2"}), (4, {2: "D1"}), (4, {})])
def test_chain_moments_match_monte_carlo(n, inserts):
    rng = np.random.default_rng(3 + n)
    d, K, N = 3, 4, 200_000
    S = _sigma(rng, d)
    mats = {"D1": rng.standard_normal((d, d)), "D2": rng.standard_normal((d, d))}
    ins = {i: mats[v] for i, v in inserts.items()}
    X = rng.standard_normal((N, K, d)) @ np.linalg.cholesky(S).T
    Sh = np.swapaxes(X, -1, -2) @ X / K
    prod = Sh
    for i in range(1, n):
        if i in ins:
            prod = prod @ ins[i]
        prod = prod @ Sh
    mean, se = prod.mean(0), prod.std(0, ddof=1) / np.sqrt(N)
    z = np.abs(mean - chain_moment(S, K, n, ins)) / se
    assert z.max() <= 4.5  # 9 entries; a 4.5-SE bound on the worst keeps false alarms < 1e-4


def test_batched_sigma():
    rng = np.random.default_rng(5)
    S = np.stack([_sigma(rng, 3) for _ in range(4)])
    C = rng.standard_normal((3, 3))
    batched = poly_sandwich(S, 5, [1, -0.3, 0.02], C, [1, -0.3])
    for t in range(4):
        assert np.allclose(batched[t], poly_sandwich(S[t], 5, [1, -0.3, 0.02], C, [1, -0.3]), rtol=1e-13)


def test_gd_polynomials():
    x, a, k = 0.7, 0.3, 4
    assert np.isclose(np.polyval(gd_polynomial(a, k)[::-1], x), (1 - a * x) ** k)
    assert np.isclose(np.polyval(gd_noise_polynomial(a, k)[::-1], x), sum((1 - a * x) ** i for i in range(k)))


def test_too_many_factors_is_refused():
    with pytest.raises(ValueError, match="at most"):
        chain_moment(np.eye(2), 3, 9)
