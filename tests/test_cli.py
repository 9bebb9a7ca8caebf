"""The linmeta command line (linmeta.cli)."""
import json
import subprocess
import sys
from dataclasses import replace

import pytest

from linmeta import cli
from linmeta.experiments import registry
from linmeta.experiments.base import holds

from . import sweep_fixture


@pytest.fixture
def fixture_registry(monkeypatch, tmp_path):
    """Register the small fixture experiment (plus a failing twin) and isolate cache and figures."""
    failing = replace(sweep_fixture.EXPERIMENT, name="failing_fixture",
                      checks=lambda res, cfg: [holds("always fails", False, 1.0, 0.0)])
    exps = {"sweep_fixture": sweep_fixture.EXPERIMENT, "failing_fixture": failing}
    monkeypatch.setattr(registry, "all_experiments", lambda: exps)
    monkeypatch.setenv("LINMETA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LINMETA_FIGURES", str(tmp_path / "figs"))
    return tmp_path


def test_list_run_figures_check(fixture_registry, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "sweep_fixture" in out and "-" in out
    assert cli.main(["run", "sweep_fixture", "--set", "pieces=3", "--seed", "4"]) == 0
    out = capsys.readouterr().out
    assert "figure" in out and (fixture_registry / "figs" / "sweep_fixture.png").exists()
    assert cli.main(["figures", "sweep_fixture"]) == 0
    assert "sweep_fixture.pdf" in capsys.readouterr().out
    assert cli.main(["check", "sweep_fixture", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (exp,) = report["experiments"]
    c = exp["checks"][0]
    assert set(c) == {"name", "theory", "simulation", "stderr", "tolerance", "passed", "kind", "claim"}
    assert report["failed"] == 0
    assert cli.main(["list"]) == 0
    assert "quick" in capsys.readouterr().out


def test_check_table_and_failure_exit_code(fixture_registry, capsys):
    assert cli.main(["check", "sweep_fixture"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "theory" in out and "simulation" in out and "tolerance" in out
    assert cli.main(["check", "failing_fixture"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_reproduce_summary(fixture_registry, capsys):
    code = cli.main(["reproduce", "--quick"])
    out = capsys.readouterr().out
    assert code == 1  # the failing twin fails
    assert "1 FAILED" in out and (fixture_registry / "figs" / "CHECKS.md").exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["run", "nope"], "unknown experiment 'nope'; available: sweep_fixture, failing_fixture"),
        (["run", "sweep_fixture", "--set", "widths=3"], "unknown parameter 'widths'"),
        (["run", "sweep_fixture", "--set", "pieces=three"], "pieces='three' is not a valid int"),
        (["run", "sweep_fixture", "--set", "pieces=-2"], "pieces=-2 is out of range; allowed: int (>= 1)"),
        (["run", "sweep_fixture", "--set", "pieces"], "--set takes key=value"),
        (["run", "sweep_fixture", "--jobs", "0"], "--jobs must be a positive integer"),
        (["check", "nope"], "unknown experiment"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(fixture_registry, capsys, argv, needle):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_input_from_a_real_shell_has_no_traceback(tmp_path):
    for argv in (["run", "no_such_experiment"], ["run", "core_expected_loss", "--set", "d=-3"], ["frobnicate"]):
        proc = subprocess.run([sys.executable, "-m", "linmeta.cli", *argv], capture_output=True, text=True,
                              cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run([sys.executable, "-m", "linmeta.cli", "run", "core_expected_loss", "--set", "d=-3"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert "d=-3 is out of range" in proc.stderr


def test_run_with_process_pool_matches_serial(fixture_registry, capsys, tmp_path):
    from linmeta.experiments import runner

    assert cli.main(["run", "sweep_fixture", "--set", "pieces=4", "--jobs", "2"]) == 0
    parallel, _, info = runner.run("sweep_fixture", overrides={"pieces": 4})
    assert info["cached"]
    serial, _, _ = runner.run("sweep_fixture", overrides={"pieces": 4}, directory=tmp_path / "serial")
    assert (parallel["mean"] == serial["mean"]).all()


def test_findings_are_reported_not_failed(monkeypatch, tmp_path, capsys):
    from linmeta.experiments.base import finding

    claim = replace(sweep_fixture.EXPERIMENT, name="claim_fixture",
                    checks=lambda res, cfg: [finding("a paper claim", False, 1.0, 2.0)])
    monkeypatch.setattr(registry, "all_experiments", lambda: {"claim_fixture": claim})
    monkeypatch.setenv("LINMETA_CACHE", str(tmp_path / "cache"))
    assert cli.main(["check", "claim_fixture"]) == 0
    out = capsys.readouterr().out
    assert "NOT REPRODUCED" in out and "paper claims: 0/1 reproduced" in out
