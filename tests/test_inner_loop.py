"""Inner-loop rules (linmeta.inner_loop)."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.inner_loop import InnerLoop, run_inner_loop


@pytest.mark.parametrize(
    "layers, expected",
    [("all", (0, 1, 2)), ("last", (2,)), ("first", (0,)), ("none", ()), ((2, 0), (0, 2)), ((-1,), (2,))],
)
def test_adapted_layers(layers, expected):
    assert InnerLoop(1, 0.1, layers).adapted_layers(3) == expected


def test_zero_steps_adapt_nothing():
    assert InnerLoop(0, 0.1).adapted_layers(3) == ()


def test_frozen_layers_do_not_move_and_adapted_ones_do():
    rng = np.random.default_rng(0)
    batch = lm.meta_batch(lm.GaussianRegression(d=3).sample_tasks(4, rng), 5, 5, rng)
    params = lm.init_deep_linear(3, (4,), 1, rng=rng)
    theta = [f.dense() for f in run_inner_loop(params, batch.support, InnerLoop(2, 0.1, "last"))]
    assert np.array_equal(theta[0][..., 0, :, :], params[0])
    assert theta[1].shape == (4, 1, 4) and not np.allclose(theta[1], params[1])


def test_shallow_k_steps_closed_form():
    """Shallow: E_k = E (I − αA)^k + ... exactly k-step GD on the quadratic."""
    rng = np.random.default_rng(1)
    batch = lm.meta_batch(lm.GaussianRegression(d=3, out=2).sample_tasks(2, rng), 6, 6, rng)
    M = rng.standard_normal((2, 3))
    alpha, k = 0.2, 3
    got = run_inner_loop((M,), batch.support, InnerLoop(k, alpha))[0].dense()
    A, B = batch.support.A, batch.support.B
    ref = np.broadcast_to(M, (2, 2, 3)).copy()
    for _ in range(k):
        ref = ref - alpha * (ref @ A - np.swapaxes(B, -1, -2))
    assert np.allclose(got, ref, rtol=1e-13)


def test_negative_alpha_is_allowed():
    InnerLoop(2, -0.3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=-1), "steps must be a non-negative"),
        (dict(alpha=float("nan")), "alpha must be finite"),
        (dict(alpha="0.1"), "alpha must be a real"),
        (dict(layers="head"), "layers must be one of"),
        (dict(first_order=True, layers="none"), "first_order=True needs an inner loop"),
        (dict(first_order=True, steps=0), "first_order=True needs an inner loop"),
        (dict(first_order=1), "first_order must be True or False"),
        (dict(inner_loss="query"), "inner_loss must be one of"),
    ],
)
def test_bad_rules(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InnerLoop(**kwargs)


def test_layer_index_out_of_range():
    with pytest.raises(ValueError, match="only 2 layers"):
        InnerLoop(1, 0.1, (3,)).adapted_layers(2)
