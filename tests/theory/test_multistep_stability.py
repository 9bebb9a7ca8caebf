"""Tests of linmeta.theory.multistep_stability against independent computations."""
import numpy as np
import pytest

from linmeta.theory import multistep_stability as MS


def _rot_sym(rng, eigs):
    Q, _ = np.linalg.qr(rng.standard_normal((len(eigs), len(eigs))))
    return Q @ np.diag(eigs) @ Q.T


def _indefinite(seed=0, d=3, T=3):
    rng = np.random.default_rng(seed)
    H = np.stack([_rot_sym(rng, rng.uniform(-0.4, 1.0, d)) for _ in range(T)])
    return 0.5 * (H + np.swapaxes(H, -1, -2)), rng.dirichlet(np.ones(T))


def test_meta_hessian_is_the_power_sandwich():
    H, p = _indefinite(0)
    for N in (0, 1, 4):
        P = [np.linalg.matrix_power(np.eye(3) - 0.3 * h, N) for h in H]
        expect = sum(pi * Pi @ h @ Pi for pi, Pi, h in zip(p, P, H))
        assert np.max(np.abs(MS.meta_hessian(H, 0.3, N, p) - expect)) < 1e-14
        assert np.allclose(MS.inner_error_maps(H, 0.3, N), P, atol=1e-15)
    many = MS.meta_hessian(H, np.array([0.1, 0.3]), 4, p)
    assert many.shape == (2, 3, 3) and np.max(np.abs(many[1] - MS.meta_hessian(H, 0.3, 4, p))) < 1e-15


def test_meta_hessian_matches_torch_autograd_through_the_unrolled_loop():
    torch = pytest.importorskip("torch")
    H, p = _indefinite(1, d=2, T=2)
    a = np.random.default_rng(2).standard_normal((2, 2))
    Ht, at, pt = (torch.tensor(x, dtype=torch.float64) for x in (H, a, p))

    def F(w):
        total = 0.0
        for i in range(2):
            v = w
            for _ in range(3):
                v = v - 0.4 * Ht[i] @ (v - at[i])
            total = total + pt[i] * 0.5 * (v - at[i]) @ Ht[i] @ (v - at[i])
        return total

    hess = torch.autograd.functional.hessian(F, torch.zeros(2, dtype=torch.float64)).numpy()
    assert np.max(np.abs(hess - MS.meta_hessian(H, 0.4, 3, p))) < 1e-13


def test_outer_rate_is_the_spectral_radius_and_gd_follows_it():
    H, p = _indefinite(3)
    A = np.eye(3) - 0.7 * MS.meta_hessian(H, 0.2, 2, p)
    assert abs(MS.outer_rate(H, 0.2, 2, 0.7, p) - np.max(np.abs(np.linalg.eigvals(A)))) < 1e-14
    e = np.ones(3)
    for _ in range(200):
        e = A @ e
    r = MS.outer_rate(H, 0.2, 2, 0.7, p)
    assert np.isclose(np.linalg.norm(A @ e) / np.linalg.norm(e), r, rtol=1e-6)
    assert MS.is_stable(H, 0.2, 2, 0.7, p) == (r < 1)


def test_two_point_boundary_equals_root_finder_and_converges_like_one_over_n():
    H = np.array([np.diag([1.0, 0.6]), np.diag([-0.25, 0.3])])
    s_star = MS.two_point_limit(1.0, -0.25, 0.5)
    assert np.isclose(s_star, np.log(4.0) / 2.5, rtol=1e-14)
    prev = None
    for N in (1, 2, 5, 20, 80):
        a = MS.two_point_boundary(1.0, -0.25, 0.5, N)
        assert abs(MS.critical_alpha(H, N, 1.0, 5.0) - a) < 1e-12 * a
        # at the boundary the smallest meta-curvature vanishes
        assert abs(MS.meta_spectrum(H, a, N)[0]) < 1e-13
        err = abs(N * a - s_star) / s_star
        assert err < 0.5 / N  # O(1/N) relative correction
        if prev is not None:
            assert err < prev
        prev = err
    assert MS.scaling_limit(H) == pytest.approx(s_star, rel=1e-10)
    big = 10_000
    assert abs(big * MS.two_point_boundary(1.0, -0.25, 0.5, big) - s_star) < 1e-4 * s_star


def test_non_convex_boundary_does_not_depend_on_beta():
    H = np.array([np.diag([1.0, 0.6]), np.diag([-0.25, 0.3])])
    a = [MS.critical_alpha(H, 6, b, 5.0) for b in (0.1, 0.5, 1.0, 1.5)]
    assert np.ptp(a) < 1e-12 * a[0]


def test_convex_boundary_tends_to_two_over_lambda_max_from_above():
    H = np.array([np.diag([1.0, 0.6]), np.diag([0.25, 0.3])])
    assert MS.scaling_limit(H) == float("inf")
    a = np.array([MS.critical_alpha(H, N, 1.0, 6.0) for N in (1, 4, 16, 64)])
    assert np.all(a > 2.0) and np.all(np.diff(a) < 0) and a[-1] - 2.0 < 0.02
    assert MS.convex_limit(H) == 2.0
    # below 2/Λ the convex case is stable at every N (β < 2/λ_max(E H))
    assert all(MS.is_stable(H, 1.9, N, 1.0) for N in (1, 7, 50))


def test_meta_hessian_below_average_hessian_for_small_steps():
    H, p = _indefinite(4)
    Lam = np.linalg.eigvalsh(H).max()
    Hbar = np.einsum("t,tij->ij", p, H)
    for alpha in np.linspace(0, 2 / Lam, 7):
        for N in (1, 3, 9):
            assert np.linalg.eigvalsh(Hbar - MS.meta_hessian(H, alpha, N, p))[0] > -1e-12
    L = np.abs(np.linalg.eigvalsh(H)).max()
    assert np.abs(MS.meta_spectrum(H, 0.3, 5, p)).max() <= MS.smoothness_bound(L, 0.3, 5)


def test_rotated_scaling_limit_and_second_band():
    H, p = _indefinite(5)
    if np.linalg.eigvalsh(np.einsum("t,tij->ij", p, H))[0] <= 0:
        pytest.skip("mean curvature not positive for this draw")
    s = MS.scaling_limit(H, p)
    assert np.isfinite(s) and s > 0
    assert abs(np.linalg.eigvalsh(MS.limit_meta_hessian(H, s, p))[0]) < 1e-12
    N = 400
    assert abs(N * MS.critical_alpha(H, N, 0.5, 2.0, p) - s) < 0.02 * s
    # N = 1: above α_c a second stable band opens where the positive task's step overshoots
    H2 = np.array([np.diag([1.0, 1.0]), np.diag([-0.25, 1.0])])
    iv = MS.stable_intervals(H2, 1, 1.0, 4.0)
    rho = 2.0  # R^(1/2) with R = 4
    assert iv.shape == (2, 2)
    assert np.isclose(iv[0, 1], (rho - 1) / (rho + 0.25), rtol=1e-12)
    assert np.isclose(iv[1, 0], (1 + rho) / (rho - 0.25), rtol=1e-12)  # the second zero crossing
    assert np.isclose(iv[1, 1], 1 + np.sqrt(2.0), rtol=1e-12)  # (α − 1)² = 2/β along e₂


def test_bad_input_is_rejected_with_the_argument_name():
    H = np.array([np.diag([1.0, 0.5])])
    with pytest.raises(ValueError, match="hessians"):
        MS.meta_hessian(np.array([[[1.0, 2.0], [0.0, 1.0]]]), 0.1, 1)
    with pytest.raises(ValueError, match="weights"):
        MS.meta_hessian(H, 0.1, 1, [0.5, 0.5])
    with pytest.raises(ValueError, match="alpha"):
        MS.meta_hessian(H, -0.1, 1)
    with pytest.raises(ValueError, match="steps"):
        MS.meta_hessian(H, 0.1, 1.5)
    with pytest.raises(ValueError, match="beta"):
        MS.outer_rate(H, 0.1, 1, 0.0)
    with pytest.raises(ValueError, match="lam_neg"):
        MS.two_point_boundary(1.0, 0.2, 0.5, 3)
    with pytest.raises(ValueError, match="mean curvature"):
        MS.two_point_boundary(1.0, -2.0, 0.5, 3)
    with pytest.raises(ValueError, match="p_pos"):
        MS.two_point_limit(1.0, -0.2, 1.0)
    assert MS.critical_alpha(np.array([np.diag([-1.0, 1.0])]), 2, 1.0, 3.0) == 0.0
    assert MS.scaling_limit(np.array([np.diag([-1.0, 1.0])])) == 0.0
