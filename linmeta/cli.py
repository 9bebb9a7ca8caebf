"""The ``linmeta`` command line: list, show, run, figures, check, reproduce, demo.

Every user or environment error (an unknown experiment or parameter, a wrong type, an out-of-range
value, a cache or figures folder that cannot be used, a run that diverges) prints one line naming the
problem and the key or path, and exits 2.  A failing check makes ``check`` and ``reproduce`` exit 1.
``--debug`` shows the traceback instead.  Output piped into a program that stops reading
(``linmeta list | head -1``) ends quietly.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from . import __version__
from . import progress as _progress

WIDTH = 100  # every line the CLI prints fits in this many columns
ROUNDOFF = 1e-12  # magnitudes below this are round-off: printed as "<1e-12", so they never churn a report
MAX_JOBS = 256
MAX_DEMO_STEPS = 100_000


# --------------------------------------------------------------------------- worker processes


def _watch_parent(parent_pid: int) -> None:  # pragma: no cover - runs in worker processes
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(1)


def _worker_init(parent_pid: int) -> None:  # pragma: no cover - runs in worker processes
    """In each worker: no progress bars, and die with the main process (even after ``kill -9`` of it).

    On Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` has the kernel kill the worker when its parent dies;
    everywhere, a daemon thread polls the parent's pid and exits when it changes.  Once the workers are
    gone, multiprocessing's resource tracker sees its last pipe close and exits too.
    """
    import signal
    import threading

    _progress.set_quiet(True)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
        except Exception:
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="linmeta-parent-watch").start()


def process_pool(jobs: int) -> ProcessPoolExecutor:
    """A pool of fresh ("spawn") worker processes, each with single-threaded BLAS, that die with this process.

    ``jobs`` processes that each start a multi-threaded BLAS oversubscribe the cores; small
    matrix products then spend their time waiting on threads (measured here: 30x slower).
    """
    import multiprocessing

    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # inherited by the spawned workers before they import numpy
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                               initargs=(os.getpid(),))


# --------------------------------------------------------------------------- argument parsing


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        sys.stderr.write(f"linmeta: error: {message} (see 'linmeta --help')\n")
        sys.exit(2)


def _int_in(low: int, high: int | None, what: str):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            rng = f">= {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"{what} must be an integer {rng}, got {value}")
        return value

    return parse


class _HelpWithParams(argparse.Action):
    """``linmeta run NAME --help``: the command's help, then the experiment's parameters (as ``show``)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help()
        name = getattr(namespace, "name", None)
        if name:
            from .experiments import registry
            from .experiments.base import ConfigError

            try:
                text = show_text(registry.get(name))
            except ConfigError as exc:
                text = f"({exc})"
            print("\n" + text)
        parser.exit()


# --------------------------------------------------------------------------- formatting


def fmt_num(x, digits: int = 4) -> str:
    """``digits`` significant digits; ``-`` for a missing value; magnitudes below 1e-12 as ``<1e-12``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    x = float(x)
    if x == 0:
        return "0"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if abs(x) < ROUNDOFF:
        return f"<{ROUNDOFF:g}"
    return f"{x:.{digits}g}"


_fmt = fmt_num


def _sim_text(c) -> str:
    sim = fmt_num(c["simulation"])
    if c["stderr"]:
        sim += f" ± {fmt_num(c['stderr'], 2)}"
    return sim


def _verdict(c) -> str:
    if c.get("kind", "check") == "finding":
        return "REPRODUCED" if c["passed"] else "NOT REPRODUCED"
    return "PASS" if c["passed"] else "FAIL"


def _check_rows(name: str, checks: list) -> list:
    return [[name, c["name"], fmt_num(c["theory"]), _sim_text(c), c["tolerance"], _verdict(c)] for c in checks]


CHECK_HEADER = ("experiment", "check", "theory", "simulation ± SE", "tolerance", "result")


def _fit_widths(natural, mins, width, gap):
    widths = list(natural)
    while sum(widths) + gap * (len(widths) - 1) > width:
        i = max(range(len(widths)), key=lambda j: widths[j] - mins[j])
        if widths[i] <= mins[i]:
            break
        widths[i] -= 1
    return widths


def _table_blocks(rows, header, width):
    """The header lines and, for each row, its lines (cells wrapped to fit ``width`` columns)."""
    rows = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    ncol = len(header)
    natural = [max(len(r[i]) for r in rows) for i in range(ncol)]
    if width is None:
        widths = natural
    else:
        mins = [min(natural[i], max(len(str(header[i])), 6)) for i in range(ncol)]
        widths = _fit_widths(natural, mins, width, 2)
    blocks = []
    for r in rows:
        cells = [textwrap.wrap(cell, w, break_long_words=True, break_on_hyphens=False) or [""]
                 for cell, w in zip(r, widths)]
        blocks.append(["  ".join((c[j] if j < len(c) else "").ljust(w) for c, w in zip(cells, widths)).rstrip()
                       for j in range(max(len(c) for c in cells))])
    head = blocks[0] + ["  ".join("-" * w for w in widths)]
    return head, blocks[1:]


def format_table(rows, header=CHECK_HEADER, width: int | None = WIDTH) -> str:
    """A plain-text table; cells wrap so that every line fits in ``width`` columns (None: no limit)."""
    head, blocks = _table_blocks(rows, header, width)
    return "\n".join(head + [line for b in blocks for line in b])


def markdown_table(rows, header=CHECK_HEADER) -> str:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _counts(checks) -> tuple:
    """``(checks passed, checks, findings reproduced, findings)``."""
    cs = [c for c in checks if c.get("kind", "check") == "check"]
    fs = [c for c in checks if c.get("kind", "check") == "finding"]
    return sum(c["passed"] for c in cs), len(cs), sum(c["passed"] for c in fs), len(fs)


def _ratio(a, n) -> str:
    return f"{a}/{n}" if n else "-"


SUMMARY_HEADER = f"{'experiment':<24} {'checks':>9} {'findings':>9} {'time':>14}  result"


def summary_line(r) -> str:
    """One line per experiment: checks passed, findings reproduced, time, verdict (under 100 columns)."""
    cp, cn, fp, fn = _counts(r["checks"])
    info = r.get("info") or {}
    seconds = r.get("seconds")
    t = "-" if seconds is None else f"{seconds:.1f} s"
    if info.get("cached"):
        t += " cached"
    verdict = "ok" if cp == cn else f"{cn - cp} FAILED"
    if fp < fn:
        verdict += f", {fn - fp} not reproduced"
    line = f"{r['name'][:24]:<24} {_ratio(cp, cn):>9} {_ratio(fp, fn):>9} {t:>14}  {verdict}"
    return line[:WIDTH]


def failing_text(report) -> str:
    """Every failed check and every claim not reproduced, in full, wrapped to 100 columns."""
    out = []
    for r in report:
        for c in r["checks"]:
            if c["passed"]:
                continue
            tag = "NOT REPRODUCED" if c.get("kind", "check") == "finding" else "FAILED"
            head = f"{tag} {r['name']}: {c['name']}" + (f" [claim {c['claim']}]" if c.get("claim") else "")
            body = f"theory {fmt_num(c['theory'])}; simulation {_sim_text(c)}; tolerance {c['tolerance']}"
            out.append(textwrap.fill(head, WIDTH, subsequent_indent="    "))
            out.append(textwrap.fill(body, WIDTH, initial_indent="    ", subsequent_indent="    "))
    return "\n".join(out)


def totals_line(report, seconds=None) -> str:
    checks = [c for r in report for c in r["checks"]]
    cp, cn, fp, fn = _counts(checks)
    line = f"{cp}/{cn} checks passed" + (f", {cn - cp} FAILED" if cp < cn else "")
    if fn:
        line += f"; paper claims: {fp}/{fn} reproduced"
    line += f"; {len(report)} experiment" + ("s" if len(report) != 1 else "")
    if seconds is not None:
        line += f" in {seconds:.1f} s"
    return line


def _claims_link(outdir: Path) -> str:
    """The relative link from ``outdir`` to the claims catalogue (``docs/claims.md`` next to the gallery)."""
    from .experiments import runner

    root = runner.figures_dir().resolve().parent
    return Path(os.path.relpath(root / "docs" / "claims.md", Path(outdir).resolve())).as_posix()


def _claim_cell(label, link) -> str:
    if not label:
        return "-"
    from . import claims

    try:
        return f"[{label}]({link}#{claims.anchor(label)})"
    except ValueError:
        return label


EXPLANATION = """\
Each experiment's rows are of two kinds.

- A **check** compares theory (a closed form, an exact identity or a bound) with the simulation.  It
  passes when the difference is within the row's tolerance: `|diff| <= k SE` is a statistical
  tolerance of k standard errors estimated from the simulation's own samples; `rel err <= r` is an
  exact identity that must hold to round-off; `sim + k SE < theory` (or `sim - k SE > theory`) is a
  one-sided bound that must hold clearly; `<= tol` bounds a non-negative error.  A failed check is an
  error in linmeta or in a closed form.
- A **finding** tests one of the papers' claims in one setting.  It is REPRODUCED or NOT REPRODUCED;
  a claim that is not reproduced is a result about the claim, not an error.

The *claim* column links each row to its entry in the [claims catalogue]({link}).  Numbers have 4
significant digits (standard errors 2); magnitudes below 1e-12 are round-off and are written `<1e-12`,
so that round-off never changes this file."""

SECTION_HEADER = ("kind", "check", "claim", "theory", "simulation ± SE", "tolerance", "result")


def _section(r, link, level="##") -> list:
    cp, cn, fp, fn = _counts(r["checks"])
    lines = [f"{level} {r['name']}", ""]
    what = ", ".join(x for x in (r.get("paper"), r.get("figure")) if x)
    counts = f"{cp}/{cn} checks passed" + (f", {cn - cp} FAILED" if cp < cn else "")
    if fn:
        counts += f"; {fp}/{fn} paper claims reproduced"
    claim = (r.get("claim") or "").strip()
    lines.append(" ".join(x for x in (f"{what}." if what else "", claim, f"**{counts}.**") if x))
    lines.append("")
    rows = [[c.get("kind", "check"), c["name"], _claim_cell(c.get("claim"), link), fmt_num(c["theory"]), _sim_text(c),
             c["tolerance"], _verdict(c)] for c in r["checks"]]
    lines += [markdown_table(rows, SECTION_HEADER), ""]
    return lines


def checks_markdown(report, mode: str, outdir: Path, command: str) -> str:
    """``CHECKS.md``: an explanation, totals, one section per experiment, claim labels linked to the catalogue.

    Nothing in it depends on the machine or the time taken, so an unchanged result rewrites it byte for byte.
    """
    link = _claims_link(outdir)
    checks = [c for r in report for c in r["checks"]]
    cp, cn, fp, fn = _counts(checks)
    total = f"**{cp}/{cn} checks passed" + (f", {cn - cp} FAILED" if cp < cn else "")
    total += (f"; {fp}/{fn} paper claims reproduced" if fn else "") + f"; {len(report)} experiments.**"
    lines = [f"<!-- written by `{command}`; do not edit by hand -->", f"# Checks and findings ({mode} preset)", "",
             total, "", EXPLANATION.format(link=link), "", "## Summary", ""]
    rows = []
    for r in report:
        a, b, x, y = _counts(r["checks"])
        rows.append([f"[{r['name']}](#{r['name'].lower()})", ", ".join(v for v in (r.get("paper"), r.get("figure")) if v),
                     _ratio(a, b), _ratio(x, y)])
    rows.append(["**total**", "", f"**{_ratio(cp, cn)}**", f"**{_ratio(fp, fn)}**"])
    lines += [markdown_table(rows, ("experiment", "paper, figure", "checks passed", "claims reproduced")), ""]
    for r in report:
        lines += _section(r, link)
    return "\n".join(lines).rstrip() + "\n"


def run_report_markdown(r, exp, config, mode: str, outdir: Path, changed: str, command: str) -> str:
    """``REPORT.md`` of one run with overrides: what was changed, the full config and the checks."""
    link = _claims_link(outdir)
    lines = [f"<!-- written by `{command}` -->", f"# {exp.name}: {mode} preset with {changed or 'no overrides'}", "",
             EXPLANATION.format(link=link), "", "## Config", "",
             markdown_table([[k, json.dumps(v) if not isinstance(v, str) else v,
                              "override" if k in exp.changes(config, mode) else ""] for k, v in config.items()],
                            ("parameter", "value", "")), ""]
    lines += _section(r, link)
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- show


def show_text(exp, width: int = WIDTH) -> str:
    """Everything about one experiment: what it reproduces, its parameters and the claims it tests."""
    from . import claims
    from .experiments import registry

    out = textwrap.wrap(f"{exp.name}: {exp.paper}, {exp.figure}", width, subsequent_indent="  ")
    out += textwrap.wrap(exp.claim, width, initial_indent="  ", subsequent_indent="  ")
    out += textwrap.wrap(f"from: {registry.source(exp.name)}; backends: {', '.join(exp.backends)}", width,
                         initial_indent="  ", subsequent_indent="    ")
    out += ["", f"parameters (linmeta run {exp.name} --set KEY=VALUE; tuples as 1,2,3; --quick is the default):"]
    fmt = lambda v: (", ".join(map(str, v)) or "(empty)") if isinstance(v, tuple) else str(v)
    rows, helps = [], []
    for key, p in exp.params.items():
        rows.append([key, p.type_name, p.allowed(), fmt(p.quick), fmt(p.full_value()), p.role])
        helps.append(p.help or "-")
    rows.append(["seed", "int", ">= 0", str(exp.seed), str(exp.seed), "run"])
    helps.append("random seed (--seed N); another seed writes to its own output folder")
    head, blocks = _table_blocks(rows, ("key", "type", "allowed", "quick", "full", "role"), width)
    out += head
    for block, text in zip(blocks, helps):
        out += block + textwrap.wrap(text, width, initial_indent="      ", subsequent_indent="      ")
    out += textwrap.wrap("role run: the simulation uses it (it is part of the cached result); check / plot: only "
                         "the verdicts / the figure use it (changing it reuses the cached result).", width)
    tested = [c for c in claims.CLAIMS.values() if exp.name in c.experiments]
    out += ["", "claims tested (catalogue: docs/claims.md):" if tested else "claims tested: none in the catalogue yet"]
    for c in tested:
        paper = claims.PAPERS[c.paper]
        out += textwrap.wrap(f"{c.label} ({c.kind}; {paper.cite()})", width, initial_indent="  ",
                             subsequent_indent="    ")
        out += textwrap.wrap(c.statement, width, initial_indent="    ", subsequent_indent="    ")
    return "\n".join(out)


def show_json(exp) -> dict:
    from . import claims
    from .experiments import registry

    def plain(v):
        return list(v) if isinstance(v, tuple) else v

    params = {k: {"type": p.type_name, "allowed": p.allowed(), "low": p.low, "high": p.high,
                  "choices": plain(p.choices), "quick": plain(p.quick), "full": plain(p.full_value()), "role": p.role,
                  "help": p.help} for k, p in exp.params.items()}
    params["seed"] = {"type": "int", "allowed": ">= 0", "low": 0, "high": None, "choices": None, "quick": exp.seed,
                      "full": exp.seed, "role": "run", "help": "random seed"}
    tested = [{"label": c.label, "kind": c.kind, "paper": claims.PAPERS[c.paper].cite(), "statement": c.statement,
               "anchor": claims.anchor(c.label)} for c in claims.CLAIMS.values() if exp.name in c.experiments]
    return {"name": exp.name, "paper": exp.paper, "figure": exp.figure, "claim": exp.claim,
            "source": registry.source(exp.name), "backends": list(exp.backends), "params": params, "claims": tested}


# --------------------------------------------------------------------------- commands


def _mode(args) -> str:
    return "full" if getattr(args, "full", False) else "quick"


def _backend_opts(args) -> dict:
    return {"backend": getattr(args, "backend", None), "device": getattr(args, "device", None),
            "dtype": getattr(args, "dtype", None)}


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
    from .experiments.base import ConfigError

    names = list(args.names) or registry.names()
    for n in names:
        registry.get(n)  # raises a ConfigError listing the allowed names
    if (getattr(args, "set", None) or getattr(args, "seed", None) is not None) and not args.names:
        raise ConfigError("--set and --seed apply to named experiments: give the experiment names, e.g. "
                          f"'linmeta {args.command} {names[0] if names else 'NAME'} --set KEY=VALUE'")
    return names


def say(line: str = "") -> None:
    """Print a line on stdout now (not at exit), so results show as they come."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def cmd_list(args) -> int:
    from .experiments import registry, runner

    rows, external = [], False
    for name, exp in registry.all_experiments().items():
        cached = [m for m in ("quick", "full") if runner.is_cached(exp, m)]
        src = registry.source(name)
        external |= not src.startswith("built in")
        rows.append([name, exp.paper, exp.figure, ",".join(cached) or "-",
                     "built in" if src.startswith("built in") else src])
    header = ("experiment", "paper", "figure", "cached", "from")
    if not external:
        rows, header = [r[:4] for r in rows], header[:4]
    say(format_table(rows, header))
    return 0


def cmd_show(args) -> int:
    from .experiments import registry

    exp = registry.get(args.name)
    if args.json:
        say(json.dumps(show_json(exp), indent=1))
    else:
        say(show_text(exp))
    return 0


def _prepare(exp, args):
    """``(mode, overrides, config, backend, output folder)`` of ``exp`` under the command's options, all checked
    before any work is done."""
    from .experiments import runner

    mode = _mode(args)
    overrides = exp.parse_overrides(getattr(args, "set", None) or [])
    config = exp.config(mode, overrides, getattr(args, "seed", None))
    spec = runner.backend_for(exp, **_backend_opts(args))
    outdir = runner.output_dir(exp, config, mode, getattr(args, "out", None), spec)
    return mode, overrides, config, spec, outdir


def cmd_run(args) -> int:
    from . import cache
    from .experiments import registry, runner

    exp = registry.get(args.name)
    mode, overrides, config, spec, outdir = _prepare(exp, args)
    cache.check_writable(outdir, "figures folder")
    executor = process_pool(args.jobs) if args.jobs > 1 else None
    t0 = time.perf_counter()
    try:
        result, config, info = runner.run(exp, mode, overrides, args.seed, executor=executor, force=args.force,
                                          backend=spec, force_large=args.force_large)
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    paths, written = runner.figure_status(exp, mode, result=result, config=config, outdir=outdir,
                                          force=args.force)
    checks = [c.as_dict() for c in runner.run_checks(exp, mode, result=result, config=config)]
    changed = runner.override_label(exp, config, mode)
    r = {"name": exp.name, "info": info, "checks": checks, "seconds": time.perf_counter() - t0,
         "paper": exp.paper, "figure": exp.figure, "claim": exp.claim}
    if info["cached"]:
        src = "loaded from cache"
    else:
        src = f"computed in {info['seconds']:.1f} s"
        if info.get("pieces_loaded"):
            src += f" ({info['pieces_computed']} pieces computed, {info['pieces_loaded']} loaded from cache)"
    where = runner.cache_dir() / (info["key"] + ".npz") if info.get("saved", True) else "(kept in memory)"
    say(f"{exp.name}: result {src}: {where}")
    if changed:
        say(f"{exp.name}: overrides {changed}")
    for p in paths:
        say(f"{exp.name}: figure {p}" + ("" if written else " (up to date)"))
    if changed or args.out is not None:
        command = "linmeta " + " ".join(_argv_for_report(args))
        report = Path(outdir) / "REPORT.md"
        cache.atomic_write(report, run_report_markdown(r, exp, config, mode, Path(outdir), changed, command).encode())
        cache.atomic_write(Path(outdir) / "config.json",
                           (json.dumps({"experiment": exp.name, "mode": mode, "config": config, "overrides": changed,
                                        "result_key": info["key"], "backend": info.get("backend")},
                                       indent=1, default=list) + "\n").encode())
        say(f"{exp.name}: report {report}")
    cp, cn, fp, fn = _counts(checks)
    line = f"{exp.name}: {cp}/{cn} checks passed" + (f", {cn - cp} FAILED" if cp < cn else "")
    if fn:
        line += f"; paper claims: {fp}/{fn} reproduced"
    say(line + (f" (linmeta check {exp.name} for the details)" if cp < cn or fp < fn else ""))
    return 0


def _argv_for_report(args) -> list:
    argv = list(getattr(args, "argv", None) or [])
    return argv or [args.command]


def cmd_figures(args) -> int:
    from . import cache
    from .experiments import registry, runner

    for name in _names(args):
        exp = registry.get(name)
        mode, overrides, config, spec, outdir = _prepare(exp, args)
        cache.check_writable(outdir, "figures folder")
        result, config, _ = runner.run(exp, mode, overrides, args.seed, backend=spec, force_large=args.force_large)
        paths, written = runner.figure_status(exp, mode, result=result, config=config, outdir=outdir,
                                              force=args.force)
        for p in paths:
            say(f"{p}" + ("" if written else " (up to date)"))
    return 0


def _print_report(report, args, seconds=None, lines_done=False) -> int:
    """The terminal summary (one line per experiment, then every failing row in full) or the JSON report."""
    checks = [c for r in report for c in r["checks"]]
    cp, cn, fp, fn = _counts(checks)
    if args.json:
        extra = {} if seconds is None else {"seconds": seconds}
        say(json.dumps({"experiments": report, "passed": cp,
                        "failed": cn - cp, "claims_reproduced": fp, "claims_not_reproduced": fn - fp, **extra},
                       indent=1))
    else:
        if args.verbose:
            say(format_table([row for r in report for row in _check_rows(r["name"], r["checks"])]))
            say()
        if not lines_done:
            say(SUMMARY_HEADER)
            for r in report:
                say(summary_line(r))
        failing = failing_text(report)
        if failing:
            say()
            say(failing)
        say()
        say(totals_line(report, seconds))
    return 1 if cp < cn else 0


def cmd_check(args) -> int:
    from .experiments import registry, runner

    names = _names(args)
    prepared = [(registry.get(n), *_prepare(registry.get(n), args)) for n in names]  # every error before any work
    report = []
    if not args.json:
        say(SUMMARY_HEADER)
    for exp, mode, overrides, config, spec, _ in prepared:
        t0 = time.perf_counter()
        result, config, info = runner.run(exp, mode, overrides, args.seed, backend=spec, force_large=args.force_large)
        checks = runner.run_checks(exp, mode, result=result, config=config)
        r = {"name": exp.name, "checks": [c.as_dict() for c in checks], "info": info,
             "seconds": time.perf_counter() - t0}
        report.append(r)
        if not args.json:
            say(summary_line(r))  # as each finishes
    return _print_report(report, args, lines_done=True)


def _spec_for(exp, backend):
    from ._backend import ArrayBackend, resolve

    spec = resolve(backend)
    return spec if spec.name in exp.backends else ArrayBackend()


def _run_all(names, mode, jobs, backend, outdir=None, replot=False, on_done=None):
    """Every experiment (in ``jobs`` processes), with an overall progress line; ``on_done(r)`` as each finishes."""
    from .experiments import registry, runner

    n = len(names)
    pending_compute = {nm for nm in names
                       if not runner.is_cached(registry.get(nm), mode, backend=_spec_for(registry.get(nm), backend))}
    t0 = time.perf_counter()
    computed_secs = []

    def eta(done_names):
        left = len(pending_compute - set(done_names))
        if not left:
            return 0.0
        if not computed_secs:
            return float("nan")
        return sum(computed_secs) / len(computed_secs) * left / max(1, min(jobs, left))

    def status(text, done_names):
        elapsed = time.perf_counter() - t0
        _progress.status(f"{text} (elapsed {_progress.fmt_seconds(elapsed)}, "
                         f"ETA {_progress.fmt_seconds(eta(done_names))})")

    def finished(r, done_names):
        if not r["info"]["cached"]:
            computed_secs.append(r["seconds"])
        done_names.append(r["name"])
        if on_done is not None:
            on_done(r)

    results, done = {}, []
    if jobs > 1 and n > 1:
        from concurrent.futures import as_completed

        pool = process_pool(jobs)
        try:
            futures = {pool.submit(runner.reproduce_one, nm, mode, False, backend, outdir, replot): nm for nm in names}
            status(f"{n} experiments in {jobs} processes", done)
            for i, f in enumerate(as_completed(futures), 1):
                r = f.result()
                results[r["name"]] = r
                finished(r, done)
                if i < n:
                    status(f"experiment {i} of {n} done ({r['name']})", done)
        finally:
            pool.shutdown(cancel_futures=True)
    else:
        for i, nm in enumerate(names, 1):
            status(f"experiment {i} of {n}: {nm}", done)
            r = runner.reproduce_one(nm, mode, None, backend, outdir, replot)
            results[nm] = r
            finished(r, done)
    return [results[nm] for nm in names]


def cmd_reproduce(args) -> int:
    from . import cache
    from .experiments import registry, runner

    mode = _mode(args)
    if args.out is not None:
        outdir = Path(args.out)
    elif args.gallery:
        outdir = runner.figures_dir()
    else:
        outdir = runner.results_dir() / f"reproduce-{mode}"
    cache.check_writable(outdir, "figures folder")
    spec = _backend(args)["backend"]
    t0 = time.perf_counter()
    names = registry.names()
    live = not args.json
    if live:
        say(f"reproduce --{mode}: {len(names)} experiments; figures and CHECKS.md go to")
        say(f"  {outdir}")
        say(SUMMARY_HEADER)
    report = _run_all(names, mode, args.jobs, spec, outdir, args.replot,
                      on_done=(lambda r: say(summary_line(r))) if live else None)
    seconds = time.perf_counter() - t0
    summary = outdir / "CHECKS.md"
    command = f"linmeta reproduce --{mode}" + (" --gallery" if args.gallery and args.out is None else "")
    cache.atomic_write(summary, checks_markdown(report, mode, outdir, command).encode())
    code = _print_report(report, args, seconds, lines_done=True)
    if live:
        rewritten = sum(r.get("figures_written", True) for r in report)
        say(f"figures: {rewritten} re-plotted, {len(report) - rewritten} up to date; the full table is in")
        say(f"  {summary}")
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
    say(f"MAML, d={d}, K=10 support shots, 1 inner step of alpha={rule.alpha}, {args.steps} outer Adam steps, "
        "3 seeds; meta-test loss on 256 held-out tasks (population query):")
    say(format_table(rows, ("model", "pre-adaptation", "post-adaptation")))
    return 0


# --------------------------------------------------------------------------- the parser


def _global_flags(p, sub: bool):
    """Flags that work before or after the subcommand (``linmeta -q run X`` = ``linmeta run X -q``)."""
    d = (lambda v: argparse.SUPPRESS) if sub else (lambda v: v)
    if sub:
        p = p.add_argument_group("global options (also accepted before the command)")
    p.add_argument("-q", "--quiet", action="store_true", default=d(False),
                   help="no progress bars or progress lines (also LINMETA_QUIET=1)")
    p.add_argument("-v", "--verbose", action="store_true", default=d(False),
                   help="print the full table of checks, not only the summary and the failing rows")
    p.add_argument("--experiments", action="append", default=d([]), metavar="PATH",
                   dest="sub_experiments" if sub else "experiments",
                   help="also load experiments from this .py file or folder (repeatable; also "
                        "$LINMETA_EXPERIMENTS, os.pathsep-separated)")
    p.add_argument("--debug", action="store_true", default=d(False),
                   help="show the traceback of an error instead of one line")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="linmeta", description="Run, plot and check linmeta's experiments: closed forms against "
                     "simulation for meta-learning on deep linear models.",
                     epilog="'linmeta show NAME' lists an experiment's parameters and the claims it tests.")
    parser.add_argument("--version", action="version", version=f"linmeta {__version__}",
                        help="print the version and exit")
    _global_flags(parser, sub=False)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    subs = []

    def new(name, helptext, **kw):
        p = sub.add_parser(name, help=helptext, description=helptext, **kw)
        subs.append(p)
        return p

    def mode_flags(p):
        g = p.add_mutually_exclusive_group()
        g.add_argument("--quick", action="store_true", help="the small preset (the default)")
        g.add_argument("--full", action="store_true", help="the paper-quality preset")

    def backend_flags(p):
        p.add_argument("--backend", choices=("numpy", "torch"), default=None,
                       help="array backend of the run (default numpy; torch needs the torch extra)")
        p.add_argument("--device", default=None, metavar="DEVICE", help="cpu (default), cuda or cuda:N (torch only)")
        p.add_argument("--dtype", choices=("float64", "float32"), default=None, help="floating dtype (default float64)")

    def override_flags(p, out=True):
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a parameter (repeatable; 'linmeta show NAME' lists them); the run's figures "
                            "go to its own folder, not the gallery")
        p.add_argument("--seed", type=_int_in(0, None, "--seed"), default=None, metavar="N",
                       help="random seed (a non-negative integer; default: the experiment's)")
        p.add_argument("--force-large", action="store_true",
                       help="run a config estimated to cost over 100x the full preset anyway")
        if out:
            p.add_argument("--out", default=None, metavar="DIR",
                           help="write the figures (and the report) to DIR instead of the default folder")

    p = new("list", "the experiments, with paper, figure and cache status")
    p.set_defaults(func=cmd_list)

    p = new("show", "an experiment's parameters (type, range, quick and full values, help) and its claims")
    p.add_argument("name", metavar="NAME", help="the experiment ('linmeta list' names them)")
    p.add_argument("--json", action="store_true", help="print it as JSON")
    p.set_defaults(func=cmd_show)

    p = new("run", "run one experiment and write its figure", add_help=False)
    p.add_argument("-h", "--help", action=_HelpWithParams, help="show this help and the experiment's parameters")
    p.add_argument("name", metavar="NAME", help="the experiment ('linmeta list' names them)")
    mode_flags(p)
    override_flags(p)
    p.add_argument("--jobs", type=_int_in(1, MAX_JOBS, "--jobs"), default=1, metavar="N",
                   help="worker processes for the sweep's pieces (default 1)")
    p.add_argument("--force", action="store_true", help="recompute (and re-plot) even if cached")
    backend_flags(p)
    p.set_defaults(func=cmd_run)

    p = new("figures", "write the figures (PNG and PDF), computing only what is missing", add_help=False)
    p.add_argument("-h", "--help", action=_HelpWithParams, help="show this help")
    p.add_argument("names", nargs="*", metavar="NAME", help="experiments (default: all)")
    mode_flags(p)
    override_flags(p)
    p.add_argument("--force", action="store_true", help="re-plot even if a figure is up to date (never recomputes)")
    backend_flags(p)
    p.set_defaults(func=cmd_figures)

    p = new("check", "theory-vs-simulation checks and paper findings; exits 1 if a check fails")
    p.add_argument("names", nargs="*", metavar="NAME", help="experiments (default: all)")
    mode_flags(p)
    override_flags(p, out=False)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    backend_flags(p)
    p.set_defaults(func=cmd_check)

    p = new("reproduce", "every experiment, figure and check, with a summary; exits 1 if a check fails")
    mode_flags(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--gallery", action="store_true",
                   help="refresh the committed gallery (figures/ and figures/CHECKS.md); by default the "
                        "output goes to results/reproduce-<preset>/")
    g.add_argument("--out", default=None, metavar="DIR", help="write the figures and CHECKS.md to DIR")
    p.add_argument("--jobs", type=_int_in(1, MAX_JOBS, "--jobs"), default=1, metavar="N",
                   help="experiments run in this many processes (default 1)")
    p.add_argument("--replot", action="store_true", help="re-plot every figure even if it is up to date")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    backend_flags(p)
    p.set_defaults(func=cmd_reproduce)

    p = new("demo", "shallow vs deep MAML, pre/post-adaptation loss side by side")
    p.add_argument("--steps", type=_int_in(1, MAX_DEMO_STEPS, "--steps"), default=600, metavar="N",
                   help=f"outer training steps (1 to {MAX_DEMO_STEPS}; default 600)")
    p.add_argument("--seed", type=_int_in(0, None, "--seed"), default=0, metavar="N",
                   help="random seed (a non-negative integer; default 0)")
    p.set_defaults(func=cmd_demo)
    for p in subs:  # last, so that they are listed after each command's own options
        _global_flags(p, sub=True)
    return parser


# --------------------------------------------------------------------------- main


def _one_line(exc) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None):
    text = " ".join(str(message).split())
    try:
        sys.stderr.write(f"linmeta: warning: {text}\n")
    except (BrokenPipeError, ValueError):
        pass


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 a check failed, 2 an error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except BrokenPipeError:  # `linmeta list | head -1`: the reader is gone; end quietly
        _silence_stdout()
        return 1


def _main(argv) -> int:
    from ._errors import DivergenceError
    from .cache import StorageError
    from .experiments.base import ConfigError

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed on one line
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    args.argv = argv
    args.experiments = list(getattr(args, "experiments", [])) + list(getattr(args, "sub_experiments", []) or [])
    quiet_before = _progress.is_quiet()
    if args.quiet:
        _progress.set_quiet(True)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            if args.experiments:
                from .experiments import registry

                for path in args.experiments:
                    registry.add_path(path)
            return args.func(args)
        except (ConfigError, StorageError, DivergenceError) as exc:
            if args.debug:
                raise
            sys.stderr.write(f"linmeta: error: {_one_line(exc)}\n")
            return 2
        except BrokenPipeError:
            raise
        except OSError as exc:  # an environment problem not caught above: name the path
            if args.debug:
                raise
            where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
            sys.stderr.write(f"linmeta: error: {exc.strerror or _one_line(exc)}{where}\n")
            return 2
        except KeyboardInterrupt:
            sys.stderr.write("linmeta: interrupted; finished pieces are cached and will be reused\n")
            return 130
        except Exception as exc:  # an experiment's code failed under the user's overrides: theirs to fix
            if args.debug or not (getattr(args, "set", None) or getattr(args, "seed", None) is not None):
                raise  # under a preset it is a bug: the traceback helps
            sys.stderr.write(f"linmeta: error: with the overrides given, {type(exc).__name__}: {_one_line(exc)} "
                             "(--debug shows the traceback)\n")
            return 2
        finally:
            _progress.set_quiet(quiet_before)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
