"""The depth experiment (linmeta.experiments.arnold_depth) and its training/evaluation helpers."""
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from linmeta.experiments import arnold_depth as exp  # noqa: E402
from linmeta.experiments import runner  # noqa: E402
from linmeta.sim.stats import crossed_table_mean_se
from linmeta.sim.training import checkpoint_steps  # noqa: E402

TINY = {"d": 2, "width": 4, "depths": (1, 2), "sweep_alphas": (0.01, 0.1), "sweep_depths": (2,), "steps": 240,
        "segments": 4, "seeds": 3, "curve_tasks": 64, "test_tasks": 4000}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    res, cfg, _ = runner.run("arnold_depth", overrides=TINY, directory=tmp_path_factory.mktemp("cache"))
    return res, cfg


def test_structure_and_figure(result):
    res, cfg = result
    n_ckpt = len(checkpoint_steps(cfg["steps"], cfg["segments"]))
    for L in cfg["depths"]:
        c = res["curves"][f"L{L}"]
        assert c["test_post"].shape == (n_ckpt, cfg["seeds"])
        assert c["final"].shape == (cfg["seeds"], cfg["test_tasks"])
    assert res["sweep"]["L2"].shape == (2, cfg["seeds"], cfg["test_tasks"])
    assert res["theory"]["floor_opt"] < res["theory"]["floor"]
    fig = exp.plot(res, cfg)
    assert isinstance(fig, matplotlib.figure.Figure)


def test_shallow_at_floor_and_deep_below(result):
    """The key relations, in a tiny setting: the shallow model at its closed-form floor, the deep one far below."""
    res, cfg = result
    m1, se1 = crossed_table_mean_se(res["curves"]["L1"]["final"])
    assert abs(m1 - res["theory"]["floor"]) <= 4 * se1
    m2, se2 = crossed_table_mean_se(res["curves"]["L2"]["final"])
    assert m2 + 4 * se2 < res["theory"]["floor"]
    # the exact expected loss of the learned shallow inits can never beat the floor (its minimum)
    assert np.all(res["shallow_exact_final"] >= res["theory"]["floor"] * (1 - 1e-12))
    names = [c.name for c in exp.checks(res, cfg)]
    assert any("range over alpha" in n for n in names)
