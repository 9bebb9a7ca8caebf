"""The representation-learning experiment of Collins et al. (linmeta.experiments.raghu_representation)."""
import numpy as np
from matplotlib.figure import Figure

from linmeta.experiments import raghu_representation as ex
from linmeta.experiments import runner

TINY = {"d": 8, "k": 2, "diversities": (0.5, 1.0), "iterations": 450, "seeds": 2, "stochastic_tasks": 4,
        "stochastic_iterations": 40}


def test_decay_rate_recovers_a_geometric_factor():
    t = np.arange(200)
    dist = np.stack([0.7 * 0.9**t, 0.3 * 0.8**t], axis=1)
    assert np.allclose(ex.decay_rate(dist, (1e-10, 1e-2)), [0.9, 0.8], rtol=1e-12)
    assert np.isnan(ex.decay_rate(np.ones((10, 1)), (1e-10, 1e-2))[0])


def test_experiment_runs_plots_and_checks(tmp_path):
    res, cfg, _ = runner.run("raghu_representation", overrides=TINY, directory=tmp_path)
    assert res["exact"]["ANIL"]["dist"].shape == (451, 2, 2)
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = {c.name: c for c in ex.checks(res, cfg)}
    # the exact population predictions: rate 1 − βαμ², MAML = ANIL, NAL frozen, heads stay 0
    for name, c in checks.items():
        if name.startswith("exact"):
            assert c.passed, (name, c)
