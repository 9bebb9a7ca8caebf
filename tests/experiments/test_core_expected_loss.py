"""The core engine-check experiment (linmeta.experiments.core_expected_loss)."""
import numpy as np
from matplotlib.figure import Figure

from linmeta.experiments import core_expected_loss as ex
from linmeta.experiments import runner
from linmeta.theory import shallow

TINY = {"shots": (4, 16), "steps": (1, 2), "tasks": 60, "draws": 40, "grad_chunks": 12}


def test_runs_plots_and_passes(tmp_path):
    res, cfg, _ = runner.run(ex.EXPERIMENT, overrides=TINY, directory=tmp_path)
    assert res["theory"].shape == (2, 2) and res["mc_se"].min() > 0
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = ex.checks(res, cfg)
    assert len(checks) == 4 + 2 and all(c.passed for c in checks), [c for c in checks if not c.passed]


def test_many_shots_limit_of_the_closed_form(tmp_path):
    res, cfg, _ = runner.run(ex.EXPERIMENT, overrides=TINY, directory=tmp_path)
    # more shots bring the loss towards the population-gradient value (k=2)
    fam = ex._family(cfg)
    pop = shallow.expected_meta_loss(np.zeros((cfg["out"], cfg["d"])), fam, None, cfg["alpha"], 2)
    many = shallow.expected_meta_loss(np.zeros((cfg["out"], cfg["d"])), fam, 10**6, cfg["alpha"], 2)
    assert abs(many - pop) <= 1e-5 * pop


def test_a_wrong_closed_form_would_be_caught(tmp_path):
    res, cfg, _ = runner.run(ex.EXPERIMENT, overrides=TINY, directory=tmp_path)
    bad = dict(res, theory=res["theory"] * 1.02)  # a 2% error in the closed form
    assert not all(c.passed for c in ex.checks(bad, cfg)[:4])
