"""The ``linmeta`` command line: list, run, figures, check, reproduce, demo.

Bad input (an unknown experiment or parameter, a wrong type, an out-of-range
value) prints one line naming the problem and the allowed values, and exits 2.
A failing check makes ``check`` and ``reproduce`` exit 1.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from . import progress as _progress


def process_pool(jobs: int) -> ProcessPoolExecutor:
    """A pool of fresh ("spawn") worker processes, each with single-threaded BLAS.

    ``jobs`` processes that each start a multi-threaded BLAS oversubscribe the cores; small
    matrix products then spend their time waiting on threads (measured here: 30x slower).
    """
    import multiprocessing
    import os

    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # inherited by the spawned workers before they import numpy
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        sys.stderr.write(f"linmeta: error: {message} (see 'linmeta --help')\n")
        sys.exit(2)


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.4g}"


def _check_rows(name: str, checks: list) -> list:
    rows = []
    for c in checks:
        sim = _fmt(c["simulation"])
        if c["stderr"]:
            sim += f" ± {_fmt(c['stderr'])}"
        if c.get("kind", "check") == "finding":
            verdict = "REPRODUCED" if c["passed"] else "NOT REPRODUCED"
        else:
            verdict = "PASS" if c["passed"] else "FAIL"
        rows.append([name, c["name"], _fmt(c["theory"]), sim, c["tolerance"], verdict])
    return rows


def format_table(rows, header=("experiment", "check", "theory", "simulation ± SE", "tolerance", "result")) -> str:
    rows = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows, header=("experiment", "check", "theory", "simulation ± SE", "tolerance", "result")) -> str:
    esc = lambda s: str(s).replace("|", "\\|")
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _mode(args) -> str:
    return "full" if getattr(args, "full", False) else "quick"


def _backend(args) -> dict:
    """The run option from ``--backend/--device/--dtype``, checked once (torch installed, CUDA present)."""
    from ._backend import resolve
    from .experiments.base import ConfigError

    try:
        spec = resolve(getattr(args, "backend", None), getattr(args, "device", None), getattr(args, "dtype", None))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return {"backend": spec}


def _names(args):
    from .experiments import registry

    names = args.names or registry.names()
    for n in names:
        registry.get(n)  # raises a ValueError listing the allowed names
    return names


def cmd_list(args) -> int:
    from .experiments import registry, runner

    rows = []
    for name, exp in registry.all_experiments().items():
        cached = [m for m in ("quick", "full") if runner.is_cached(exp, m)]
        rows.append([name, exp.paper, exp.figure, ",".join(cached) or "-"])
    print(format_table(rows, ("experiment", "paper", "figure", "cached")))
    return 0


def cmd_run(args) -> int:
    from .experiments import registry, runner

    exp = registry.get(args.name)
    overrides = exp.parse_overrides(args.set)
    executor = process_pool(args.jobs) if args.jobs > 1 else None
    try:
        result, config, info = runner.run(exp, _mode(args), overrides, args.seed, executor=executor, force=args.force,
                                          **_backend(args))
    finally:
        if executor is not None:
            executor.shutdown()
    paths = runner.write_figure(exp, result=result, config=config)
    src = "loaded from cache" if info["cached"] else f"computed in {info['seconds']:.1f} s"
    print(f"{exp.name}: result {src}: {runner.cache_dir() / (info['key'] + '.npz')}")
    for p in paths:
        print(f"{exp.name}: figure {p}")
    return 0


def cmd_figures(args) -> int:
    from .experiments import runner

    for name in _names(args):
        for p in runner.write_figure(name, _mode(args), **_backend(args)):
            print(p)
    return 0


def _run_all(names, mode, jobs, backend):
    from .experiments import runner

    if jobs > 1 and len(names) > 1:
        with process_pool(jobs) as pool:
            futures = [pool.submit(runner.reproduce_one, n, mode, False, backend) for n in names]
            return [f.result() for f in futures]
    return [runner.reproduce_one(n, mode, None, backend) for n in names]


def cmd_check(args) -> int:
    from .experiments import runner

    report = []
    for name in _names(args):
        checks = runner.run_checks(name, _mode(args), **_backend(args))
        report.append({"name": name, "checks": [c.as_dict() for c in checks]})
    return _report(report, args.json)


def _report(report, as_json: bool, extra=None) -> int:
    checks = [c for r in report for c in r["checks"] if c.get("kind", "check") == "check"]
    findings = [c for r in report for c in r["checks"] if c.get("kind", "check") == "finding"]
    failed = sum(not c["passed"] for c in checks)
    reproduced = sum(c["passed"] for c in findings)
    if as_json:
        print(json.dumps({"experiments": report, "passed": len(checks) - failed, "failed": failed,
                          "claims_reproduced": reproduced, "claims_not_reproduced": len(findings) - reproduced,
                          **(extra or {})}, indent=1))
    else:
        rows = [row for r in report for row in _check_rows(r["name"], r["checks"])]
        print(format_table(rows))
        line = f"\n{len(checks) - failed}/{len(checks)} checks passed" + (f", {failed} FAILED" if failed else "")
        if findings:
            line += f"; paper claims: {reproduced}/{len(findings)} reproduced"
        print(line)
    return 1 if failed else 0


def cmd_reproduce(args) -> int:
    from .experiments import registry, runner

    t0 = time.perf_counter()
    names = registry.names()
    report = _run_all(names, _mode(args), args.jobs, _backend(args)["backend"])
    seconds = time.perf_counter() - t0
    rows = [row for r in report for row in _check_rows(r["name"], r["checks"])]
    summary = runner.figures_dir() / "CHECKS.md"
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(
        f"<!-- written by `linmeta reproduce --{_mode(args)}` -->\n" + markdown_table(rows) + "\n"
    )
    if not args.json:
        for r in report:
            src = "cached" if r["info"]["cached"] else f"{r['info']['seconds']:.1f} s"
            on = "" if r["info"].get("backend", "numpy") == "numpy" else f" on {r['info']['backend']}"
            print(f"{r['name']}: {src}{on}; figures {', '.join(r['figures'])}")
        print()
    code = _report(report, args.json, {"seconds": seconds})
    if not args.json:
        print(f"reproduce --{_mode(args)} finished in {seconds:.1f} s; table also in {summary}")
    return code


def cmd_demo(args) -> int:
    """Shallow vs depth-3 MAML at a small fixed inner step: pre/post-adaptation meta-test loss."""
    import numpy as np

    from . import GaussianRegression, InnerLoop, init_deep_linear
    from .train import meta_train

    d = 8
    family = GaussianRegression(d=d, noise_std=0.1)
    rule = InnerLoop(steps=1, alpha=0.02)
    rows = []
    for label, widths in (("shallow (L=1)", ()), ("deep (L=3, 16-16)", (16, 16))):
        params = init_deep_linear(d, widths, 1, rng=args.seed, n_runs=3)
        res = meta_train(params, family, rule, steps=args.steps, lr=3e-3, tasks_per_step=64, K=10, Q=None,
                         seed=args.seed + 1)
        h = res.history
        rows.append([label, f"{np.mean(h['test_pre'][-1]):.3f}", f"{np.mean(h['test_post'][-1]):.3f}"])
    print(f"MAML, d={d}, K=10 support shots, 1 inner step of alpha={rule.alpha}, {args.steps} outer Adam steps, "
          "3 seeds; meta-test loss on 256 held-out tasks (population query):")
    print(format_table(rows, ("model", "pre-adaptation", "post-adaptation")))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="linmeta", description=__doc__.split("\n")[0])
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def mode_flags(p):
        g = p.add_mutually_exclusive_group()
        g.add_argument("--quick", action="store_true", help="small preset (default)")
        g.add_argument("--full", action="store_true", help="paper-quality preset")

    def backend_flags(p):
        p.add_argument("--backend", choices=("numpy", "torch"), default=None,
                       help="array backend of the run (default numpy; torch needs the torch extra)")
        p.add_argument("--device", default=None, metavar="DEVICE", help="cpu (default), cuda or cuda:N (torch only)")
        p.add_argument("--dtype", choices=("float64", "float32"), default=None, help="floating dtype (default float64)")

    p = sub.add_parser("list", help="the experiments, with paper, figure and cache status")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run one experiment and write its figure")
    p.add_argument("name")
    mode_flags(p)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--jobs", type=int, default=1, help="processes for the sweep's pieces")
    p.add_argument("--force", action="store_true", help="recompute even if cached")
    backend_flags(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("figures", help="write figures/NAME.png and .pdf (computing only what is missing)")
    p.add_argument("names", nargs="*")
    mode_flags(p)
    backend_flags(p)
    p.set_defaults(func=cmd_figures)

    p = sub.add_parser("check", help="theory-vs-simulation checks; exits 1 if any fails")
    p.add_argument("names", nargs="*")
    mode_flags(p)
    p.add_argument("--json", action="store_true")
    backend_flags(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("reproduce", help="every experiment, figure and check, with a summary table")
    mode_flags(p)
    p.add_argument("--jobs", type=int, default=1, help="experiments run in this many processes")
    p.add_argument("--json", action="store_true")
    backend_flags(p)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("demo", help="shallow vs deep MAML, pre/post-adaptation loss side by side")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.quiet:
        _progress.set_quiet(True)
    if getattr(args, "jobs", 1) < 1:
        sys.stderr.write(f"linmeta: error: --jobs must be a positive integer, got {args.jobs}\n")
        return 2
    from .experiments.base import ConfigError

    try:
        return args.func(args)
    except ConfigError as exc:
        sys.stderr.write(f"linmeta: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("linmeta: interrupted; finished pieces are cached and will be reused\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
