"""linmeta.theory.wick: exact Gaussian word expectations against independent routes and sampling."""
import numpy as np
import pytest

from linmeta.theory import wick as W
from linmeta.theory.gaussian_moments import chain_moment


def _spd(rng, d):
    A = rng.standard_normal((d, d))
    return A @ A.T / d + 0.3 * np.eye(d)


def _chain(n):
    """Word tr(C0 Σ̂ C1 Σ̂ ⋯ C_{n-1} Σ̂)·K^n with constants 0..n-1."""
    word = ()
    for i in range(n):
        word += (W.Const(i), W.XT, W.X)
    return word


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("K", [1, 3, 10])
def test_sigma_hat_chains_match_chain_moment(n, K):
    """Independent route: the Σ̂-chain enumeration of gaussian_moments (different algorithm, same sum)."""
    rng = np.random.default_rng(n * 10 + K)
    d = 3
    S = _spd(rng, d)
    C = [rng.standard_normal((d, d)) for _ in range(n)]
    got = W.expected_trace([(K**-n, _chain(n))], C, S, K)
    ref = np.trace(C[0] @ chain_moment(S, K, n, {i: C[i] for i in range(1, n)}))
    assert abs(got - ref) <= 1e-12 * max(1.0, abs(ref))


def test_noise_quadratic_identity():
    """E tr(P n C nᵀ) = σ² tr(P) tr(CΣ)/K for n = EᵀX/K (E independent of X)."""
    rng = np.random.default_rng(1)
    d, o, K, s2 = 4, 3, 5, 0.7
    S, P, C = _spd(rng, d), rng.standard_normal((o, o)), rng.standard_normal((d, d))
    got = W.expected_trace([(K**-2, (W.Const(0), W.ET, W.X, W.Const(1), W.XT, W.E))], [P, C], S, K, s2, o)
    assert abs(got - s2 * np.trace(P) * np.trace(C @ S) / K) < 1e-12 * abs(got)


def test_pure_noise_cycle_uses_noise_dim():
    """E tr(EᵀE) = K o σ²: a cycle of σ²I alone counts the noise dimension."""
    assert W.expected_trace([(1.0, (W.ET, W.E))], [], np.eye(2), 7, 0.5, 3) == pytest.approx(7 * 3 * 0.5, rel=1e-15)


def test_odd_words_vanish_and_plans_count_all_matchings():
    assert W.plan((("X", True), ("C", 0, False))) == ()
    assert W.plan((("X", True), ("X", False), ("E", True), ("C", 0, False))) == ()
    # 6 X's and 2 E's: 5!! · 1!! = 15 matchings in all, merged into fewer distinct plans
    word = W._pattern((W.Const(0), W.XT, W.X, W.Const(1), W.ET, W.X, W.Const(2), W.XT, W.E, W.XT, W.X))
    plans = W.plan(word)
    assert sum(count for count, _, _ in plans) == 15
    assert len(plans) <= 15


def test_trace_of_transpose_is_the_same():
    rng = np.random.default_rng(2)
    d, o, K = 3, 2, 4
    S = _spd(rng, d)
    C = [rng.standard_normal((o, d)), rng.standard_normal((d, d)), rng.standard_normal((d, o)),
         rng.standard_normal((o, o))]
    word = (W.Const(0), W.XT, W.X, W.Const(1), W.XT, W.E, W.Const(3), W.ET, W.X, W.XT, W.X, W.Const(2))
    a = W.expected_trace([(1.0, word)], C, S, K, 0.3, o)
    assert abs(a) > 1e-3
    b = W.expected_trace([(1.0, W.transpose_word(word))], C, S, K, 0.3, o)
    assert abs(a - b) < 1e-12 * abs(a)


def test_batched_constants_match_one_at_a_time():
    rng = np.random.default_rng(3)
    d, K, T = 3, 4, 5
    S = np.stack([_spd(rng, d) for _ in range(T)])
    C = rng.standard_normal((T, d, d))
    word = (W.Const(0), W.XT, W.X, W.Const(0), W.XT, W.X)
    batched = W.expected_trace([(1.0, word)], [C], S, K)
    one = [W.expected_trace([(1.0, word)], [C[t]], S[t], K) for t in range(T)]
    assert batched.shape == (T,)
    assert np.allclose(batched, one, rtol=1e-14, atol=0)


def test_messy_word_against_sampling():
    """Mixed Σ̂ and noise factors, rectangular and transposed constants: within 4 standard errors."""
    rng = np.random.default_rng(4)
    d, o, K, s2 = 3, 2, 4, 0.6
    S = _spd(rng, d)
    Pm, C, Dl = rng.standard_normal((o, o)), rng.standard_normal((d, d)), rng.standard_normal((o, d))
    word = (W.Const(0), W.ET, W.X, W.Const(1), W.XT, W.E, W.Const(0), W.Const(2), W.XT, W.X,
            W.Const(1).T, W.XT, W.X, W.Const(2).T)
    exact = W.expected_trace([(K**-4, word)], [Pm, C, Dl], S, K, s2, o)
    N = 200_000
    X = rng.standard_normal((N, K, d)) @ np.linalg.cholesky(S).T
    Ns = np.sqrt(s2) * rng.standard_normal((N, K, o))
    n, Sh = Ns.mT @ X / K, X.mT @ X / K
    vals = np.einsum("nii->n", Pm @ n @ C @ n.mT @ Pm @ Dl @ Sh @ C.T @ Sh @ Dl.T)
    se = vals.std(ddof=1) / np.sqrt(N)
    assert abs(vals.mean() - exact) < 4 * se


def test_bad_words_are_refused():
    with pytest.raises(ValueError, match="Const and Gauss"):
        W.expected_trace([(1.0, ("X",))], [], np.eye(2), 3)
    with pytest.raises(ValueError, match="kind must be 'X' or 'E'"):
        W.expected_trace([(1.0, (W.Gauss("Y"), W.Gauss("Y", True)))], [], np.eye(2), 3)
    with pytest.raises(ValueError, match="Monte Carlo"):
        W.expected_trace([(1.0, _chain(6))], [np.eye(2)] * 6, np.eye(2), 3)


def test_count_components_matches_scipy_on_random_graphs():
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(7)
    for _ in range(50):
        n = int(rng.integers(1, 12))
        m = int(rng.integers(0, 2 * n))
        edges = [tuple(int(v) for v in rng.integers(0, n, 2)) for _ in range(m)]
        rows, cols = (np.array([e[i] for e in edges], dtype=int) for i in (0, 1))
        graph = coo_matrix((np.ones(m), (rows, cols)), shape=(n, n))
        assert W.count_components(n, edges) == connected_components(graph, directed=False)[0]
