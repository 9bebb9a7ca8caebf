"""Monte Carlo estimates (linmeta.sim.montecarlo)."""
import numpy as np
import pytest

import linmeta as lm
from linmeta import InnerLoop
from linmeta.sim import montecarlo
from linmeta.sim.montecarlo import expected_meta_loss_mc, post_adaptation_samples
from linmeta.theory import landscape


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


@pytest.mark.parametrize("noise,mean", [(0.0, 0.0), (0.15, 1.5)])
def test_logr_zero_init_limits_match_engine(noise, mean):
    """One inner step from w = 0 on sampled binary tasks (any task distribution): engine vs reduction (4 SE)."""
    d, K, alpha = 5, 8, 0.3
    rng = np.random.default_rng(11)
    mu = np.zeros(d)
    mu[0] = mean
    fam = lm.BinaryClassification(d=d, mean=mu, label_noise=noise)
    batch = fam.meta_batch(fam.sample_tasks(20000, rng), K, 50, rng)
    M = lm.adapted_map((np.zeros((1, d)),), batch.support, lm.InnerLoop(1, alpha))
    acc, loss = np.asarray(batch.query.accuracy(M)), np.asarray(batch.query.value(M))
    lim = montecarlo.logr_zero_init_limits(alpha, d, K, noise, samples=200_000, rng=0)
    assert abs(acc.mean() - lim["accuracy"]) <= 4 * np.hypot(acc.std() / np.sqrt(acc.size), lim["accuracy_se"])
    assert abs(loss.mean() - lim["loss"]) <= 4 * np.hypot(loss.std() / np.sqrt(loss.size), lim["loss_se"])


def test_logr_limits_small_step_expansion_and_alpha_invariant_accuracy():
    a = montecarlo.logr_zero_init_limits(1e-3, 6, 10, 0.1, samples=50_000, rng=1)
    b = montecarlo.logr_zero_init_limits(0.5, 6, 10, 0.1, samples=50_000, rng=1)
    assert abs(a["loss"] - a["loss_first_order"]) <= 1e-6  # O(α²) remainder
    assert a["accuracy"] == pytest.approx(b["accuracy"], abs=1e-12)  # the direction does not depend on α




@pytest.mark.parametrize("kw", [dict(), dict(K=6, noise=0.5), dict(K=6, steps=2, noise=0.5),
                                dict(K=6, steps=3, sampling="fresh", noise=0.5)])
def test_excess_samples_match_closed_form(kw):
    tc = landscape.TwoCluster(0.4, 0.2, 0.8, 1.0, 3.0, 0.8, 1.2, 3, **kw)
    wm, wn = landscape.two_cluster_optima(tc)
    x = montecarlo.excess_samples(np.stack([wn, wm]), tc.family(), tc.alpha, tc.steps, tc.K, 20000,
                          np.random.default_rng(1), sampling=tc.sampling)
    r = landscape.two_cluster(tc)
    se = x.std(axis=1, ddof=1) / np.sqrt(x.shape[1])
    assert abs(x[0].mean() - r.excess_nal) < 4 * se[0] and abs(x[1].mean() - r.excess_maml) < 4 * se[1]


def test_meta_gradient_batches_vanish_at_the_optimum():
    tc = landscape.TwoCluster(0.5, 0.2, 0.8, 1.0, 3.0, 0.5, 1.0, 3, K=8)
    wm, wn = landscape.two_cluster_optima(tc)
    for W, zero in ((wm, True), (wn, False)):
        G = montecarlo.meta_gradient_batches(W, tc.family(), InnerLoop(1, 1.0), 8, 20, 300, np.random.default_rng(2))
        z = np.abs(G.mean(0)) / (G.std(0, ddof=1) / np.sqrt(20))
        assert (np.max(z) < 4.5) == zero




def test_logr_limits_validation():
    with pytest.raises(ValueError, match="label_noise"):
        montecarlo.logr_zero_init_limits(0.1, 3, 4, 0.7)
