"""Running experiments: caching, resuming a killed sweep, executors (linmeta.experiments.runner)."""
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from linmeta import cache
from linmeta.experiments import runner
from linmeta.experiments.base import ConfigError, Param

from .. import sweep_fixture
from ..helpers import read_only_under

EXP = sweep_fixture.EXPERIMENT
ROOT = Path(__file__).resolve().parent.parent


def test_run_caches_and_reuses(tmp_path):
    r1, cfg, info1 = runner.run(EXP, overrides={"pieces": 3}, directory=tmp_path)
    r2, _, info2 = runner.run(EXP, overrides={"pieces": 3}, directory=tmp_path)
    assert not info1["cached"] and info1["pieces_computed"] == 3
    assert info2["cached"] and np.array_equal(r1["mean"], r2["mean"])
    r3, _, info3 = runner.run(EXP, overrides={"pieces": 3}, directory=tmp_path, force=True)
    assert info3["pieces_computed"] == 3 and np.array_equal(r1["mean"], r3["mean"])  # --force recomputes all


def test_seed_changes_result(tmp_path):
    a, _, _ = runner.run(EXP, overrides={"pieces": 2}, seed=1, directory=tmp_path)
    b, _, _ = runner.run(EXP, overrides={"pieces": 2}, seed=2, directory=tmp_path)
    assert not np.array_equal(a["mean"], b["mean"])


def test_any_executor_gives_the_same_result(tmp_path):
    serial, _, _ = runner.run(EXP, overrides={"pieces": 5}, directory=tmp_path / "a")
    with ThreadPoolExecutor(2) as pool:
        threaded, _, _ = runner.run(EXP, overrides={"pieces": 5}, directory=tmp_path / "b", executor=pool)
    assert np.array_equal(serial["mean"], threaded["mean"])


@pytest.mark.dask
def test_dask_local_cluster_executor(tmp_path):
    distributed = pytest.importorskip("distributed")
    serial, _, _ = runner.run(EXP, overrides={"pieces": 4}, directory=tmp_path / "a")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        res, _, info = runner.run(EXP, overrides={"pieces": 4}, directory=tmp_path / "b",
                                  executor=client.get_executor())
    assert info["pieces_computed"] == 4 and np.array_equal(serial["mean"], res["mean"])


_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from tests import sweep_fixture
from linmeta.experiments import runner
runner.run(sweep_fixture.EXPERIMENT, overrides={overrides!r}, directory={directory!r})
"""


def _start(tmp_path, log, directory):
    overrides = {"pieces": 12, "sleep": 0.25, "log": str(log)}
    code = _SCRIPT.format(root=str(ROOT), overrides=overrides, directory=str(directory))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE), overrides


def _manifests(paths):
    """Finished pieces' manifests; a kill can leave a half-written ``.tmp-*`` file, which is not one."""
    return [p for p in paths if not p.name.startswith(".tmp-")]


def test_kill_minus_9_resumes_without_losing_finished_pieces(tmp_path):
    log = tmp_path / "log.txt"
    directory = tmp_path / "cache"
    proc, overrides = _start(tmp_path, log, directory)
    piece_dir = None
    deadline = time.time() + 60
    while time.time() < deadline:
        found = _manifests(directory.glob("pieces/*/*.json"))
        if len(found) >= 4:
            piece_dir = found[0].parent
            break
        time.sleep(0.02)
    assert piece_dir is not None, proc.communicate()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.stem for p in _manifests(piece_dir.glob("*.json"))}
    assert 4 <= len(finished) < 12
    # an npz whose manifest is missing was cut off between its two writes: it is not finished
    mtimes = {f"{name}.npz": (piece_dir / f"{name}.npz").stat().st_mtime_ns for name in finished}
    first_log = log.read_text().splitlines()

    # resume: only the missing pieces are computed
    result, _, info = runner.run(sweep_fixture.EXPERIMENT, overrides=overrides, directory=directory)
    assert info["pieces_computed"] == 12 - len(finished)
    second_log = log.read_text().splitlines()[len(first_log):]
    recomputed = {int(line.split()[1]) for line in second_log if line.startswith("done")}
    finished_idx = {int(name.split("-")[0]) for name in finished}
    assert recomputed.isdisjoint(finished_idx)
    assert all(mtimes[n] == (piece_dir / n).stat().st_mtime_ns for n in mtimes)  # untouched

    # and the resumed result is bit-identical to an uninterrupted run
    clean, _, _ = runner.run(sweep_fixture.EXPERIMENT, overrides={**overrides, "log": ""},
                             directory=tmp_path / "clean")
    assert np.array_equal(result["mean"], clean["mean"]) and np.array_equal(result["se"], clean["se"])


def test_half_written_temp_files_are_ignored_on_resume(tmp_path):
    """What a kill can leave behind (``.tmp-*`` files of an interrupted atomic write) is never read."""
    first, _, _ = runner.run(EXP, overrides={"pieces": 4}, directory=tmp_path)
    for f in tmp_path.glob("*.*"):  # drop the finished result: the next run must go through the pieces
        f.unlink()
    piece_dir = next((tmp_path / "pieces").iterdir())
    manifests = sorted(_manifests(piece_dir.glob("*.json")))
    for f in (manifests[1], manifests[1].with_suffix(".npz")):
        f.unlink()
    (piece_dir / ".tmp-abc123.json").write_text('{"truncated": ')
    (piece_dir / ".tmp-abc123.npz").write_bytes(b"PK\x03")
    again, _, info = runner.run(EXP, overrides={"pieces": 4}, directory=tmp_path)
    assert info["pieces_computed"] == 1
    assert np.array_equal(first["mean"], again["mean"]) and np.array_equal(first["se"], again["se"])


def test_figures_and_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("LINMETA_FIGURES", str(tmp_path / "figs"))
    monkeypatch.setenv("LINMETA_RESULTS", str(tmp_path / "results"))
    paths = runner.write_figure(EXP, overrides={"pieces": 3}, directory=tmp_path)
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 0 for p in paths)
    checks = runner.run_checks(EXP, overrides={"pieces": 30}, directory=tmp_path)
    assert len(checks) == 1 and checks[0].passed


def test_two_maps_over_the_same_items_do_not_share_pieces(tmp_path):
    from linmeta.experiments.runner import RunContext

    ctx = RunContext("k", tmp_path)
    a = ctx.map(_double, [1, 2])
    b = ctx.map(_triple, [1, 2])
    assert [r["v"] for r in a] == [2, 4] and [r["v"] for r in b] == [3, 6]


def _double(x):
    return {"v": 2 * x}


def _triple(x):
    return {"v": 3 * x}


# --------------------------------------------------------------------------- output folders and figures


def test_preset_runs_go_to_the_gallery_and_variants_to_their_own_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LINMETA_FIGURES", str(tmp_path / "figs"))
    monkeypatch.setenv("LINMETA_RESULTS", str(tmp_path / "results"))
    preset = EXP.config("quick")
    assert runner.variant_name(EXP, preset) is None and runner.output_dir(EXP, preset) == tmp_path / "figs"
    cfg = EXP.config("quick", {"pieces": 3, "log": "a b/c"}, seed=2)
    assert runner.variant_name(EXP, cfg) == "sweep_fixture--quick--pieces=3--log=a_b_c--seed=2"
    assert runner.output_dir(EXP, cfg) == tmp_path / "results" / "sweep_fixture--quick--pieces=3--log=a_b_c--seed=2"
    assert runner.output_dir(EXP, cfg, out=tmp_path / "x") == tmp_path / "x"
    assert runner.override_label(EXP, cfg) == "pieces=3, log=a b/c, seed=2"
    assert runner.variant_name(EXP, EXP.config("full", {"pieces": 8})) is None  # the full preset's own value
    long = EXP.config("quick", {"log": "x" * 300})
    name = runner.variant_name(EXP, long)
    assert len(name) <= 120 and name != runner.variant_name(EXP, EXP.config("quick", {"log": "x" * 301}))


def test_a_figure_is_replotted_only_when_something_it_depends_on_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("LINMETA_FIGURES", str(tmp_path / "figs"))
    calls = []
    exp = _counting(calls)
    paths, written = runner.figure_status(exp, directory=tmp_path)
    assert written and len(calls) == 1
    stamp = [p.stat().st_mtime_ns for p in paths]
    paths, written = runner.figure_status(exp, directory=tmp_path)
    assert not written and len(calls) == 1 and [p.stat().st_mtime_ns for p in paths] == stamp
    paths[1].write_bytes(b"edited by hand")  # a changed file is re-plotted
    assert runner.figure_status(exp, directory=tmp_path)[1] and len(calls) == 2
    paths[0].unlink()  # so is a missing one
    assert runner.figure_status(exp, directory=tmp_path)[1] and len(calls) == 3
    assert runner.figure_status(exp, directory=tmp_path, force=True)[1] and len(calls) == 4
    other = replace(exp, params={**exp.params, "style": Param(str, "a", role="plot")})
    assert runner.figure_status(other, directory=tmp_path)[1] and len(calls) == 5  # a plot parameter
    assert not runner.figure_status(other, directory=tmp_path)[1]
    assert runner.figure_status(other, overrides={"style": "b"}, directory=tmp_path,
                                outdir=tmp_path / "figs")[1]  # its value


def _counting(calls):
    def plot(res, cfg):
        calls.append(1)
        return EXP.plot(res, cfg)

    return replace(EXP, plot=plot)


def test_an_override_figure_says_what_was_overridden(tmp_path, monkeypatch):
    monkeypatch.setenv("LINMETA_RESULTS", str(tmp_path / "results"))
    drawn = []
    save = runner.plotting.save
    monkeypatch.setattr(runner.plotting, "save", lambda fig, stem, formats: drawn.append(fig) or save(fig, stem, formats))
    paths = runner.write_figure(EXP, overrides={"pieces": 3}, seed=5, directory=tmp_path)
    assert paths[0].parent == tmp_path / "results" / "sweep_fixture--quick--pieces=3--seed=5"
    assert runner.override_note(drawn[0]) == "sweep_fixture, quick preset with pieces=3, seed=5"


# --------------------------------------------------------------------------- progress


def test_progress_bars_name_the_experiment_and_count_only_pieces_to_compute(tmp_path, capsys):
    runner.run(EXP, overrides={"pieces": 4}, directory=tmp_path)
    for f in tmp_path.glob("*.*"):
        f.unlink()  # keep the pieces, drop the result
    piece_dir = next((tmp_path / "pieces").iterdir())
    for f in sorted(_manifests(piece_dir.glob("*.json")))[:1]:
        f.unlink()
    seen = []
    orig = runner.Progress

    class Spy(orig):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            seen.append(self)

    runner.Progress = Spy
    try:
        _, _, info = runner.run(EXP, overrides={"pieces": 4}, directory=tmp_path, progress=True)
    finally:
        runner.Progress = orig
    (bar,) = seen
    assert bar.desc == "sweep_fixture: fixture" and bar.initial == 3 and bar.total == 4
    assert info["pieces_computed"] == 1 and info["pieces_loaded"] == 3
    assert "sweep_fixture: fixture [" in capsys.readouterr().err


# --------------------------------------------------------------------------- errors (issue 13)


def test_endless_configs_are_refused_unless_forced(tmp_path):
    with pytest.raises(ConfigError, match=r"about 1\.25e\+04 times the full preset \(pieces 1\.25e\+04x\).*--force-large"):
        runner.run(EXP, overrides={"pieces": 100_000}, directory=tmp_path)
    assert not tmp_path.joinpath("pieces").exists()
    assert runner.check_cost(EXP, EXP.config("quick", {"pieces": 100_000}), force_large=True) == 12_500
    assert runner.check_cost(EXP, EXP.config("quick", {"pieces": 800})) == 100  # at the limit: allowed
    cached, _, _ = runner.run(EXP, overrides={"pieces": 3}, directory=tmp_path)
    assert cached["mean"].shape == (3,)


def test_bad_seeds_are_refused():
    for seed in (-1, 1.5, True, "3"):
        with pytest.raises(ConfigError, match="seed must be a non-negative integer"):
            EXP.config("quick", seed=seed)
    assert EXP.config("quick", seed=np.int64(3))["seed"] == 3


def _diverging_piece(item):
    import linmeta

    raise linmeta.DivergenceError(2, np.array([0.7]), np.array([0.4]), 3.0)


def _diverging_run(cfg, ctx):
    return {"x": np.array([r["x"] for r in ctx.map(_diverging_piece, [1, 2], desc="diverge")])}


def _value_error_run(cfg, ctx):
    raise ValueError(f"steps must be at most 4 for this closed form,\ngot {cfg['pieces']}")


def test_divergence_names_the_experiment_and_survives_pickling(tmp_path):
    import pickle

    import linmeta

    exp = replace(EXP, name="diverging", run=_diverging_run)
    with pytest.raises(runner.ExperimentDiverged, match="diverging diverged: meta-training diverged at outer step 2"):
        runner.run(exp, directory=tmp_path)
    with ThreadPoolExecutor(2) as pool, pytest.raises(linmeta.DivergenceError) as info:
        runner.run(exp, directory=tmp_path / "b", executor=pool)
    err = info.value
    assert isinstance(err, runner.ExperimentDiverged) and err.experiment == "diverging" and err.step == 2
    back = pickle.loads(pickle.dumps(err))  # what a worker process sends back
    assert str(back) == str(err) and back.experiment == "diverging" and back.step == 2
    assert "\n" not in str(err)


def test_a_value_error_under_overrides_names_them(tmp_path):
    exp = replace(EXP, name="strict", run=_value_error_run)
    with pytest.raises(ConfigError, match="strict with pieces=9: steps must be at most 4 for this closed form, got 9"):
        runner.run(exp, overrides={"pieces": 9}, directory=tmp_path)
    with pytest.raises(ValueError) as info:  # in a preset it is a bug: the original error, traceback and all
        runner.run(exp, directory=tmp_path)
    assert not isinstance(info.value, ConfigError)


def test_a_corrupt_entry_in_a_read_only_cache_is_recomputed_in_memory(tmp_path, monkeypatch):
    """Issue 13, defect 16."""
    first, _, _ = runner.run(EXP, overrides={"pieces": 3}, directory=tmp_path)
    (npz,) = tmp_path.glob("sweep_fixture-*.npz")
    npz.write_bytes(b"PK\x03\x04 not a zip")
    for f in (tmp_path / "pieces").rglob("*.npz"):
        f.write_bytes(b"damaged")
    read_only_under(monkeypatch, tmp_path)
    runner._WARNED.clear()
    with pytest.warns(cache.CacheWarning) as record:
        again, _, info = runner.run(EXP, overrides={"pieces": 3}, directory=tmp_path)
    messages = [str(w.message) for w in record]
    assert any("damaged and cannot be removed" in m for m in messages)
    assert any("read-only file system; results computed now are kept in memory only" in m for m in messages)
    assert not info["cached"] and info["pieces_computed"] == 3 and not info["saved"]
    assert np.array_equal(first["mean"], again["mean"])
    assert npz.read_bytes() == b"PK\x03\x04 not a zip"  # untouched


def test_a_cache_folder_that_cannot_be_used_is_refused_before_any_work(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("")
    for directory, needle in ((afile, "is a regular file"), (afile / "sub", "cannot be created")):
        with pytest.raises(cache.StorageError, match=needle) as info:
            runner.run(EXP, overrides={"pieces": 2, "log": str(tmp_path / "log")}, directory=directory)
        assert str(directory) in str(info.value)
    assert not (tmp_path / "log").exists()  # nothing ran


def _plot_needs_two(res, cfg):
    if len(res["mean"]) < 2:
        raise ValueError("the plot needs at least two pieces")
    return EXP.plot(res, cfg)


def test_a_plot_error_under_overrides_names_the_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("LINMETA_RESULTS", str(tmp_path / "results"))
    exp = replace(EXP, name="fragile", plot=_plot_needs_two)
    with pytest.raises(ConfigError, match="fragile with pieces=1: plotting failed: the plot needs at least two"):
        runner.write_figure(exp, overrides={"pieces": 1}, directory=tmp_path)
