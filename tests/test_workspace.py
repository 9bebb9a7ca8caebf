"""Buffers reused across engine calls (linmeta._workspace): results never alias them; reuse is real."""
import threading

import numpy as np
import pytest

import linmeta as lm
from linmeta import _workspace
from linmeta import preconditioners as pc
from linmeta.reverse import value_and_grad

from .helpers import rel_err


@pytest.fixture(autouse=True)
def always_a_workspace(monkeypatch):
    """These problems are small; give them a workspace anyway (large calls get one by default)."""
    monkeypatch.setattr(_workspace, "MIN_STEP_BYTES", 0)


def _problem(seed, T=9):
    rng = np.random.default_rng(seed)
    fam = lm.GaussianRegression(d=4, out=2, noise_std=0.2)
    batch = lm.meta_batch(fam.sample_tasks(T, rng), 5, 6, rng)
    params = lm.init_deep_linear(4, (3, 5), 2, rng=rng)
    return params, batch, lm.InnerLoop(3, 0.1)


def _run(params, batch, rule, precond=pc.Identity()):
    phi = precond.init(params, rule.adapted_layers(len(params)))
    return value_and_grad(params, batch.support, batch.query, rule, precond, phi)


def _copy(mg):
    return (np.array(mg.value), [np.array(g) for g in mg.params])


def test_results_survive_later_calls():
    """A result is not overwritten by the next call with the same shapes (it owns its memory)."""
    a, b = _problem(0), _problem(1)
    first = _run(*a)
    kept = _copy(first)
    _run(*b)
    _run(*b)
    assert np.array_equal(first.value, kept[0])
    for g, k in zip(first.params, kept[1]):
        assert np.array_equal(g, k)
    again = _run(*a)
    assert np.array_equal(again.value, kept[0]) and all(np.array_equal(g, k) for g, k in zip(again.params, kept[1]))


def test_buffers_are_reused_after_the_first_call():
    params, batch, rule = _problem(2)
    _workspace.clear()
    _run(params, batch, rule)
    ws = _workspace._local.free[-1]
    before = {k: id(v) for k, v in ws._bufs.items()}
    assert before  # the engine did write into the workspace
    _run(params, batch, rule)
    assert {k: id(v) for k, v in ws._bufs.items()} == before


def test_threads_get_their_own_workspaces():
    problems = [_problem(s) for s in range(4)]
    ref = [_copy(_run(*p)) for p in problems]
    out = [None] * 4

    def work(i):
        for _ in range(5):
            out[i] = _copy(_run(*problems[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(out, ref):
        assert rel_err(got[0], want[0]) == 0 and all(rel_err(g, w) == 0 for g, w in zip(got[1], want[1]))


def test_reentrant_calls_get_separate_workspaces():
    x = np.zeros(3)
    a = _workspace.acquire(x)
    b = _workspace.acquire(x)
    assert a is not b
    ba = a.take(np, (2, 2), x)
    bb = b.take(np, (2, 2), x)
    assert ba is not bb
    _workspace.release(b)
    _workspace.release(a)


def test_autograd_tensors_get_no_workspace():
    class Tracked:
        requires_grad = True

    assert _workspace.acquire(Tracked()) is None


def test_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(_workspace, "MAX_BYTES", 1000)
    ws = _workspace.Workspace()
    x = np.zeros(1)
    for i in range(20):
        ws._cursor = 0
        ws.take(np, (10 + i,), x)  # a new shape each time: a new buffer
        assert ws.nbytes <= 1000


def _random_case(seed):
    """A random model, rule, preconditioner and loss kind (the exactness tests' space, with a run axis)."""
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 5))
    widths = tuple(int(w) for w in rng.integers(1, 6, size=depth - 1))
    out = int(rng.integers(1, 3))
    runs = [None, 2][int(rng.integers(2))]
    layers = ["all", "last", "first", tuple(sorted({0, depth - 1}))][int(rng.integers(4))]  # no duplicates
    rule = lm.InnerLoop(int(rng.integers(1, 4)), float(rng.uniform(-0.2, 0.3)), layers,
                        first_order=bool(rng.integers(2)))
    precond = [pc.Identity(), pc.KFO(), pc.KFO(psd=False), pc.MetaSGD()][int(rng.integers(4))]
    params = lm.init_deep_linear(3, widths, out, rng=rng, n_runs=runs)
    fam = lm.GaussianRegression(d=3, out=out, noise_std=0.3)
    tasks = fam.sample_tasks(int(rng.integers(1, 7)), rng, n_runs=runs if rng.integers(2) else None)
    if rng.integers(2):
        batch = lm.meta_batch(tasks, int(rng.integers(1, 6)), int(rng.integers(1, 6)), rng)
    else:
        batch = lm.MetaBatch(lm.SquaredLoss(*tasks.sample_data(int(rng.integers(1, 6)), rng)),
                             lm.SquaredLoss(*tasks.sample_data(int(rng.integers(1, 6)), rng)))
    phi = precond.init(params, rule.adapted_layers(depth))
    phi = tuple(tuple(p + 0.2 * rng.standard_normal(p.shape) for p in pl) for pl in phi)
    return params, batch, rule, precond, phi


@pytest.mark.parametrize("seed", range(60))
def test_workspace_gives_the_same_numbers_as_fresh_arrays(seed):
    """Every configuration: the call through the workspace agrees with the call without one (which the
    complex-step and autograd tests check) to round-off, also when repeated (buffers reused).  Not
    bit for bit: BLAS may take another kernel path for an output buffer with another alignment."""
    from linmeta import reverse

    params, batch, rule, precond, phi = _random_case(seed)
    without = reverse._value_and_grad(params, batch.support, batch.query, rule, precond, phi, None)
    for _ in range(2):
        with_ws = value_and_grad(params, batch.support, batch.query, rule, precond, phi)
        assert rel_err(with_ws.value, without.value) <= 1e-13
        for a, b in zip(with_ws.params, without.params):
            assert rel_err(a, b) <= 1e-13
        for pa, pb in zip(with_ws.phi, without.phi):
            for a, b in zip(pa, pb):
                assert rel_err(a, b) <= 1e-13


@pytest.mark.parametrize("seed", range(12))
def test_torch_through_the_workspace_matches_numpy(seed):
    """The same buffers and ``out=`` writes on torch tensors (the array-API code path, CPU here)."""
    torch = pytest.importorskip("torch")
    from linmeta._backend import to_backend

    params, batch, rule, precond, phi = _random_case(seed)
    ref = value_and_grad(params, batch.support, batch.query, rule, precond, phi)
    tp = to_backend(params, "torch")
    tphi = tuple(to_backend(list(pl), "torch") for pl in phi)
    for _ in range(2):
        got = value_and_grad(tp, batch.support.to("torch"), batch.query.to("torch"), rule, precond, tphi)
        assert isinstance(got.params[0], torch.Tensor)
        assert rel_err(got.value.numpy(), ref.value) <= 1e-12
        for a, b in zip(got.params, ref.params):
            assert rel_err(a.numpy(), b) <= 1e-12
        for pa, pb in zip(got.phi, ref.phi):
            for a, b in zip(pa, pb):
                assert rel_err(np.asarray(a), b) <= 1e-12
