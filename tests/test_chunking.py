"""Automatic chunking of runs and tasks (linmeta._chunking): exact, bounded, and shared moments stay shared."""
import numpy as np
import pytest

import linmeta as lm
from linmeta import _chunking
from linmeta import preconditioners as pc
from linmeta.meta import engine_for, value_and_grad_unchecked

from .helpers import rel_err

PRECONDS = [pc.Identity(), pc.KFO(), pc.MetaSGD(), pc.KFO(update_factors=True)]


@pytest.fixture
def budget():
    """Set the chunk budget for one test (restored afterwards)."""
    old = _chunking.CHUNK_BYTES
    yield lambda b: setattr(_chunking, "CHUNK_BYTES", b)
    _chunking.CHUNK_BYTES = old


def _problem(seed, *, runs=5, shared=True, T=11, loss="quadratic", precond=pc.Identity(), steps=2):
    rng = np.random.default_rng(seed)
    if loss == "logistic":
        fam = lm.BinaryClassification(d=4, label_noise=0.1)
        w = fam.sample_tasks(T, rng, n_runs=None if shared else runs)
        batch = fam.meta_batch(w, 6, 7, rng)
        out = 1
    else:
        out = 2
        fam = lm.GaussianRegression(d=4, out=out, noise_std=0.2)
        tasks = fam.sample_tasks(T, rng, n_runs=None if shared else runs)
        if loss == "squared":
            Xs, Ys = tasks.sample_data(3, rng)
            Xq, Yq = tasks.sample_data(5, rng)
            batch = lm.MetaBatch(lm.SquaredLoss(Xs, Ys), lm.SquaredLoss(Xq, Yq))
        else:
            batch = lm.meta_batch(tasks, 6, 7, rng)
    params = lm.init_deep_linear(4, (3, 5), out, rng=rng, n_runs=runs)
    rule = lm.InnerLoop(steps, 0.1)
    phi = precond.init(params, rule.adapted_layers(3))
    phi = tuple(tuple(p + 0.2 * rng.standard_normal(p.shape) for p in pl) for pl in phi)
    return params, batch, rule, phi


def _close(a, b, tol=1e-12):
    assert rel_err(a.value, b.value) <= tol
    for x, y in zip(a.params, b.params):
        assert rel_err(x, y) <= tol
    for px, py in zip(a.phi, b.phi):
        for x, y in zip(px, py):
            assert rel_err(x, y) <= tol


@pytest.mark.parametrize("precond", PRECONDS, ids=[p.name for p in PRECONDS])
@pytest.mark.parametrize("shared", [True, False], ids=["shared-tasks", "per-run-tasks"])
@pytest.mark.parametrize("chunk", [3000, 200])  # runs in chunks, then tasks in chunks too
def test_chunked_equals_unchunked(budget, precond, shared, chunk):
    params, batch, rule, phi = _problem(1, shared=shared, precond=precond)
    whole = value_and_grad_unchecked(params, batch.support, batch.query, rule, precond, phi)
    budget(chunk)
    per_task = _chunking.working_set_bytes(params, batch.support, rule, precond)
    rc, tc = _chunking.plan(5, 11, per_task)
    assert (rc, tc) != (5, 11)  # the call really is chunked
    _close(value_and_grad_unchecked(params, batch.support, batch.query, rule, precond, phi), whole)


@pytest.mark.parametrize("loss", ["quadratic", "squared", "logistic"])
@pytest.mark.parametrize("first_order", [False, True])
def test_chunked_losses_and_first_order(budget, loss, first_order):
    params, batch, rule, phi = _problem(2, loss=loss, shared=False)
    rule = lm.InnerLoop(rule.steps, rule.alpha, first_order=first_order)
    whole = value_and_grad_unchecked(params, batch.support, batch.query, rule, pc.Identity(), phi)
    budget(1)  # one task per chunk
    _close(value_and_grad_unchecked(params, batch.support, batch.query, rule, pc.Identity(), phi), whole)


def test_no_run_axis_chunks_tasks(budget):
    params, batch, rule, phi = _problem(3, runs=None, T=17)
    whole = value_and_grad_unchecked(params, batch.support, batch.query, rule, pc.Identity(), phi)
    budget(2 * _chunking.working_set_bytes(params, batch.support, rule, pc.Identity()))  # 2 tasks per chunk
    got = value_and_grad_unchecked(params, batch.support, batch.query, rule, pc.Identity(), phi)
    assert np.shape(got.value) == () and got.params[0].shape == params[0].shape
    _close(got, whole)


def test_batched_runs_equal_separate_calls_when_chunked(budget):
    params, batch, rule, phi = _problem(4, runs=6, shared=False, precond=pc.KFO())
    budget(3000)
    mg = value_and_grad_unchecked(params, batch.support, batch.query, rule, pc.KFO(), phi)
    for r in range(6):
        run = lambda q: lm.QuadraticLoss(q.A[r], q.B[r], q.c[r])
        one = lm.meta_value_and_grad(tuple(W[r] for W in params), run(batch.support), run(batch.query), rule,
                                     pc.KFO(), tuple(tuple(p[r] for p in pl) for pl in phi))
        assert rel_err(mg.value[r], one.value) <= 1e-12
        for a, b in zip(mg.params, one.params):
            assert rel_err(a[r], b) <= 1e-12
        for pa, pb in zip(mg.phi, one.phi):
            for a, b in zip(pa, pb):
                assert rel_err(a[r], b) <= 1e-12


def test_shared_moments_are_passed_whole_to_every_chunk(budget):
    """A loss shared by all runs reaches each run chunk as the same object: never sliced or copied."""
    params, batch, rule, phi = _problem(5, runs=6, shared=True)
    seen = []
    engine = engine_for(pc.Identity(), rule).value_and_grad

    def spy(p, s, q, *rest):
        seen.append((p[0].shape[0], s, q))
        return engine(p, s, q, *rest)

    budget(11 * _chunking.working_set_bytes(params, batch.support, rule, pc.Identity()))  # one run per chunk
    _chunking.value_and_grad(spy, params, batch.support, batch.query, rule, pc.Identity(), phi)
    assert [n for n, _, _ in seen] == [1] * 6
    assert all(s is batch.support and q is batch.query for _, s, q in seen)


def test_per_run_moments_are_sliced_as_views(budget):
    params, batch, rule, phi = _problem(6, runs=4, shared=False)
    seen = []
    engine = engine_for(pc.Identity(), rule).value_and_grad

    def spy(p, s, q, *rest):
        seen.append(s)
        return engine(p, s, q, *rest)

    budget(11 * _chunking.working_set_bytes(params, batch.support, rule, pc.Identity()))
    _chunking.value_and_grad(spy, params, batch.support, batch.query, rule, pc.Identity(), phi)
    assert len(seen) == 4
    for r, s in enumerate(seen):
        assert s.A.shape == (1,) + batch.support.A.shape[1:]
        assert np.shares_memory(s.A, batch.support.A)  # a view, not a copy
        assert np.array_equal(s.A[0], batch.support.A[r])


@pytest.mark.parametrize("R,T,per,budget_", [(0, 256, 1000, 10**9), (1024, 256, 16_000, 16 * 2**20),
                                               (7, 100, 5000, 60_000), (3, 4096, 100_000, 16 * 2**20), (1, 1, 10**9, 1)])
def test_plan_fits_the_budget_and_balances(R, T, per, budget_):
    rc, tc = _chunking.plan(R, T, per, budget_)
    runs = max(R, 1)
    assert 1 <= rc <= runs and 1 <= tc <= T
    if runs * T * per <= budget_:
        assert (rc, tc) == (runs, T)
    elif T * per <= budget_:
        assert tc == T and rc * T * per <= budget_
    else:
        assert rc == 1 and (tc * per <= budget_ or tc == 1)
    for n, c in ((runs, rc), (T, tc)):
        b = _chunking.bounds(n, c)
        sizes = [stop - start for start, stop in b]
        assert b[0][0] == 0 and b[-1][1] == n and all(x[1] == y[0] for x, y in zip(b, b[1:]))
        assert max(sizes) <= c and max(sizes) - min(sizes) <= 1 and len(b) == -(-n // c)
