"""Meta-training throughput of sweeps on numpy and torch (CPU, and CUDA when present), side by side in one process.

Two configurations, both trained by `linmeta.meta_train` on one backend at a time, interleaved in rounds:

  standard   the standard configuration of the core benchmark, as a training loop: one model, d = 20,
             widths 32-32-1, K = 10 support and Q = 20 query shots, k = 2 inner steps (alpha = 0.05),
             256 fresh tasks per step, Adam (task sampling on the host is part of every step)
  sweep      the large sweep of `collins_phase_diagram`: R independent shallow models (d = 4) on the run
             axis, each with its own fixed sample of T = 64 two-cluster tasks moved to the device once,
             MAML with one population inner step, full-batch gradient descent

Throughput is model-steps per second, runs x tasks x steps / s.  Every backend's result is checked
against numpy (1e-10 relative in float64, the float32 unit round-off times the iteration's condition
otherwise) before it is timed.  Usage:

    python benchmarks/bench_sweep.py [--rounds N] [--runs R] [--steps S] [--json out.json] [--quick]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

import linmeta as lm
from linmeta.experiments import collins_phase_diagram as pd
from linmeta.sim.families import TwoClusterRuns

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_meta_gradient import blas_info, machine  # noqa: E402


def backends():
    out = [lm.ArrayBackend()]
    try:
        import torch
    except ImportError:
        return out
    out += [lm.array_backend("torch", "cpu", "float64"), lm.array_backend("torch", "cpu", "float32")]
    if torch.cuda.is_available():
        out += [lm.array_backend("torch", "cuda", "float64"), lm.array_backend("torch", "cuda", "float32")]
    return out


def _sync(spec):
    if spec.device_kind == "cuda":
        import torch

        torch.cuda.synchronize()


def standard(spec, steps):
    """One model, the standard configuration, ``steps`` Adam steps on fresh tasks."""
    fam = lm.GaussianRegression(d=20, noise_std=0.1)
    params = lm.init_deep_linear(20, (32, 32), 1, rng=0, backend=spec)
    res = lm.meta_train(params, fam, lm.InnerLoop(2, 0.05), steps=steps, lr=1e-3, tasks_per_step=256, K=10, Q=20,
                        eval_tasks=8, eval_every=steps, seed=1, check_stability=False, progress=False)
    return lm.to_numpy(res.params[0]), 1 * 256 * steps


def sweep_problem(runs, tasks=64, d=4, seed=0):
    cfg = pd.EXPERIMENT.config("full")
    cells = [(r, x) for r in cfg["ratios"] for x in cfg["distances"]]
    tcs = tuple(pd._landscape(dict(cfg, d=d), *cells[i % len(cells)]) for i in range(runs))
    fam = TwoClusterRuns(tcs)
    rng = np.random.SeedSequence([seed, 17])
    tasks_ = fam.sample_tasks(tasks, rng)
    return cfg, fam, fam.meta_batch(tasks_, None, None, rng)


def sweep(spec, steps, problem):
    cfg, fam, batch = problem
    W0 = lm.init_deep_linear(fam.d, (), 1, scale=0.5, rng=3, n_runs=fam.n_runs, backend=spec)
    res = lm.meta_train(W0, fam, lm.InnerLoop(1, cfg["alpha"], inner_loss="population"), steps=steps,
                        lr=pd._learning_rates(cfg)["maml"], optimizer="sgd", fixed_batch=batch, eval_tasks=2,
                        eval_every=steps, seed=4, check_stability=False, progress=False)
    return lm.to_numpy(res.params[0]), fam.n_runs * batch.support.n_tasks * steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=10_000, help="models on the run axis of the sweep")
    ap.add_argument("--steps", type=int, default=50, help="training steps per timed call")
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="1,024 runs, 10 steps, 2 rounds")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.steps, args.rounds = 1024, 10, 2
    specs = backends()
    problem = sweep_problem(args.runs)
    cases = {"standard": lambda s: standard(s, args.steps), "sweep": lambda s: sweep(s, args.steps, problem)}
    print(json.dumps({"machine": machine(), "blas": blas_info(), "runs": args.runs, "steps": args.steps, "rounds": args.rounds}, indent=1))
    # correctness first: every backend against numpy
    for name, fn in cases.items():
        ref, _ = fn(specs[0])
        for spec in specs[1:]:
            got, _ = fn(spec)
            err = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
            tol = 1e-10 if spec.dtype == "float64" else 1e-3
            assert err <= tol, (name, spec.describe(), err)
            print(f"{name}: {spec.describe()} agrees with numpy to {err:.2g}")
    times = {(name, s.describe()): [] for name in cases for s in specs}
    work = {}
    for _ in range(args.rounds):  # interleaved: every backend timed back to back in each round
        for name, fn in cases.items():
            for spec in specs:
                _sync(spec)
                t0 = time.perf_counter()
                _, work[name] = fn(spec)
                _sync(spec)
                times[(name, spec.describe())].append(time.perf_counter() - t0)
    rows = []
    for name in cases:
        base = times[(name, specs[0].describe())]
        for spec in specs:
            t = times[(name, spec.describe())]
            ratios = [b / x for b, x in zip(base, t)]
            rows.append({"config": name, "backend": spec.describe(), "seconds": statistics.median(t),
                         "model_steps_per_s": work[name] / statistics.median(t),
                         "speedup_vs_numpy": statistics.median(ratios), "range": [min(ratios), max(ratios)]})
    print("\n| config | backend | s per call | model-steps / s | vs numpy (median [range]) |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['backend']} | {r['seconds']:.3f} | {r['model_steps_per_s']:,.0f} | "
              f"{r['speedup_vs_numpy']:.2f}x [{r['range'][0]:.2f}, {r['range'][1]:.2f}] |")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "blas": blas_info(), "args": vars(args),
                                               "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
