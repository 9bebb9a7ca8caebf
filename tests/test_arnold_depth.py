"""The depth experiment (linmeta.experiments.arnold_depth) and its training/evaluation helpers."""
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import linmeta as lm  # noqa: E402
from linmeta.experiments import arnold_depth as exp  # noqa: E402
from linmeta.experiments import runner  # noqa: E402
from linmeta.experiments.base import seeds_tasks_mean_se  # noqa: E402
from linmeta.theory import shallow  # noqa: E402
from linmeta.train import meta_train  # noqa: E402

TINY = {"d": 2, "width": 4, "depths": (1, 2), "sweep_alphas": (0.01, 0.1), "sweep_depths": (2,), "steps": 240,
        "segments": 4, "seeds": 3, "curve_tasks": 64, "test_tasks": 4000}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    res, cfg, _ = runner.run("arnold_depth", overrides=TINY, directory=tmp_path_factory.mktemp("cache"))
    return res, cfg


def test_structure_and_figure(result):
    res, cfg = result
    n_ckpt = len(exp.segment_bounds(cfg["steps"], cfg["segments"]))
    for L in cfg["depths"]:
        c = res["curves"][f"L{L}"]
        assert c["test_post"].shape == (n_ckpt, cfg["seeds"])
        assert c["final"].shape == (cfg["seeds"], cfg["test_tasks"])
    assert res["sweep"]["L2"].shape == (2, cfg["seeds"], cfg["test_tasks"])
    assert res["theory"]["floor_opt"] < res["theory"]["floor"]
    fig = exp.plot(res, cfg)
    assert isinstance(fig, matplotlib.figure.Figure)
    matplotlib.pyplot.close(fig)


def test_shallow_at_floor_and_deep_below(result):
    """The key relations, in a tiny setting: the shallow model at its closed-form floor, the deep one far below."""
    res, cfg = result
    m1, se1 = seeds_tasks_mean_se(res["curves"]["L1"]["final"])
    assert abs(m1 - res["theory"]["floor"]) <= 4 * se1
    m2, se2 = seeds_tasks_mean_se(res["curves"]["L2"]["final"])
    assert m2 + 4 * se2 < res["theory"]["floor"]
    # the exact expected loss of the learned shallow inits can never beat the floor (its minimum)
    assert np.all(res["shallow_exact_final"] >= res["theory"]["floor"] * (1 - 1e-12))
    names = [c.name for c in exp.checks(res, cfg)]
    assert any("range over alpha" in n for n in names)


def test_checkpoints_do_not_restart_adam():
    """Checkpoints are read during one Adam run: the result equals a single uninterrupted meta_train."""
    fam = lm.GaussianRegression(d=3)
    rule = lm.InnerLoop(1, 0.05)
    p0 = lm.init_deep_linear(3, (4,), 1, rng=1, n_runs=2)
    seen = {}
    p, _ = exp.train_with_checkpoints(p0, fam, rule, bounds=np.array([0, 10, 20, 30]), lr=0.02, lr_drop=1.0, K=5,
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
    exp.train_with_checkpoints(p0, fam, rule, bounds=np.array([0, 21, 22, 23, 30]), lr=0.05, lr_drop=0.0, K=5,
                               tasks_per_step=8, seed=[1], on_checkpoint=lambda s, q, f: seen.setdefault(s, q[0]))
    assert not np.array_equal(seen[21], seen[22])
    assert np.array_equal(seen[22], seen[23]) and np.array_equal(seen[22], seen[30])


def test_common_test_set_is_shared_and_population_queried():
    fam = lm.GaussianRegression(d=3)
    a = exp.common_test_set(fam, 5, 10, seed=7)
    b = exp.common_test_set(fam, 5, 10, seed=7)
    assert np.array_equal(a.support.A, b.support.A)
    # population query: A = Σ = I for every task
    assert np.allclose(a.query.A, np.eye(3))
    M = np.zeros((1, 3))
    # at M = 0 the loss is ½‖w*‖², so the test losses of the zero model average to about d/2 = the k=0 floor
    vals = exp.test_losses((M[None],), exp.common_test_set(fam, 5, 20000, seed=7), lm.InnerLoop(0, 0.1))
    assert abs(vals.mean() - shallow.shallow_floor(fam, 5, 0.1, 0)) < 4 * vals.std() / np.sqrt(vals.size)
