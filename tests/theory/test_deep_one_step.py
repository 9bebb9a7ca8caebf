"""linmeta.theory.deep_one_step: the exact one-step expected loss of deep linear models.

Partners: exact reductions (shallow closed form, ANIL closed form, the engine at population gradients),
the from-scratch sympy expansion (derivations/deep_one_step_loss.py), and sampled support sets.
"""
import numpy as np
import pytest

import linmeta as lm
from linmeta.meta import meta_loss
from linmeta.sim.montecarlo import post_adaptation_samples
from linmeta.theory import anil, shallow
from linmeta.theory.deep_one_step import expected_meta_loss, expected_task_loss


def _setup(seed=0, d=4, out=2, T=4, noise=0.4):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d))
    S = A @ A.T / d + 0.3 * np.eye(d)
    fam = lm.GaussianRegression(d=d, out=out, mean=rng.standard_normal((out, d)), cov=0.5, input_cov=S,
                                noise_std=noise)
    return rng, fam.sample_tasks(T, rng)


CASES = [((3,), "all"), ((3,), "last"), ((3,), "first"), ((5, 4), (0, 2)), ((5, 4), (1, 2)),
         ((5, 4), (0, 1)), ((5, 4), (1,)), ((2, 3, 2), (1, 3))]


@pytest.mark.parametrize("widths,layers", CASES)
def test_population_inner_loss_equals_engine(widths, layers):
    """K=None: the word expansion must reproduce the engine's adapted map exactly."""
    rng, tasks = _setup()
    params = lm.init_deep_linear(4, widths, 2, rng=rng)
    rule = lm.InnerLoop(1, 0.3, layers)
    pop = tasks.population()
    got = expected_meta_loss(params, tasks, None, rule)
    ref = float(meta_loss(params, pop, pop, rule))
    assert abs(got - ref) <= 1e-12 * ref
    # the rule's population inner loss means the same
    assert expected_meta_loss(params, tasks, 5, lm.InnerLoop(1, 0.3, layers, inner_loss="population")) == got


@pytest.mark.parametrize("K", [1, 2, 7])
def test_depth_one_equals_shallow_closed_form(K):
    rng, tasks = _setup(1)
    params = lm.init_deep_linear(4, (), 2, rng=rng)
    got = expected_task_loss(params, tasks, K, lm.InnerLoop(1, 0.2))
    ref = shallow.expected_task_loss(params[0], tasks, K, 0.2, 1)
    assert np.allclose(got, ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("widths", [(3,), (5, 4)])
@pytest.mark.parametrize("K", [1, 6])
def test_head_only_equals_anil_closed_form(widths, K):
    rng, tasks = _setup(2)
    params = lm.init_deep_linear(4, widths, 2, rng=rng)
    got = expected_task_loss(params, tasks, K, lm.InnerLoop(1, -0.25, "last"))
    ref = anil.anil_expected_task_loss(params, tasks, K, -0.25)
    assert np.allclose(got, ref, rtol=1e-12, atol=0)


def test_no_adaptation_is_the_population_loss():
    rng, tasks = _setup(3)
    params = lm.init_deep_linear(4, (3,), 2, rng=rng)
    pop = tasks.population()
    for rule in (lm.InnerLoop(0, 0.3), lm.InnerLoop(1, 0.0), lm.InnerLoop(1, 0.3, "none")):
        got = expected_task_loss(params, tasks, 4, rule)
        assert np.allclose(got, pop.value(lm.end_to_end(params)), rtol=1e-13, atol=0)


@pytest.mark.parametrize("widths,layers", [((3,), "all"), ((5, 4), (0, 2)), ((5, 4), "first")])
@pytest.mark.parametrize("K", [2, 8])
def test_matches_sampled_support_sets(widths, layers, K):
    """Mean over sampled support sets within 4 SE; the SE pools the per-task variances."""
    rng, tasks = _setup(4, T=3)
    params = lm.init_deep_linear(4, widths, 2, rng=rng)
    rule = lm.InnerLoop(1, 0.2, layers)
    exact = expected_meta_loss(params, tasks, K, rule)
    samples = post_adaptation_samples(params, tasks, K, rule, draws=20_000, rng=rng)
    se = np.sqrt(samples.var(axis=0, ddof=1).mean() / samples.size)
    assert abs(samples.mean() - exact) < 4 * se


def test_second_order_structure_matters():
    """The α² term (both layers adapting together) is not negligible: dropping it is caught by sampling."""
    rng, tasks = _setup(5, T=2)
    params = lm.init_deep_linear(4, (3,), 2, rng=rng)
    K, alpha = 5, 0.3
    both = expected_meta_loss(params, tasks, K, lm.InnerLoop(1, alpha, "all"))
    samples = post_adaptation_samples(params, tasks, K, lm.InnerLoop(1, alpha, "all"), draws=20_000, rng=rng)
    se = np.sqrt(samples.var(axis=0, ddof=1).mean() / samples.size)
    # the sum of the two one-layer corrections, without the cross term, is a different number
    base = expected_meta_loss(params, tasks, K, lm.InnerLoop(0, alpha))
    separate = sum(expected_meta_loss(params, tasks, K, lm.InnerLoop(1, alpha, (l,))) - base for l in (0, 1)) + base
    assert abs(samples.mean() - both) < 4 * se
    assert abs(samples.mean() - separate) > 10 * se


def test_run_axis_broadcasts():
    rng, tasks = _setup(6)
    runs = lm.init_deep_linear(4, (3,), 2, rng=rng, n_runs=3)
    rule = lm.InnerLoop(1, 0.2)
    batched = expected_task_loss(runs, tasks, 3, rule)
    assert batched.shape == (3, tasks.n_tasks)
    for r in range(3):
        one = expected_task_loss(tuple(W[r] for W in runs), tasks, 3, rule)
        assert np.allclose(batched[r], one, rtol=1e-13, atol=0)


def test_bad_input():
    rng, tasks = _setup(7)
    params = lm.init_deep_linear(4, (3, 3), 2, rng=rng)
    with pytest.raises(ValueError, match="rule.steps must be 0 or 1"):
        expected_task_loss(params, tasks, 3, lm.InnerLoop(2, 0.1, "last"))
    with pytest.raises(ValueError, match="at most 2"):
        expected_task_loss(params, tasks, 3, lm.InnerLoop(1, 0.1, "all"))
    with pytest.raises(ValueError, match="K must be a positive int"):
        expected_task_loss(params, tasks, 0, lm.InnerLoop(1, 0.1, "last"))
    with pytest.raises(ValueError, match="d=4, out=2 but the model maps d=3"):
        expected_task_loss(lm.init_deep_linear(3, (3,), 2, rng=rng), tasks, 3, lm.InnerLoop(1, 0.1))
    with pytest.raises(ValueError, match="TaskBatch"):
        expected_task_loss(params, "tasks", 3, lm.InnerLoop(1, 0.1, "last"))
    with pytest.raises(ValueError, match="InnerLoop"):
        expected_task_loss(params, tasks, 3, "maml")
