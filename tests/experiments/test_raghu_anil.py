"""The ANIL-vs-MAML experiment and the helpers the raghu_* experiments share (linmeta.experiments.raghu_anil)."""
import numpy as np
from matplotlib.figure import Figure

from linmeta.experiments import raghu_anil as ex
from linmeta.experiments import runner
from linmeta.experiments.base import Check

TINY = {"d": 6, "k": 2, "widths": (6,), "K": 4, "alphas": (0.2,), "steps": 30, "seeds": 2, "eval_tasks": 60,
        "tasks_per_step": 4}


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
