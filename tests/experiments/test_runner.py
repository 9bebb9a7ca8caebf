"""Running experiments: caching, resuming a killed sweep, executors (linmeta.experiments.runner)."""
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from linmeta.experiments import runner

from .. import sweep_fixture

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
