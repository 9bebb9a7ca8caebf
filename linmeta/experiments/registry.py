"""The experiment registry: the built-in experiments, and a researcher's own.

Experiments come from three places, all with the same caching, checks, CLI and report:

* **built in**: every module of :mod:`linmeta.experiments` that defines ``EXPERIMENT`` (modules whose
  names start with an underscore, and the framework modules, are skipped).  A new built-in experiment
  is one new module; nothing else needs editing.
* **entry points** of installed packages, in the group ``linmeta.experiments``: each entry point names a
  module (``my_exp = mypkg.my_exp``) or an object (``my_exp = mypkg.my_exp:EXPERIMENT``).  A module
  contributes its ``EXPERIMENT`` (or each of ``EXPERIMENTS``); an object is an :class:`Experiment` or a
  list of them.  In a package's ``pyproject.toml``::

      [project.entry-points."linmeta.experiments"]
      my_claims = "my_claims"

* **paths**: ``.py`` files, or folders of them, named by the environment variable
  ``LINMETA_EXPERIMENTS`` (``os.pathsep``-separated) or by :func:`add_path` (the CLI's
  ``--experiments PATH``).  A file ``dir/my_claims.py`` is imported as the module ``my_claims`` with
  ``dir`` put on ``sys.path``, so its piece functions pickle by name and run in worker processes.

An experiment from a path or an entry point is cached under the fingerprint of its own source file
and of the linmeta modules it imports (:func:`linmeta._imports.source_fingerprint`).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import os
import pkgutil
import sys
import warnings
from pathlib import Path

from .base import ConfigError, Experiment

_FRAMEWORK = {"base", "registry", "runner", "plotting", "style", "checks"}
GROUP = "linmeta.experiments"
ENV = "LINMETA_EXPERIMENTS"

_EXTRA_PATHS: list = []  # added by add_path (the CLI's --experiments)
_CACHE: dict = {}
_SOURCES: dict = {}  # experiment name -> where it came from (for `linmeta show` / `list`)


def add_path(path) -> None:
    """Register experiments from a ``.py`` file or a folder of them (like ``LINMETA_EXPERIMENTS``).

    The path is also appended to ``os.environ["LINMETA_EXPERIMENTS"]``, so worker processes started
    afterwards (``--jobs``) find the same experiments.
    """
    path = str(Path(path).expanduser().resolve())
    if not Path(path).exists():
        raise ConfigError(f"experiments path {path} does not exist")
    if path not in _EXTRA_PATHS:
        _EXTRA_PATHS.append(path)
    current = [p for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    if path not in current:
        os.environ[ENV] = os.pathsep.join(current + [path])


def _paths() -> tuple:
    env = [p for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip()]
    out = []
    for p in env + _EXTRA_PATHS:
        p = str(Path(p).expanduser().resolve())
        if p not in out:
            out.append(p)
    return tuple(out)


def _from_module(module) -> list:
    exps = []
    if isinstance(getattr(module, "EXPERIMENT", None), Experiment):
        exps.append(module.EXPERIMENT)
    for e in getattr(module, "EXPERIMENTS", ()) or ():
        if isinstance(e, Experiment):
            exps.append(e)
    return exps


def _from_object(obj) -> list:
    if isinstance(obj, Experiment):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [e for e in obj if isinstance(e, Experiment)]
    if isinstance(obj, dict):
        return [e for e in obj.values() if isinstance(e, Experiment)]
    return _from_module(obj)


def _builtin() -> list:
    from .. import experiments as pkg

    out = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in _FRAMEWORK:
            continue
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        out += [(e, f"built in ({module.__name__})") for e in _from_module(module)]
    return out


def _entry_points() -> list:
    out = []
    for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken third-party package must not break every command
            warnings.warn(f"entry point {ep.name} = {ep.value} (group {GROUP}) could not be loaded: "
                          f"{type(exc).__name__}: {exc}; skipped", UserWarning, stacklevel=2)
            continue
        exps = _from_object(obj)
        if not exps:
            warnings.warn(f"entry point {ep.name} = {ep.value} (group {GROUP}) defines no Experiment; skipped",
                          UserWarning, stacklevel=2)
        dist = getattr(getattr(ep, "dist", None), "name", None)
        out += [(e, f"entry point {ep.name} = {ep.value}" + (f" (package {dist})" if dist else "")) for e in exps]
    return out


def _import_file(path: Path):
    """Import ``dir/name.py`` as the top-level module ``name`` (``dir`` on ``sys.path``)."""
    name = path.stem
    if not name.isidentifier():
        raise ConfigError(f"experiment file {path}: {name!r} is not a valid module name")
    folder = str(path.parent)
    existing = sys.modules.get(name)
    if existing is not None:
        if Path(getattr(existing, "__file__", "") or "").resolve() == path:
            return existing
        raise ConfigError(f"experiment file {path}: a module named {name!r} is already imported from "
                          f"{getattr(existing, '__file__', None) or 'elsewhere'}; rename the file")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(name)
    except ConfigError:
        raise
    except Exception as exc:
        sys.modules.pop(name, None)
        line = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ConfigError(f"experiment file {path} could not be imported: {line}") from exc
    if Path(getattr(module, "__file__", "") or "").resolve() != path:
        raise ConfigError(f"experiment file {path}: importing {name!r} found {module.__file__} instead; rename the file")
    return module


def _from_paths(paths) -> list:
    out = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files = sorted(f for f in path.glob("*.py") if not f.name.startswith("_"))
        elif path.is_file() and path.suffix == ".py":
            files = [path]
        elif path.exists():
            raise ConfigError(f"experiments path {path} is neither a .py file nor a folder")
        else:
            raise ConfigError(f"experiments path {path} does not exist (from --experiments or ${ENV})")
        for f in files:
            module = _import_file(f.resolve())
            exps = _from_module(module)
            if not exps and path.is_file():
                raise ConfigError(f"experiment file {f} defines no EXPERIMENT = Experiment(...)")
            out += [(e, f"file {f}") for e in exps]
    return out


def all_experiments() -> dict:
    """``{name: Experiment}``: the built-in ones (sorted by module name), then entry points, then paths."""
    key = _paths()
    if key in _CACHE:
        return _CACHE[key]
    found, sources = {}, {}
    for exp, source in _builtin() + _entry_points() + _from_paths(key):
        if exp.name in found:
            if found[exp.name] is exp:
                continue
            raise ConfigError(f"two experiments are named {exp.name!r}: {sources[exp.name]} and {source}; "
                              "rename one")
        found[exp.name] = exp
        sources[exp.name] = source
    _CACHE[key] = found
    _SOURCES.update(sources)
    return found


def cache_clear() -> None:
    """Forget the discovered experiments (the next call looks again)."""
    _CACHE.clear()


all_experiments.cache_clear = cache_clear  # the lru_cache spelling keeps working


def source(name: str) -> str:
    """Where the experiment ``name`` came from: built in, an entry point or a file."""
    all_experiments()
    return _SOURCES.get(name, "registered by the caller")


def names() -> list:
    return list(all_experiments())


def get(name: str) -> Experiment:
    """The experiment called ``name``; a ConfigError (a ValueError) lists the allowed names otherwise."""
    exps = all_experiments()
    if name not in exps:
        raise ConfigError(f"unknown experiment {name!r}; available: {', '.join(exps) or '(none)'}")
    return exps[name]
