"""The SGD-training and conditioning experiment (linmeta.experiments.collins_training)."""
import numpy as np
from matplotlib.figure import Figure

from linmeta.experiments import collins_training as ex
from linmeta.experiments import runner
from linmeta.experiments.base import Check
from linmeta.theory import landscape

TINY = {"runs": 4, "tasks_per_step": 8, "steps": 10, "polish_steps": 10, "eval_tasks": 200, "cond_runs": 3,
        "cond_tasks": 4, "cond_steps": 60, "hess_chunks": 4, "hess_tasks": 50}


def test_predicted_mean_path_composes_the_schedule():
    H = np.diag([0.5, 0.1])
    lrs = np.r_[np.full(5, 1.0), np.full(5, 0.5)]
    pred = ex._predicted(H, np.array([1.0, 1.0]), np.zeros(2), lrs, np.array([5, 10]))
    assert np.allclose(pred[0], [0.5**5, 0.9**5]) and np.allclose(pred[1], [0.5**5 * 0.75**5, 0.9**5 * 0.95**5])
    assert np.allclose(np.linalg.norm(pred[0]), landscape.mean_gd_path(H, np.ones(2), np.zeros(2), 1.0, 5)[-1])
    assert ex._first_below(np.array([1.0, 0.5, 0.05]), 0.1, np.array([1, 2, 4])) == 4.0
    assert ex._first_below(np.array([1.0]), 0.1, np.array([1])) == float("inf")


def test_engine_hessian_is_exact_for_population_steps():
    cfg = ex.EXPERIMENT.config("quick")
    p = ex._hess_piece({"cfg": dict(cfg, hess_chunks=3, hess_tasks=20), "example": "ill", "index": 0})
    fam = ex._cond_family("ill")
    assert np.max(np.abs(p["population"] - landscape.hessians(fam, None, 1.0, 1).maml)) < 1e-14


def test_experiment_runs_plots_and_checks(tmp_path):
    res, cfg, _ = runner.run("collins_training", overrides=TINY, directory=tmp_path)
    assert res["maml"]["mean"].shape[1] == cfg["d"] and res["achieved"]["gain_runs"].shape == (4,)
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = ex.checks(res, cfg)
    assert checks and all(isinstance(c, Check) for c in checks)
    assert all(c.passed for c in checks if "formula" in c.name or "Hessian (population" in c.name)
