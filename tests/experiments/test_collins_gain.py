"""The Collins gain experiment (linmeta.experiments.collins_gain) and its shared simulation helpers."""
import numpy as np
from matplotlib.figure import Figure

from linmeta.experiments import collins_gain as ex
from linmeta.experiments import runner
from linmeta.experiments.base import Check

TINY = {"ratios": (0.1, 1.0), "distances": (0.0, 4.0), "radii_easy": (0.0, 3.0), "Ks": (2, 5, 40),
        "steps": (1, 2, 4), "mc_tasks": 3000, "grad_chunks": 8, "grad_tasks": 150, "instances": 40}


def test_experiment_runs_plots_and_checks(tmp_path):
    res, cfg, _ = runner.run("collins_gain", overrides=TINY, directory=tmp_path)
    assert res["A"]["gain_mc"].shape == (4,) and res["C"]["gain"].shape == (3,)
    assert np.all(res["A"]["gain_mc"][2:] == 1.0)  # rho_H = rho_E: the two inits coincide
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = ex.checks(res, cfg)
    assert checks and all(isinstance(c, Check) for c in checks)
    assert all(c.passed for c in checks if "formula" in c.name and "finding" not in c.name), \
        [c for c in checks if not c.passed]
    again, _, _ = runner.run("collins_gain", overrides=TINY, directory=tmp_path / "again")
    assert np.array_equal(again["A"]["gain_mc"], res["A"]["gain_mc"])
