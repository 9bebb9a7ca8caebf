"""The implicit meta-optimizer experiment (linmeta.experiments.arnold_implicit)."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.experiments import arnold_implicit as exp
from linmeta.experiments import runner
from linmeta.theory import metaopt

TINY = {"id_instances": 1, "id_depths": (2, 3), "halvings": 3, "seeds": 3, "tasks": 40, "lbfgs_iters": 15,
        "d": 3, "width": 4}


def test_identity_piece_is_exact_and_ratios_within_bounds():
    cfg = exp.EXPERIMENT.config("quick", {"id_instances": 2, "halvings": 4})
    for depth in (2, 4):
        r = exp._identity_piece({"cfg": cfg, "depth": depth})
        assert r["bottom"].shape == (2, len(cfg["id_alphas"]))
        assert r["bottom"].max() <= 1e-12 and r["top"].max() <= 1e-12 and r["poly"].max() <= 1e-12
        ratios = r["resid"][:, :-1] / r["resid"][:, 1:]
        assert np.all((ratios >= r["lo"]) & (ratios <= r["hi"]))
        assert np.allclose(ratios[:, -1], 4, atol=0.05)
        assert r["balanced"].max() <= 1e-10 and r["unbalanced"].min() > 1e-2


def test_learned_preconditioner_matches_the_engine_step():
    """For each model, the extracted P reproduces the engine's step: exactly (top, bottom) or to O(α²) (all)."""
    rng = np.random.default_rng(0)
    params = lm.init_deep_linear(3, (5,), 1, rng=rng, n_runs=2)
    X, Y = rng.standard_normal((2, 4, 6, 3)), rng.standard_normal((2, 4, 6, 1))
    support = lm.sample_moments(X, Y)
    M = lm.end_to_end(params)[:, None]
    G = support.grad(M)
    for model, layers in exp.LAYERS.items():
        for alpha in (1e-4, 0.3):
            P = exp.learned_preconditioner(params, alpha, model)
            step = lm.adapted_map(params, support, lm.InnerLoop(1, alpha, layers=layers))
            err = np.max(np.abs(step - (M - G @ P[:, None])))
            if model == "all":  # P8: the remainder is α² (G Mᵀ) G
                assert err <= 10 * alpha**2 * np.max(np.abs(G)) ** 2 * np.max(np.abs(M)) + 1e-14
                W1, w2 = params
                p8 = alpha * (np.sum(w2**2, axis=(-2, -1))[:, None, None] * np.eye(3) + W1.mT @ W1)
                assert np.allclose(P, p8, rtol=1e-13, atol=0)
            else:
                assert err <= 1e-13 * np.max(np.abs(step))


def test_family_has_the_requested_spectrum():
    cfg = exp.EXPERIMENT.config("quick", {"d": 5, "spectrum": 0.3})
    fam, V, lam = exp.family(cfg)
    assert np.allclose(V.T @ V, np.eye(5), atol=1e-13)
    assert np.allclose(np.linalg.eigvalsh(fam.input_cov), np.sort(0.3 ** np.arange(5)), rtol=1e-12)


def test_tiny_run_checks_plot_and_determinism(tmp_path):
    res, cfg, _ = runner.run(exp.EXPERIMENT, overrides=TINY, directory=tmp_path / "a")
    again, _, _ = runner.run(exp.EXPERIMENT, overrides=TINY, directory=tmp_path / "b")
    assert np.array_equal(res["learned"]["top"]["P"], again["learned"]["top"]["P"])
    checks = exp.checks(res, cfg)
    exact = [c for c in checks if c.tolerance.startswith("<=") or "rigorous" in c.name or "bound" in c.tolerance]
    assert len(exact) >= 6 and all(c.passed for c in exact), [c for c in exact if not c.passed]
    # the learned preconditioners never beat the closed-form optimum of their class
    assert all(c.passed for c in checks if ">= its closed-form optimum" in c.name)
    fig = exp.plot(res, cfg)
    assert len(fig.axes) == 3
    th = res["theory"]
    assert np.isclose(th["loss_full"], metaopt.one_step_loss(th["P_star"], exp.family(cfg)[0].input_cov,
                                                             np.eye(cfg["d"]), cfg["K"], cfg["noise"]))


@pytest.mark.slow
def test_quick_preset_passes_every_check(tmp_path):
    res, cfg, _ = runner.run(exp.EXPERIMENT, directory=tmp_path)
    failed = [c for c in exp.checks(res, cfg) if not c.passed]
    assert not failed, failed
