"""Layer features and sample CKA / CCA, and their convergence to the closed forms (linmeta.representations)."""
import numpy as np
import pytest

from linmeta import init_deep_linear
from linmeta.sim.representations import (canonical_correlations_samples, layer_features, layer_maps,
                                     linear_cka_samples, mean_cca_samples)
from linmeta.theory.similarity import canonical_correlations, linear_cka, mean_cca


def test_layer_maps_and_features():
    rng = np.random.default_rng(0)
    params = init_deep_linear(5, (4, 3), 2, rng=rng)
    maps = layer_maps(params)
    assert [A.shape for A in maps] == [(4, 5), (3, 5), (2, 5)]
    assert np.allclose(maps[2], params[2] @ params[1] @ params[0], rtol=1e-14)
    X = rng.standard_normal((7, 5))
    H = layer_features(params, X)
    assert np.allclose(H[1], X @ params[0].T @ params[1].T, rtol=1e-14)
    # adapted parameters carry (runs, tasks) axes that broadcast against shared layers
    batched = (np.broadcast_to(params[0], (2, 3, 4, 5)), params[1][None, None], params[2][None, None])
    assert layer_maps(batched)[2].shape == (2, 3, 2, 5)


def test_sample_cka_is_the_closed_form_at_the_centred_sample_covariance():
    rng = np.random.default_rng(1)
    d, n = 6, 30
    A, A2 = rng.standard_normal((3, d)), rng.standard_normal((4, d))
    X = rng.standard_normal((n, d)) @ rng.standard_normal((d, d))
    Xc = X - X.mean(0)
    got = linear_cka_samples(X @ A.T, X @ A2.T)
    assert abs(got - linear_cka(A, A2, Xc.T @ Xc / n)) <= 1e-12 * got


def test_sample_cca_is_the_closed_form_at_the_centred_sample_covariance():
    rng = np.random.default_rng(2)
    d, n = 6, 40
    A = rng.standard_normal((5, 2)) @ rng.standard_normal((2, d))  # rank-deficient (bottleneck) features
    A2 = rng.standard_normal((4, 3)) @ rng.standard_normal((3, d))
    X = rng.standard_normal((n, d))
    Xc = X - X.mean(0)
    got = canonical_correlations_samples(X @ A.T, X @ A2.T)
    ref = canonical_correlations(A, A2, Xc.T @ Xc / n)
    assert got.shape == (2,) and np.max(np.abs(got - ref)) <= 1e-9


def test_batched_mean_cca_equals_the_per_pair_estimator():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2, 3, 50, 6))
    A = rng.standard_normal((2, 1, 5, 2)) @ rng.standard_normal((2, 1, 2, 6))
    A2 = rng.standard_normal((2, 3, 4, 6))
    H, H2 = X @ np.swapaxes(A, -1, -2), X @ np.swapaxes(A2, -1, -2)
    for keep in (None, 0.9):
        got = mean_cca_samples(H, H2, keep=keep)
        ref = np.array([[canonical_correlations_samples(H[i, j], H2[i, j], keep=keep).mean() for j in range(3)]
                        for i in range(2)])
        assert np.max(np.abs(got - ref)) <= 1e-12


def test_svcca_truncation_keeps_the_requested_variance():
    rng = np.random.default_rng(4)
    n = 400
    Z = rng.standard_normal((n, 3)) * np.array([10.0, 1.0, 0.01])
    H = Z @ np.linalg.qr(rng.standard_normal((5, 5)))[0][:3]
    assert canonical_correlations_samples(H, H).size == 3
    assert canonical_correlations_samples(H, H, keep=0.98).size == 1  # the first direction holds 99 % of it
    assert canonical_correlations_samples(H, H, keep=0.995).size == 2


def _rmse_ratio_test(errors_small_n, errors_large_n, factor):
    """|RMSE_small/RMSE_large − factor| ≤ 4 SE, the SE from the samples (delta method)."""
    def rmse_and_rel_se(e):
        mse = np.mean(e**2)
        return np.sqrt(mse), np.std(e**2, ddof=1) / np.sqrt(e.size) / (2 * mse)
    a, ra = rmse_and_rel_se(errors_small_n)
    b, rb = rmse_and_rel_se(errors_large_n)
    ratio = a / b
    se = ratio * np.hypot(ra, rb)
    assert abs(ratio - factor) <= 4 * se, (ratio, factor, se)


def _repeat(est, A, A2, S, n, reps, rng):
    L = np.linalg.cholesky(S)
    X = rng.standard_normal((reps, n, S.shape[0])) @ L.T
    return est(X @ A.T, X @ A2.T)


@pytest.mark.parametrize("name", ["cka", "cca"])
def test_sample_estimates_converge_to_the_closed_form_at_rate_one_over_sqrt_n(name):
    rng = np.random.default_rng(5 if name == "cka" else 6)
    d = 6
    Lm = rng.standard_normal((d, d))
    S = Lm @ Lm.T / d + 0.3 * np.eye(d)
    C = rng.standard_normal((2, d))
    A = rng.standard_normal((4, 2)) @ C  # a bottleneck layer (rank 2) ...
    A2 = rng.standard_normal((4, 2)) @ (C + 0.5 * rng.standard_normal((2, d)))  # ... and a perturbed one
    assert np.all(canonical_correlations(A, A2, S) < 0.999)
    est, pop = ((linear_cka_samples, float(linear_cka(A, A2, S))) if name == "cka"
                else (mean_cca_samples, float(mean_cca(A, A2, S))))
    reps = 300
    e_small = _repeat(est, A, A2, S, 250, reps, rng) - pop
    e_large = _repeat(est, A, A2, S, 4000, reps, rng) - pop
    _rmse_ratio_test(e_small, e_large, 4.0)  # 16x the samples: 4x smaller error
    # no detectable bias at the larger n: the mean error is within 4 standard errors of 0
    assert abs(e_large.mean()) <= 4 * e_large.std(ddof=1) / np.sqrt(reps)


@pytest.mark.parametrize("call, match", [
    (lambda: linear_cka_samples(np.ones((5, 2)), np.ones((4, 2))), "same number of samples n"),
    (lambda: linear_cka_samples(np.ones((1, 2)), np.ones((1, 2))), "at least 2 samples"),
    (lambda: linear_cka_samples(np.ones((5, 2)), np.arange(10.0).reshape(5, 2)), "constant"),
    (lambda: canonical_correlations_samples(np.ones((3, 5, 2)), np.ones((3, 5, 2))), "one pair"),
    (lambda: mean_cca_samples(np.random.default_rng(0).standard_normal((5, 2)),
                              np.random.default_rng(1).standard_normal((5, 2)), keep=1.5), "keep"),
    (lambda: mean_cca_samples(np.ones((5, 2)), np.random.default_rng(1).standard_normal((5, 2))), "constant"),
    (lambda: layer_features((np.ones((2, 3)),), np.ones((4, 5))), "d = 3"),
    (lambda: layer_maps((np.ones((2, 3)), np.ones((2, 4)))), "chain"),
    (lambda: layer_maps(()), "non-empty"),
])
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
