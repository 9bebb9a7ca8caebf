"""Monte Carlo estimates (linmeta.montecarlo)."""
import numpy as np

import linmeta as lm
from linmeta.montecarlo import estimate, expected_meta_loss_mc, post_adaptation_samples


def test_estimate_standard_error():
    x = np.random.default_rng(0).standard_normal(10_000)
    e = estimate(x)
    assert abs(e.stderr - 1 / 100) < 1e-3 and e.n == 10_000
    assert abs(e.z(0.0)) < 4.5


def test_samples_shape_and_seed():
    fam = lm.GaussianRegression(d=3)
    tasks = fam.sample_tasks(5, 0)
    params = lm.init_deep_linear(3, (4,), 1, rng=0)
    a = post_adaptation_samples(params, tasks, 4, lm.InnerLoop(1, 0.1), draws=7, rng=1, chunk=10)
    b = post_adaptation_samples(params, tasks, 4, lm.InnerLoop(1, 0.1), draws=7, rng=1, chunk=10)
    assert a.shape == (7, 5) and np.array_equal(a, b)


def test_deep_mc_converges_to_population_limit():
    """With many shots the support set is the population: the K-shot expectation tends to it."""
    fam = lm.GaussianRegression(d=3)
    tasks = fam.sample_tasks(20, 0)
    params = lm.init_deep_linear(3, (4,), 1, rng=0)
    rule = lm.InnerLoop(2, 0.2)
    pop = lm.meta_loss(params, tasks.population(), tasks.population(), rule)
    est = expected_meta_loss_mc(params, tasks, 20_000, rule, draws=50, rng=2)
    # K = 20000: bias O(1/K) ≈ 1e-4 relative, far below the 4-SE band
    assert abs(est.mean - pop) <= 4 * est.stderr + 1e-3 * pop


def test_run_axis_is_refused_with_a_clear_message():
    import pytest

    params = lm.init_deep_linear(3, (), 1, rng=0, n_runs=2)
    with pytest.raises(ValueError, match="without a run axis"):
        post_adaptation_samples(params, lm.GaussianRegression(d=3).sample_tasks(2, 0), 4, lm.InnerLoop(), draws=2,
                                rng=0)
