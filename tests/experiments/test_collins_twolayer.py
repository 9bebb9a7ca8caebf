"""The two-layer network experiment (linmeta.experiments.collins_twolayer)."""
import numpy as np
from matplotlib.figure import Figure

from linmeta import twolayer as nl
from linmeta.experiments import collins_twolayer as ex
from linmeta.experiments import runner
from linmeta.experiments.base import Check

TINY = {"activation": "tanh", "distances": (0.0, 8.0), "ratios": (0.2, 1.0), "replicates": 2, "train_tasks": 32,
        "iters": 30, "eval_tasks": 100, "eval_query": 20, "tune_tasks": 50, "alpha_grid": (0.5, 1.0),
        "lin_samples": 2000}


def test_geometry_and_setting():
    cfg = ex.EXPERIMENT.config("quick", TINY)
    W, a, u, alpha = ex._geometry(cfg, "tanh")
    assert np.allclose(np.linalg.norm(W, axis=1), 1.0) and np.allclose(np.abs(a), 1 / np.sqrt(cfg["width"]))
    assert abs(np.linalg.norm(u) - 1.0) < 1e-12 and alpha > 0
    mix, th_H, th_E = ex._setting(cfg, 0.2, 8.0, "tanh")
    assert abs(np.linalg.norm(th_E - th_H) - 8.0 * cfg["radius_hard"]) < 1e-12
    assert isinstance(mix, nl.TeacherMixture) and mix.rho_hard == 0.2 * cfg["rho_easy"]


def test_experiment_runs_plots_and_checks(tmp_path):
    res, cfg, _ = runner.run("collins_twolayer", overrides=TINY, directory=tmp_path)
    r = res["tanh"]
    assert r["D"]["gain"].shape == (2,) and r["ratio"]["gain_reps"].shape == (2, 2)
    # the sweeps share the point (ratio 0.2, D/R_H = 8): computed once
    assert r["D"]["gain"][-1] == r["ratio"]["gain"][0]
    # the linear theory gives exactly 1 at D = 0 (all centres coincide)
    assert np.all(np.isfinite(r["D"]["gain_linearised"])) and abs(r["D"]["gain_linearised"][0] - 1.0) < 1e-10
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = ex.checks(res, cfg)
    assert checks and all(isinstance(c, Check) for c in checks)
