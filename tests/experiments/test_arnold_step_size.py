"""The implicit step-size experiment (linmeta.experiments.arnold_step_size)."""
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import linmeta as lm  # noqa: E402
from linmeta.experiments import arnold_step_size as exp  # noqa: E402
from linmeta.experiments import runner  # noqa: E402
from linmeta.theory import shallow  # noqa: E402

TINY = {"d": 2, "width": 4, "depths": (2,), "steps": 250, "checkpoints": 6, "seeds": 3, "curve_tasks": 64}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    res, cfg, _ = runner.run("arnold_step_size", overrides=TINY, directory=tmp_path_factory.mktemp("cache"))
    return res, cfg


def test_structure_and_figure(result):
    res, cfg = result
    r = res["L2"]
    n = len(r["step"])
    assert r["step"][0] == 0 and r["step"][-1] == cfg["steps"] and np.all(np.diff(r["step"]) > 0)
    assert r["eig"].shape == (n, cfg["seeds"], cfg["d"]) and r["upper"].shape == (n, cfg["seeds"])
    fig = exp.plot(res, cfg)
    assert isinstance(fig, matplotlib.figure.Figure)


def test_effective_step_grows_to_the_optimal_shallow_step(result):
    res, cfg = result
    iso = res["L2"]["eig"].mean(axis=2)
    a_opt = shallow.optimal_alpha(exp.family(cfg), cfg["K"], 1)[0]
    assert np.isclose(res["theory"]["alpha_opt"], a_opt)
    assert np.all(iso[0] < 0.2 * a_opt)
    # the learned step is near the optimum: within 4 SE over seeds
    m, se = iso[-1].mean(), iso[-1].std(ddof=1) / np.sqrt(iso.shape[1])
    assert abs(m - a_opt) <= 4 * se + 1e-12
    checks = {c.name: c for c in exp.checks(res, cfg)}
    assert checks["L=2: effective step grew during meta-training (final - initial)"].passed


def test_spectrum_matches_the_two_layer_formula():
    """For ŷ = w₂ᵀW₁x the implicit preconditioner is ‖w₂‖² I + W₁ᵀW₁ (T5), computed here independently."""
    params = lm.init_deep_linear(3, (5,), 1, rng=4, n_runs=2)
    eig, upper = exp._spectrum(params, 0.1)
    for r in range(2):
        W1, w2 = params[0][r], params[1][r]
        P = (w2 @ w2.T).item() * np.eye(3) + W1.T @ W1
        assert np.allclose(eig[r], 0.1 * np.linalg.eigvalsh(P), rtol=1e-12)
        assert np.isclose(upper[r], (w2 @ w2.T).item(), rtol=1e-12)


def test_checkpoints_are_geometric_and_cover_the_run():
    c = exp.checkpoints(1000, 10)
    assert c[0] == 0 and c[1] == 1 and c[-1] == 1000 and np.all(np.diff(c) > 0)
