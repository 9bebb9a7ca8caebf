"""The Gao & Sener 2020 trade-off experiment (linmeta.experiments.gao_sener_tradeoff)."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from linmeta.experiments import gao_sener_tradeoff as ex
from linmeta.experiments import runner

from ..helpers import every_check_passes

TINY = {"Ms": (2, 40), "Ns": (1, 20), "alphas": (0.5, 1.0), "plot_alphas": (0.5, 1.0), "trials": 60, "mc_tasks": 200,
        "mc_inputs": 100, "check_tasks": 800}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return runner.run("gao_sener_tradeoff", overrides=TINY, directory=tmp_path_factory.mktemp("gs"))


def test_experiment_runs_plots_and_every_check_passes(tiny):
    res, cfg, _ = tiny
    for version in ("exact", "mc"):
        for key in ("pre", "post"):
            P = np.asarray(res[version][key])
            assert P.shape == (2, 2, 2) and np.all((P >= 0) & (P <= 1))
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = every_check_passes(ex, res, cfg)
    assert {c.kind for c in checks} == {"check", "finding"}


def test_same_seed_gives_identical_results(tiny, tmp_path):
    res, _, _ = tiny
    again, _, _ = runner.run("gao_sener_tradeoff", overrides=TINY, directory=tmp_path)
    for version in ("exact", "mc"):
        assert np.array_equal(res[version]["post"], again[version]["post"])
    other, _, _ = runner.run("gao_sener_tradeoff", overrides=TINY, seed=3, directory=tmp_path)
    assert not np.array_equal(res["exact"]["loss_post"], other["exact"]["loss_post"])


def test_family_k_and_the_binomial_check():
    assert ex.family_k(1) == 4.0 and ex.family_k(10**4) > 5.0
    c = ex._binomial("x", np.array([0.0, 0.5]), np.array([0.0, 0.52]), 1000)
    assert c.passed
    assert not ex._binomial("x", np.array([0.2]), np.array([0.5]), 1000).passed


def test_plot_alphas_must_be_in_alphas(tmp_path):
    with pytest.raises(ValueError, match="plot_alphas"):
        runner.run("gao_sener_tradeoff", overrides=dict(TINY, plot_alphas=(0.25,)), directory=tmp_path)
