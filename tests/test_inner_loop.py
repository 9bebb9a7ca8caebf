"""The factored inner loop (linmeta.inner_loop.run_inner_loop)."""
import numpy as np
import linmeta as lm
from linmeta.inner_loop import run_inner_loop
from linmeta.rule import InnerLoop


def test_frozen_layers_do_not_move_and_adapted_ones_do():
    rng = np.random.default_rng(0)
    batch = lm.meta_batch(lm.GaussianRegression(d=3).sample_tasks(4, rng), 5, 5, rng)
    params = lm.init_deep_linear(3, (4,), 1, rng=rng)
    theta = [f.dense() for f in run_inner_loop(params, batch.support, InnerLoop(2, 0.1, "last"), lm.Identity(), ((), ()))]
    assert np.array_equal(theta[0][..., 0, :, :], params[0])
    assert theta[1].shape == (4, 1, 4) and not np.allclose(theta[1], params[1])


def test_shallow_k_steps_closed_form():
    """Shallow: E_k = E (I − αA)^k + ... exactly k-step GD on the quadratic."""
    rng = np.random.default_rng(1)
    batch = lm.meta_batch(lm.GaussianRegression(d=3, out=2).sample_tasks(2, rng), 6, 6, rng)
    M = rng.standard_normal((2, 3))
    alpha, k = 0.2, 3
    got = run_inner_loop((M,), batch.support, InnerLoop(k, alpha), lm.Identity(), ((),))[0].dense()
    A, B = batch.support.A, batch.support.B
    ref = np.broadcast_to(M, (2, 2, 3)).copy()
    for _ in range(k):
        ref = ref - alpha * (ref @ A - np.swapaxes(B, -1, -2))
    assert np.allclose(got, ref, rtol=1e-13)
