"""Automatic chunking of the run and task axes of a meta-gradient, so memory stays bounded.

The meta-loss of a run is a mean over its tasks, and runs are independent, so a call over
``R`` runs × ``T`` tasks splits exactly into calls over chunks: results of run chunks are
concatenated along the run axis, and results of task chunks are averaged with weights
``T_c / T`` (the same numbers up to the order of floating-point sums).

Policy.  The engine's working set per (run, task) pair is estimated from the shapes
(:func:`working_set_bytes`: the thin per-task products it keeps for the reverse pass and the
temporaries next to them, measured on the engine at k = 1, 2, 5 and rounded up).  A call whose
whole working set is at most :data:`CHUNK_BYTES` runs as it is.  Otherwise whole runs are
grouped so that a chunk's working set is at most :data:`CHUNK_BYTES` (at least one run per
chunk); a run whose tasks alone exceed it is split into task chunks of at most that size
(at least one task).  Chunks are balanced (equal sizes, give or take one).  The default budget,
16 MiB, had the best median CPU time of 2-64 MiB at 32 runs × 256 tasks of the standard
configuration on the 2-core test machine (3 runs per chunk; one run per chunk was 20% slower,
task chunks 44% slower, 7-11 runs per chunk 4-10% slower: ``benchmarks/README.md``).
Losses shared by all runs (run shape ``()``) are passed to every chunk as they are: a shared
moment is never sliced, broadcast or copied per run; per-run losses are sliced as views.

Memory bound.  Besides its inputs and outputs (``O(R)`` parameter-sized gradients), a call
allocates one chunk's working set, at most about :data:`CHUNK_BYTES` (the estimate is an upper
bound on the engine's own arrays, not counting per-run matrices such as the layers themselves),
and that memory is reused from chunk to chunk and call to call (:mod:`linmeta._workspace`).  So a
sweep over 10⁴ runs streams through a few tens of megabytes besides its own outputs, whatever
``R`` (46 MB in all at R = 1024 × T = 256, measured); the time per run-task stays that of one
chunk.  :func:`linmeta.meta.adapted_layers_unchecked` is not chunked: its result, the adapted
layers of every run and task, is itself the memory, and nothing else is kept.
"""
from __future__ import annotations

import dataclasses

from ._backend import namespace
from .reverse import MetaGradient

#: target working set of one engine call, in bytes (fits the last-level cache of a typical CPU)
CHUNK_BYTES = 16 * 2**20


def working_set_bytes(params, support, rule, precond) -> int:
    """Estimated bytes the engine allocates per (run, task) pair for one meta-gradient.

    ``itemsize · out · Σ_l (n_l + n_{l+1})`` is one thin product per layer; the factored engine keeps
    about ``1.5 k² + 2k + 4`` of them per task for ``k`` inner steps (the Hessian-vector products
    accumulate ``2k + 1`` rank-``out`` corrections per layer).  The dense engine of adaptive KFO
    keeps full per-task layers and factors.
    """
    sizes = [int(params[0].shape[-1])] + [int(W.shape[-2]) for W in params]
    out = sizes[-1]
    item = int(getattr(params[0], "itemsize", None) or params[0].element_size())
    k = max(int(rule.steps), 1)
    thin = item * out * sum(sizes[l] + sizes[l + 1] for l in range(len(params)))
    est = thin * (1.5 * k * k + 2 * k + 4)
    if getattr(precond, "updates_in_inner_loop", False) and rule.steps >= 2:
        dense = item * sum(sizes[l] * sizes[l + 1] + sizes[l] ** 2 + sizes[l + 1] ** 2 for l in range(len(params)))
        est += dense * 6 * k
    for loss in (support,):
        tail = getattr(loss, "_tail_ndim", None)
        if tail and dataclasses.is_dataclass(loss) and tuple(loss.batch_shape):
            # per-run inputs are read at every step: count the chunk's share of them
            for f in dataclasses.fields(loss):
                a = getattr(loss, f.name)
                n = 1
                for s in a.shape[a.ndim - tail[f.name]:]:
                    n *= int(s)
                est += item * n
    return int(est)


def plan(R: int, T: int, per_task: int, budget: int | None = None) -> tuple:
    """``(runs per chunk, tasks per chunk)`` for ``R`` runs (0: no run axis) of ``T`` tasks."""
    budget = CHUNK_BYTES if budget is None else budget
    runs = max(R, 1)
    if runs * T * per_task <= budget:
        return runs, T
    per_run = T * per_task
    if per_run <= budget:
        return _balanced(runs, budget // per_run), T
    return 1, _balanced(T, budget // max(per_task, 1))


def _balanced(n: int, most: int) -> int:
    """The largest chunk for ``n`` items in the fewest chunks of at most ``most`` (≥ 1) items."""
    most = max(1, min(n, int(most)))
    chunks = -(-n // most)
    return -(-n // chunks)


def bounds(n: int, size: int) -> list:
    """``[(start, stop)]`` splitting ``range(n)`` into the fewest chunks of at most ``size``, balanced
    (their sizes differ by at most one)."""
    chunks = -(-n // max(1, size))
    cuts = [i * n // chunks for i in range(chunks + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def _slice_loss(loss, axis_of, sl):
    """The loss with every field sliced by ``sl`` along ``axis_of(field array, tail ndim)``, unvalidated."""
    tail = loss._tail_ndim
    out = object.__new__(type(loss))
    for f in dataclasses.fields(loss):
        a = getattr(loss, f.name)
        ax = axis_of(a, tail[f.name])
        idx = (slice(None),) * ax + (sl,)
        object.__setattr__(out, f.name, a[idx])
    return out


def _can_slice_tasks(loss) -> bool:
    return dataclasses.is_dataclass(loss) and isinstance(getattr(loss, "_tail_ndim", None), dict)


def _runs_of(loss, runs: tuple, sl):
    if not runs or tuple(loss.batch_shape) == ():
        return loss  # shared by all runs: passed whole, never sliced or copied
    return _slice_loss(loss, lambda a, t: 0, sl)


def _tasks_of(loss, sl):
    return _slice_loss(loss, lambda a, t: a.ndim - t - 1, sl)


def _scaled(a, w):
    """``w a``, in place when ``a`` is an array of floating dtype (the engine's fresh results)."""
    try:
        a *= w
        return a
    except (TypeError, ValueError, RuntimeError):
        return w * a


def _add_scaled(acc, a, w):
    """``acc + w a``, in place in ``acc``."""
    a = _scaled(a, w)
    try:
        acc += a
        return acc
    except (TypeError, ValueError, RuntimeError):
        return acc + a


def value_and_grad(engine_value_and_grad, params, support, query, rule, precond, phi) -> MetaGradient:
    """``engine_value_and_grad(params, support, query, rule, precond, phi)`` in chunks (see the module docstring)."""
    runs = tuple(params[0].shape[:-2])
    R = runs[0] if runs else 0
    T = int(support.n_tasks)
    per_task = working_set_bytes(params, support, rule, precond)
    rc, tc = plan(R, T, per_task)
    if (rc >= max(R, 1) and tc >= T) or not (_can_slice_tasks(support) and _can_slice_tasks(query)):
        return engine_value_and_grad(params, support, query, rule, precond, phi)
    results = []
    for r0, r1 in bounds(max(R, 1), rc):
        rs = slice(r0, r1)
        p_c = tuple(W[rs] for W in params) if runs else params
        phi_c = tuple(tuple(p[rs] for p in pl) for pl in phi) if runs else phi
        s_c, q_c = _runs_of(support, runs, rs), _runs_of(query, runs, rs)
        if tc >= T:
            results.append(engine_value_and_grad(p_c, s_c, q_c, rule, precond, phi_c))
            continue
        acc = None
        for t0, t1 in bounds(T, tc):
            ts = slice(t0, t1)
            w = (t1 - t0) / T
            mg = engine_value_and_grad(p_c, _tasks_of(s_c, ts), _tasks_of(q_c, ts), rule, precond, phi_c)
            part = [mg.value, *mg.params, *(g for pl in mg.phi for g in pl)]  # fresh arrays: scaled in place
            if acc is None:
                acc = [_scaled(a, w) for a in part]
            else:
                acc = [_add_scaled(a, b, w) for a, b in zip(acc, part)]
        L = len(params)
        it = iter(acc[1 + L:])
        results.append(MetaGradient(value=acc[0], params=tuple(acc[1:1 + L]),
                                    phi=tuple(tuple(next(it) for _ in pl) for pl in phi)))
    if len(results) == 1:
        return results[0]

    def cat(arrays):
        return namespace(arrays[0]).concat(list(arrays), axis=0)

    return MetaGradient(value=cat([m.value for m in results]),
                        params=tuple(cat([m.params[l] for m in results]) for l in range(len(params))),
                        phi=tuple(tuple(cat([m.phi[l][i] for m in results]) for i in range(len(phi[l])))
                                  for l in range(len(phi))))
