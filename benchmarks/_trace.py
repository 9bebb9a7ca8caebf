"""Count what the engine computes, and time it without the engine: FLOPs, numpy calls, GEMM rate, floors.

``trace(call)`` runs ``call(wrap)`` once with every input array wrapped in a numpy subclass that
records each numpy call the engine (and the losses and preconditioners it calls) makes: ufuncs
(``matmul``, ``add``, ...), reductions and array functions (``concatenate``, ...).  From the record:

* ``flops``: ``2·m·n·k`` per matrix product, summed over every ``matmul`` (batched ones counted per
  batch element) -- the engine's arithmetic, counted exactly rather than by formula;
* ``gemm_rate``: this machine's rate on the *same* products: each recorded GEMM (a product over
  stacked task rows, at least 8 rows: one matrix, or one per run) is re-run alone on fresh
  contiguous arrays of its shapes, best of several repeats, and the rate is their FLOPs over their
  summed times (the per-task products with ``out`` rows are not GEMMs and are left out);
* ``flop_floor_s = flops / gemm_rate``: the time the engine's arithmetic would take if all of it ran
  at that GEMM rate (the issue's "floor");
* ``call_floor_s``: the recorded numpy calls themselves, replayed back to back on the recorded
  operands with no Python in between (no engine code, no object creation, no shape logic): what
  numpy needs for this sequence of calls, i.e. the bound on any engine that issues them.

The workspace is switched off while tracing (its buffers would be plain arrays, invisible to the
subclass); it changes where results are written, not which calls are made.
"""
from __future__ import annotations

import time

import numpy as np


class _Rec(np.ndarray):
    log = None

    def __array_ufunc__(self, ufunc, method, *inputs, **kw):
        plain = [x.view(np.ndarray) if isinstance(x, _Rec) else x for x in inputs]
        if "out" in kw:
            kw["out"] = tuple(o.view(np.ndarray) if isinstance(o, _Rec) else o for o in kw["out"])
        fn = getattr(ufunc, method)
        out = fn(*plain, **kw)
        if _Rec.log is not None:
            _Rec.log.append((fn, plain, dict(kw)))
        return out.view(_Rec) if isinstance(out, np.ndarray) and not isinstance(out, _Rec) else out

    def __array_function__(self, func, types, args, kwargs):
        def conv(a):
            if isinstance(a, _Rec):
                return a.view(np.ndarray)
            if isinstance(a, (list, tuple)):
                return type(a)(conv(x) for x in a)
            return a

        out = func(*conv(args), **{k: conv(v) for k, v in kwargs.items()})
        if _Rec.log is not None and func.__name__ not in ("reshape", "broadcast_to", "shape", "ndim"):
            _Rec.log.append((func, conv(args), {k: conv(v) for k, v in kwargs.items()}))
        return out.view(_Rec) if isinstance(out, np.ndarray) else out


def _wrap(x):
    return np.asarray(x).view(_Rec) if isinstance(x, np.ndarray) else x


def _matmul_flops(a, b) -> int:
    a_shape = a.shape if a.ndim > 1 else (1,) + a.shape
    b_shape = b.shape if b.ndim > 1 else b.shape + (1,)
    batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    return 2 * int(np.prod(batch, dtype=np.int64)) * a_shape[-2] * a_shape[-1] * b_shape[-1]


def trace(call) -> list:
    """The numpy calls ``call(wrap)`` makes (``wrap`` turns an input array into a recording one)."""
    from linmeta import _workspace

    acquire = _workspace.acquire
    _workspace.acquire = lambda like: None
    try:
        call(_wrap)  # warm-up (plans, caches)
        _Rec.log = log = []
        call(_wrap)
    finally:
        _Rec.log = None
        _workspace.acquire = acquire
    return log


def _best(fn, reps):
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def summarize(log, reps: int = 20) -> dict:
    """FLOPs, call counts, the GEMM rate on the same shapes and the two floors (see the module docstring)."""
    rng = np.random.default_rng(0)
    flops, gemm_flops, gemm_time, counts = 0, 0, 0.0, {}
    seen = {}
    for fn, args, kw in log:
        name = getattr(fn, "__name__", str(fn))
        if name == "__call__":
            name = fn.__self__.__name__
        counts[name] = counts.get(name, 0) + 1
        if name == "matmul":
            a, b = args[0], args[1]
            f = _matmul_flops(a, b)
            flops += f
            # GEMMs: the products over stacked task rows (2-D, or one per run), not the per-task small ones
            if a.ndim >= 2 and b.ndim >= 2 and a.shape[-2] >= 8 and min(a.shape[-1], b.shape[-1]) >= 2 \
                    and int(np.prod(a.shape[:-2], dtype=np.int64)) <= 64:
                key = (a.shape, b.shape, a.dtype.str)
                if key not in seen:
                    x = np.ascontiguousarray(rng.standard_normal(a.shape).astype(a.dtype))
                    y = np.ascontiguousarray(rng.standard_normal(b.shape).astype(b.dtype))
                    seen[key] = _best(lambda: x @ y, reps)
                gemm_flops += f
                gemm_time += seen[key]

    def replay():
        for fn, args, kw in log:
            fn(*args, **kw)

    replay()
    call_floor = _best(replay, max(3, reps // 4))
    rate = gemm_flops / gemm_time if gemm_time else float("nan")
    return {"flops": int(flops), "numpy_calls": len(log), "calls_by_kind": counts, "gemm_flops": int(gemm_flops),
            "gemm_rate_flops_per_s": rate, "flop_floor_s": flops / rate if gemm_time else float("nan"),
            "call_floor_s": call_floor}
