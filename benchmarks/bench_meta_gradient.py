"""Meta-gradient throughput of linmeta against per-task autograd references, side by side in one process.

Standard config (issue "linmeta core"): d = 20, widths 32-32-1, K = 10 support and Q = 20 query shots,
k = 2 inner steps with alpha = 0.05, all layers adapting (second-order MAML), 256 tasks, float64.

Implementations, all computing the same meta-gradient (checked here to 1e-10 relative):
  linmeta (numpy)      batched closed-form reverse mode: on task moments given once, on moments built
                       from the raw data at every step, and on the raw data itself (SquaredLoss)
  linmeta (torch CPU)  the same array-API code on torch tensors
  torch loop           a straightforward per-task loop: torch autograd through the unrolled inner loop
                       (create_graph=True), gradients accumulated over tasks
  higher               the `higher` library's innerloop_ctx with a differentiable SGD, per task

Throughput is tasks x meta-steps per second.  Speed-ups are measured in interleaved rounds (each
implementation timed back to back in every round) and reported as the median over rounds.  Usage:
    python benchmarks/bench_meta_gradient.py [--rounds N] [--repeats N] [--json results.json] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

import linmeta as lm
from linmeta._backend import to_backend, to_numpy

CONFIG = dict(d=20, widths=(32, 32), out=1, K=10, Q=20, steps=2, alpha=0.05, tasks=256)


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
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        import higher

        info["higher"] = getattr(higher, "__version__", "installed")
    except ImportError:
        pass
    return info


def make_problem(cfg, seed=0):
    rng = np.random.default_rng(seed)
    fam = lm.GaussianRegression(d=cfg["d"], out=cfg["out"], noise_std=0.1)
    tasks = fam.sample_tasks(cfg["tasks"], rng)
    Xs, Ys = tasks.sample_data(cfg["K"], rng)
    Xq, Yq = tasks.sample_data(cfg["Q"], rng)
    params = lm.init_deep_linear(cfg["d"], cfg["widths"], cfg["out"], rng=rng)
    return params, (Xs, Ys, Xq, Yq)


def best_time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def linmeta_numpy(params, data, cfg):
    Xs, Ys, Xq, Yq = data
    rule = lm.InnerLoop(cfg["steps"], cfg["alpha"], "all")

    def step():
        # the moments are part of the work: they are recomputed from the raw data every call
        support, query = lm.sample_moments(Xs, Ys), lm.sample_moments(Xq, Yq)
        return lm.meta_value_and_grad(params, support, query, rule).params

    return step


def linmeta_numpy_data(params, data, cfg):
    Xs, Ys, Xq, Yq = data
    rule = lm.InnerLoop(cfg["steps"], cfg["alpha"], "all")

    def step():
        # the raw data in data form: no moments are built, products go through the K samples
        return lm.meta_value_and_grad(params, lm.SquaredLoss(Xs, Ys), lm.SquaredLoss(Xq, Yq), rule).params

    return step


def linmeta_numpy_moments(params, data, cfg):
    Xs, Ys, Xq, Yq = data
    rule = lm.InnerLoop(cfg["steps"], cfg["alpha"], "all")
    support, query = lm.sample_moments(Xs, Ys), lm.sample_moments(Xq, Yq)  # once: the engine's own input

    def step():
        return lm.meta_value_and_grad(params, support, query, rule).params

    return step


def linmeta_torch(params, data, cfg):
    Xs, Ys, Xq, Yq = to_backend(list(data), "torch")
    tparams = to_backend(params, "torch")
    rule = lm.InnerLoop(cfg["steps"], cfg["alpha"], "all")

    def step():
        support, query = lm.SquaredLoss(Xs, Ys), lm.SquaredLoss(Xq, Yq)
        return [to_numpy(g) for g in lm.meta_value_and_grad(tparams, support, query, rule).params]

    return step


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


def rel(a, b):
    return max(float(np.max(np.abs(x - y)) / np.max(np.abs(y))) for x, y in zip(a, b))


def run(cfg, repeats, rounds, include_references=True):
    """Time every implementation in ``rounds`` interleaved rounds; return per-round times and speed-ups.

    In each round linmeta is timed as the best of ``repeats`` calls and each reference by one call,
    back to back, so slow drifts of the machine affect both sides of a ratio alike.
    """
    params, data = make_problem(cfg)
    impls = {"linmeta (numpy), moments given": (linmeta_numpy_moments(params, data, cfg), repeats),
             "linmeta (numpy), moments from raw data": (linmeta_numpy(params, data, cfg), repeats),
             "linmeta (numpy), raw data (SquaredLoss)": (linmeta_numpy_data(params, data, cfg), repeats)}
    try:
        import torch  # noqa: F401

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
    times = {name: [] for name in impls}
    for _ in range(rounds):
        for name, (step, reps) in impls.items():
            best = float("inf")
            for _ in range(reps):
                t0 = time.perf_counter()
                step()
                best = min(best, time.perf_counter() - t0)
            times[name].append(best)
    base = np.array(times["linmeta (numpy), moments given"])
    base_raw = np.array(times["linmeta (numpy), moments from raw data"])
    base_data = np.array(times["linmeta (numpy), raw data (SquaredLoss)"])
    rows = {}
    for name, ts in times.items():
        ts = np.array(ts)
        speedup, speedup_raw, speedup_data = ts / base, ts / base_raw, ts / base_data  # per round
        rows[name] = {"seconds_median": float(np.median(ts)), "seconds_min": float(ts.min()),
                      "tasks_x_steps_per_s": cfg["tasks"] / float(np.median(ts)),
                      "speedup_median": float(np.median(speedup)), "speedup_min": float(speedup.min()),
                      "speedup_max": float(speedup.max()),
                      "speedup_raw_median": float(np.median(speedup_raw)),
                      "speedup_data_median": float(np.median(speedup_data)), "speedup_data_min": float(speedup_data.min()),
                      "speedup_data_max": float(speedup_data.max()), "rel_err_vs_numpy": errors[name]}
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=10, help="linmeta calls per round (best is kept)")
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds (medians are reported)")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--quick", action="store_true", help="skip the scaling sweeps")
    args = ap.parse_args(argv)

    out = {"config": CONFIG, "machine": machine()}
    print("config:", CONFIG)
    print("machine:", out["machine"])
    rows = run(CONFIG, args.repeats, args.rounds)
    out["standard"] = rows
    print(f"\nmedian of {args.rounds} interleaved rounds (range of the per-round ratio in brackets)")
    print("| implementation | s / meta-step | tasks x meta-steps / s | time / linmeta (raw data, SquaredLoss) "
          "| time / linmeta (moments given) | time / linmeta (moments from data) | max rel. diff |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['seconds_median']:.4g} | {r['tasks_x_steps_per_s']:.4g} | "
              f"{r['speedup_data_median']:.1f}x [{r['speedup_data_min']:.1f}, {r['speedup_data_max']:.1f}] | "
              f"{r['speedup_median']:.1f}x [{r['speedup_min']:.1f}, {r['speedup_max']:.1f}] | "
              f"{r['speedup_raw_median']:.1f}x | {r['rel_err_vs_numpy']:.1e} |")
    if not args.quick:
        out["scaling_K"], out["scaling_tasks"] = {}, {}
        print("\nlinmeta (numpy) time per meta-step vs K (moments from data / given moments / data form):")
        for K in (10, 100, 1000, 10000):
            cfg = dict(CONFIG, K=K)
            params, data = make_problem(cfg)
            t_all, _ = best_time(linmeta_numpy(params, data, cfg), 3 * args.repeats)
            t_grad, _ = best_time(linmeta_numpy_moments(params, data, cfg), 3 * args.repeats)
            t_data, _ = best_time(linmeta_numpy_data(params, data, cfg), 3 * args.repeats)
            out["scaling_K"][K] = {"with_moments": t_all, "given_moments": t_grad, "data_form": t_data}
            print(f"  K = {K:5d}: {t_all * 1e3:8.2f} ms (incl. moments), {t_grad * 1e3:8.2f} ms (given moments), "
                  f"{t_data * 1e3:8.2f} ms (raw data, SquaredLoss)")
        print("linmeta (numpy) time per meta-step vs number of tasks (given moments):")
        for T in (64, 256, 1024, 4096):
            cfg = dict(CONFIG, tasks=T)
            params, data = make_problem(cfg)
            t_grad, _ = best_time(linmeta_numpy_moments(params, data, cfg), 3 * args.repeats)
            out["scaling_tasks"][T] = t_grad
            print(f"  T = {T:5d}: {t_grad * 1e3:8.2f} ms  ({t_grad / T * 1e6:.2f} us per task)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
