"""The deep one-step engine-check experiment (linmeta.experiments.core_deep_one_step)."""
import numpy as np
from matplotlib.figure import Figure

from linmeta.experiments import core_deep_one_step as ex
from linmeta.experiments import runner

TINY = {"shots": (2, 8), "alphas": (0.0, 0.3), "tasks": 20, "draws": 300}


def test_runs_plots_and_passes(tmp_path):
    res, cfg, _ = runner.run(ex.EXPERIMENT, overrides=TINY, directory=tmp_path)
    assert res["shots_theory"].shape == (3, 2) and res["shots_mc_se"].min() > 0
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = ex.checks(res, cfg)
    assert len(checks) == 3 * 2 + 2 * 2 + 3
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    # both models start from the same end-to-end map: equal losses at α = 0, on the fine curve too
    assert abs(res["alpha_theory"][0, 0] - res["alpha_theory"][1, 0]) < 1e-12 * res["alpha_theory"][0, 0]


def test_a_wrong_closed_form_would_be_caught(tmp_path):
    res, cfg, _ = runner.run(ex.EXPERIMENT, overrides=TINY, directory=tmp_path)
    bad = dict(res, shots_theory=res["shots_theory"] * 1.02)  # a 2% error in the closed form
    assert not all(c.passed for c in ex.checks(bad, cfg)[:6])


def test_limit_is_approached_from_the_population_value(tmp_path):
    res, cfg, _ = runner.run(ex.EXPERIMENT, overrides=TINY, directory=tmp_path)
    for key in [k for k in res if k.startswith("limit_")]:
        pop, k5, k6 = res[key]
        assert abs(k6 - pop) < abs(k5 - pop) < 1e-3 * pop
    assert np.all(np.isfinite(res["alpha_curve"]))
