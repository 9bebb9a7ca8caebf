"""Cost of one meta-gradient: ANIL (head-only inner loop) against MAML (every layer), side by side.

Raghu et al. (2020) report ANIL 1.7x faster per training iteration than MAML (and 4.1x per inference
iteration) on their conv nets.  This script measures the same ratio for linmeta's exact reverse-mode
meta-gradient of a deep linear network (numpy, float64), interleaving the two methods so machine load
affects both alike, and reports the median time per meta-gradient over repeats.

Standard config: d = 64, widths 64-64-64 (depth 4), out = 1, K = 10 support shots and the population
query loss, 128 tasks, k in {1, 5} inner steps with α = 0.01 (second order).  Usage:

    python benchmarks/bench_anil_vs_maml.py [--repeats N] [--quick] [--json results.json]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from bench_meta_gradient import machine  # same folder: run as a script, sys.path[0] is benchmarks/

import linmeta as lm
from linmeta import preconditioners as pc
from linmeta.meta import value_and_grad_unchecked

CONFIG = dict(d=64, widths=(64, 64, 64), out=1, K=10, tasks=128, steps=(1, 5), alpha=0.01)
QUICK = dict(d=16, widths=(16, 16, 16), out=1, K=10, tasks=32, steps=(1, 5), alpha=0.01)


def problem(cfg, seed=0):
    rng = np.random.default_rng(seed)
    fam = lm.GaussianRegression(d=cfg["d"], out=cfg["out"], noise_std=0.1)
    params = lm.init_deep_linear(cfg["d"], cfg["widths"], cfg["out"], scheme="orthogonal", scale=0.8, rng=rng)
    batch = fam.meta_batch(fam.sample_tasks(cfg["tasks"], rng), cfg["K"], None, rng)
    return params, batch


def time_methods(cfg, steps, repeats, inner=5):
    """Median seconds per meta-gradient for {"MAML", "ANIL"}, measured interleaved."""
    params, batch = problem(cfg)
    rules = {"MAML": lm.InnerLoop(steps, cfg["alpha"], "all"), "ANIL": lm.InnerLoop(steps, cfg["alpha"], "last")}
    precond = pc.get(None)
    phis = {m: precond.init(params, r.adapted_layers(len(params))) for m, r in rules.items()}
    for m, r in rules.items():  # warm-up, and a sanity check on the public entry point
        ref = lm.meta_value_and_grad(params, batch.support, batch.query, r)
        got = value_and_grad_unchecked(params, batch.support, batch.query, r, precond, phis[m])
        assert np.allclose(ref.value, got.value, rtol=1e-12)
    times = {m: [] for m in rules}
    for _ in range(repeats):
        for m, r in rules.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                value_and_grad_unchecked(params, batch.support, batch.query, r, precond, phis[m])
            times[m].append((time.perf_counter() - t0) / inner)
    return {m: float(np.median(v)) for m, v in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="a small config (seconds)")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else CONFIG
    info = machine()
    print("config :", {k: v for k, v in cfg.items()})
    print("machine:", info)
    rows = []
    for steps in cfg["steps"]:
        t = time_methods(cfg, steps, args.repeats)
        ratio = t["MAML"] / t["ANIL"]
        rows.append({"inner_steps": steps, "maml_ms": 1e3 * t["MAML"], "anil_ms": 1e3 * t["ANIL"], "ratio": ratio})
        print(f"k={steps}: MAML {1e3 * t['MAML']:.3f} ms, ANIL {1e3 * t['ANIL']:.3f} ms per meta-gradient "
              f"({cfg['tasks']} tasks): ANIL is {ratio:.2f}x faster")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
                       "machine": info, "results": rows}, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
