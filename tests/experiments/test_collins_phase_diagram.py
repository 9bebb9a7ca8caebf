"""The large-sweep phase diagram (linmeta.experiments.collins_phase_diagram)."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from linmeta.experiments import collins_phase_diagram as ex
from linmeta.experiments import runner
from linmeta.theory import landscape

TINY = {"distances": (0.0, 4.0), "ratios": (0.3, 1.0), "seeds": 6, "tasks": 8, "steps": 80, "cells_per_piece": 2}


def test_runs_plots_and_every_check_passes(tmp_path):
    res, cfg, info = runner.run("collins_phase_diagram", overrides=TINY, directory=tmp_path)
    assert res["sim"]["maml"]["excess"].shape == (2, 2, 6) and int(res["runs"]) == 2 * 4 * 6
    assert info["pieces_computed"] == 2
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = ex.checks(res, cfg)
    assert [c.passed for c in checks if c.kind == "check"] == [True] * 5
    again, _, _ = runner.run("collins_phase_diagram", overrides=TINY, directory=tmp_path / "again")
    assert np.array_equal(again["sim"]["nal"]["excess"], res["sim"]["nal"]["excess"])  # same seed, same bits


def test_equal_hardness_gives_exactly_the_same_init_and_gain_one(tmp_path):
    # with equal hardness both objectives weight every task equally: once GD has converged (300 steps take the
    # slower MAML path's residual (1 - ηā)^t below 1e-30 here), the two inits agree to round-off
    res, cfg, _ = runner.run("collins_phase_diagram", overrides=dict(TINY, steps=300), directory=tmp_path)
    row = list(cfg["ratios"]).index(1.0)
    assert np.allclose(res["sim"]["maml"]["excess"][row], res["sim"]["nal"]["excess"][row], rtol=1e-12, atol=0)
    assert np.all(res["theory"]["gain"][row] == 1.0)


def test_the_path_check_fails_when_training_is_off_the_closed_form(tmp_path):
    """A planted error: shifting one trained value breaks the exact identity check, not only the statistics."""
    res, cfg, _ = runner.run("collins_phase_diagram", overrides=TINY, directory=tmp_path)
    res["sim"]["maml"]["path_error"] = 1e-6
    assert not ex.checks(res, cfg)[0].passed


def test_exact_tolerance_follows_the_dtype():
    t64 = ex.exact_tolerance("float64", 30, 4.0)
    t32 = ex.exact_tolerance("float32", 30, 4.0)
    assert t64 == 1e-10  # the house tolerance is looser than 30·2⁻⁵³·4
    assert t32 == pytest.approx(30 * 2.0**-24 / (1 - 30 * 2.0**-24) * 4.0)


def test_learning_rates_are_stable_for_every_cell():
    cfg = ex.EXPERIMENT.config("quick")
    rates = ex._learning_rates(cfg)
    for r in cfg["ratios"]:
        tc = ex._landscape(cfg, r, 1.0)
        for rho in (tc.rho_hard, tc.rho_easy):
            assert rates["maml"] * rho * (1 - cfg["alpha"] * rho) ** 2 <= 1.0 and rates["nal"] * rho <= 1.0
    assert landscape.two_cluster(ex._landscape(cfg, 1.0, 4.0)).gain == 1.0
