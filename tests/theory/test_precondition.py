"""The implicit preconditioner of deep linear nets (linmeta.theory.precondition), against the engine's inner step."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.theory import metaopt, precondition

from ..helpers import central_diff_grad, rel_err


def _net(rng, d=4, widths=(3, 5), out=2, scheme="gaussian", n_runs=None):
    return lm.init_deep_linear(d, widths, out, scheme=scheme, rng=rng, n_runs=n_runs)


def _support(rng, d, out, n=7):
    return lm.sample_moments(rng.standard_normal((1, n, d)), rng.standard_normal((1, n, out)))


def _step(params, support, alpha, layers):
    return lm.adapted_map(params, support, lm.InnerLoop(1, alpha, layers=layers))[0]


def _products(params):
    """Upper and lower partial products by explicit loops (independent of linmeta.models)."""
    L = len(params)
    S, P = [], []
    for l in range(L):
        up = np.eye(params[-1].shape[0])
        for W in reversed(params[l + 1:]):
            up = up @ W
        low = np.eye(params[0].shape[1])
        for W in params[:l]:
            low = W @ low
        S.append(up)
        P.append(low)
    return S, P


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("alpha", [1e-3, 0.3, 7.0, 250.0])
def test_bottom_and_top_only_are_exact_for_any_alpha(depth, alpha):
    rng = np.random.default_rng(depth)
    params = _net(rng, widths=(3,) * (depth - 1))
    support = _support(rng, 4, 2)
    M = lm.end_to_end(params)
    G = support.grad(M[None])[0]
    S, P = _products(params)
    bottom = _step(params, support, alpha, "first")
    assert np.allclose(precondition.bottom_only_factor(params), S[0] @ S[0].T, rtol=1e-13, atol=0)
    scale = max(np.linalg.norm(M), alpha * np.linalg.norm(S[0] @ S[0].T @ G))
    assert np.linalg.norm(bottom - (M - alpha * precondition.bottom_only_factor(params) @ G)) <= 1e-13 * scale
    top = _step(params, support, alpha, "last")
    assert np.allclose(precondition.top_only_factor(params), P[-1].T @ P[-1], rtol=1e-13, atol=0)
    scale = max(np.linalg.norm(M), alpha * np.linalg.norm(G @ P[-1].T @ P[-1]))
    assert np.linalg.norm(top - (M - alpha * G @ precondition.top_only_factor(params))) <= 1e-13 * scale


def test_single_middle_layer_is_a_two_sided_exact_factor():
    rng = np.random.default_rng(3)
    params = _net(rng, widths=(3, 5))
    support = _support(rng, 4, 2)
    M = lm.end_to_end(params)
    G = support.grad(M[None])[0]
    step = lm.adapted_map(params, support, lm.InnerLoop(1, 0.8, layers=(1,)))[0]
    assert rel_err(step, M - 0.8 * precondition.implicit_update(params, G, layers=[1])) <= 1e-13


def test_first_order_term_is_the_derivative_of_the_step():
    """d M⁺/dα at α = 0 equals −Σ_l S_lS_lᵀ G P_lᵀP_l (central differences in α, independent of T4)."""
    rng = np.random.default_rng(4)
    params = _net(rng, widths=(3, 5))
    support = _support(rng, 4, 2)
    G = support.grad(lm.end_to_end(params)[None])[0]
    for idx in [(0, 0), (1, 3), (0, 2)]:
        deriv = central_diff_grad(lambda a: _step(params, support, float(a[0]), "all")[idx], np.zeros(1), h=1e-3)[0]
        assert abs(deriv + precondition.implicit_update(params, G)[idx]) <= 1e-9


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_all_layer_residual_is_second_order(depth):
    rng = np.random.default_rng(10 + depth)
    params = _net(rng, widths=(3,) * (depth - 1))
    support = _support(rng, 4, 2)
    M = lm.end_to_end(params)
    G = support.grad(M[None])[0]
    first = precondition.implicit_update(params, G)
    alphas = 0.05 * 0.5 ** np.arange(6)
    resid = np.array([np.linalg.norm(_step(params, support, a, "all") - (M - a * first)) for a in alphas])
    ratios = resid[:-1] / resid[1:]
    coeffs = metaopt.step_polynomial(params, G)
    for a, r in zip(alphas[:-1], ratios):
        lo, hi = metaopt.residual_ratio_interval(coeffs, a, rounding=1e-13)
        assert lo <= r <= hi
    assert abs(ratios[-1] - 4) < 0.05
    # and the residual divided by α² tends to ‖C_2‖
    assert abs(resid[-1] / alphas[-1] ** 2 / np.linalg.norm(coeffs[2]) - 1) < 0.05


def test_exact_one_step_map_matches_engine_and_polynomial():
    rng = np.random.default_rng(5)
    params = _net(rng, widths=(3, 5))
    support = _support(rng, 4, 2)
    G = support.grad(lm.end_to_end(params)[None])[0]
    coeffs = metaopt.step_polynomial(params, G)
    for alpha in (0.01, 0.7, 3.0):
        engine = _step(params, support, alpha, "all")
        assert rel_err(precondition.exact_one_step_map(params, G, alpha), engine) <= 1e-13
        assert rel_err(sum(alpha**k * C for k, C in enumerate(coeffs)), engine) <= 1e-13
    assert len(coeffs) == 4 and rel_err(coeffs[1], -precondition.implicit_update(params, G)) <= 1e-14


def test_vec_form_is_the_kronecker_sum():
    rng = np.random.default_rng(6)
    params = _net(rng, widths=(3,))
    G = rng.standard_normal((2, 4))
    vec = lambda A: A.T.reshape(-1)  # column-major
    K = precondition.implicit_matrix(params)
    assert K.shape == (8, 8)
    assert rel_err(K @ vec(G), vec(precondition.implicit_update(params, G))) <= 1e-14
    # a sum of Kronecker products of PSD factors is PSD
    assert np.linalg.eigvalsh(K)[0] >= -1e-12 * np.linalg.eigvalsh(K)[-1]
    step = precondition.implicit_step_size(params, 0.1)
    assert np.isclose(step, 0.1 * np.linalg.eigvalsh(K)[-1], rtol=1e-14)


def test_scalar_output_two_layer_form_p8():
    """P8: for ŷ = w₂ᵀW₁x the first-order step is g ↦ g (‖w₂‖² I + W₁ᵀW₁)."""
    rng = np.random.default_rng(7)
    params = _net(rng, widths=(5,), out=1)
    W1, w2 = params
    G = rng.standard_normal((1, 4))
    expected = G @ (np.sum(w2**2) * np.eye(4) + W1.T @ W1)
    assert rel_err(precondition.implicit_update(params, G), expected) <= 1e-14


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_balanced_form_holds_under_balanced_init_only(depth):
    rng = np.random.default_rng(20 + depth)
    for scheme, should_match in (("balanced", True), ("gaussian", False)):
        params = _net(rng, d=4, widths=(3,) * (depth - 1), out=2, scheme=scheme)
        assert lm.models.is_balanced(params) == should_match
        M = lm.end_to_end(params)
        G = rng.standard_normal(M.shape)
        form = sum(l @ G @ r for l, r in precondition.balanced_factors(M, depth))
        err = rel_err(precondition.implicit_update(params, G), form)
        assert (err <= 1e-10) if should_match else (err > 1e-2)


def test_balanced_form_with_run_axis():
    rng = np.random.default_rng(30)
    params = _net(rng, d=3, widths=(4, 4), out=3, scheme="balanced", n_runs=3)
    M = lm.end_to_end(params)
    G = rng.standard_normal(M.shape)
    form = sum(l @ G @ r for l, r in precondition.balanced_factors(M, 3))
    assert rel_err(precondition.implicit_update(params, G), form) <= 1e-10


def test_psd_power():
    rng = np.random.default_rng(8)
    A = rng.standard_normal((4, 2))
    A = A @ A.T  # rank 2
    half = precondition.psd_power(A, 0.5)
    assert rel_err(half @ half, A) <= 1e-12
    assert rel_err(precondition.psd_power(A, 1.0), A) <= 1e-12
    assert rel_err(precondition.psd_power(A, 0.0), np.eye(4)) <= 1e-12
    third = precondition.psd_power(A, 1 / 3)
    assert rel_err(third @ third @ third, A) <= 1e-10
    # the null space stays null: no blow-up of round-off eigenvalues
    null = np.linalg.eigh(A)[1][:, :2]
    assert np.max(np.abs(third @ null)) <= 1e-10


def test_factors_of_selected_layers_and_identity_ends():
    rng = np.random.default_rng(9)
    params = _net(rng, widths=(3, 5))
    fs = precondition.factors(params, [0, 2])
    S, P = _products(params)
    assert len(fs) == 2
    assert rel_err(fs[0][0], S[0] @ S[0].T) <= 1e-14 and np.array_equal(fs[0][1], np.eye(4))
    assert np.array_equal(fs[1][0], np.eye(2)) and rel_err(fs[1][1], P[2].T @ P[2]) <= 1e-14
