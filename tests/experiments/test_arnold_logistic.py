"""The classification experiment (linmeta.experiments.arnold_logistic)."""
import numpy as np
import pytest

import linmeta as lm
from linmeta.experiments import arnold_logistic as exp
from linmeta.experiments import runner

TINY = {"d": 4, "width": 4, "steps": 8, "segments": 2, "seeds": 2, "curve_tasks": 16, "test_tasks": 100,
        "tasks_per_step": 8, "limit_samples": 2000, "eval_Q": 20}


def test_families():
    cfg = exp.EXPERIMENT.config("quick", {"shift": 3.0})
    assert np.array_equal(exp.family(cfg, "centred").mean, np.zeros(cfg["d"]))
    assert np.isclose(np.linalg.norm(exp.family(cfg, "shifted").mean), 3.0)


def test_evaluate_shapes_and_symmetry_of_the_zero_model():
    cfg = exp.EXPERIMENT.config("quick", TINY)
    fam = exp.family(cfg, "centred")
    batch = exp.test_set(fam, cfg, 50, 1)
    zero = (np.zeros((3, 1, cfg["d"])),)
    r = exp.evaluate(zero, batch, lm.InnerLoop(1, 0.1), None, None)
    assert r["acc_pre"].shape == (3, 50)
    assert np.allclose(r["loss_pre"], np.log(2), rtol=1e-14)  # logits 0: loss log 2 for any labels
    # a zero logit predicts class 0: the accuracy is the fraction of 0 labels
    assert np.allclose(r["acc_pre"], 1 - batch.query.y.mean(axis=-1), rtol=1e-14)
    assert np.all(r["loss_post"] < np.log(2))  # one step towards the class-mean difference helps every task


def test_tiny_run_checks_and_plot(tmp_path):
    res, cfg, _ = runner.run(exp.EXPERIMENT, overrides=TINY, directory=tmp_path)
    assert set(res) - {"run_backend"} == {"centred", "shifted", "zero_init", "theory"}
    for fam in exp.FAMILIES:
        for key in exp.MODELS:
            p = res[fam][key]
            assert p["curve"]["acc_post"].shape == (len(p["step"]), cfg["seeds"])
            assert p["final"]["acc_post"].shape == (cfg["seeds"], cfg["test_tasks"])
    checks = exp.checks(res, cfg)
    kinds = {c.kind for c in checks}
    assert kinds == {"check", "finding"}
    assert sum(c.kind == "finding" for c in checks) == 10
    # the exact zero-init comparison is a real check even in a tiny run
    zero = [c for c in checks if "from w0 = 0: engine" in c.name]
    assert len(zero) == 2 and all(c.passed for c in zero)
    assert len(exp.plot(res, cfg).axes) == 4


def test_kfo_and_linnet_pieces_differ_and_are_reproducible():
    cfg = exp.EXPERIMENT.config("quick", TINY)
    a = exp._train_piece({"cfg": cfg, "family": "shifted", "model": "kfo"})
    b = exp._train_piece({"cfg": cfg, "family": "shifted", "model": "kfo"})
    c = exp._train_piece({"cfg": cfg, "family": "shifted", "model": "logr"})
    assert np.array_equal(a["final"]["acc_post"], b["final"]["acc_post"])
    assert not np.array_equal(a["final"]["loss_post"], c["final"]["loss_post"])
    # same initialisation for LogR and LogR+KFO (identity init): equal pre-adaptation numbers at step 0
    assert np.array_equal(a["curve"]["acc_pre"][0], c["curve"]["acc_pre"][0])


def test_logr_meta_loss_is_minimal_at_zero_on_centred_tasks():
    """The experiment's premise: LogR's MAML meta-loss on centred tasks grows away from w0 = 0 (paired, 4 SE)."""
    cfg = exp.EXPERIMENT.config("quick")
    fam = exp.family(cfg, "centred")
    batch = exp.test_set(fam, cfg, 8000, 5)
    rule = lm.InnerLoop(1, cfg["alpha"])
    u = np.random.default_rng(0).standard_normal((3, 1, cfg["d"]))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    at = lambda w: np.asarray(batch.query.value(lm.adapted_map((w,), batch.support, rule)))
    base = at(np.zeros((3, 1, cfg["d"])))
    for r in (0.1, 0.3):
        diff = at(r * u) - base  # (3 directions, tasks)
        m, se = diff.mean(axis=1), diff.std(axis=1, ddof=1) / np.sqrt(diff.shape[1])
        assert np.all(m - 4 * se > 0)


@pytest.mark.slow
def test_quick_preset_exact_checks_pass(tmp_path):
    res, cfg, _ = runner.run(exp.EXPERIMENT, directory=tmp_path)
    failed = [c for c in exp.checks(res, cfg) if c.kind == "check" and not c.passed]
    assert not failed, failed
