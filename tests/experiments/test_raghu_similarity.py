"""The representation-similarity experiment (linmeta.experiments.raghu_similarity)."""
import numpy as np
from matplotlib.figure import Figure

from linmeta.experiments import raghu_similarity as ex
from linmeta.experiments import runner

TINY = {"d": 6, "k": 2, "bottleneck": 2, "depth": 3, "K": 4, "steps": 20, "seeds": 2, "eval_tasks": 6,
        "probe": 200, "tasks_per_step": 4}


def test_architectures():
    cfg = ex.EXPERIMENT.config("quick", TINY)
    assert ex.widths_of("full", cfg) == (6, 6) and ex.widths_of("bottleneck", cfg) == (2, 6)


def test_experiment_runs_plots_and_checks(tmp_path):
    res, cfg, _ = runner.run("raghu_similarity", overrides=TINY, directory=tmp_path)
    for arch in ex.ARCHS:
        for l in range(1, 4):
            q = res[arch][f"layer{l}"]
            assert q["cka"].shape == (2, 6) and np.all((q["cka"] >= 0) & (q["cka"] <= 1 + 1e-12))
    assert np.all(res["bottleneck"]["layer2"]["rank"] == 2)  # rank-deficient through the bottleneck
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = {c.name: c for c in ex.checks(res, cfg)}
    # the CCA trap is exact: square invertible body layers have canonical correlations 1
    assert all(c.passed for n, c in checks.items() if "CCA trap" in n)
