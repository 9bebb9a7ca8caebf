"""The linmeta command line (linmeta.cli)."""
import argparse
import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import linmeta
from linmeta import cache, claims, cli
from linmeta.experiments import registry, runner
from linmeta.experiments.base import holds

from . import sweep_fixture
from .helpers import isolate_registry, read_only_under

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_FILE = ROOT / "tests" / "sweep_fixture.py"
CLAIM = next(iter(claims.CLAIMS))


def _diverging_run(cfg, ctx):
    raise linmeta.DivergenceError(3, np.array([1.5]), np.array([0.5]), 2.0)


@pytest.fixture
def fixture_registry(monkeypatch, tmp_path):
    """Register the small fixture experiment (plus a failing twin); isolate the cache and the outputs."""
    failing = replace(sweep_fixture.EXPERIMENT, name="failing_fixture",
                      checks=lambda res, cfg: [holds("always fails", False, 1.0, 0.0, claim=CLAIM)])
    exps = {"sweep_fixture": sweep_fixture.EXPERIMENT, "failing_fixture": failing}
    isolate_registry(monkeypatch, tmp_path)
    monkeypatch.setattr(registry, "all_experiments", lambda: exps)
    return tmp_path


@pytest.fixture
def real_registry(monkeypatch, tmp_path):
    """The real registry with isolated cache and outputs (and no leftover external paths)."""
    isolate_registry(monkeypatch, tmp_path)
    yield tmp_path
    registry.cache_clear()


def _one_line_error(capsys, needle=None):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    if needle is not None:
        assert needle in err, err
    return err


def _env(tmp_path, **extra):
    env = {**os.environ, "LINMETA_CACHE": str(tmp_path / "cache"), "LINMETA_FIGURES": str(tmp_path / "figs"),
           "LINMETA_RESULTS": str(tmp_path / "results"), "PYTHONPATH": str(ROOT)}
    env.pop("LINMETA_EXPERIMENTS", None)
    env.update(extra)
    return env


# --------------------------------------------------------------------------- the basic commands


def test_list_run_figures_check(fixture_registry, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "sweep_fixture" in out and "-" in out
    assert cli.main(["run", "sweep_fixture"]) == 0
    out = capsys.readouterr().out
    assert "figure" in out and (fixture_registry / "figs" / "sweep_fixture.png").exists()
    assert "1/1 checks passed" in out
    assert cli.main(["figures", "sweep_fixture"]) == 0
    out = capsys.readouterr().out
    assert "sweep_fixture.pdf" in out and "(up to date)" in out  # nothing changed: not re-plotted
    assert cli.main(["check", "sweep_fixture", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (exp,) = report["experiments"]
    c = exp["checks"][0]
    assert set(c) == {"name", "theory", "simulation", "stderr", "tolerance", "passed", "kind", "claim"}
    assert report["failed"] == 0 and exp["info"]["cached"]
    assert cli.main(["list"]) == 0
    assert "quick" in capsys.readouterr().out


def test_check_summary_failing_rows_and_exit_code(fixture_registry, capsys):
    assert cli.main(["check", "sweep_fixture"]) == 0
    out = capsys.readouterr().out
    assert "sweep_fixture" in out and "1/1" in out and "1/1 checks passed" in out
    assert cli.main(["check", "sweep_fixture", "--verbose"]) == 0  # the full table only with --verbose
    out = capsys.readouterr().out
    assert "PASS" in out and "theory" in out and "simulation" in out and "tolerance" in out
    assert cli.main(["check", "failing_fixture"]) == 1
    out = capsys.readouterr().out
    assert "FAILED failing_fixture: always fails" in out and f"[claim {CLAIM}]" in out and "1 FAILED" in out


def test_findings_are_reported_not_failed(monkeypatch, tmp_path, capsys):
    from linmeta.experiments.base import finding

    claim = replace(sweep_fixture.EXPERIMENT, name="claim_fixture",
                    checks=lambda res, cfg: [finding("a paper claim", False, 1.0, 2.0)])
    monkeypatch.setattr(registry, "all_experiments", lambda: {"claim_fixture": claim})
    monkeypatch.setenv("LINMETA_CACHE", str(tmp_path / "cache"))
    assert cli.main(["check", "claim_fixture"]) == 0
    out = capsys.readouterr().out
    assert "NOT REPRODUCED claim_fixture: a paper claim" in out and "paper claims: 0/1 reproduced" in out


def test_run_with_process_pool_matches_serial(fixture_registry, capsys, tmp_path):
    assert cli.main(["run", "sweep_fixture", "--set", "pieces=4", "--jobs", "2"]) == 0
    parallel, _, info = runner.run("sweep_fixture", overrides={"pieces": 4})
    assert info["cached"]
    serial, _, _ = runner.run("sweep_fixture", overrides={"pieces": 4}, directory=tmp_path / "serial")
    assert (parallel["mean"] == serial["mean"]).all()


# --------------------------------------------------------------------------- discoverability (issue 12, item 1)


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"linmeta {linmeta.__version__}"


def _walk(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"subcommand {choice.dest} has no help"
            for sub in action.choices.values():
                yield from _walk(sub)


def test_every_argument_has_help():
    parsers = list(_walk(cli.build_parser()))
    assert len(parsers) == 8  # linmeta and its seven commands
    for p in parsers:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help and action.help != argparse.SUPPRESS, f"{p.prog} {action.option_strings or action.dest}"


@pytest.mark.parametrize("flag, attr", [("--quiet", "quiet"), ("-q", "quiet"), ("--verbose", "verbose"),
                                        ("--debug", "debug")])
def test_global_flags_before_or_after_the_subcommand(flag, attr):
    parser = cli.build_parser()
    assert getattr(parser.parse_args([flag, "check", "x"]), attr) is True
    assert getattr(parser.parse_args(["check", "x", flag]), attr) is True
    assert getattr(parser.parse_args(["check", "x"]), attr) is False
    args = parser.parse_args(["--experiments", "a.py", "run", "x", "--experiments", "b.py"])
    assert args.experiments == ["a.py"] and args.sub_experiments == ["b.py"]


def test_quiet_after_the_subcommand_runs(fixture_registry, capsys):
    assert cli.main(["run", "sweep_fixture", "--quiet"]) == 0
    assert cli.main(["-q", "check", "sweep_fixture"]) == 0


def test_show_lists_every_parameter_and_the_claims(real_registry, capsys):
    exp = registry.get("collins_gain")
    assert cli.main(["show", "collins_gain"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(map(len, lines)) <= cli.WIDTH
    rows = {ln.split()[0]: ln for ln in lines if ln and not ln.startswith(" ") and len(ln.split()) >= 5}
    for key, p in exp.params.items():
        row = rows[key]
        assert p.type_name in row and p.role in row, row
        q = ", ".join(map(str, p.quick)) if isinstance(p.quick, tuple) else str(p.quick)
        assert q.split(",")[0] in row
        assert p.help.split()[0] in out
    assert "seed" in rows and "allowed" in out and "quick" in out and "full" in out and "role" in out
    tested = [c for c in claims.CLAIMS.values() if "collins_gain" in c.experiments]
    assert tested and all(c.label in out for c in tested)
    assert cli.main(["show", "collins_gain", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info["params"]) == set(exp.params) | {"seed"}
    assert info["params"]["mc_tasks"]["high"] == exp.params["mc_tasks"].high
    assert [c["label"] for c in info["claims"]] == [c.label for c in tested]
    assert cli.main(["show", "nope"]) == 2
    _one_line_error(capsys, "unknown experiment 'nope'")


def test_run_help_shows_the_parameters(fixture_registry, capsys):
    assert cli.main(["run", "sweep_fixture", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--set KEY=VALUE" in out and "pieces" in out and "parameters (linmeta run sweep_fixture" in out


# --------------------------------------------------------------------------- overrides (issue 12, item 2)


def test_override_run_writes_its_own_folder_and_says_so_in_the_title(fixture_registry, capsys, monkeypatch):
    figs, results = fixture_registry / "figs", fixture_registry / "results"
    assert cli.main(["run", "sweep_fixture"]) == 0
    gallery = (figs / "sweep_fixture.png").read_bytes()
    drawn = []
    save = runner.plotting.save
    monkeypatch.setattr(runner.plotting, "save", lambda fig, stem, formats=("png", "pdf"): drawn.append(fig)
                        or save(fig, stem, formats))
    assert cli.main(["run", "sweep_fixture", "--set", "pieces=3", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    variant = results / "sweep_fixture--quick--pieces=3--seed=4"
    assert {p.name for p in variant.iterdir()} == {"sweep_fixture.png", "sweep_fixture.pdf", "REPORT.md",
                                                    "config.json"}
    assert (figs / "sweep_fixture.png").read_bytes() == gallery  # the gallery is untouched
    assert "overrides pieces=3, seed=4" in out and str(variant) in out
    assert runner.override_note(drawn[-1]) == "sweep_fixture, quick preset with pieces=3, seed=4"
    report = (variant / "REPORT.md").read_text()
    assert "| pieces | 3 | override |" in report and "| seed | 4 | override |" in report and "## sweep_fixture" in report
    config = json.loads((variant / "config.json").read_text())
    assert config["config"]["pieces"] == 3 and config["overrides"] == "pieces=3, seed=4"
    # --out chooses the folder
    assert cli.main(["run", "sweep_fixture", "--set", "pieces=2", "--out", str(fixture_registry / "mine")]) == 0
    assert (fixture_registry / "mine" / "sweep_fixture.pdf").exists()
    # the preset's own values are no override: the gallery, and nothing to re-plot
    assert cli.main(["run", "sweep_fixture", "--set", "pieces=8", "--seed", "0"]) == 0
    assert "(up to date)" in capsys.readouterr().out and (figs / "sweep_fixture.png").read_bytes() == gallery
    # a preset figure carries no override note
    assert cli.main(["figures", "sweep_fixture", "--force"]) == 0
    assert runner.override_note(drawn[-1]) is None and runner.OVERRIDE_GID not in {
        t.get_gid() for t in drawn[-1].findobj(lambda a: hasattr(a, "get_gid"))}


def test_check_and_figures_take_the_same_overrides_and_use_the_cached_result(fixture_registry, capsys):
    assert cli.main(["run", "sweep_fixture", "--set", "pieces=3", "--seed", "4"]) == 0
    capsys.readouterr()
    assert cli.main(["check", "sweep_fixture", "--set", "pieces=3", "--seed", "4", "--json"]) == 0
    (exp,) = json.loads(capsys.readouterr().out)["experiments"]
    assert exp["info"]["cached"]
    assert cli.main(["check", "sweep_fixture", "--set", "pieces=3", "--seed", "4", "--full"]) == 0  # the full preset
    capsys.readouterr()
    assert cli.main(["figures", "sweep_fixture", "--set", "pieces=3", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "sweep_fixture--quick--pieces=3--seed=4" in out and "(up to date)" in out
    assert not (fixture_registry / "figs").exists()  # never the gallery
    assert cli.main(["check", "--set", "pieces=3"]) == 2  # keys are per experiment: name it
    _one_line_error(capsys, "give the experiment names")


# --------------------------------------------------------------------------- reports (issue 12, item 5)


def test_reproduce_summary_fits_in_100_columns_and_checks_md_has_sections(fixture_registry, capsys):
    code = cli.main(["reproduce", "--quick", "--gallery"])
    out = capsys.readouterr().out
    assert code == 1  # the failing twin fails
    lines = out.replace(str(fixture_registry), "/tmp/x").splitlines()  # a path is as long as it is
    assert max(map(len, lines)) <= cli.WIDTH
    summary = [ln for ln in lines if ln.startswith(("sweep_fixture ", "failing_fixture "))]
    assert len(summary) == 2 and "ok" in summary[1 if summary[0].startswith("failing") else 0]
    assert "FAILED failing_fixture: always fails" in out and "1 FAILED" in out
    assert "simulation ± SE" not in out  # the full table is behind --verbose
    md = (fixture_registry / "figs" / "CHECKS.md").read_text()
    assert "## sweep_fixture" in md and "## failing_fixture" in md and "A **check** compares" in md
    assert "A **finding** tests" in md and "| **total** |" in md and "**1/2 checks passed, 1 FAILED" in md
    assert f"[{CLAIM}](../docs/claims.md#{claims.anchor(CLAIM)})" in md
    before = {p.name: p.stat().st_mtime_ns for p in (fixture_registry / "figs").iterdir()}
    # a cached re-run re-plots nothing and rewrites CHECKS.md byte for byte
    assert cli.main(["reproduce", "--gallery", "--verbose"]) == 1
    out = capsys.readouterr().out
    assert "0 re-plotted, 2 up to date" in out and "simulation ± SE" in out
    assert (fixture_registry / "figs" / "CHECKS.md").read_text() == md
    after = {p.name: p.stat().st_mtime_ns for p in (fixture_registry / "figs").iterdir()}
    assert {k: v for k, v in after.items() if k.endswith((".png", ".pdf"))} == \
        {k: v for k, v in before.items() if k.endswith((".png", ".pdf"))}


def test_reproduce_writes_outside_the_gallery_by_default(fixture_registry, capsys):
    assert cli.main(["reproduce", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == 1 and report["passed"] == 1
    out = fixture_registry / "results" / "reproduce-quick"
    assert (out / "CHECKS.md").exists() and (out / "sweep_fixture.png").exists()
    assert not (fixture_registry / "figs").exists()
    assert "(../../docs/claims.md#" in (out / "CHECKS.md").read_text()


def test_numbers_have_few_significant_digits_and_roundoff_is_stable():
    assert cli.fmt_num(1.23456789) == "1.235" and cli.fmt_num(0.000123456) == "0.0001235"
    assert cli.fmt_num(4.1e-16) == cli.fmt_num(-2.2e-15) == "<1e-12" and cli.fmt_num(0.0) == "0"
    assert cli.fmt_num(None) == cli.fmt_num(float("nan")) == "-"
    assert cli.fmt_num(0.0098271, 2) == "0.0098"


# --------------------------------------------------------------------------- feedback (issue 12, item 6)


class _TTY(io.StringIO):
    def isatty(self):
        return True


def test_overall_progress_line_and_result_lines_as_each_finishes(fixture_registry, capsys, monkeypatch):
    tty = _TTY()
    monkeypatch.setattr(sys, "stderr", tty)
    seen = []
    report = cli._run_all(["sweep_fixture", "failing_fixture"], "quick", 1, None, fixture_registry / "out",
                          on_done=lambda r: seen.append((r["name"], tty.getvalue().count("experiment "))))
    text = tty.getvalue()
    assert "experiment 1 of 2: sweep_fixture (elapsed 0:00, ETA ?)" in text
    assert "experiment 2 of 2: failing_fixture" in text
    assert "sweep_fixture: fixture [" in text  # the piece bar names its experiment
    assert [s[0] for s in seen] == ["sweep_fixture", "failing_fixture"] and seen[0][1] == 1  # before the 2nd
    assert [r["name"] for r in report] == ["sweep_fixture", "failing_fixture"]
    tty.seek(0), tty.truncate()
    cli._run_all(["sweep_fixture", "failing_fixture"], "quick", 1, None, fixture_registry / "out")
    assert "experiment 1 of 2: sweep_fixture (elapsed 0:00, ETA 0:00)" in tty.getvalue()  # all cached


def test_broken_pipe_exits_quietly(tmp_path):
    env = _env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "linmeta.cli", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    proc.stdout.close()  # the reader is gone before a line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1
    assert err == "", err
    shell = subprocess.run(f"'{sys.executable}' -m linmeta.cli list 2>'{tmp_path / 'err.txt'}' | head -1",
                           shell=True, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert shell.stdout.split() == ["experiment", "paper", "figure", "cached"]
    assert (tmp_path / "err.txt").read_text() == ""


# --------------------------------------------------------------------------- external experiments (item 3)


def test_external_experiment_file_runs_like_a_built_in_one(real_registry, capsys):
    """A researcher's file, named by --experiments (before or after the command): list, show, run, check."""
    try:
        assert cli.main(["--experiments", str(FIXTURE_FILE), "list"]) == 0
        out = capsys.readouterr().out
        assert "sweep_fixture" in out and "from" in out and "built in" in out
        assert cli.main(["show", "sweep_fixture", "--experiments", str(FIXTURE_FILE)]) == 0
        assert f"from: file {FIXTURE_FILE}" in capsys.readouterr().out.replace("\n    ", "")
        assert cli.main(["run", "sweep_fixture", "--experiments", str(FIXTURE_FILE), "--set", "pieces=3"]) == 0
        capsys.readouterr()
        assert cli.main(["check", "sweep_fixture", "--experiments", str(FIXTURE_FILE), "--set", "pieces=3",
                         "--json"]) == 0
        (exp,) = json.loads(capsys.readouterr().out)["experiments"]
        assert exp["info"]["cached"] and exp["checks"][0]["passed"]
        assert (real_registry / "results" / "sweep_fixture--quick--pieces=3" / "sweep_fixture.png").exists()
    finally:
        sys.modules.pop("sweep_fixture", None)


# --------------------------------------------------------------------------- errors (issue 13, defects 15-22)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["run", "nope"], "unknown experiment 'nope'; available: sweep_fixture, failing_fixture"),
        (["run", "sweep_fixture", "--set", "widths=3"], "unknown parameter 'widths'"),
        (["run", "sweep_fixture", "--set", "pieces=three"], "pieces='three' is not a valid int"),
        (["run", "sweep_fixture", "--set", "pieces=-2"], "pieces=-2 is out of range; allowed: int (>= 1)"),
        (["run", "sweep_fixture", "--set", "pieces"], "--set takes key=value"),
        (["run", "sweep_fixture", "--set", "pieces="], "pieces='' is not a valid int"),
        (["run", "sweep_fixture", "--set", "=3"], "unknown parameter ''"),
        (["run", "sweep_fixture", "--set", "pieces=2", "--set", "pieces=3"], "pieces= is given twice"),
        (["run", "sweep_fixture", "--jobs", "0"], "--jobs must be an integer from 1 to"),
        (["run", "sweep_fixture", "--jobs", "100000"], "--jobs must be an integer from 1 to"),
        (["run", "sweep_fixture", "--seed", "-1"], "--seed must be an integer >= 0, got -1"),  # defect 19
        (["run", "sweep_fixture", "--seed", "x"], "--seed must be an integer, got 'x'"),
        (["demo", "--steps", "0"], "--steps must be an integer from 1 to"),  # defect 19
        (["demo", "--steps", "1000000000"], "--steps must be an integer from 1 to"),
        (["demo", "--seed", "-1"], "--seed must be an integer >= 0, got -1"),  # defect 19
        (["check", "nope"], "unknown experiment"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["run", "sweep_fixture", "--set", "pieces=100000"], "--force-large"),  # defect 21 (cost estimate)
        (["run", "sweep_fixture", "--experiments", "/no/such/file.py"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(fixture_registry, capsys, argv, needle):
    assert cli.main(argv) == 2
    _one_line_error(capsys, needle)


@pytest.mark.parametrize("setting, needle", [
    ("shots=", "shots='' is empty; shots takes at least 1 comma-separated int"),  # defect 18
    ("shots=4,,8", "shots='4,,8' has an empty item"),
    ("shots=4,8,", "has an empty item"),
    ("noise=nan", "must be finite"),
])
def test_empty_and_ill_formed_values_are_refused(real_registry, capsys, setting, needle):
    assert cli.main(["run", "core_expected_loss", "--set", setting]) == 2
    _one_line_error(capsys, needle)
    assert not (real_registry / "cache").exists()  # refused before anything was computed or cached


def test_endless_sizes_are_refused(real_registry, capsys):
    """Defect 21: an upper bound on every size, and a cost estimate for combinations."""
    assert cli.main(["run", "collins_gain", "--set", "mc_tasks=1000000000000"]) == 2
    _one_line_error(capsys, "mc_tasks=1000000000000 is out of range")
    assert cli.main(["run", "collins_gain", "--set", "mc_tasks=10000000", "--set", "grad_tasks=200000"]) == 2
    _one_line_error(capsys, "pass --force-large")
    assert not (real_registry / "cache").exists()


def test_divergence_is_one_line_exit_2(fixture_registry, capsys, monkeypatch):
    """Defect 20, with an experiment whose run raises linmeta.DivergenceError."""
    diverging = replace(sweep_fixture.EXPERIMENT, name="diverging_fixture", run=_diverging_run)
    monkeypatch.setattr(registry, "all_experiments", lambda: {"diverging_fixture": diverging})
    assert cli.main(["run", "diverging_fixture"]) == 2
    err = _one_line_error(capsys, "diverging_fixture diverged: meta-training diverged at outer step 3")
    assert err.startswith("linmeta: error: ")


def _plot_key_error(res, cfg):
    return {}[len(res["mean"])]


def test_an_experiment_crash_under_overrides_is_one_line(fixture_registry, capsys, monkeypatch):
    fragile = replace(sweep_fixture.EXPERIMENT, name="fragile", plot=_plot_key_error)
    monkeypatch.setattr(registry, "all_experiments", lambda: {"fragile": fragile})
    assert cli.main(["run", "fragile", "--set", "pieces=2"]) == 2
    _one_line_error(capsys, "with the overrides given, KeyError: 2 (--debug shows the traceback)")
    with pytest.raises(KeyError):  # under the preset it is a bug: the traceback
        cli.main(["run", "fragile"])
    with pytest.raises(KeyError):
        cli.main(["run", "fragile", "--set", "pieces=2", "--debug"])


def test_divergence_of_the_issue_example_is_one_line(real_registry, capsys):
    """Defect 20 as reported: arnold_surface with lr at its maximum diverges; one line, exit 2."""
    assert cli.main(["run", "arnold_surface", "--set", "lr=10", "--set", "steps=50", "--set", "alpha=1.0"]) == 2
    err = _one_line_error(capsys, "arnold_surface with alpha=1, lr=10, steps=50: ")
    assert "diverged" in err


def test_environment_errors_are_one_line_naming_the_path(fixture_registry, capsys, monkeypatch):
    """Defect 17: cache dir a regular file or below a file; figures dir a file; a full disk."""
    afile = fixture_registry / "a_file"
    afile.write_text("x")
    monkeypatch.setenv("LINMETA_CACHE", str(afile))
    assert cli.main(["run", "sweep_fixture"]) == 2
    _one_line_error(capsys, f"the cache folder {afile} is a regular file")
    monkeypatch.setenv("LINMETA_CACHE", str(afile / "below"))
    assert cli.main(["run", "sweep_fixture"]) == 2
    _one_line_error(capsys, str(afile / "below"))
    monkeypatch.setenv("LINMETA_CACHE", str(fixture_registry / "cache"))
    monkeypatch.setenv("LINMETA_FIGURES", str(afile))
    for argv in (["run", "sweep_fixture"], ["figures", "sweep_fixture"], ["reproduce", "--gallery"]):
        assert cli.main(argv) == 2
        _one_line_error(capsys, f"the figures folder {afile} is a regular file")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setenv("LINMETA_FIGURES", str(fixture_registry / "figs"))
    monkeypatch.setattr(cache.os, "fsync", full)
    assert cli.main(["run", "sweep_fixture", "--set", "pieces=2"]) == 2
    err = _one_line_error(capsys, "no space left on the device")
    assert str(fixture_registry / "cache") in err




@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_read_only_cache_computes_in_memory_with_a_warning(fixture_registry, capsys, monkeypatch, code):
    """Defects 16/17: a read-only or unwritable cache with a damaged entry: recomputed in memory, one warning."""
    assert cli.main(["run", "sweep_fixture", "--set", "pieces=3"]) == 0
    capsys.readouterr()
    npz = next((fixture_registry / "cache").glob("sweep_fixture-*.npz"))
    npz.write_bytes(npz.read_bytes()[:40])  # damaged
    read_only_under(monkeypatch, fixture_registry / "cache", code)
    assert cli.main(["check", "sweep_fixture", "--set", "pieces=3", "--set", "n=999"]) == 0  # nothing cached
    err = capsys.readouterr().err
    assert "linmeta: warning:" in err and "kept in memory only" in err and "Traceback" not in err
    assert cli.main(["check", "sweep_fixture", "--set", "pieces=3"]) == 0  # the damaged one
    err = capsys.readouterr().err
    assert "damaged and cannot be removed" in err and "Traceback" not in err
    assert npz.exists()  # left alone


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user for chmod")
def test_really_read_only_cache(fixture_registry, capsys):
    assert cli.main(["run", "sweep_fixture", "--set", "pieces=2"]) == 0
    c = fixture_registry / "cache"
    for p in [c, *c.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        assert cli.main(["check", "sweep_fixture", "--set", "pieces=3"]) == 0
        assert "kept in memory only" in capsys.readouterr().err
    finally:
        for p in [c, *c.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_concurrent_runs_and_figures_do_not_collide(tmp_path):
    """Defect 15: two processes running, then plotting, the same experiment at the same time."""
    env = _env(tmp_path)
    base = [sys.executable, "-m", "linmeta.cli", "--experiments", str(FIXTURE_FILE)]
    rounds = [["run", "sweep_fixture", "--set", "pieces=6"], ["figures", "sweep_fixture", "--force", "--set", "pieces=6"]]
    for argv in rounds:
        procs = [subprocess.Popen(base + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=tmp_path, env=env) for _ in range(2)]
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert leftovers == []
    assert (tmp_path / "results" / "sweep_fixture--quick--pieces=6" / "sweep_fixture.png").exists()


def _proc_stat(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children(pid):
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            st = _proc_stat(int(d.name))
            if st is not None and int(st[1]) == pid:
                kids.append(int(d.name))
    return kids


def _alive(pid):
    st = _proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_the_main_process_takes_its_workers_along(tmp_path):
    """Defect 22: with --jobs 2, kill -9 of the main process leaves no worker nor resource tracker running."""
    env = _env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "linmeta.cli", "run", "sweep_fixture", "--experiments",
                             str(FIXTURE_FILE), "--set", "pieces=200", "--set", "sleep=0.5", "--jobs", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path, env=env)
    deadline = time.time() + 120
    kids = []
    while time.time() < deadline:
        if list((tmp_path / "cache").glob("pieces/*/*.json")):
            kids = _children(proc.pid)
            if len(kids) >= 3:
                break
        time.sleep(0.1)
    assert len(kids) >= 3, "expected two workers and the resource tracker"
    cmdlines = [Path(f"/proc/{k}/cmdline").read_bytes().decode(errors="replace") for k in kids]
    assert any("resource_tracker" in c for c in cmdlines) and sum("spawn_main" in c for c in cmdlines) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(_alive(k) for k in kids):
        time.sleep(0.1)
    assert not [k for k in kids if _alive(k)]


def test_bad_input_from_a_real_shell_has_no_traceback(tmp_path):
    env = _env(tmp_path)
    for argv in (["run", "no_such_experiment"], ["run", "core_expected_loss", "--set", "d=-3"], ["frobnicate"],
                 ["demo", "--steps", "0"]):
        proc = subprocess.run([sys.executable, "-m", "linmeta.cli", *argv], capture_output=True, text=True,
                              cwd=tmp_path, env=env)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        if "d=-3" in argv[-1]:
            assert "d=-3 is out of range" in proc.stderr
