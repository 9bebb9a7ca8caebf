"""Meta-training (linmeta.train)."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.theory import shallow
from linmeta.train import DivergenceError, meta_train


def test_same_seed_bit_identical():
    fam = lm.GaussianRegression(d=3, noise_std=0.1)
    rule = lm.InnerLoop(1, 0.05)
    runs = [meta_train(lm.init_deep_linear(3, (4,), 1, rng=0, n_runs=2), fam, rule, steps=30, seed=5,
                       tasks_per_step=8, eval_tasks=16) for _ in range(2)]
    for a, b in zip(runs[0].params, runs[1].params):
        assert np.array_equal(a, b)
    for key in runs[0].history:
        assert np.array_equal(runs[0].history[key], runs[1].history[key])


def test_history_shapes_and_runs_independent():
    fam = lm.GaussianRegression(d=3)
    res = meta_train(lm.init_deep_linear(3, (), 1, rng=0, n_runs=3), fam, lm.InnerLoop(1, 0.1), steps=20,
                     eval_every=5, tasks_per_step=4, eval_tasks=8)
    h = res.history
    assert h["train_loss"].shape == (20, 3) and h["test_post"].shape == (5, 3)
    assert list(h["eval_step"]) == [0, 5, 10, 15, 20]
    # each run saw its own tasks: their train losses differ
    assert not np.allclose(h["train_loss"][:, 0], h["train_loss"][:, 1])


def test_lbfgs_and_adam_reach_the_fixed_task_optimum_of_shallow_maml():
    """On a fixed task set the shallow meta-loss is a quadratic in M with a closed-form minimiser."""
    rng = np.random.default_rng(1)
    fam = lm.GaussianRegression(d=3, out=1, mean=rng.standard_normal((1, 3)), noise_std=0.2)
    rule = lm.InnerLoop(2, 0.1)
    p0 = lm.init_deep_linear(3, (), 1, rng=rng)
    lb = meta_train(p0, fam, rule, steps=200, optimizer="lbfgs", fixed_tasks=20, K=5, Q=5, seed=3, eval_tasks=4)
    ad = meta_train(p0, fam, rule, steps=3000, lr=0.02, optimizer="adam", fixed_tasks=20, K=5, Q=5, seed=3,
                    eval_tasks=4)
    # the same fixed batch (same seed): rebuild it and solve the quadratic exactly
    train_rng = np.random.default_rng(3).spawn(2)[0]
    batch = fam.meta_batch(fam.sample_tasks(20, train_rng), 5, 5, train_rng)
    P = np.linalg.matrix_power(np.eye(3) - rule.alpha * batch.support.A, 1)
    P = P @ P  # two steps with the same support set: M' = M P² + const
    const = np.zeros((20, 1, 3))
    for _ in range(2):
        const = const @ (np.eye(3) - rule.alpha * batch.support.A) + rule.alpha * np.swapaxes(batch.support.B, -1, -2)
    A = np.mean(P @ batch.query.A @ np.swapaxes(P, -1, -2), axis=0)
    b = np.mean((np.swapaxes(batch.query.B, -1, -2) - const @ batch.query.A) @ np.swapaxes(P, -1, -2), axis=0)
    M_star = np.linalg.solve(A.T, b.T).T
    assert np.allclose(lb.params[0], M_star, atol=1e-7)
    assert np.allclose(ad.params[0], M_star, atol=1e-4)


def test_shallow_sgd_converges_to_closed_form_floor():
    """P9: shallow MAML on fresh tasks converges to E[W*] and its meta-test loss to the exact floor."""
    fam = lm.GaussianRegression(d=4, noise_std=0.1, mean=np.ones((1, 4)))
    rule = lm.InnerLoop(1, 0.1, inner_loss="population")
    res = meta_train(lm.init_deep_linear(4, (), 1, rng=0), fam, rule, steps=600, lr=0.05, optimizer="sgd",
                     tasks_per_step=256, Q=None, seed=2, eval_tasks=16)
    floor = shallow.shallow_floor(fam, None, 0.1, 1)
    # score the learned M on 20000 independent tasks; the SE comes from the per-task losses
    pop = fam.sample_tasks(20000, np.random.default_rng(99)).population()
    per_task = pop.value(lm.adapted_map(res.params, pop, rule))
    se = per_task.std(ddof=1) / np.sqrt(per_task.size)
    assert abs(per_task.mean() - floor) <= 4 * se
    assert np.allclose(res.params[0], fam.mean_task(), atol=0.05)


def test_deep_model_beats_shallow_floor():
    fam = lm.GaussianRegression(d=6, noise_std=0.1)
    rule = lm.InnerLoop(1, 0.02)
    res = meta_train(lm.init_deep_linear(6, (12, 12), 1, rng=0), fam, rule, steps=300, lr=5e-3,
                     tasks_per_step=64, K=10, Q=None, seed=1)
    floor = shallow.shallow_floor(fam, 10, 0.02, 1)
    assert res.history["test_post"][-1] < 0.8 * floor


def test_classification_training_runs_and_learns():
    fam = lm.BinaryClassification(d=4)
    res = meta_train(lm.init_deep_linear(4, (4,), 1, rng=0), fam, lm.InnerLoop(1, 1.0), steps=40, K=10, Q=10,
                     tasks_per_step=16, eval_tasks=32, lr=0.01)
    assert res.history["test_post"][-1] < res.history["test_pre"][0]


def test_meta_sgd_parameters_are_learned():
    fam = lm.GaussianRegression(d=3)
    res = meta_train(lm.init_deep_linear(3, (), 1, rng=0), fam, lm.InnerLoop(1, 0.05), steps=50,
                     precond="meta-sgd", tasks_per_step=16, eval_tasks=16, lr=0.05)
    assert not np.allclose(res.phi[0][0], 1.0)
    frozen = meta_train(lm.init_deep_linear(3, (), 1, rng=0), fam, lm.InnerLoop(1, 0.05), steps=5,
                        precond="meta-sgd", learn_phi=False, tasks_per_step=4, eval_tasks=4)
    assert np.allclose(frozen.phi[0][0], 1.0)


def test_divergence_is_reported_with_step_loss_and_bound():
    fam = lm.GaussianRegression(d=3)
    with pytest.raises(DivergenceError) as info:
        meta_train(lm.init_deep_linear(3, (3,), 1, rng=0), fam, lm.InnerLoop(2, 0.1), steps=200, lr=50.0,
                   optimizer="sgd", tasks_per_step=8, eval_tasks=8)
    err = info.value
    assert err.step >= 1 and np.all(np.isfinite(err.last_finite_loss))
    assert np.all(err.inner_step_bound > 0)
    msg = str(err)
    assert f"outer step {err.step}" in msg and "stability bound" in msg and "last finite" in msg


def test_unstable_alpha_is_refused_up_front():
    fam = lm.GaussianRegression(d=3, input_cov=np.diag([4.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="alpha=0.6 is above the inner-step stability bound"):
        meta_train(lm.init_deep_linear(3, (), 1, rng=0), fam, lm.InnerLoop(3, 0.6), steps=5, K=None, Q=None,
                   eval_tasks=4)
    # a single inner step cannot diverge: allowed (it is a legitimate, if large, step)
    meta_train(lm.init_deep_linear(3, (), 1, rng=0), fam, lm.InnerLoop(1, 0.6), steps=2, K=None, Q=None,
               eval_tasks=4)


def test_lr_schedule_and_callback():
    fam = lm.GaussianRegression(d=3)
    seen = []
    res = meta_train(lm.init_deep_linear(3, (), 1, rng=0), fam, lm.InnerLoop(1, 0.1), steps=6, optimizer="sgd",
                     lr=0.1, lr_schedule=lambda step: 0.0 if step > 3 else 1.0, tasks_per_step=4, eval_tasks=4,
                     callback=lambda step, p, f, h: seen.append((step, p[0].copy())))
    assert [s for s, _ in seen] == list(range(1, 7))
    assert not np.array_equal(seen[0][1], seen[2][1])
    assert np.array_equal(seen[3][1], seen[5][1]) and np.array_equal(seen[5][1], res.params[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=0), "steps must be a positive"),
        (dict(lr=-1.0), "lr must be positive"),
        (dict(optimizer="rmsprop"), "optimizer must be one of"),
        (dict(optimizer="lbfgs"), "fixed task set"),
        (dict(K=0), "K must be a positive"),
        (dict(family="nope"), "family must be a task family"),
    ],
)
def test_bad_training_arguments(kwargs, match):
    args = dict(steps=5, lr=0.01)
    fam = kwargs.pop("family", lm.GaussianRegression(d=3))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        meta_train(lm.init_deep_linear(3, (), 1, rng=0), fam, lm.InnerLoop(), **args)
