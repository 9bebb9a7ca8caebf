"""Torch end to end: every public entry point on torch tensors, meta_train on the device, the run option.

CPU torch runs wherever torch is installed (CI installs it); the CUDA tests skip cleanly without a GPU.
"""
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import linmeta as lm
from linmeta import preconditioners as pc
from linmeta.experiments import runner
from linmeta.sim import evaluation, montecarlo

from .helpers import rel_err

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
CUDA = torch.cuda.is_available()
DEVICES = ["cpu"] + (["cuda"] if CUDA else [])
TORCH = lm.ArrayBackend("torch")


def _problem(seed=0, d=4, widths=(5,), T=6):
    rng = np.random.default_rng(seed)
    fam = lm.GaussianRegression(d=d, noise_std=0.2, mean=rng.standard_normal((1, d)))
    batch = lm.meta_batch(fam.sample_tasks(T, rng), 7, 9, rng)
    params = lm.init_deep_linear(d, widths, 1, rng=rng, n_runs=2)
    return fam, batch, params


def _close(a, b, rtol=1e-12):
    return rel_err(lm.to_numpy(a), lm.to_numpy(b)) <= rtol


# --------------------------------------------------------------------------- the run option


def test_resolve_defaults_and_errors():
    assert lm.array_backend() == lm.ArrayBackend("numpy", "cpu", "float64")
    spec = lm.array_backend("torch", "cpu", "float32")
    assert spec.describe() == "torch:cpu:float32" and spec.key() == {"backend": "torch", "device": "cpu",
                                                                    "dtype": "float32"}
    for kwargs, match in ((dict(backend="jax"), "backend must be one of"), (dict(dtype="float16"), "dtype must be"),
                          (dict(device="tpu"), "device must be"), (dict(device="cuda"), "needs backend='torch'"),
                          (dict(backend="torch", device="cpu:1"), "device must be")):
        with pytest.raises(ValueError, match=match):
            lm.array_backend(**kwargs)


@pytest.mark.skipif(CUDA, reason="a CUDA device is present")
def test_no_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA device was found"):
        lm.array_backend("torch", "cuda")


def test_without_torch_the_option_names_the_extra(tmp_path):
    """A process where torch cannot be imported: the numpy path works, and --backend torch is one line, exit 2."""
    code = ("import sys\n"
            "class NoTorch:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ImportError('No module named torch')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "import linmeta as lm\n"
            "p = lm.init_deep_linear(3, (2,), 1, rng=0)\n"
            "try:\n    lm.array_backend('torch')\nexcept ValueError as e:\n    print('ERR', e)\n"
            "from linmeta.cli import main\nsys.exit(main(['run', 'collins_phase_diagram', '--backend', 'torch']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "ERR backend 'torch' needs the optional torch extra: pip install 'linmeta[torch]'" in out.stdout
    assert out.stderr.strip().count("\n") == 0 and "pip install 'linmeta[torch]'" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_no_cuda_is_one_line(tmp_path, capsys):
    if CUDA:
        pytest.skip("a CUDA device is present")
    from linmeta.cli import main

    assert main(["run", "collins_phase_diagram", "--backend", "torch", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device was found" in err and err.count("\n") == 1


# --------------------------------------------------------------------------- public entry points on torch


@pytest.mark.parametrize("device", DEVICES)
def test_every_entry_point_accepts_and_returns_torch(device):
    fam, batch, params = _problem(1)
    spec = lm.array_backend("torch", device)
    tp, tb = spec.tree(params), batch.to(spec)
    rule = lm.InnerLoop(2, 0.1)
    checks = {
        "meta_loss": (lm.meta_loss(params, batch.support, batch.query, rule),
                      lm.meta_loss(tp, tb.support, tb.query, rule)),
        "pre_adaptation_loss": (lm.pre_adaptation_loss(params, batch.query), lm.pre_adaptation_loss(tp, tb.query)),
        "adapted_map": (lm.adapted_map(params, batch.support, rule), lm.adapted_map(tp, tb.support, rule)),
        "end_to_end": (lm.end_to_end(params), lm.end_to_end(tp)),
    }
    for name, (ref, got) in checks.items():
        assert isinstance(got, torch.Tensor) and got.device.type == device, name
        assert _close(got, ref), name
    for a, b in zip(lm.adapt(tp, tb.support, rule), lm.adapt(params, batch.support, rule)):
        assert isinstance(a, torch.Tensor) and _close(a, b)
    for name in pc.names():
        mg = lm.meta_value_and_grad(tp, tb.support, tb.query, rule, name)  # default phi made on the device
        ref = lm.meta_value_and_grad(params, batch.support, batch.query, rule, name)
        assert all(isinstance(g, torch.Tensor) and g.device.type == device for g in mg.params), name
        assert all(isinstance(p, torch.Tensor) for pl in mg.phi for p in pl), name
        assert _close(mg.value, ref.value) and all(_close(a, b) for a, b in zip(mg.params, ref.params)), name


def test_init_and_preconditioner_parameters_on_the_backend():
    p = lm.init_deep_linear(3, (4,), 1, rng=5, n_runs=2, backend="torch", dtype="float32")
    ref = lm.init_deep_linear(3, (4,), 1, rng=5, n_runs=2)
    assert all(W.dtype == torch.float32 for W in p)
    assert all(np.array_equal(W.numpy(), R.astype(np.float32)) for W, R in zip(p, ref))  # the same draws
    for t in (lm.KFO(), lm.MetaSGD(2.0), lm.MetaCurvature()):
        phi = t.init(p, (0, 1))
        assert all(isinstance(x, torch.Tensor) and x.dtype == torch.float32 for pl in phi for x in pl)


def test_mixed_backends_are_refused_naming_the_arguments():
    fam, batch, params = _problem(2)
    rule = lm.InnerLoop(1, 0.1)
    with pytest.raises(ValueError, match=r"params: torch on cpu; support, query: numpy"):
        lm.meta_value_and_grad(TORCH.tree(params), batch.support, batch.query, rule)
    with pytest.raises(ValueError, match=r"params\[0\]: numpy; params\[1\]: torch"):
        lm.meta_loss((params[0], TORCH.asarray(params[1])), batch.support, batch.query, rule)
    with pytest.raises(ValueError, match=r"phi\[0\]\[0\], .*: torch"):
        lm.meta_loss(params, batch.support, batch.query, rule, "kfo",
                     tuple(TORCH.tree(pl) for pl in lm.KFO().init(params, (0, 1))))


def test_validation_runs_on_the_device():
    bad = TORCH.tree(lm.init_deep_linear(3, (2,), 1, rng=0))
    bad[0][0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"params\[0\] contains 1 non-finite"):
        lm.end_to_end(lm.models.validate_params(bad))


# --------------------------------------------------------------------------- meta_train on the device


@pytest.mark.parametrize("optimizer,precond", [("adam", None), ("sgd", "kfo"), ("adam", "meta-sgd")])
def test_meta_train_on_torch_equals_numpy_step_by_step(optimizer, precond):
    fam, _, params = _problem(3)
    kw = dict(steps=25, lr=0.01, optimizer=optimizer, precond=precond, tasks_per_step=8, K=5, Q=None, eval_every=5,
              seed=4, momentum=0.5 if optimizer == "sgd" else 0.0)
    rule = lm.InnerLoop(2, 0.05)
    ref = lm.meta_train(params, fam, rule, **kw)
    seen = []
    got = lm.meta_train(TORCH.tree(params), fam, rule, callback=lambda s, p, f, h: seen.append(p[0].clone()), **kw)
    assert all(isinstance(W, torch.Tensor) for W in got.params)
    assert all(isinstance(p, torch.Tensor) for pl in got.phi for p in pl)
    for k in ("train_loss", "test_pre", "test_post"):
        assert rel_err(got.history[k], ref.history[k]) <= 1e-10, k
    assert np.array_equal(got.history["eval_step"], ref.history["eval_step"])
    for a, b in zip(got.params, ref.params):
        assert rel_err(a.numpy(), b) <= 1e-10
    # step by step: replay the numpy run and compare every iterate
    ref_seen = []
    lm.meta_train(params, fam, rule, callback=lambda s, p, f, h: ref_seen.append(p[0].copy()), **kw)
    assert len(seen) == 25 and all(rel_err(a.numpy(), b) <= 1e-10 for a, b in zip(seen, ref_seen))


def test_meta_train_lbfgs_runs_on_the_host_and_returns_torch():
    fam, _, params = _problem(4)
    ref = lm.meta_train(params, fam, lm.InnerLoop(1, 0.1), steps=20, optimizer="lbfgs", fixed_tasks=16, seed=1)
    got = lm.meta_train(TORCH.tree(params), fam, lm.InnerLoop(1, 0.1), steps=20, optimizer="lbfgs", fixed_tasks=16,
                        seed=1)
    assert isinstance(got.params[0], torch.Tensor)
    assert all(rel_err(a.numpy(), b) <= 1e-10 for a, b in zip(got.params, ref.params))


def test_divergence_on_torch_is_found_at_its_step():
    fam, _, params = _problem(5)
    kw = dict(steps=40, lr=1e4, optimizer="sgd", tasks_per_step=8, K=5, Q=None, eval_every=20, seed=0)
    with pytest.raises(lm.DivergenceError) as ref:
        lm.meta_train(params, fam, lm.InnerLoop(2, 0.05), **kw)
    with pytest.raises(lm.DivergenceError) as got:
        lm.meta_train(TORCH.tree(params), fam, lm.InnerLoop(2, 0.05), **kw)
    assert got.value.step == ref.value.step  # checked only at the evaluations, still named exactly


def test_fixed_batch_is_moved_once_and_trained_on():
    fam, batch, params = _problem(6)
    a = lm.meta_train(params, fam, lm.InnerLoop(1, 0.1), steps=10, optimizer="sgd", lr=0.05, fixed_batch=batch, seed=2)
    b = lm.meta_train(TORCH.tree(params), fam, lm.InnerLoop(1, 0.1), steps=10, optimizer="sgd", lr=0.05,
                      fixed_batch=batch, seed=2)
    assert rel_err(b.history["train_loss"], a.history["train_loss"]) <= 1e-12
    with pytest.raises(ValueError, match="not both"):
        lm.meta_train(params, fam, lm.InnerLoop(1, 0.1), steps=2, fixed_batch=batch, fixed_tasks=4)


# --------------------------------------------------------------------------- simulation helpers


def test_simulation_helpers_accept_device_arrays():
    fam, batch, params = _problem(7)
    rule = lm.InnerLoop(1, 0.1)
    ref = evaluation.post_adaptation_losses(params, batch, rule)
    got = evaluation.post_adaptation_losses(TORCH.tree(params), batch, rule)
    assert isinstance(got, np.ndarray) and rel_err(got, ref) <= 1e-12
    one = tuple(W[0] for W in params)
    tasks = fam.sample_tasks(4, 0)
    a = montecarlo.post_adaptation_samples(one, tasks, 5, rule, draws=3, rng=1)
    b = montecarlo.post_adaptation_samples(TORCH.tree(one), tasks, 5, rule, draws=3, rng=1)
    assert rel_err(b, a) <= 1e-12


# --------------------------------------------------------------------------- the runner and the cache


def test_runner_keeps_backends_apart_and_records_them(tmp_path):
    over = {"distances": (0.0, 4.0), "ratios": (0.3, 1.0), "seeds": 4, "tasks": 8, "steps": 60}
    a, _, ia = runner.run("collins_phase_diagram", overrides=over, directory=tmp_path)
    b, _, ib = runner.run("collins_phase_diagram", overrides=over, directory=tmp_path, backend="torch")
    c, _, ic = runner.run("collins_phase_diagram", overrides=over, directory=tmp_path, backend="torch", dtype="float32")
    assert len({ia["key"], ib["key"], ic["key"]}) == 3 and not (ib["cached"] or ic["cached"])
    assert str(b["run_backend"]["backend"]) == "torch" and str(c["run_backend"]["dtype"]) == "float32"
    for m in ("maml", "nal"):
        assert rel_err(b["sim"][m]["excess"], a["sim"][m]["excess"]) <= 1e-10
        # float32: the same to the unit round-off times the iteration's condition, not to float64 precision
        assert 1e-10 < rel_err(c["sim"][m]["excess"], a["sim"][m]["excess"]) <= 1e-4
    assert all(ch.passed for ch in runner.run_checks("collins_phase_diagram", overrides=over, directory=tmp_path,
                                                      backend="torch", dtype="float32") if ch.kind == "check")
    assert runner.run("collins_phase_diagram", overrides=over, directory=tmp_path, backend="torch",
                      dtype="float32")[2]["cached"]


def test_backend_travels_with_every_chunk_through_an_executor(tmp_path):
    over = {"distances": (0.0, 4.0), "ratios": (0.3, 1.0), "seeds": 4, "tasks": 8, "steps": 60, "cells_per_piece": 1}
    seen = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            seen.append(fn.keywords.get("backend"))
            return super().submit(fn, *args, **kwargs)

    with Recording(2) as pool:
        res, _, info = runner.run("collins_phase_diagram", overrides=over, directory=tmp_path, backend="torch",
                                  executor=pool)
    assert info["pieces_computed"] == 4 and seen == [TORCH] * 4
    serial, _, _ = runner.run("collins_phase_diagram", overrides=over, directory=tmp_path / "serial", backend="torch")
    assert np.array_equal(res["sim"]["maml"]["excess"], serial["sim"]["maml"]["excess"])


def test_an_experiment_on_numpy_only_refuses_torch(tmp_path):
    from linmeta.experiments.base import ConfigError

    with pytest.raises(ConfigError, match="runs on numpy only"):
        runner.run("collins_gain", directory=tmp_path, backend="torch")


# --------------------------------------------------------------------------- CUDA (skipped without a GPU)


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cuda_sweep_matches_cpu(tmp_path, dtype):
    over = {"distances": (0.0, 4.0), "ratios": (0.3, 1.0), "seeds": 4, "tasks": 8, "steps": 60}
    cpu, _, _ = runner.run("collins_phase_diagram", overrides=over, directory=tmp_path, dtype=dtype)
    gpu, _, _ = runner.run("collins_phase_diagram", overrides=over, directory=tmp_path, backend="torch",
                           device="cuda", dtype=dtype)
    # each run is within the experiment's round-off bound of the exact gradient-descent path (its own
    # checks), so the two differ by at most twice that bound
    from linmeta.experiments import collins_phase_diagram as pd

    cfg = pd.EXPERIMENT.config("quick", over)
    s = cpu["sim"]["maml"]
    tol = 2 * pd.exact_tolerance(dtype, pd.step_terms(cfg), float(np.max(s["condition"])))
    assert rel_err(gpu["sim"]["maml"]["excess"], s["excess"]) <= tol
    assert all(c.passed for c in pd.checks(gpu, cfg) if c.kind == "check")
