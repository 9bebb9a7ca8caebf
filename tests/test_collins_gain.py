"""The Collins gain experiment (linmeta.experiments.collins_gain) and its shared simulation helpers."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from linmeta import InnerLoop
from linmeta.experiments import collins_gain as ex
from linmeta.experiments import runner
from linmeta.experiments.base import Check
from linmeta.theory import landscape as L

TINY = {"ratios": (0.1, 1.0), "distances": (0.0, 4.0), "radii_easy": (0.0, 3.0), "shots": (2, 5, 40),
        "steps": (1, 2, 4), "mc_tasks": 3000, "grad_chunks": 8, "grad_tasks": 150, "instances": 40}


def test_ratio_estimate_delta_method():
    rng = np.random.default_rng(0)
    num = 2.0 + rng.standard_normal(4000)
    den = 1.0 + 0.5 * rng.standard_normal(4000)
    r, se = ex.ratio_estimate(num, den)
    assert r == pytest.approx(num.mean() / den.mean())
    # the delta-method SE agrees with the spread of ratios over independent replications
    reps = [ex.ratio_estimate(2.0 + rng.standard_normal(4000), 1.0 + 0.5 * rng.standard_normal(4000))[0]
            for _ in range(300)]
    assert se == pytest.approx(np.std(reps, ddof=1), rel=0.15)
    assert ex.ratio_estimate(num, num) == (1.0, 0.0)


@pytest.mark.parametrize("kw", [dict(), dict(m=6, noise=0.5), dict(m=6, steps=2, noise=0.5),
                                dict(m=6, steps=3, sampling="fresh", noise=0.5)])
def test_excess_samples_match_closed_form(kw):
    tc = L.TwoCluster(0.4, 0.2, 0.8, 1.0, 3.0, 0.8, 1.2, 3, **kw)
    wm, wn = L.two_cluster_optima(tc)
    x = ex.excess_samples(np.stack([wn, wm]), tc.family(), tc.alpha, tc.steps, tc.m, 20000,
                          np.random.default_rng(1), sampling=tc.sampling)
    r = L.two_cluster(tc)
    se = x.std(axis=1, ddof=1) / np.sqrt(x.shape[1])
    assert abs(x[0].mean() - r.excess_nal) < 4 * se[0] and abs(x[1].mean() - r.excess_maml) < 4 * se[1]


def test_meta_gradient_chunks_vanish_at_the_optimum():
    tc = L.TwoCluster(0.5, 0.2, 0.8, 1.0, 3.0, 0.5, 1.0, 3, m=8)
    wm, wn = L.two_cluster_optima(tc)
    for W, zero in ((wm, True), (wn, False)):
        G = ex.meta_gradient_chunks(W, tc.family(), InnerLoop(1, 1.0), 8, 20, 300, np.random.default_rng(2))
        z = np.abs(G.mean(0)) / (G.std(0, ddof=1) / np.sqrt(20))
        assert (np.max(z) < 4.5) == zero


def test_experiment_runs_plots_and_checks(tmp_path):
    res, cfg, _ = runner.run("collins_gain", overrides=TINY, directory=tmp_path)
    assert res["A"]["gain_mc"].shape == (4,) and res["C"]["gain"].shape == (3,)
    assert np.all(res["A"]["gain_mc"][2:] == 1.0)  # rho_H = rho_E: the two inits coincide
    assert isinstance(ex.plot(res, cfg), Figure)
    checks = ex.checks(res, cfg)
    assert checks and all(isinstance(c, Check) for c in checks)
    assert all(c.passed for c in checks if "formula" in c.name and "finding" not in c.name), \
        [c for c in checks if not c.passed]
    again, _, _ = runner.run("collins_gain", overrides=TINY, directory=tmp_path / "again")
    assert np.array_equal(again["A"]["gain_mc"], res["A"]["gain_mc"])
