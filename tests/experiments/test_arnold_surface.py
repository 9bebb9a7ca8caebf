"""The hero-figure experiment (linmeta.experiments.arnold_surface)."""
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from linmeta.experiments import arnold_surface as exp  # noqa: E402
from linmeta.experiments import runner  # noqa: E402
from linmeta.theory import depth  # noqa: E402

TINY = {"grid": 21, "inits": 4, "shallow_runs": 4, "steps": 500, "tasks_per_step": 16}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    res, cfg, _ = runner.run("arnold_surface", overrides=TINY, directory=tmp_path_factory.mktemp("cache"))
    return res, cfg


def test_structure_and_figure(result):
    res, cfg = result
    assert res["surface"].shape == (21, 21)
    assert res["deep_path"].shape == (cfg["steps"] + 1, cfg["inits"], 2)
    assert res["shallow_path"].shape == (cfg["steps"] + 1, cfg["shallow_runs"], 1)
    fig = exp.plot(res, cfg)
    assert isinstance(fig, matplotlib.figure.Figure)


def test_checks_pass(result):
    res, cfg = result
    failed = [c for c in exp.checks(res, cfg) if not c.passed]
    assert not failed, failed


def test_trajectories_reach_the_closed_form_minimisers(result):
    res, cfg = result
    end = res["deep_path"][-1]
    eff = depth.scalar_effective_step(end[:, 0], end[:, 1], cfg["alpha"]) * cfg["rho"]
    assert np.allclose(eff, 1.0, atol=1e-4)
    assert np.allclose(end[:, 0] * end[:, 1], 0.0, atol=1e-4)
    # the shallow model's loss never goes below its closed-form floor along the way
    assert np.all(res["shallow_loss"] >= res["floor_shallow"] - 1e-15)


def test_engine_surface_detects_a_wrong_closed_form(result):
    """The Gauss-Hermite engine average is sensitive enough to catch a small error in the closed form."""
    res, cfg = result
    pts, eng = res["check_points"][:-4], res["check_engine"][:-4]  # the last 4 are the minimisers (value 0)
    wrong = depth.scalar_deep_meta_loss(pts[:, 0], pts[:, 1], cfg["alpha"] * (1 + 1e-6), cfg["rho"], 0.0, cfg["s"])
    assert np.max(np.abs(wrong - eng) / eng) > 1e-10


def test_inits_avoid_the_invariant_diagonals():
    cfg = exp.EXPERIMENT.config("quick", {"inits": 12})
    X = exp.deep_inits(cfg)
    assert np.min(np.abs(np.abs(X[:, 0]) - np.abs(X[:, 1]))) > 1e-2


def test_divergence_is_reported():
    cfg = exp.EXPERIMENT.config("quick", {"lr": 10.0, "steps": 50, "ring": (1.4,)})
    X0 = exp.deep_inits(cfg)
    with pytest.raises(ValueError, match="lr"):
        exp.sgd_trajectories((X0[:, :1, None].copy(), X0[:, 1:, None].copy()), cfg, 1)


def test_same_seed_gives_identical_trajectories():
    cfg = exp.EXPERIMENT.config("quick", {"steps": 20, "inits": 3})
    X0 = exp.deep_inits(cfg)
    a = exp.sgd_trajectories((X0[:, :1, None].copy(), X0[:, 1:, None].copy()), cfg, 1)
    b = exp.sgd_trajectories((X0[:, :1, None].copy(), X0[:, 1:, None].copy()), cfg, 1)
    c = exp.sgd_trajectories((X0[:, :1, None].copy(), X0[:, 1:, None].copy()), exp.EXPERIMENT.config(
        "quick", {"steps": 20, "inits": 3}, seed=1), 1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
