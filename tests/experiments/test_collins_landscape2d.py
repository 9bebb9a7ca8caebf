"""The 2-D landscape experiment (linmeta.experiments.collins_landscape2d)."""
import numpy as np
from matplotlib.figure import Figure

from linmeta.experiments import collins_landscape2d as ex
from linmeta.experiments import runner
from linmeta.experiments.base import Check
from linmeta.theory import landscape

TINY = {"steps": (1,), "chunks": 6, "tasks": 100, "mc_tasks": 2000, "scatter": 50}


def test_family_geometry():
    cfg = ex.EXPERIMENT.config("quick")
    fam = ex._family(cfg)
    hard, easy = fam.components
    assert np.allclose(hard.mean, 0) and abs(np.linalg.norm(easy.mean) - cfg["distance"]) < 1e-12
    assert np.linalg.eigvalsh(hard.input_cov)[-1] < np.linalg.eigvalsh(easy.input_cov)[0]
    shared = ex._family(cfg, shared_cov=True)
    assert np.array_equal(shared.components[0].input_cov, shared.components[1].input_cov)
    opt = ex._optima(cfg, fam)
    assert np.linalg.norm(opt["maml_k1"]) < np.linalg.norm(opt["nal"])  # MAML nearer the hard centre
    assert landscape.gain(fam, cfg["K"], cfg["alpha"], 1) > 1.0


def test_experiment_runs_plots_and_checks(tmp_path):
    res, cfg, _ = runner.run("collins_landscape2d", overrides=TINY, directory=tmp_path)
    assert res["grad_mean"].shape == (len(res["grad_rule"]), 2) and res["maml_surface"].shape == (61, 61)
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = ex.checks(res, cfg)
    assert checks and all(isinstance(c, Check) for c in checks)
    assert all(c.passed for c in checks if "formula" in c.name)
