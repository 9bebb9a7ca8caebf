"""The head/body split experiment (linmeta.experiments.raghu_head_body)."""
import numpy as np
from matplotlib.figure import Figure

from linmeta.experiments import raghu_head_body as ex
from linmeta.experiments import runner

TINY = {"d": 5, "k": 2, "width": 4, "K": 4, "steps": 20, "seeds": 2, "checkpoints": 3, "mc_tasks": 40,
        "tasks_per_step": 4}


def test_checkpoints_are_log_spaced_with_zero():
    cfg = ex.EXPERIMENT.config("quick", {"steps": 100, "checkpoints": 4})
    assert list(ex.checkpoint_steps(cfg)) == [0, 1, 10, 100]


def test_experiment_runs_plots_and_checks(tmp_path):
    res, cfg, _ = runner.run("raghu_head_body", overrides=TINY, directory=tmp_path)
    n = len(res["steps"])
    for f in ("isotropic", "low_rank"):
        r = res[f]
        assert r["total"].shape == (n, 2)
        # the split is exact per task: total = head + body + interaction
        assert np.allclose(r["total"], r["head"] + r["body"] + r["interaction"], rtol=1e-12, atol=1e-14)
    assert isinstance(ex.plot(res, cfg), Figure)
    assert len(ex.checks(res, cfg)) == 6
