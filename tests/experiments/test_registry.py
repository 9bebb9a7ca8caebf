"""The experiment registry (linmeta.experiments.registry): built-in, entry-point and path experiments."""
import sys
import textwrap

import numpy as np
import pytest

from linmeta import cli
from linmeta._imports import source_fingerprint
from linmeta.experiments import registry, runner
from linmeta.experiments.base import ConfigError, Experiment, Param

from ..helpers import isolate_registry

# A researcher's experiment, outside the package: one module with EXPERIMENT (the name is filled in).
EXTERNAL = '''
import numpy as np

from linmeta.experiments.base import Experiment, Param, close_se


def _piece(item):
    x = np.random.default_rng([item["seed"], item["i"]]).standard_normal(item["n"])
    return {{"mean": x.mean()}}


def run(cfg, ctx):
    res = ctx.map(_piece, [{{"i": i, "n": cfg["n"], "seed": cfg["seed"]}} for i in range(cfg["pieces"])], desc="means")
    return {{"means": np.array([r["mean"] for r in res])}}


def plot(res, cfg):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 2))
    fig.subplots().plot(res["means"], "o")
    return fig


def checks(res, cfg):
    m = res["means"]
    return [close_se("the mean of standard normals is 0", 0.0, m.mean(), m.std(ddof=1) / np.sqrt(m.size))]


EXPERIMENT = Experiment(name="{name}", paper="a researcher", figure="-", claim="means of normals vanish",
                        params={{"pieces": Param(int, 5, 10, low=2, high=100, help="independent pieces"),
                                 "n": Param(int, 200, 400, low=2, high=10_000, help="samples per piece")}},
                        run=run, plot=plot, checks=checks)
'''


@pytest.fixture
def clean(monkeypatch, tmp_path):
    """The real registry with isolated storage; every module, path and cache entry a test adds is undone."""
    before = set(sys.modules)
    isolate_registry(monkeypatch, tmp_path)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("lmext_"):
            del sys.modules[name]
    registry.cache_clear()


def _write_module(folder, module, name):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{module}.py"
    path.write_text(EXTERNAL.format(name=name))
    return path


def _write_dist(site, module, name, value=None):
    """An installed distribution as importlib.metadata sees it: a .dist-info folder on sys.path."""
    _write_module(site, module, name)
    dist = site / f"{module}-0.1.dist-info"
    dist.mkdir()
    dist.joinpath("METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    dist.joinpath("entry_points.txt").write_text(f"[linmeta.experiments]\n{name} = {value or module}\n")


def test_every_experiment_module_is_found_with_metadata():
    exps = registry.all_experiments()
    assert len(exps) >= 18
    for name, exp in exps.items():
        assert isinstance(exp, Experiment) and exp.name == name
        assert exp.paper and exp.figure and exp.claim
        assert all(isinstance(p, Param) for p in exp.params.values())
        assert registry.source(name).startswith("built in")
        # both presets validate
        exp.config("quick")
        exp.config("full")


def test_every_numeric_parameter_has_an_upper_bound():
    """Issue 13, defect 21: no size without a bound (and presets well inside them)."""
    for name, exp in registry.all_experiments().items():
        for key, p in exp.params.items():
            if p.type_name in ("int", "float", "ints", "floats") and p.choices is None:
                assert p.low is not None and p.high is not None, f"{name}.{key} has no range"
                for v in (p.quick, p.full_value()):
                    for x in (v if isinstance(v, tuple) else (v,)):
                        assert p.low <= x <= p.high, f"{name}.{key}={x} outside [{p.low}, {p.high}]"
        ratio, _ = exp.cost_ratio(exp.config("full"))
        assert ratio == 1.0


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match="available: .*core_expected_loss"):
        registry.get("no_such_experiment")


def test_an_entry_point_of_an_installed_package_is_an_experiment_like_the_others(clean, capsys):
    site = clean / "site"
    _write_dist(site, "lmext_ep", "ep_demo")
    sys.path.insert(0, str(site))
    registry.cache_clear()
    exp = registry.get("ep_demo")
    assert registry.source("ep_demo").startswith("entry point ep_demo = lmext_ep")
    assert "ep_demo" in registry.names() and list(registry.names())[-1] == "ep_demo"  # after the built-in ones
    # the same runner: cached pieces, checks, figures
    result, config, info = runner.run("ep_demo")
    assert info["pieces_computed"] == 5 and not info["cached"]
    assert runner.run("ep_demo")[2]["cached"]
    assert all(c.passed for c in runner.run_checks("ep_demo"))
    paths = runner.write_figure("ep_demo")
    assert paths[0] == clean / "figs" / "ep_demo.png" and paths[0].exists()
    # the same CLI
    assert cli.main(["show", "ep_demo"]) == 0
    out = capsys.readouterr().out
    assert "independent pieces" in out and "entry point ep_demo = lmext_ep" in out
    assert cli.main(["check", "ep_demo", "--set", "pieces=3"]) == 0
    assert "1/1 checks passed" in capsys.readouterr().out
    # its cache key follows its own source
    module_file = sys.modules["lmext_ep"].__file__
    assert runner.code_fingerprint(exp) == source_fingerprint("lmext_ep", module_file)


def test_an_entry_point_can_name_an_object(clean):
    site = clean / "site"
    _write_dist(site, "lmext_obj", "obj_demo", value="lmext_obj:EXPERIMENT")
    sys.path.insert(0, str(site))
    registry.cache_clear()
    assert registry.get("obj_demo").paper == "a researcher"


def test_a_broken_entry_point_is_skipped_with_a_warning(clean):
    site = clean / "site"
    _write_dist(site, "lmext_broken", "broken_demo")
    (site / "lmext_broken.py").write_text("raise ImportError('missing dependency foo')\n")
    sys.path.insert(0, str(site))
    registry.cache_clear()
    with pytest.warns(UserWarning, match="broken_demo = lmext_broken .*missing dependency foo; skipped"):
        exps = registry.all_experiments()
    assert "broken_demo" not in exps and "arnold_depth" in exps


def test_experiments_from_a_path_the_environment_and_a_folder(clean, monkeypatch):
    one = _write_module(clean / "mine", "lmext_path_one", "path_one")
    registry.add_path(one)
    assert registry.get("path_one").name == "path_one"
    assert registry.source("path_one") == f"file {one}"
    import os

    assert str(one) in os.environ["LINMETA_EXPERIMENTS"]  # worker processes find it too
    folder = clean / "folder"
    _write_module(folder, "lmext_in_folder_a", "folder_a")
    _write_module(folder, "lmext_in_folder_b", "folder_b")
    (folder / "_private.py").write_text("raise RuntimeError('never imported')\n")
    monkeypatch.setenv("LINMETA_EXPERIMENTS", os.pathsep.join([str(folder), os.environ["LINMETA_EXPERIMENTS"]]))
    names = registry.names()
    assert {"folder_a", "folder_b", "path_one"} <= set(names)
    res, cfg, info = runner.run("folder_a", overrides={"pieces": 2})
    assert info["pieces_computed"] == 2 and res["means"].shape == (2,)


def test_a_file_experiment_is_cached_under_its_own_source(clean):
    path = _write_module(clean / "mine", "lmext_fp", "fp_demo")
    registry.add_path(path)
    exp = registry.get("fp_demo")
    key = runner.result_key(exp, exp.config())
    path.write_text(path.read_text() + "\n# an edit\n")
    # in the same process: the fingerprint cache notices the edit by itself
    assert runner.result_key(exp, exp.config()) != key


@pytest.mark.parametrize("content, needle", [
    ("def broken(:\n", "could not be imported: SyntaxError"),
    ("import numpy\n", "defines no EXPERIMENT"),
])
def test_bad_experiment_files_are_one_line_errors(clean, capsys, content, needle):
    path = clean / "lmext_bad.py"
    path.write_text(content)
    assert cli.main(["--experiments", str(path), "list"]) == 2
    err = capsys.readouterr().err
    assert needle in err and str(path) in err and len(err.strip().splitlines()) == 1


def test_two_experiments_with_one_name_are_refused(clean, capsys):
    path = _write_module(clean / "mine", "lmext_dup", "arnold_depth")
    assert cli.main(["--experiments", str(path), "list"]) == 2
    err = capsys.readouterr().err
    assert "two experiments are named 'arnold_depth'" in err and str(path) in err


def test_a_file_shadowing_an_imported_module_is_refused(clean):
    path = clean / "numpy.py"
    path.write_text("EXPERIMENT = None\n")
    with pytest.raises(ConfigError, match="a module named 'numpy' is already imported"):
        registry.add_path(path)
        registry.all_experiments()
    assert np.__name__ == "numpy"


def test_external_pieces_run_in_worker_processes(clean):
    """Path experiments pickle by module name: their pieces run in spawned workers (the CLI's --jobs)."""
    path = _write_module(clean / "mine", "lmext_jobs", "jobs_demo")
    registry.add_path(path)
    serial, _, _ = runner.run("jobs_demo", overrides={"pieces": 3}, directory=clean / "a")
    with cli.process_pool(2) as pool:
        parallel, _, info = runner.run("jobs_demo", overrides={"pieces": 3}, directory=clean / "b", executor=pool)
    assert info["pieces_computed"] == 3 and np.array_equal(serial["means"], parallel["means"])


def test_module_text_is_a_valid_experiment():
    """The template above is what the tutorial shows: keep it importable."""
    ns = {}
    exec(textwrap.dedent(EXTERNAL.format(name="x")), ns)
    assert isinstance(ns["EXPERIMENT"], Experiment)
