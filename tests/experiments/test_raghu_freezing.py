"""The test-time layer-freezing experiment (linmeta.experiments.raghu_freezing)."""
import numpy as np
from matplotlib.figure import Figure

from linmeta.experiments import raghu_freezing as ex
from linmeta.experiments import runner

TINY = {"d": 5, "k": 2, "widths": (5, 5), "K": 4, "steps": 20, "seeds": 2, "eval_tasks": 60, "tasks_per_step": 4}


def test_rule_freezes_the_lower_layers():
    assert ex._rule(0.1, 3, 0).adapted_layers(3) == (0, 1, 2)
    assert ex._rule(0.1, 3, 2).adapted_layers(3) == (2,)
    assert ex._rule(0.1, 3, 3).adapted_layers(3) == ()


def test_experiment_runs_plots_and_checks(tmp_path):
    res, cfg, _ = runner.run("raghu_freezing", overrides=TINY, directory=tmp_path)
    L = len(TINY["widths"]) + 1
    for f in ("isotropic", "low_rank"):
        r = res[f]
        assert r["mc"].shape == (L + 1, 2) and np.all(np.isfinite(r["mc"]))
        # with nothing adapting, the Monte Carlo value of each task is its exact population loss, so the
        # mean over tasks differs from the family closed form only by task sampling (checked in `checks`)
        assert r["frozen_closed"].shape == (2,)
    assert isinstance(ex.plot(res, cfg), Figure)
    names = [c.name for c in ex.checks(res, cfg)]
    assert any("Raghu Table 1" in n for n in names) and any("ANIL closed form" in n for n in names)
    again, _, _ = runner.run("raghu_freezing", overrides=TINY, directory=tmp_path / "again")
    assert np.array_equal(again["low_rank"]["mc"], res["low_rank"]["mc"])
