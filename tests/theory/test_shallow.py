"""Closed forms for shallow MAML (linmeta.theory.shallow), checked against simulation."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.sim.montecarlo import post_adaptation_samples
from linmeta.theory import shallow


def _family(seed, d=3, out=2, noise=0.4):
    rng = np.random.default_rng(seed)
    L = rng.standard_normal((d, d)) / np.sqrt(d)
    S = L @ L.T + 0.3 * np.eye(d)
    S /= np.linalg.eigvalsh(S)[-1]
    return lm.GaussianRegression(d=d, out=out, mean=rng.standard_normal((out, d)), cov=0.5, input_cov=S,
                                 noise_std=noise), rng


@pytest.mark.parametrize("K, k", [(3, 1), (5, 2), (8, 3), (None, 2)])
def test_expected_meta_loss_matches_sampled_support_sets(K, k):
    """Averaging the engine's post-adaptation loss over many sampled tasks and support sets (4 SE)."""
    fam, rng = _family(K or 0 + k)
    M = rng.standard_normal((fam.out, fam.d))
    alpha = 0.2
    tasks = fam.sample_tasks(4000, rng)
    samples = post_adaptation_samples((M,), tasks, K, lm.InnerLoop(k, alpha), draws=10, rng=rng)
    # samples are independent across tasks (tasks are random too), so this is the SE of the family mean
    per_task = samples.mean(axis=0)
    se = per_task.std(ddof=1) / np.sqrt(per_task.size)
    exact = shallow.expected_meta_loss(M, fam, K, alpha, k)
    assert abs(per_task.mean() - exact) <= 4 * se


def test_per_task_expectation_matches_conditional_average():
    fam, rng = _family(11)
    M = rng.standard_normal((fam.out, fam.d))
    tasks = fam.sample_tasks(3, rng)
    samples = post_adaptation_samples((M,), tasks, 6, lm.InnerLoop(2, 0.3), draws=40000, rng=rng)
    exact = shallow.expected_task_loss(M, tasks, 6, 0.3, 2)
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    assert np.all(np.abs(samples.mean(axis=0) - exact) <= 4 * se)


def test_optimum_is_mean_task_for_shared_sigma():
    fam, _ = _family(2)
    for K, k in [(4, 1), (6, 3), (None, 2)]:
        assert np.allclose(shallow.maml_optimum(fam, K, 0.2, k), fam.mean_task(), rtol=1e-12)


def test_optimum_minimises_expected_loss_for_mixtures():
    fam1, rng = _family(3)
    fam2 = lm.GaussianRegression(d=3, out=2, mean=rng.standard_normal((2, 3)), input_cov=0.2 * np.eye(3))
    mix = lm.TaskMixture((fam1, fam2), (0.4, 0.6))
    Mstar = shallow.maml_optimum(mix, 5, 0.3, 2)
    f0 = shallow.expected_meta_loss(Mstar, mix, 5, 0.3, 2)
    for _ in range(5):
        dM = 1e-3 * rng.standard_normal(Mstar.shape)
        assert shallow.expected_meta_loss(Mstar + dM, mix, 5, 0.3, 2) > f0
    # and it is not simply the mean task when Σ differs
    assert not np.allclose(Mstar, mix.mean_task(), atol=1e-3)


def test_floor_and_optimal_alpha():
    fam = lm.GaussianRegression(d=4, input_cov=np.diag([1.0, 0.5, 0.3, 0.1]))
    a_star, f_star = shallow.optimal_alpha(fam, None, 1)
    grid = np.linspace(0.0, 2.0, 2001)
    vals = [shallow.shallow_floor(fam, None, a, 1) for a in grid]
    assert f_star <= min(vals) + 1e-12
    assert abs(a_star - grid[int(np.argmin(vals))]) <= 2e-3
    # zero steps: the floor is the pre-adaptation loss ½ tr(Σ C) + ½σ²
    assert np.isclose(shallow.shallow_floor(fam, None, 0.5, 0), 0.5 * np.trace(fam.input_cov))


def test_population_inner_loss_limit_of_many_shots():
    fam, rng = _family(4)
    M = rng.standard_normal((fam.out, fam.d))
    pop = shallow.expected_meta_loss(M, fam, None, 0.2, 2)
    assert abs(shallow.expected_meta_loss(M, fam, 10**8, 0.2, 2) - pop) <= 1e-6 * pop


def test_bad_arguments():
    fam, _ = _family(5)
    with pytest.raises(ValueError, match="K must be a positive"):
        shallow.expected_meta_loss(np.zeros((2, 3)), fam, 0, 0.1, 1)
    with pytest.raises(ValueError, match="family must be"):
        shallow.maml_optimum("tasks", 3, 0.1, 1)
