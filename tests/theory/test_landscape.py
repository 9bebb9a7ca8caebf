"""Tests of linmeta.theory.landscape: closed forms against independent computations, Monte Carlo and properties."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import linmeta as lm
from ..helpers import rel_err, within_se
from linmeta.theory import landscape
from linmeta.theory import shallow


def _spd(rng, d, scale=1.0):
    X = rng.standard_normal((d, d))
    S = X @ X.T / d + 0.2 * np.eye(d)
    return scale * S / np.linalg.eigvalsh(S)[-1]


def _mixture(seed=0, d=3, noise=(0.3, 0.5)):
    rng = np.random.default_rng(seed)
    comps = tuple(lm.GaussianRegression(d=d, mean=rng.standard_normal((1, d)), cov=_spd(rng, d, 0.5),
                                        input_cov=_spd(rng, d, s), noise_std=nz) for s, nz in zip((0.3, 1.0), noise))
    return lm.TaskMixture(comps, (0.4, 0.6))


# --------------------------------------------------------------------------- curvature


def test_curvature_no_adaptation_is_sigma():
    S = _spd(np.random.default_rng(0), 3)
    q = landscape.curvature(S, 5, 0.7, 0, noise_std=0.5)
    assert np.array_equal(q.A, S) and float(q.noise) == 0.0 and np.allclose(q.B, np.eye(3))


@pytest.mark.parametrize("steps", [1, 2, 4])
def test_curvature_population_is_power_sandwich(steps):
    S = _spd(np.random.default_rng(1), 4)
    P = np.linalg.matrix_power(np.eye(4) - 0.8 * S, steps)
    for sampling in ("same", "fresh"):
        q = landscape.curvature(S, None, 0.8, steps, noise_std=0.3, sampling=sampling)
        assert rel_err(q.A, P @ S @ P) < 1e-13 and float(q.noise) == 0.0 and rel_err(q.B, P) < 1e-13


def test_one_step_same_equals_fresh():
    S = _spd(np.random.default_rng(2), 3)
    a, b = (landscape.curvature(S, 7, 0.6, 1, noise_std=0.4, sampling=s) for s in ("same", "fresh"))
    assert rel_err(a.A, b.A) < 1e-12 and abs(float(a.noise) - float(b.noise)) < 1e-12 * float(a.noise)
    assert rel_err(a.B, b.B) < 1e-12


def _mc_excess(S, e, alpha, steps, m, noise, sampling, n, rng):
    """Direct simulation with sampled inputs (independent of the engine): post-step excess ½ e'ᵀΣe'."""
    d = S.shape[0]
    Lc = np.linalg.cholesky(S)
    E = np.broadcast_to(e, (n, d)).copy()
    X = Lc @ rng.standard_normal((n, d, m))  # (n, d, m): one batch reused unless fresh
    eps = noise * rng.standard_normal((n, m))
    for _ in range(steps):
        if sampling == "fresh":
            X = Lc @ rng.standard_normal((n, d, m))
            eps = noise * rng.standard_normal((n, m))
        r = np.einsum("ndm,nd->nm", X, E) - eps  # residual xᵀe − ε (y − xᵀw* = ε)
        E = E - alpha * np.einsum("ndm,nm->nd", X, r) / m
    return 0.5 * np.einsum("nd,de,ne->n", E, S, E)


@pytest.mark.parametrize("steps,sampling", [(1, "same"), (2, "same"), (2, "fresh"), (3, "fresh")])
def test_curvature_matches_simulation(steps, sampling):
    rng = np.random.default_rng(3)
    S = _spd(rng, 2)
    e = np.array([1.0, -0.5])
    x = _mc_excess(S, e, 0.7, steps, 4, 0.5, sampling, 200_000, rng)
    q = landscape.curvature(S, 4, 0.7, steps, noise_std=0.5, sampling=sampling)
    theory = 0.5 * e @ q.A @ e + float(q.noise)
    assert within_se(x.mean(), theory, x.std(ddof=1) / np.sqrt(x.size), 4.0), (x.mean(), theory)


def test_curvature_batched_over_types():
    rng = np.random.default_rng(4)
    S = np.stack([_spd(rng, 3), _spd(rng, 3)])
    for sampling in ("same", "fresh"):
        q = landscape.curvature(S, 6, 0.5, 2, noise_std=0.2, sampling=sampling)
        for i in range(2):
            qi = landscape.curvature(S[i], 6, 0.5, 2, noise_std=0.2, sampling=sampling)
            assert rel_err(q.A[i], qi.A) < 1e-12 and abs(q.noise[i] - float(qi.noise)) < 1e-12


# --------------------------------------------------------------------------- general mixtures


@pytest.mark.parametrize("steps,m", [(1, None), (1, 5), (2, 8), (3, None)])
def test_expected_excess_risk_matches_shallow(steps, m):
    fam = _mixture()
    W = np.random.default_rng(5).standard_normal((1, 3))
    got = landscape.expected_excess_risk(W, fam, m, 0.6, steps) + landscape.noise_floor(fam)
    want = shallow.expected_meta_loss(W, fam, m, 0.6, steps)
    assert abs(got - want) < 1e-12 * abs(want)
    assert rel_err(landscape.maml_optimum(fam, m, 0.6, steps), shallow.maml_optimum(fam, m, 0.6, steps)) < 1e-11


def test_excess_risk_vectorised_over_inits():
    fam = _mixture()
    W = np.random.default_rng(6).standard_normal((4, 5, 1, 3))
    got = landscape.expected_excess_risk(W, fam, 5, 0.6, 2)
    assert got.shape == (4, 5)
    assert abs(got[2, 3] - landscape.expected_excess_risk(W[2, 3], fam, 5, 0.6, 2)) < 1e-14 * got[2, 3]


def test_optima_minimise_and_gain_at_least_one():
    fam = _mixture(7)
    for steps, m, sampling in ((1, None, "same"), (1, 4, "same"), (2, 6, "same"), (4, 6, "fresh")):
        wm = landscape.maml_optimum(fam, m, 0.7, steps, sampling=sampling)
        e0 = landscape.expected_excess_risk(wm, fam, m, 0.7, steps, sampling=sampling)
        rng = np.random.default_rng(steps)
        for _ in range(5):
            w = wm + 0.1 * rng.standard_normal(wm.shape)
            assert landscape.expected_excess_risk(w, fam, m, 0.7, steps, sampling=sampling) > e0
        wn = landscape.nal_optimum(fam)
        assert landscape.expected_excess_risk(wn, fam, None, 0.7, 0) <= landscape.expected_excess_risk(wm, fam, None, 0.7, 0)
        assert landscape.gain(fam, m, 0.7, steps, sampling=sampling) >= 1.0
        assert landscape.gain(fam, m, 0.7, steps, sampling=sampling, include_floor=True) <= landscape.gain(fam, m, 0.7, steps, sampling=sampling)


def test_shared_sigma_optima_coincide_at_mean():
    """P2: identical (non-isotropic) Σ for every task gives w_MAML = w_FO = w_NAL = E[w*]."""
    rng = np.random.default_rng(8)
    S = _spd(rng, 3)
    fam = lm.TaskMixture(tuple(lm.GaussianRegression(d=3, mean=rng.standard_normal((1, 3)), cov=0.3, input_cov=S)
                               for _ in range(3)), (0.2, 0.3, 0.5))
    mean = fam.mean_task()
    for W in (landscape.nal_optimum(fam), landscape.maml_optimum(fam, 5, 0.9, 2), landscape.fo_maml_optimum(fam, 5, 0.9, 3, sampling="fresh")):
        assert rel_err(W, mean) < 1e-12
    assert abs(landscape.gain(fam, 5, 0.9, 1) - 1.0) < 1e-12


def test_fo_maml_isotropic_weights():
    """Population one-step FO-MAML weighs centre c by p_c ρ_c (1 − αρ_c)."""
    tc = landscape.TwoCluster(0.3, 0.2, 0.7, 1.0, 3.0, 1.0, 1.0, 4)
    fam = tc.family()
    w = np.array([0.3 * 0.2 * 0.8, 0.7 * 0.7 * 0.3])
    expect = w[1] / w.sum() * 3.0
    got = landscape.fo_maml_optimum(fam, None, 1.0, 1)[0]
    assert abs(got[0] - expect) < 1e-12 and np.max(np.abs(got[1:])) < 1e-12


def test_hessians_and_conditioning_examples():
    """Research note §4: κ_MAML = 818 vs κ_NAL = 9.9 for diag(0.1, 0.99); 1.024 vs 2.5 for diag(0.2, 0.5)."""
    h = landscape.hessians(lm.GaussianRegression(d=2, input_cov=np.diag([0.1, 0.99])), None, 1.0, 1)
    assert abs(h.kappa_nal - 9.9) < 1e-12 and abs(h.kappa_maml - 0.081 / (0.99 * 0.01**2)) < 1e-9
    h = landscape.hessians(lm.GaussianRegression(d=2, input_cov=np.diag([0.2, 0.5])), None, 1.0, 1)
    assert abs(h.kappa_nal - 2.5) < 1e-12 and abs(h.kappa_maml - 0.128 / 0.125) < 1e-12
    tc = landscape.TwoCluster(0.5, 0.1, 0.9, 1.0, 2.0, 1.0, 1.0, 3)
    h = landscape.hessians(tc.family(), None, 1.0, 1)
    assert rel_err(h.maml, 0.045 * np.eye(3)) < 1e-12 and rel_err(h.nal, 0.5 * np.eye(3)) < 1e-12


def test_mean_gd_path_and_iterations():
    H = np.diag([1.0, 0.1])
    path = landscape.mean_gd_path(H, np.array([1.0, 1.0]), np.zeros(2), 1.0, 3)
    assert np.allclose(path, [np.sqrt(2), 0.9, 0.81, 0.729])
    assert landscape.gd_iterations(H, 0.01) == np.ceil(np.log(0.01) / np.log(0.9))
    assert landscape.gd_iterations(H, 0.01, lr=2.5) == float("inf")
    assert landscape.condition_number(H) == pytest.approx(10.0)


def test_quadratic_gain_matches_family_gain():
    tc = landscape.TwoCluster(0.4, 0.2, 0.8, 1.0, 3.0, 0.7, 1.2, 3, K=10, noise=0.3)
    r = landscape.two_cluster(tc)
    comps = [(0.4, 0.2, 0.7, np.zeros(3), r.c_hard), (0.6, 0.8, 1.2, np.r_[3.0, 0, 0], r.c_easy)]
    n = [landscape.isotropic_curvature(rho, 3, 10, 1.0, 1, 0.3)[1] for _, rho, *_ in comps]
    q = landscape.quadratic_gain([c[0] for c in comps], [c[3] for c in comps], [c[2] ** 2 / 3 * np.eye(3) for c in comps],
                         [c[1] * np.eye(3) for c in comps], [2 * c[4] * np.eye(3) for c in comps], n)
    assert abs(q.gain - r.gain) < 1e-12 * r.gain and abs(q.excess_maml - r.excess_maml) < 1e-12 * r.excess_maml
    # a flat direction shared by every type: minimum unique, minimiser not (pinv picks one)
    flat = np.diag([1.0, 0.0])
    q = landscape.quadratic_gain([0.5, 0.5], [[0, 0], [1, 1]], [np.zeros((2, 2))] * 2, [flat, 2 * flat], [flat, 0.1 * flat])
    assert np.isfinite(q.gain) and q.gain >= 1.0


# --------------------------------------------------------------------------- two-cluster landscape


@pytest.mark.parametrize("kw", [dict(), dict(K=7, noise=0.4), dict(steps=3), dict(K=12, steps=2, noise=0.5),
                                dict(K=12, steps=5, sampling="fresh", noise=0.5)])
def test_two_cluster_matches_general_functions(kw):
    tc = landscape.TwoCluster(0.35, 0.15, 0.8, 1.1, 2.5, 0.6, 1.3, 4, **kw)
    r = landscape.two_cluster(tc)
    fam = tc.family()
    args = (tc.K, tc.alpha, tc.steps)
    assert abs(r.gain - landscape.gain(fam, *args, sampling=tc.sampling)) < 1e-11 * r.gain
    wm, wn = landscape.two_cluster_optima(tc)
    assert rel_err(wm, landscape.maml_optimum(fam, *args, sampling=tc.sampling)) < 1e-11
    assert rel_err(wn, landscape.nal_optimum(fam)) < 1e-12
    assert abs(landscape.expected_excess_risk(wm, fam, *args, sampling=tc.sampling) - r.excess_maml) < 1e-11 * r.excess_maml
    assert abs(landscape.expected_excess_risk(wn, fam, *args, sampling=tc.sampling) - r.excess_nal) < 1e-11 * r.excess_nal
    floor = 0.5 * tc.noise**2
    assert abs(r.gain_with_floor - landscape.gain(fam, *args, sampling=tc.sampling, include_floor=True)) < 1e-11
    assert r.gain_with_floor <= r.gain or floor == 0


def test_two_cluster_p2_equal_hardness_and_zero_distance():
    for m, k in ((None, 1), (3, 1), (20, 2)):
        assert landscape.two_cluster(landscape.TwoCluster(0.3, 0.6, 0.6, 1.0, 5.0, 0.5, 2.0, 4, K=m, steps=k, noise=0.2)).gain == 1.0
        assert abs(landscape.two_cluster(landscape.TwoCluster(0.3, 0.1, 0.6, 1.0, 0.0, 0.5, 2.0, 4, K=m, steps=k)).gain - 1) < 1e-15


def test_two_cluster_p4_attained_and_p8_re_free():
    for k in (1, 3):
        gains = [landscape.two_cluster(landscape.TwoCluster(0.4, 0.3, 1.0, 1.0, 3.0, 0.8, RE, 5, steps=k)) for RE in (0.0, 1.0, 5.0)]
        for r in gains:
            assert abs(r.gain - r.bound) < 1e-12 * r.bound
        assert gains[0].gain == gains[2].gain


def test_coincidence_shots():
    """With ρ_H = 1/3, ρ_E = α = 1: m* = 2(d+1) is an integer and the gain is exactly 1 there."""
    d = 4
    assert abs(landscape.coincidence_shots(1 / 3, 1.0, 1.0, d) - 2 * (d + 1)) < 1e-12
    r = landscape.two_cluster(landscape.TwoCluster(0.5, 1 / 3, 1.0, 1.0, 3.0, 1.0, 1.0, d, K=2 * (d + 1)))
    assert abs(r.gain - 1.0) < 1e-12 and abs(r.q_easy - r.s_easy) < 1e-12
    assert np.isnan(landscape.coincidence_shots(0.5, 0.5, 1.0, d))


_rho = st.floats(0.01, 1.0)


@settings(max_examples=300, deadline=None)
@example(p=0.5, a=1.0, b=1.0, alpha=1.0, D=0.0, RH=1.0, RE=0.0, d=1, k=1, noise=0.0)
@given(p=st.floats(0.02, 0.98), a=_rho, b=_rho, alpha=st.floats(0.05, 3.0), D=st.floats(0.0, 50.0),
       RH=st.floats(0.05, 5.0), RE=st.floats(0.0, 5.0), d=st.integers(1, 20), k=st.integers(1, 6),
       noise=st.floats(0.0, 2.0))
def test_bound_holds_population(p, a, b, alpha, D, RH, RE, d, k, noise):
    """P3: with population gradients and ρ_H ≤ ρ_E ≤ 1/α, 1 ≤ gain ≤ 1 + s_E²D²/R_H²."""
    rho_h, rho_e = min(a, b) / alpha, max(a, b) / alpha
    tc = landscape.TwoCluster(p, rho_h, rho_e, alpha, D, RH, RE, d, None, noise, k)
    if all(landscape.isotropic_curvature(rho, d, None, alpha, k)[0] == 0.0 for rho in (rho_h, rho_e)):
        # αρ = 1 for both clusters: every task is solved by the inner loop, the MAML optimum is not unique
        with pytest.raises(ValueError, match="both clusters are solved exactly"):
            landscape.two_cluster(tc)
        return
    r = landscape.two_cluster(tc)
    assert r.bound_applies
    assert 1.0 - 1e-12 <= r.gain <= r.bound * (1 + 1e-12)
    assert r.gain <= r.gain_limit * (1 + 1e-12)


@settings(max_examples=200, deadline=None)
@given(p=st.floats(0.02, 0.98), a=st.floats(0.01, 2.0), b=st.floats(0.01, 2.0), D=st.floats(0.0, 20.0),
       RH=st.floats(0.05, 5.0), RE=st.floats(0.0, 5.0), d=st.integers(1, 10), K=st.integers(1, 200),
       k=st.integers(1, 4), noise=st.floats(0.0, 1.0))
def test_bound_condition_is_sufficient(p, a, b, D, RH, RE, d, K, k, noise):
    """With finite K (fresh batches) and any curvatures: q_E ≤ s_E(2 − s_E) implies gain ≤ bound."""
    r = landscape.two_cluster(landscape.TwoCluster(p, a, b, 1.0, D, RH, RE, d, K, noise, k, "fresh"))
    assert r.gain >= 1.0 - 1e-12
    if r.bound_applies:
        assert r.gain <= r.bound * (1 + 1e-12)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("call,match", [
    (lambda: landscape.curvature(np.eye(2), 5, 0.5, 4), "sampling='fresh'"),
    (lambda: landscape.curvature(np.eye(2), 5, 0.5, 1, sampling="twice"), "sampling"),
    (lambda: landscape.curvature(-np.eye(2), 5, 0.5, 1), "positive semi-definite"),
    (lambda: landscape.curvature(np.eye(2), 0, 0.5, 1), "K must be a positive"),
    (lambda: landscape.TwoCluster(1.0, 0.1, 0.9, 1.0, 1.0, 1.0, 1.0, 3), "p_hard"),
    (lambda: landscape.TwoCluster(0.5, -0.1, 0.9, 1.0, 1.0, 1.0, 1.0, 3), "rho_hard"),
    (lambda: landscape.two_cluster(landscape.TwoCluster(0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3)), "flat"),
    (lambda: landscape.expected_excess_risk(np.zeros((1, 4)), _mixture(), None, 0.5), "trailing shape"),
    (lambda: landscape.nal_optimum("tasks"), "family"),
    (lambda: landscape.fo_maml_optimum(_mixture(), None, 0.5, 0), "steps"),
    (lambda: landscape.gd_iterations(np.eye(2), 1.5), "tol"),
])
def test_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
