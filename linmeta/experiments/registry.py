"""The experiment registry: every module of :mod:`linmeta.experiments` that defines ``EXPERIMENT``.

A new experiment is one new module; nothing else needs editing.  Modules whose
names start with an underscore, and the framework modules, are skipped.
"""
from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from .base import ConfigError, Experiment

_FRAMEWORK = {"base", "registry", "runner", "plotting"}


@lru_cache(maxsize=None)
def all_experiments() -> dict:
    """``{name: Experiment}`` in a stable order (sorted by module name)."""
    from .. import experiments as pkg

    found = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in _FRAMEWORK:
            continue
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        exp = getattr(module, "EXPERIMENT", None)
        if isinstance(exp, Experiment):
            if exp.name in found:
                raise RuntimeError(f"two experiments are named {exp.name!r}")
            found[exp.name] = exp
    return found


def names() -> list:
    return list(all_experiments())


def get(name: str) -> Experiment:
    """The experiment called ``name``; a ValueError lists the allowed names otherwise."""
    exps = all_experiments()
    if name not in exps:
        raise ConfigError(f"unknown experiment {name!r}; available: {', '.join(exps) or '(none)'}")
    return exps[name]
