"""The meta-optimizer experiment (linmeta.experiments.arnold_metaopt)."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.experiments import arnold_metaopt as exp
from linmeta.experiments import runner
from linmeta.sim.stats import crossed_table_mean_se

TINY = {"methods": (0, 1, 2, 5), "steps": 12, "segments": 2, "seeds": 2, "curve_tasks": 16, "test_tasks": 200,
        "tasks_per_step": 8}


def test_reductions_to_maml_are_exact():
    for seed in (0, 1):
        for key, r in exp.reductions(seed).items():
            assert r["theta"] <= 1e-12 and r["grad"] <= 1e-12 and r["value"] <= 1e-12, key


@pytest.mark.parametrize("widths,out", [((4, 3), 2), ((3,), 1), ((2, 2, 2), 3)])
def test_p7_shallow_kfo_is_deep_bottom_only(widths, out):
    rng = np.random.default_rng(len(widths))
    params = lm.init_deep_linear(3, widths, out, rng=rng)
    support = lm.sample_moments(rng.standard_normal((4, 6, 3)), rng.standard_normal((4, 6, out)))
    query = lm.sample_moments(rng.standard_normal((4, 8, 3)), rng.standard_normal((4, 8, out)))
    r = exp.p7(params, support, query, 0.2, 2)
    assert r["map"] <= 1e-12 and r["value"] <= 1e-12 and r["grad"] <= 1e-10


def test_p7_detects_a_wrong_factor():
    """Negative control: with R̃ ≠ I (or L̃ ≠ S Sᵀ) the shallow KFO no longer matches the deep net."""
    rng = np.random.default_rng(5)
    params = lm.init_deep_linear(3, (4,), 2, rng=rng)
    support = lm.sample_moments(rng.standard_normal((4, 6, 3)), rng.standard_normal((4, 6, 2)))
    S = params[1]
    wrong = ((np.linalg.cholesky(S @ S.T).T, 1.1 * np.eye(3)),)
    a = lm.adapted_map((lm.end_to_end(params),), support, lm.InnerLoop(2, 0.2), lm.KFO(psd=True), wrong)
    b = lm.adapted_map(params, support, lm.InnerLoop(2, 0.2, layers="first"))
    assert np.max(np.abs(a - b)) > 1e-4


def test_learned_P_reproduces_the_engine_step(tmp_path):
    res, cfg, _ = runner.run(exp.EXPERIMENT, overrides=TINY, directory=tmp_path)
    fam = exp.family(cfg)
    rng = np.random.default_rng(0)
    batch = fam.meta_batch(fam.sample_tasks(5, rng), cfg["K"], None, rng)
    # the result stores P but not φ: rebuild the step from P and compare with M − G P for MAML exactly
    p = res["methods"]["maml"]
    M = p["params"]["W0"]
    G = batch.support.grad(M[:, None])
    step = lm.adapted_map((M,), batch.support, lm.InnerLoop(1, cfg["alpha"]))
    assert np.allclose(step, M[:, None] - G @ p["P"][:, None], rtol=1e-13, atol=1e-14)
    for key in ("maml", "meta-sgd", "kfo"):
        assert res["methods"][key]["exact"].shape == (cfg["seeds"],)
        assert np.all(res["methods"][key]["exact"] >= res["theory"]["loss_full"] * (1 - 1e-12))
    checks = exp.checks(res, cfg)
    exact = [c for c in checks if c.claim == "arnold.shallow-kfo-equals-deep" or "identity init" in c.name]
    assert len(exact) == 14 and all(c.passed for c in exact)
    fig = exp.plot(res, cfg)
    assert len(fig.axes) == 2


@pytest.mark.parametrize("key,index", [("meta-sgd", 1), ("kfo", 2), ("kfo-nonpsd", 3), ("meta-curvature", 4)])
def test_learned_P_reproduces_the_engine_step_of_each_transform(key, index):
    """The stored right preconditioner P of a trained shallow rule: the engine's step is exactly M − G P."""
    rng = np.random.default_rng(3)
    cfg = exp.EXPERIMENT.config("quick", {"steps": 6, "segments": 1, "seeds": 2, "curve_tasks": 16,
                                          "test_tasks": 100})
    piece = exp._train_piece({"cfg": cfg, "method": key, "index": index})
    fam = exp.family(cfg)
    batch = fam.meta_batch(fam.sample_tasks(4, rng), cfg["K"], None, rng)
    M = piece["params"]["W0"]
    phi = (tuple(piece["phi"][f"phi{i}"] for i in range(len(piece["phi"]))),)
    step = lm.adapted_map((M,), batch.support, lm.InnerLoop(1, cfg["alpha"]), exp._precond(key), phi)
    G = batch.support.grad(M[:, None])
    assert np.allclose(step, M[:, None] - G @ piece["P"][:, None], rtol=1e-13, atol=1e-14)
    assert not np.allclose(piece["P"], cfg["alpha"] * np.eye(cfg["d"]))  # training moved φ
    exact = [exp.metaopt.one_step_loss(piece["P"][r], fam.input_cov, exp.metaopt.error_moment(M[r], fam),
                                       cfg["K"], cfg["noise"]) for r in range(2)]
    assert np.allclose(piece["exact"], exact, rtol=1e-14)


def test_family_and_summarise():
    cfg = exp.EXPERIMENT.config("quick", {"mean_norm": 2.5})
    fam = exp.family(cfg)
    assert np.isclose(np.linalg.norm(fam.mean), 2.5)
    v = np.random.default_rng(0).standard_normal((4, 1000))
    m, se = crossed_table_mean_se(v)
    assert abs(m - v.mean()) < 1e-15 and 0 < se < 0.1


@pytest.mark.slow
def test_quick_preset_passes_every_check(tmp_path):
    res, cfg, _ = runner.run(exp.EXPERIMENT, directory=tmp_path)
    failed = [c for c in exp.checks(res, cfg) if not c.passed]
    assert not failed, failed
