"""The ANIL-vs-MAML experiment and the helpers the raghu_* experiments share (linmeta.experiments.raghu_anil)."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from linmeta import InnerLoop, meta_value_and_grad
from linmeta.experiments import raghu_anil as ex
from linmeta.experiments import runner
from linmeta.experiments.base import Check

TINY = {"d": 6, "k": 2, "widths": (6,), "K": 4, "alphas": (0.2,), "steps": 30, "seeds": 2, "eval_tasks": 60,
        "tasks_per_step": 4}


def test_low_rank_family_is_the_degenerate_gaussian():
    fam = ex.make_family("low_rank", 7, 3, 0.1, seed=2, head_var=(1.0, 0.5, 0.25))
    B = ex.low_rank_basis(7, 3, 2)
    assert np.allclose(B.T @ B, np.eye(3), atol=1e-12)
    assert np.allclose(fam.cov, B @ np.diag([1.0, 0.5, 0.25]) @ B.T, atol=1e-12)
    w = fam.sample_tasks(50, np.random.default_rng(0)).w_star[:, 0]
    # every task lies in span(B*) (the PSD square root drops round-off eigenvalues of the singular covariance)
    assert np.allclose(w - w @ B @ B.T, 0, atol=1e-13)
    iso = ex.make_family("isotropic", 7, 3, 0.1, mean_norm=2.0)
    assert abs(np.linalg.norm(iso.mean) - 2.0) <= 1e-12 and np.isclose(np.trace(iso.cov), 3.0)
    with pytest.raises(ValueError, match="family must be one of"):
        ex.make_family("other", 3, 1, 0.1)


def test_paired_difference_two_way_standard_error():
    a = {"mc": np.array([1.0, 2.0, 3.0]), "mc_task_mean": np.array([1.0, 3.0])}
    b = {"mc": np.array([0.0, 0.0, 1.0]), "mc_task_mean": np.array([0.0, 1.0])}
    m, s = ex.paired_difference(a, b)
    assert m == pytest.approx(5.0 / 3.0)
    assert s == pytest.approx(np.sqrt(np.var([1, 2, 2], ddof=1) / 3 + np.var([1, 2], ddof=1) / 2))


def test_train_runs_reduces_the_meta_loss():
    fam = ex.make_family("low_rank", 6, 2, 0.2)
    rule = InnerLoop(1, 0.2, "last")
    init = ex.train_runs(fam, (6,), rule, steps=1, lr=1e-12, K=4, tasks_per_step=4, seeds=2, seed=[0], init_seed=[0])
    trained = ex.train_runs(fam, (6,), rule, steps=60, lr=0.02, K=4, tasks_per_step=8, seeds=2, seed=[0],
                            init_seed=[0])
    rng = np.random.default_rng(3)
    tasks = fam.sample_tasks(400, rng)
    batch = fam.meta_batch(tasks, 4, None, rng)
    before = meta_value_and_grad(init, batch.support, batch.query, rule).value
    after = meta_value_and_grad(trained, batch.support, batch.query, rule).value
    assert np.all(after < before)


def test_experiment_runs_plots_and_checks(tmp_path):
    res, cfg, _ = runner.run("raghu_anil", overrides=TINY, directory=tmp_path)
    for f in ex.FAMILIES:
        r = res[f]["a0"]
        assert r["ANIL"]["closed"].shape == (2,) and np.all(np.isfinite(r["MAML"]["mc"]))
        assert np.all(r["ANIL"]["closed"] >= r["anil_oracle"] - 1e-12)  # the oracle is a lower bound
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = ex.checks(res, cfg)
    assert checks and all(isinstance(c, Check) for c in checks)
    assert all(c.passed for c in checks if "oracle" in c.name)
    again, _, _ = runner.run("raghu_anil", overrides=TINY, directory=tmp_path / "again")
    assert np.array_equal(again["low_rank"]["a0"]["MAML"]["mc"], res["low_rank"]["a0"]["MAML"]["mc"])
