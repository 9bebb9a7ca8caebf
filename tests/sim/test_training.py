"""Meta-training recipes (linmeta.sim.training)."""
import numpy as np

import linmeta as lm
from linmeta import InnerLoop, meta_train, meta_value_and_grad
from linmeta.sim import training
from linmeta.sim.families import representation_family


def test_checkpoint_steps():
    assert list(training.checkpoint_steps(30, 3)) == [0, 10, 20, 30]
    assert list(training.checkpoint_steps(2, 5)) == [0, 1, 2]


def test_checkpoints_do_not_restart_adam():
    """Checkpoints are read during one Adam run: the result equals a single uninterrupted meta_train."""
    fam = lm.GaussianRegression(d=3)
    rule = lm.InnerLoop(1, 0.05)
    p0 = lm.init_deep_linear(3, (4,), 1, rng=1, n_runs=2)
    seen = {}
    p, _ = training.train_with_checkpoints(p0, fam, rule, bounds=np.array([0, 10, 20, 30]), lr=0.02, lr_drop=1.0, K=5,
                                      tasks_per_step=8, seed=[4, 2],
                                      on_checkpoint=lambda s, q, f: seen.setdefault(s, q))
    ref = meta_train(p0, fam, rule, steps=30, lr=0.02, tasks_per_step=8, K=5, Q=None, eval_tasks=1, eval_every=30,
                     seed=np.random.SeedSequence([4, 2]), check_stability=False)
    assert sorted(seen) == [0, 10, 20, 30]
    assert all(np.array_equal(a, b) for a, b in zip(p, ref.params))
    assert all(np.array_equal(a, b) for a, b in zip(seen[30], ref.params))
    # a restart at step 10 (fresh Adam moments) would land elsewhere
    first = meta_train(p0, fam, rule, steps=10, lr=0.02, tasks_per_step=8, K=5, Q=None, eval_tasks=1,
                       seed=np.random.SeedSequence([4, 2]), check_stability=False)
    assert all(np.array_equal(a, b) for a, b in zip(seen[10], first.params))
    restarted = meta_train(first.params, fam, rule, steps=20, lr=0.02, tasks_per_step=8, K=5, Q=None, eval_tasks=1,
                           seed=np.random.SeedSequence([4, 2, 1]), check_stability=False)
    assert not np.allclose(restarted.params[0], p[0])


def test_last_quarter_uses_the_dropped_learning_rate():
    """With lr_drop = 0 nothing moves after 3/4 of the steps (step > 22.5 of 30), and everything before does."""
    fam = lm.GaussianRegression(d=2)
    rule = lm.InnerLoop(1, 0.05)
    p0 = lm.init_deep_linear(2, (), 1, rng=3, n_runs=2)
    seen = {}
    training.train_with_checkpoints(p0, fam, rule, bounds=np.array([0, 21, 22, 23, 30]), lr=0.05, lr_drop=0.0, K=5,
                               tasks_per_step=8, seed=[1], on_checkpoint=lambda s, q, f: seen.setdefault(s, q[0]))
    assert not np.array_equal(seen[21], seen[22])
    assert np.array_equal(seen[22], seen[23]) and np.array_equal(seen[22], seen[30])




def test_train_two_phase_reduces_the_meta_loss():
    fam = representation_family("low_rank", 6, 2, 0.2)
    rule = InnerLoop(1, 0.2, "last")
    init = training.train_two_phase(fam, (6,), rule, steps=1, lr=1e-12, K=4, tasks_per_step=4, seeds=2, seed=[0], init_seed=[0])
    trained = training.train_two_phase(fam, (6,), rule, steps=60, lr=0.02, K=4, tasks_per_step=8, seeds=2, seed=[0],
                            init_seed=[0])
    rng = np.random.default_rng(3)
    tasks = fam.sample_tasks(400, rng)
    batch = fam.meta_batch(tasks, 4, None, rng)
    before = meta_value_and_grad(init, batch.support, batch.query, rule).value
    after = meta_value_and_grad(trained, batch.support, batch.query, rule).value
    assert np.all(after < before)
