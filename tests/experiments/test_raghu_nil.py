"""The NIL experiment (linmeta.experiments.raghu_nil)."""
import numpy as np
from matplotlib.figure import Figure

from linmeta.experiments import raghu_nil as ex
from linmeta.experiments import runner

TINY = {"d": 6, "k": 2, "widths": (6,), "K": 4, "steps": 20, "seeds": 2, "eval_tasks": 60, "calib_tasks": 20,
        "query": 5, "tasks_per_step": 4}


def test_experiment_runs_plots_and_checks(tmp_path):
    res, cfg, _ = runner.run("raghu_nil", overrides=TINY, directory=tmp_path)
    for m in ex.METHODS:
        assert res[m]["mc"].shape == (2,) and np.all(np.isfinite(res[m]["mc"]))
        assert np.all((res[m]["acc"]["mc"] >= 0) & (res[m]["acc"]["mc"] <= 1))
    assert np.all(res["lambda"] > 0)
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = {c.name: c for c in ex.checks(res, cfg)}
    link = [c for n, c in checks.items() if n.startswith("exact link")]
    assert len(link) == 1 and link[0].passed and link[0].simulation <= 1e-10
