"""Fresh test sets and post-adaptation losses (linmeta.sim.evaluation)."""
import numpy as np

import linmeta as lm
from linmeta.sim.evaluation import post_adaptation_losses, test_set
from linmeta.theory import shallow


def test_test_set_is_shared_and_population_queried():
    fam = lm.GaussianRegression(d=3)
    a = test_set(fam, 5, 10, np.random.SeedSequence([7, 7777]))
    b = test_set(fam, 5, 10, np.random.SeedSequence([7, 7777]))
    assert np.array_equal(a.support.A, b.support.A)
    # population query: A = Σ = I for every task
    assert np.allclose(a.query.A, np.eye(3))
    M = np.zeros((1, 3))
    # at M = 0 the loss is ½‖w*‖², so the test losses of the zero model average to about d/2 = the k=0 floor
    vals = post_adaptation_losses((M[None],), test_set(fam, 5, 20000, np.random.SeedSequence([7, 7777])), lm.InnerLoop(0, 0.1))
    assert abs(vals.mean() - shallow.shallow_floor(fam, 5, 0.1, 0)) < 4 * vals.std() / np.sqrt(vals.size)


def test_test_set_returns_its_tasks_and_draws_them_first():
    fam = lm.GaussianRegression(d=3, noise_std=0.1)
    batch, tasks = test_set(fam, 4, 6, 3, return_tasks=True)
    assert np.array_equal(tasks.w_star, fam.sample_tasks(6, np.random.default_rng(3)).w_star)
    assert np.array_equal(batch.query.A, tasks.population().A)
