"""The headline comparison (linmeta.experiments.arnold_headline)."""
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import linmeta as lm  # noqa: E402
from linmeta.experiments import arnold_headline as exp  # noqa: E402
from linmeta.experiments import runner  # noqa: E402

TINY = {"d": 2, "deep_widths": (3,), "lin_widths": (3,), "settings": "iso", "steps": 200, "seeds": 2,
        "test_tasks": 2000}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    res, cfg, _ = runner.run("arnold_headline", overrides=TINY, directory=tmp_path_factory.mktemp("cache"))
    return res, cfg


def test_structure_and_figure(result):
    res, cfg = result
    r = res["iso"]
    assert r["table_mean"].shape == (2, 4) and r["table_se"].shape == (2, 4)
    for b in exp.BASES:
        for v in exp.VARIANTS:
            assert r[b][v].shape == (cfg["seeds"], cfg["test_tasks"])
    fig = exp.plot(res, cfg)
    assert isinstance(fig, matplotlib.figure.Figure)
    checks = exp.checks(res, cfg)
    assert len(checks) == 8 and all(np.isfinite(c.simulation) for c in checks)


def test_shallow_variants_against_their_closed_forms(result):
    """Isotropic tasks: shallow MAML sits at its floor; shallow + Meta-SGD / KFO reach the optimal-step floor,
    which bounds every linear one-step preconditioner from below (the optimal one is isotropic by symmetry)."""
    res, cfg = result
    r = res["iso"]
    m, se = r["table_mean"], r["table_se"]
    assert abs(m[0, 0] - r["theory"]["floor"]) <= 4 * se[0, 0]
    for j in (exp.VARIANTS.index("meta-sgd"), exp.VARIANTS.index("kfo")):
        assert abs(m[0, j] - r["theory"]["floor_opt"]) <= 4 * se[0, j]
    assert np.all(m[:, 1:] < r["theory"]["floor"])


@pytest.mark.parametrize("variant", ["meta-sgd", "kfo"])
def test_meta_optimizers_are_maml_at_initialisation(variant):
    """Each variant's inner loop equals plain MAML's at its initialisation (same meta-loss and theta-gradient)."""
    cfg = exp.EXPERIMENT.config("quick", {"d": 3, "seeds": 2})
    fam = exp.family(cfg, "rotated")
    batch = fam.meta_batch(fam.sample_tasks(16, 0), cfg["K"], None, 1)
    for base in exp.BASES:
        params, rule, precond, phi = exp._model(cfg, base, variant)
        maml_params, maml_rule, _, _ = exp._model(cfg, base, "maml")
        got = lm.meta_value_and_grad(params, batch.support, batch.query, rule, precond, phi)
        ref = lm.meta_value_and_grad(maml_params, batch.support, batch.query, maml_rule)
        assert np.allclose(got.value, ref.value, rtol=1e-13, atol=0)
        for a, b in zip(got.params, ref.params):
            assert np.allclose(a, b, rtol=1e-11, atol=1e-14)


def test_architectures_and_rotated_family():
    cfg = exp.EXPERIMENT.config("quick", {"d": 4, "cond": 10.0})
    assert exp.architecture(cfg, "shallow", "maml") == ()
    assert exp.architecture(cfg, "shallow", "lin") == tuple(cfg["lin_widths"])
    assert exp.architecture(cfg, "deep", "lin") == tuple(cfg["deep_widths"]) + tuple(cfg["lin_widths"])
    S = exp.family(cfg, "rotated").input_cov
    lam = np.linalg.eigvalsh(S)
    assert np.isclose(np.trace(S), 4) and np.isclose(lam[-1] / lam[0], 10.0)
    assert np.abs(S - np.diag(np.diag(S))).max() > 0.05  # rotated: not diagonal, so Meta-SGD cannot align to it
