"""Meta-gradient throughput of linmeta: against per-task autograd references, against its own floor, and
across tasks, runs, widths and inner steps -- side by side in one process, in interleaved rounds.

Standard config (issue "linmeta core"): d = 20, widths 32-32-1, K = 10 support and Q = 20 query shots,
k = 2 inner steps with alpha = 0.05, all layers adapting (second-order MAML), 256 tasks, float64.

Sections (every implementation is checked against the others before it is timed):

1. references: linmeta (numpy: moments given, moments from raw data, raw data in data form; torch CPU),
   a per-task torch autograd loop (create_graph=True) and `higher`, and optionally the engine of an
   earlier commit (``--baseline REV``, imported from ``git archive``);
2. sweeps from the standard config, one axis at a time: tasks T in {32, 256, 1024, 4096}; runs
   R in {1, 16, 128, 1024} (tasks shared by all runs, and per-run tasks up to R = 128); widths in
   {32, 128, 512}; inner steps k in {1, 2, 5}.  For each: time (median over rounds of the best of a few
   calls), run-tasks per second, the FLOPs the engine computes (traced: every matrix product it makes),
   GFLOP/s, this machine's GEMM rate on the same product shapes, the FLOP floor (FLOPs at that rate)
   and the ratio to it, the numpy-call floor (the same numpy calls replayed with no engine code
   between them), page faults per call, peak memory allocated during a call, and the baseline;
3. process kinds: the standard config in a numpy-only process (a child that never imports torch,
   as ``linmeta reproduce`` and user scripts are) and in this process (torch loaded): time and page
   faults per call, new engine and baseline;
4. peak memory of R = 1024 runs x T = 256 tasks in fresh processes (tasks shared by the runs, and
   per-run tasks, whose moments alone are 1.7 GB);
5. torch CPU against numpy on the same engine code (agreement and time);
6. the BLAS (threadpoolctl), the OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE variables, and the standard
   config in a child with both unset (and, with ``--openblas-env``, with given values).

Usage:
    python benchmarks/bench_meta_gradient.py [--rounds N] [--json results.json] [--quick] [--baseline REV]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

import linmeta as lm
from linmeta import _chunking, _workspace
from linmeta import preconditioners as pc
from linmeta._backend import to_backend, to_numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _trace  # noqa: E402

CONFIG = dict(d=20, widths=(32, 32), out=1, K=10, Q=20, steps=2, alpha=0.05, tasks=256)
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SWEEPS = [("T", "tasks", [1, 32, 256, 1024, 4096]), ("R", "runs", [1, 16, 128, 1024]),
          ("R per-run tasks", "runs_own", [16, 128]), ("widths", "widths", [(32, 32), (128, 128), (512, 512)]),
          ("k", "steps", [1, 2, 5])]
QUICK_SWEEPS = [("T", "tasks", [1, 32, 256]), ("R", "runs", [1, 16]), ("widths", "widths", [(32, 32), (128, 128)]),
                ("k", "steps", [1, 2])]


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
            "cpu": cpu, "cores": os.cpu_count(), "linmeta": lm.__version__}
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    if "torch" in sys.modules:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    try:
        import higher

        info["higher"] = getattr(higher, "__version__", "installed")
    except ImportError:
        pass
    return info


def blas_info() -> dict:
    out = {"env": {v: os.environ.get(v) for v in OPENBLAS_VARS}}
    try:
        from threadpoolctl import threadpool_info

        out["threadpoolctl"] = [{k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads",
                                                      "threading_layer", "filepath")} for d in threadpool_info()]
    except ImportError:
        out["threadpoolctl"] = "not installed (pip install threadpoolctl)"
    return out


# ---------------------------------------------------------------------------------------------- problems

def make_problem(cfg, seed=0):
    """Raw data of the standard kind: params and (Xs, Ys, Xq, Yq) for ``cfg['tasks']`` tasks, no run axis."""
    rng = np.random.default_rng(seed)
    fam = lm.GaussianRegression(d=cfg["d"], out=cfg["out"], noise_std=0.1)
    tasks = fam.sample_tasks(cfg["tasks"], rng)
    Xs, Ys = tasks.sample_data(cfg["K"], rng)
    Xq, Yq = tasks.sample_data(cfg["Q"], rng)
    params = lm.init_deep_linear(cfg["d"], cfg["widths"], cfg["out"], rng=rng)
    return params, (Xs, Ys, Xq, Yq)


def moments_problem(cfg, runs=None, own_tasks=False, seed=0):
    """Params (with ``runs`` runs) and moment losses for ``cfg['tasks']`` tasks: shared by every run, or
    (``own_tasks``) drawn for each run.  Per-run moments are built a run at a time (no raw data kept)."""
    rng = np.random.default_rng(seed)
    fam = lm.GaussianRegression(d=cfg["d"], out=cfg["out"], noise_std=0.1)
    params = lm.init_deep_linear(cfg["d"], cfg["widths"], cfg["out"], rng=rng, n_runs=runs)
    if not own_tasks or runs is None:
        tasks = fam.sample_tasks(cfg["tasks"], rng)
        return params, tasks.moments(cfg["K"], rng), tasks.moments(cfg["Q"], rng)
    T, d, out = cfg["tasks"], cfg["d"], cfg["out"]
    losses = []
    for n in (cfg["K"], cfg["Q"]):
        A, B, c = np.empty((runs, T, d, d)), np.empty((runs, T, d, out)), np.empty((runs, T))
        for r in range(runs):
            m = fam.sample_tasks(T, rng).moments(n, rng)
            A[r], B[r], c[r] = m.A, m.B, m.c
        losses.append(lm.QuadraticLoss(A, B, c))
    return (params, *losses)


def rule_of(cfg):
    return lm.InnerLoop(cfg["steps"], cfg["alpha"], "all")


def engine_step(pkg, params, support, query, cfg):
    """One meta-gradient through ``pkg`` (linmeta or a baseline copy): its unchecked entry point."""
    rule = pkg.InnerLoop(cfg["steps"], cfg["alpha"], "all")
    precond = pkg.preconditioners.Identity()
    phi = ((),) * len(params)
    loss = lambda q: pkg.QuadraticLoss(q.A, q.B, q.c)
    s, q = loss(support), loss(query)
    vg = pkg.meta.value_and_grad_unchecked
    return lambda: vg(params, s, q, rule, precond, phi)


def load_baseline(rev: str):
    """The ``linmeta`` package of git revision ``rev``, imported as ``linmeta_baseline`` (None if unavailable)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dest = os.path.join(tempfile.gettempdir(), f"linmeta_baseline_{rev}")
    pkg_dir = os.path.join(dest, "linmeta_baseline")
    try:
        if not os.path.isdir(pkg_dir):
            os.makedirs(dest, exist_ok=True)
            tar = subprocess.run(["git", "-C", root, "archive", rev, "linmeta"], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", dest], input=tar, check=True)
            os.rename(os.path.join(dest, "linmeta"), pkg_dir)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"baseline {rev!r} unavailable: {exc}")
        return None
    sys.path.insert(0, dest)
    import importlib

    pkg = importlib.import_module("linmeta_baseline")
    importlib.import_module("linmeta_baseline.meta")
    return pkg


# ---------------------------------------------------------------------------------------------- timing

#: what the tables report: "cpu" (this process's CPU time, the default) or "wall"
CLOCK = "cpu"
_WALL = {}


def best_of(fn, reps):
    """Best of ``reps`` calls, in process CPU time (``CLOCK = "cpu"``) or wall time; both are kept.

    On a machine shared with other work, a call longer than a scheduling quantum is nearly always
    preempted, so its wall time measures the other processes; CPU time (user + system, all threads
    of this process) does not.  With one BLAS thread the two agree on an idle machine.
    """
    best, best_wall = float("inf"), float("inf")
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        t1, c1 = time.perf_counter(), time.process_time()
        best, best_wall = min(best, c1 - c0), min(best_wall, t1 - t0)
    _WALL["last"] = best_wall
    return best if CLOCK == "cpu" else best_wall


def reps_for(fn, target=0.15, most=20):
    t = best_of(fn, 1)
    return max(1, min(most, int(target / max(t, 1e-9))))


def interleaved(impls: dict, rounds: int, wall: dict | None = None) -> dict:
    """``{name: [best of reps per round]}``: every implementation timed back to back in each round
    (``wall``, if given, receives the wall-clock bests too)."""
    times = {name: [] for name in impls}
    for _ in range(rounds):
        for name, (fn, reps) in impls.items():
            times[name].append(best_of(fn, reps))
            if wall is not None:
                wall.setdefault(name, []).append(_WALL["last"])
    return times


def faults_per_call(fn, n):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / n


def peak_bytes(fn) -> int:
    """Peak memory numpy and Python allocate during one call (after warm-up), by tracemalloc."""
    fn()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def workspace_bytes() -> int:
    return sum(ws.nbytes for ws in getattr(_workspace._local, "free", []))


def rel(a, b):
    return max(float(np.max(np.abs(to_numpy(x) - to_numpy(y))) / np.max(np.abs(to_numpy(y)))) for x, y in zip(a, b))


# ---------------------------------------------------------------------------------------------- 1. references

def linmeta_numpy(params, data, cfg):
    Xs, Ys, Xq, Yq = data
    rule = rule_of(cfg)
    return lambda: lm.meta_value_and_grad(params, lm.sample_moments(Xs, Ys), lm.sample_moments(Xq, Yq), rule).params


def linmeta_numpy_data(params, data, cfg):
    Xs, Ys, Xq, Yq = data
    rule = rule_of(cfg)
    return lambda: lm.meta_value_and_grad(params, lm.SquaredLoss(Xs, Ys), lm.SquaredLoss(Xq, Yq), rule).params


def linmeta_numpy_moments(params, data, cfg):
    Xs, Ys, Xq, Yq = data
    rule = rule_of(cfg)
    support, query = lm.sample_moments(Xs, Ys), lm.sample_moments(Xq, Yq)
    return lambda: lm.meta_value_and_grad(params, support, query, rule).params


def linmeta_torch(params, data, cfg, moments=False):
    Xs, Ys, Xq, Yq = to_backend(list(data), "torch")
    tparams = to_backend(params, "torch")
    rule = rule_of(cfg)
    if moments:
        support, query = lm.sample_moments(Xs, Ys), lm.sample_moments(Xq, Yq)
        return lambda: [to_numpy(g) for g in lm.meta_value_and_grad(tparams, support, query, rule).params]
    return lambda: [to_numpy(g) for g in lm.meta_value_and_grad(tparams, lm.SquaredLoss(Xs, Ys),
                                                                  lm.SquaredLoss(Xq, Yq), rule).params]


def torch_loop(params, data, cfg):
    import torch

    Xs, Ys, Xq, Yq = (torch.as_tensor(a) for a in data)
    W0 = [torch.tensor(p, requires_grad=True) for p in params]
    alpha, T = cfg["alpha"], cfg["tasks"]

    def mse(W, X, Y):
        h = X
        for Wl in W:
            h = h @ Wl.T
        return 0.5 * ((h - Y) ** 2).sum(dim=1).mean()

    def step():
        for w in W0:
            w.grad = None
        for t in range(T):
            W = list(W0)
            for _ in range(cfg["steps"]):
                grads = torch.autograd.grad(mse(W, Xs[t], Ys[t]), W, create_graph=True)
                W = [w - alpha * g for w, g in zip(W, grads)]
            (mse(W, Xq[t], Yq[t]) / T).backward()
        return [w.grad.numpy().copy() for w in W0]

    return step


def higher_loop(params, data, cfg):
    import higher
    import torch

    Xs, Ys, Xq, Yq = (torch.as_tensor(a) for a in data)
    sizes = (cfg["d"],) + tuple(cfg["widths"]) + (cfg["out"],)
    net = torch.nn.Sequential(*[torch.nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:])]).double()
    with torch.no_grad():
        for layer, p in zip(net, params):
            layer.weight.copy_(torch.as_tensor(p))
    inner = torch.optim.SGD(net.parameters(), lr=cfg["alpha"])
    T = cfg["tasks"]

    def step():
        net.zero_grad()
        for t in range(T):
            with higher.innerloop_ctx(net, inner, copy_initial_weights=False) as (fnet, diffopt):
                for _ in range(cfg["steps"]):
                    diffopt.step(0.5 * ((fnet(Xs[t]) - Ys[t]) ** 2).sum(dim=1).mean())
                (0.5 * ((fnet(Xq[t]) - Yq[t]) ** 2).sum(dim=1).mean() / T).backward()
        return [layer.weight.grad.numpy().copy() for layer in net]

    return step


def references(cfg, rounds, repeats, baseline=None, include_references=True):
    """Section 1: every implementation on the standard config, interleaved; ratios per round, medians."""
    params, data = make_problem(cfg)
    impls = {"linmeta (numpy), moments given": (linmeta_numpy_moments(params, data, cfg), repeats),
             "linmeta (numpy), moments from raw data": (linmeta_numpy(params, data, cfg), repeats),
             "linmeta (numpy), raw data (SquaredLoss)": (linmeta_numpy_data(params, data, cfg), repeats)}
    if baseline is not None:
        S, Q = lm.sample_moments(*data[:2]), lm.sample_moments(*data[2:])
        base_step = engine_step(baseline, params, S, Q, cfg)
        impls["baseline engine (numpy), moments given"] = (lambda: base_step().params, repeats)
    try:
        import torch  # noqa: F401

        impls["linmeta (torch CPU), moments given"] = (linmeta_torch(params, data, cfg, moments=True), repeats)
        impls["linmeta (torch CPU), raw data (SquaredLoss)"] = (linmeta_torch(params, data, cfg), repeats)
        if include_references:
            impls["torch loop (autograd, create_graph)"] = (torch_loop(params, data, cfg), 1)
    except ImportError:
        pass
    if include_references:
        try:
            import higher  # noqa: F401

            impls["higher"] = (higher_loop(params, data, cfg), 1)
        except ImportError:
            pass
    ref = impls["linmeta (numpy), moments given"][0]()
    errors = {}
    for name, (step, _) in impls.items():
        err = rel(step(), ref)  # also the warm-up call
        if err > 1e-10:
            raise AssertionError(f"{name} disagrees with linmeta: rel err {err:.3g}")
        errors[name] = err
    wall = {}
    times = interleaved(impls, rounds, wall)
    base = np.array(times["linmeta (numpy), moments given"])
    rows = {}
    for name, ts in times.items():
        ts = np.array(ts)
        ratio = ts / base
        rows[name] = {"seconds_median": float(np.median(ts)), "seconds_min": float(ts.min()),
                      "wall_seconds_median": float(np.median(wall[name])),
                      "tasks_x_steps_per_s": cfg["tasks"] / float(np.median(ts)),
                      "ratio_median": float(np.median(ratio)), "ratio_min": float(ratio.min()),
                      "ratio_max": float(ratio.max()), "rel_err_vs_numpy": errors[name]}
    return rows


# ---------------------------------------------------------------------------------------------- 2. sweeps

def sweep_config(axis, value):
    cfg = dict(CONFIG)
    runs, own = None, False
    if axis == "tasks":
        cfg["tasks"] = value
    elif axis == "runs":
        runs = value
    elif axis == "runs_own":
        runs, own = value, True
    elif axis == "widths":
        cfg["widths"] = value
    elif axis == "steps":
        cfg["steps"] = value
    return cfg, runs, own


def traced_costs(cfg, runs, own):
    """FLOPs, numpy calls and floors of one meta-gradient; traced on one chunk and scaled to all of them."""
    params, S, Q = moments_problem(cfg, runs, own)
    rule, precond = rule_of(cfg), pc.Identity()
    per_task = _chunking.working_set_bytes(params, S, rule, precond)
    R = runs or 0
    rc, tc = _chunking.plan(R, cfg["tasks"], per_task)
    n_chunks = len(_chunking.bounds(max(R, 1), rc)) * len(_chunking.bounds(cfg["tasks"], tc))
    if runs is not None:
        params = tuple(W[:rc] for W in params)
        if own:
            S, Q = (lm.QuadraticLoss(q.A[:rc], q.B[:rc], q.c[:rc]) for q in (S, Q))
    if tc < cfg["tasks"]:
        S, Q = (lm.QuadraticLoss(q.A[..., :tc, :, :], q.B[..., :tc, :, :], q.c[..., :tc]) for q in (S, Q))
    phi = ((),) * len(params)
    from linmeta.meta import value_and_grad_unchecked

    def call(wrap):
        w = lambda q: lm.QuadraticLoss(wrap(q.A), wrap(q.B), wrap(q.c))
        value_and_grad_unchecked(tuple(wrap(W) for W in params), w(S), w(Q), rule, precond, phi)

    s = _trace.summarize(_trace.trace(call))
    for key in ("flops", "numpy_calls", "gemm_flops", "flop_floor_s", "call_floor_s"):
        s[key] = s[key] * n_chunks
    s["calls_by_kind"] = {k: v * n_chunks for k, v in s["calls_by_kind"].items()}
    s["chunks"] = n_chunks
    s["chunk_plan"] = (rc, tc)
    return s


def sweeps(rounds, baseline, quick=False):
    out = []
    for label, axis, values in (QUICK_SWEEPS if quick else SWEEPS):
        for value in values:
            cfg, runs, own = sweep_config(axis, value)
            params, S, Q = moments_problem(cfg, runs, own)
            R = runs or 1
            new = engine_step(lm, params, S, Q, cfg)
            impls = {"new": (new, reps_for(new))}
            # the baseline holds every run's tasks' products at once (4.2 GB at R = 128): not run beyond that
            use_base = baseline is not None and R * cfg["tasks"] <= 128 * 256 and not (own and R > 16)
            if use_base:
                old = engine_step(baseline, params, S, Q, cfg)
                err = rel(new().params, old().params)
                assert err < 1e-10, (label, value, err)
                impls["baseline"] = (old, reps_for(old))
            wall = {}
            times = interleaved(impls, rounds, wall)
            t_new = float(np.median(times["new"]))
            costs = traced_costs(cfg, runs, own)
            row = {"sweep": label, "value": value, "runs": runs, "tasks": cfg["tasks"], "widths": cfg["widths"],
                   "steps": cfg["steps"], "seconds_median": t_new, "seconds_min": float(min(times["new"])),
                   "wall_seconds_median": float(np.median(wall["new"])), "wall_seconds_min": float(min(wall["new"])),
                   "run_tasks_per_s": R * cfg["tasks"] / t_new, "flops": costs["flops"],
                   "gflops_per_s": costs["flops"] / t_new / 1e9,
                   "gemm_gflops_per_s": costs["gemm_rate_flops_per_s"] / 1e9,
                   "flop_floor_s": costs["flop_floor_s"], "ratio_to_floor": t_new / costs["flop_floor_s"],
                   "call_floor_s": costs["call_floor_s"], "numpy_calls": costs["numpy_calls"],
                   "chunks": costs["chunks"], "chunk_plan": costs["chunk_plan"],
                   "faults_per_call": faults_per_call(new, impls["new"][1]),
                   "peak_bytes_during_call": peak_bytes(new), "workspace_bytes": workspace_bytes()}
            if use_base:
                row["baseline_wall_seconds_median"] = float(np.median(wall["baseline"]))
                row["baseline_seconds_median"] = float(np.median(times["baseline"]))
                row["speedup_median"] = float(np.median(np.array(times["baseline"]) / np.array(times["new"])))
            out.append(row)
            base_txt = f", baseline {row['baseline_seconds_median']*1e3:.3g} ms ({row['speedup_median']:.1f}x)" if use_base else ""
            print(f"  {label}={value}: {t_new*1e3:.3g} ms, {row['run_tasks_per_s']/1e3:.1f}k run-tasks/s, "
                  f"{costs['flops']/1e6:.1f} MFLOP, {row['gflops_per_s']:.1f} GFLOP/s (GEMM {row['gemm_gflops_per_s']:.0f}), "
                  f"floor {costs['flop_floor_s']*1e3:.3g} ms (x{row['ratio_to_floor']:.1f}), calls {costs['numpy_calls']} "
                  f"-> {costs['call_floor_s']*1e3:.3g} ms, faults {row['faults_per_call']:.1f}, "
                  f"peak {row['peak_bytes_during_call']/2**20:.1f} MiB{base_txt}", flush=True)
    return out


# ---------------------------------------------------------------------------------------------- 3, 4, 6. children

def child_process_kind(baseline_rev, n):
    """In this process (whatever it has imported): standard config, new engine and baseline, interleaved."""
    cfg = dict(CONFIG)
    params, S, Q = moments_problem(cfg)
    impls = {"new": engine_step(lm, params, S, Q, cfg)}
    base = load_baseline(baseline_rev) if baseline_rev else None
    if base is not None:
        impls["baseline"] = engine_step(base, params, S, Q, cfg)
    res = {k: {"times": [], "faults": []} for k in impls}
    for f in impls.values():
        f()
    for _ in range(5):
        for k, f in impls.items():
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            ts, cs = [], []
            for _ in range(n):
                c0, t0 = time.process_time(), time.perf_counter()
                f()
                t1, c1 = time.perf_counter(), time.process_time()
                ts.append(t1 - t0)
                cs.append(c1 - c0)
            res[k]["faults"].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / n)
            res[k]["times"] += ts
            res[k].setdefault("cpu", []).extend(cs)
    return {k: {"wall_min": float(np.min(v["times"])), "wall_median": float(np.median(v["times"])),
                "cpu_min": float(np.min(v["cpu"])), "cpu_median": float(np.median(v["cpu"])),
                "cpu_mean": float(np.mean(v["cpu"])), "faults_per_call": float(np.median(v["faults"]))}
            for k, v in res.items()} | {"torch_loaded": "torch" in sys.modules}


def _status_bytes(field):
    """``VmRSS`` / ``VmHWM`` of this process from /proc/self/status, in bytes (None where unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def child_peak(runs, own):
    """Peak resident memory of one call over ``runs`` runs (the high-water mark is reset after the inputs
    are built, so the peak is that of the call: inputs, interpreter and the engine's own arrays)."""
    cfg = dict(CONFIG)
    params, S, Q = moments_problem(cfg, runs, own)
    inputs = sum(a.nbytes for a in (*params, S.A, S.B, S.c, Q.A, Q.B, Q.c))
    step = engine_step(lm, params, S, Q, cfg)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    rss0 = _status_bytes("VmRSS")
    c0, t0 = time.process_time(), time.perf_counter()
    step()
    t, wall = time.process_time() - c0, time.perf_counter() - t0
    peak = _status_bytes("VmHWM") if reset else None
    return {"runs": runs, "own_tasks": own, "input_bytes": inputs, "rss_before_call_bytes": rss0,
            "peak_rss_during_call_bytes": peak, "call_added_bytes": None if peak is None else peak - rss0,
            "cpu_seconds": t, "wall_seconds": wall, "run_tasks_per_s": runs * cfg["tasks"] / t}


def set_threads(n):
    """Limit BLAS (threadpoolctl) and, where loaded, torch to ``n`` threads for the rest of the process."""
    from threadpoolctl import threadpool_limits

    global _LIMITS
    _LIMITS = threadpool_limits(limits=n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


_LIMITS = None
THREADS = []


def run_child(args, env=None, timeout=1800):
    cmd = [sys.executable, os.path.abspath(__file__), "--child"] + args + THREADS
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if res.returncode != 0:
        return {"error": res.stderr[-2000:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def env_without(names):
    return {k: v for k, v in os.environ.items() if k not in names}


# ---------------------------------------------------------------------------------------------- 5. torch

def torch_follows_numpy(rounds):
    import torch

    rows = []
    for label, axis, value in [("standard", None, None), ("T", "tasks", 1024), ("R", "runs", 16),
                               ("widths", "widths", (128, 128)), ("k", "steps", 5)]:
        cfg, runs, own = sweep_config(axis, value) if axis else (dict(CONFIG), None, False)
        params, S, Q = moments_problem(cfg, runs, own)
        tparams = to_backend(params, "torch")
        tS, tQ = S.to("torch"), Q.to("torch")
        f_np, f_t = engine_step(lm, params, S, Q, cfg), engine_step(lm, tparams, tS, tQ, cfg)
        err = rel(f_t().params, f_np().params)
        times = interleaved({"numpy": (f_np, reps_for(f_np)), "torch": (f_t, reps_for(f_t))}, rounds)
        tn, tt = float(np.median(times["numpy"])), float(np.median(times["torch"]))
        rows.append({"config": label, "value": value, "numpy_s": tn, "torch_s": tt, "torch_over_numpy": tt / tn,
                     "max_rel_diff": err, "torch_threads": torch.get_num_threads()})
        print(f"  {label}={value}: numpy {tn*1e3:.3g} ms, torch CPU {tt*1e3:.3g} ms ({tt/tn:.2f}x), max rel diff {err:.1e}",
              flush=True)
    return rows


# ---------------------------------------------------------------------------------------------- main

def print_references(rows, rounds):
    print(f"\nmedian of {rounds} interleaved rounds (range of the per-round ratio in brackets)")
    print("| implementation | s / meta-step | tasks x meta-steps / s | time / linmeta (moments given) | max rel. diff |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['seconds_median']:.4g} | {r['tasks_x_steps_per_s']:.4g} | "
              f"{r['ratio_median']:.2f}x [{r['ratio_min']:.2f}, {r['ratio_max']:.2f}] | {r['rel_err_vs_numpy']:.1e} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=10, help="linmeta calls per round in section 1 (best is kept)")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (medians are reported)")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--quick", action="store_true", help="section 1 and small sweeps only")
    ap.add_argument("--baseline", default=None, help="git revision whose engine is timed alongside (e.g. HEAD~5)")
    ap.add_argument("--no-references", action="store_true", help="skip the torch loop and higher")
    ap.add_argument("--openblas-env", default=None, help="also run the standard config with these, e.g. "
                                                         "'OPENBLAS_CORETYPE=Haswell,OPENBLAS_L2_SIZE=262144'")
    ap.add_argument("--threads", type=int, default=None, help="BLAS and torch threads (default: the libraries' own)")
    ap.add_argument("--wall", action="store_true", help="report wall-clock instead of process CPU time")
    ap.add_argument("--child", nargs="+", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        set_threads(args.threads)
    global CLOCK
    CLOCK = "wall" if args.wall else "cpu"

    if args.child:  # a fresh process: print one JSON line
        kind = args.child[0]
        if kind == "process-kind":  # args: baseline-rev n [torch]
            if len(args.child) > 3 and args.child[3] == "torch":
                import torch  # noqa: F401

                if args.threads:
                    set_threads(args.threads)
            res = child_process_kind(args.child[1] if args.child[1] != "-" else None, int(args.child[2]))
        elif kind == "peak":
            res = child_peak(int(args.child[1]), args.child[2] == "own")
        else:
            raise SystemExit(f"unknown child {kind}")
        print(json.dumps(res))
        return 0

    import torch  # noqa: F401  (this process has torch loaded, like the reference implementations)

    if args.threads:
        set_threads(args.threads)
        THREADS[:] = ["--threads", str(args.threads)]

    out = {"config": CONFIG, "machine": machine(), "blas": blas_info(), "chunk_bytes": _chunking.CHUNK_BYTES,
           "threads": args.threads or "library default", "clock": CLOCK}
    print("config:", CONFIG)
    print("machine:", out["machine"])
    print("blas:", json.dumps(out["blas"]))
    baseline = load_baseline(args.baseline) if args.baseline else None
    if baseline is not None:
        out["baseline"] = args.baseline

    print("\n1. references, standard config")
    rows = references(CONFIG, args.rounds, args.repeats, baseline, include_references=not args.no_references)
    out["standard"] = rows
    print_references(rows, args.rounds)

    print("\n3. process kinds (standard config; new engine and baseline interleaved in each process)")
    kinds = {}
    variants = [("numpy-only process", [], True), ("torch loaded", ["torch"], True)]
    if args.threads:
        variants += [("numpy-only process, library-default threads", [], False),
                     ("torch loaded, library-default threads", ["torch"], False)]
    for name, extra, limit in variants:
        saved = list(THREADS)
        if not limit:
            THREADS[:] = []
        kinds[name] = run_child(["process-kind", args.baseline or "-", "200"] + extra)
        THREADS[:] = saved
        print(f"  {name}: {json.dumps(kinds[name])}", flush=True)
    out["process_kinds"] = kinds

    print("\n6. OpenBLAS variables:", out["blas"]["env"])
    blas_runs = {}
    if any(os.environ.get(v) for v in OPENBLAS_VARS):
        blas_runs["both unset"] = run_child(["process-kind", args.baseline or "-", "200"], env_without(OPENBLAS_VARS))
    else:
        blas_runs["both unset"] = "this run (neither variable is set)"
    if args.openblas_env:
        env = env_without(OPENBLAS_VARS)
        env.update(dict(kv.split("=", 1) for kv in args.openblas_env.split(",")))
        blas_runs[args.openblas_env] = run_child(["process-kind", args.baseline or "-", "200"], env)
    for k, v in blas_runs.items():
        print(f"  {k}: {json.dumps(v)}")
    out["openblas_runs"] = blas_runs

    print("\n2. sweeps from the standard config (numpy, moments given; interleaved with the baseline)")
    out["sweeps"] = sweeps(args.rounds if not args.quick else 3, baseline, quick=args.quick)

    if not args.quick:
        print("\n4. peak memory, R = 1024 runs x T = 256 tasks, fresh processes")
        out["peak_memory"] = []
        for own in (False, True):
            r = run_child(["peak", "1024", "own" if own else "shared"])
            out["peak_memory"].append(r)
            print(f"  {'per-run' if own else 'shared'} tasks: {json.dumps(r)}", flush=True)

    print("\n5. torch CPU follows numpy (same engine code)")
    out["torch_vs_numpy"] = torch_follows_numpy(3)

    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
