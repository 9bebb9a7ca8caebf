"""Every experiment that runs on torch gives the numpy result on torch CPU, to 1e-10 relative in float64.

The default suite compares small configurations of each; ``-m slow`` compares the quick presets
(`.ci/run` runs both).
"""
import importlib

import numpy as np
import pytest

from linmeta.experiments import registry, runner

pytest.importorskip("torch")
pytestmark = pytest.mark.torch

TORCH_EXPERIMENTS = [name for name, exp in registry.all_experiments().items() if "torch" in exp.backends]


def _leaves(tree, prefix=""):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}/")
        else:
            yield f"{prefix}{k}", np.asarray(v)


def assert_same_result(a, b, rtol=1e-10):
    la, lb = dict(_leaves(a)), dict(_leaves(b))
    assert set(la) == set(lb)
    for key, x in la.items():
        if key.startswith("run_backend"):
            continue
        y = lb[key]
        assert x.shape == y.shape, key
        if x.dtype.kind in "fc":
            # relative to the entry's scale; quantities that are themselves round-off residuals (identity checks,
            # ~1e-16) are compared on the scale 1e-3, i.e. to an absolute 1e-13
            scale = max(float(np.max(np.abs(x))), 1e-3) if x.size else 1.0
            err = float(np.max(np.abs(x - y))) / scale if x.size else 0.0
            assert err <= rtol, f"{key}: relative difference {err:.3g}"
        else:
            assert np.array_equal(x, y), key


def test_the_sweep_experiments_run_on_torch():
    assert {"collins_phase_diagram", "arnold_depth", "arnold_metaopt", "raghu_anil"} <= set(TORCH_EXPERIMENTS)


@pytest.mark.parametrize("name", TORCH_EXPERIMENTS)
def test_small_config_torch_equals_numpy(name, tmp_path):
    tiny = importlib.import_module(f"tests.experiments.test_{name}").TINY
    a, _, _ = runner.run(name, overrides=tiny, directory=tmp_path)
    b, _, info = runner.run(name, overrides=tiny, directory=tmp_path, backend="torch")
    assert info["backend"] == "torch:cpu:float64"
    assert_same_result(a, b)


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCH_EXPERIMENTS)
def test_quick_preset_torch_equals_numpy_and_passes(name, tmp_path):
    a, _, _ = runner.run(name, directory=tmp_path)
    b, _, _ = runner.run(name, directory=tmp_path, backend="torch")
    assert_same_result(a, b)
    assert all(c.passed for c in runner.run_checks(name, directory=tmp_path, backend="torch") if c.kind == "check")
