"""Deep linear models (linmeta.models)."""
import numpy as np
import pytest

from linmeta.models import (end_to_end, init_deep_linear, is_balanced, layer_sizes, prefix_products,
                            suffix_products, validate_params)


@pytest.mark.parametrize("scheme", ["gaussian", "orthogonal", "balanced", "zero_head"])
def test_shapes_and_run_axis(scheme):
    p = init_deep_linear(5, (4, 6), 3, scheme=scheme, rng=0, n_runs=2)
    assert [W.shape for W in p] == [(2, 4, 5), (2, 6, 4), (2, 3, 6)]
    assert layer_sizes(p) == (5, 4, 6, 3)
    assert end_to_end(p).shape == (2, 3, 5)


def test_partial_products_reassemble_the_map():
    p = init_deep_linear(4, (3, 5, 2), 2, rng=1)
    P, S, M = prefix_products(p), suffix_products(p), end_to_end(p)
    for l in range(len(p)):
        left = np.eye(2) if S[l] is None else S[l]
        right = np.eye(4) if P[l] is None else P[l]
        assert np.allclose(left @ p[l] @ right, M, rtol=1e-13, atol=1e-15)


def test_balanced_init_is_balanced_and_gaussian_scaled():
    p = init_deep_linear(6, (5, 7), 2, scheme="balanced", rng=2)
    assert is_balanced(p)
    assert not is_balanced(init_deep_linear(6, (5, 7), 2, rng=2))


def test_orthogonal_layers():
    p = init_deep_linear(4, (6,), 3, scheme="orthogonal", scale=2.0, rng=3)
    assert np.allclose(p[0].T @ p[0], 4 * np.eye(4))  # 6x4: orthonormal columns
    assert np.allclose(p[1] @ p[1].T, 4 * np.eye(3))  # 3x6: orthonormal rows


def test_gaussian_scale_statistics():
    p = init_deep_linear(50, (), 40, rng=4)
    # entries N(0, 1/50): sample variance of 2000 entries within 4 SE of 1/50
    v = p[0].var()
    assert abs(v - 1 / 50) <= 4 * (1 / 50) * np.sqrt(2 / p[0].size)


def test_zero_head():
    p = init_deep_linear(3, (4,), 2, scheme="zero_head", rng=5)
    assert np.all(p[-1] == 0) and np.any(p[0] != 0)


def test_seeded():
    a = init_deep_linear(3, (4,), 2, rng=7)
    b = init_deep_linear(3, (4,), 2, rng=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: init_deep_linear(0, ()), "d must be a positive"),
        (lambda: init_deep_linear(3, (0,)), r"widths\[0\] must be a positive"),
        (lambda: init_deep_linear(3, (-2,)), r"widths\[0\]"),
        (lambda: init_deep_linear(3, (), scheme="xavier"), "scheme must be one of"),
        (lambda: init_deep_linear(3, (), n_runs=0), "n_runs"),
        (lambda: validate_params(()), "non-empty"),
        (lambda: validate_params((np.zeros((2, 3)), np.zeros((1, 3)))), "chain"),
        (lambda: validate_params((np.zeros((2, 2, 3)), np.zeros((3, 1, 2)))), "run shape"),
    ],
)
def test_bad_model_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
