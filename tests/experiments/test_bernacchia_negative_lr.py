"""The Bernacchia 2021 Fig. 2 experiment (linmeta.experiments.bernacchia_negative_lr)."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from linmeta.experiments import bernacchia_negative_lr as ex
from linmeta.experiments import runner
from linmeta.experiments.base import ConfigError

from ..helpers import every_check_passes

TINY = {"p": 20, "n_t": 10, "m": 3, "m_under": 20, "alpha_t_points": 5, "alpha_r_points": 5, "runs": 60,
        "runs_under": 30, "tasks": 4, "chunk": 30, "opt_runs": 40, "opt_runs_under": 20, "opt_points": 15,
        "engine_runs": 2}


def test_grids_contain_zero_the_fixed_rates_and_the_optima():
    cfg = ex.EXPERIMENT.config("quick")
    for regime in ex.REGIMES:
        at, ar = ex._grids(cfg, regime)
        s = ex._setting(cfg, regime)
        for grid, values in ((at, (0.0, cfg["alpha_t_fixed"], ex.T.optimal_alpha_train(s))),
                             (ar, (0.0, cfg["alpha_r_fixed"], ex.T.optimal_alpha_adapt(s, cfg["alpha_t_fixed"])))):
            assert np.all(np.diff(grid) > 0) and all(np.min(np.abs(grid - v)) == 0 for v in values)


def test_regimes_are_enforced():
    cfg = ex.EXPERIMENT.config("quick", {"m_under": 10})     # m_under * n_v = 20 < p
    with pytest.raises(ValueError, match="underparameterised panels need"):
        ex._setting(cfg, "under")
    with pytest.raises(ConfigError, match="tasks"):
        ex.EXPERIMENT.config("quick", {"tasks": 0})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return runner.run("bernacchia_negative_lr", overrides=TINY, directory=tmp_path_factory.mktemp("bern"))


def test_experiment_runs_plots_and_every_check_passes(tiny):
    res, cfg, _ = tiny
    for regime in ex.REGIMES:
        r = res[regime]
        assert r["loss_mean"].shape == (len(r["alpha_t"]), len(r["alpha_r"]))
        assert r["alpha_t_star"] < 0 < r["alpha_r_star"]
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = every_check_passes(ex, res, cfg)
    assert {c.kind for c in checks} == {"check", "finding"}


def test_same_seed_gives_identical_results(tiny, tmp_path):
    res, cfg, _ = tiny
    again, _, _ = runner.run("bernacchia_negative_lr", overrides=TINY, directory=tmp_path)
    for regime in ex.REGIMES:
        assert np.array_equal(res[regime]["loss_mean"], again[regime]["loss_mean"])
        assert np.array_equal(res[regime]["err2_mean"], again[regime]["err2_mean"])
    other, _, _ = runner.run("bernacchia_negative_lr", overrides=TINY, seed=1, directory=tmp_path)
    assert not np.array_equal(res["over"]["loss_mean"], other["over"]["loss_mean"])
