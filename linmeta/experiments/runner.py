"""Running experiments: caching, resumable sweeps, executors, figures and checks.

The Python API mirrors the CLI:

>>> from linmeta.experiments import runner
>>> result = runner.run("arnold_depth", mode="quick")          # doctest: +SKIP
>>> runner.write_figure("arnold_depth", mode="quick")           # doctest: +SKIP
>>> runner.run_checks("arnold_depth", mode="quick")             # doctest: +SKIP

Any ``concurrent.futures.Executor`` can run the pieces of a sweep, e.g. a
``ProcessPoolExecutor`` or a ``dask.distributed`` client's ``get_executor()``.
"""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import Executor
from pathlib import Path

import inspect
from functools import partial

from .. import __version__, cache
from .._backend import ArrayBackend, resolve
from .._imports import source_fingerprint
from ..progress import Progress
from . import plotting, registry
from .base import ConfigError, Experiment


def cache_dir() -> Path:
    """Where results are cached: ``$LINMETA_CACHE`` or ``./.linmeta-cache``."""
    return Path(os.environ.get("LINMETA_CACHE", ".linmeta-cache"))


def figures_dir() -> Path:
    """Where figures are written: ``$LINMETA_FIGURES`` or ``./figures``."""
    return Path(os.environ.get("LINMETA_FIGURES", "figures"))


def code_fingerprint(exp: Experiment) -> str:
    """Fingerprint of the source ``exp`` depends on: its module and every linmeta module it imports, transitively."""
    module = exp.run.__module__
    return source_fingerprint(module, getattr(sys.modules.get(module), "__file__", None))


def result_key(exp: Experiment, config: dict, backend: ArrayBackend | None = None) -> str:
    """The cache key of a result: the experiment, its run parameters, the backend, the version and the code.

    Check and plot parameters are not part of it (:meth:`Experiment.run_config`), so changing them
    reuses the result; editing any source the experiment imports changes it, so stale results are
    never served after a code change; the backend, device kind and dtype are part of it, so a float32
    result never serves a float64 request.
    """
    backend = backend or ArrayBackend()
    parts = (exp.name, exp.run_config(config), backend.key(), __version__, code_fingerprint(exp))
    return f"{exp.name}-{cache.config_key(*parts)}"


def backend_for(exp: Experiment, backend=None, device=None, dtype=None) -> ArrayBackend:
    """The checked run option for ``exp``: a :class:`~linmeta.ArrayBackend` it supports (ConfigError otherwise)."""
    try:
        spec = resolve(backend, device, dtype)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if spec.name not in exp.backends:
        raise ConfigError(f"experiment {exp.name} runs on {', '.join(exp.backends)} only, not on {spec.name}")
    return spec


class RunContext:
    """Handed to ``Experiment.run``: caches independent pieces and farms them out.

    Parameters
    ----------
    key : the result's cache key; pieces are stored under ``<cache>/pieces/<key>/``.
    executor : optional ``concurrent.futures.Executor`` for :meth:`map`.
    progress : show progress bars (default: only on a terminal).
    backend : the :class:`~linmeta.ArrayBackend` the run asked for; :meth:`map` hands it to every piece
        function that takes a ``backend`` keyword, also through an executor (each chunk carries it).
    """

    def __init__(self, key: str, directory: Path, executor: Executor | None = None, progress: bool | None = None,
                 force: bool = False, backend: ArrayBackend | None = None):
        self.key, self.directory, self.executor, self.progress = key, Path(directory), executor, progress
        self.backend = backend or ArrayBackend()
        self.force = force  # recompute every piece (after a code change, say) instead of reusing cached ones
        self.computed = 0  # pieces computed (not loaded) by this context

    def map(self, fn, items, desc: str = "pieces") -> list:
        """``[fn(item) for item in items]``, each result cached on its own and reused on a re-run.

        ``fn`` must be a picklable top-level function returning a dict of arrays/scalars.
        Items must be JSON-serialisable.  A piece's cache key is the function's qualified name and
        the item, so two maps in one run never share pieces unless they compute the same thing.
        If ``fn`` takes a ``backend`` keyword it is called as ``fn(item, backend=ctx.backend)``.
        """
        items = list(items)
        if "backend" in inspect.signature(fn).parameters:
            fn = partial(fn, backend=self.backend)  # picklable: travels with each chunk to any executor
        piece_dir = self.directory / "pieces" / self.key
        base = fn.func if isinstance(fn, partial) else fn
        fname = f"{getattr(base, '__module__', '')}.{getattr(base, '__qualname__', repr(base))}"
        keys = [f"{i:05d}-{cache.config_key(fname, item)}" for i, item in enumerate(items)]
        results = [None if self.force else cache.load(piece_dir, k) for k in keys]
        todo = [i for i, r in enumerate(results) if r is None]
        with Progress(len(items), desc, enabled=self.progress) as bar:
            bar.update(len(items) - len(todo))
            if self.executor is None:
                for i in todo:
                    results[i] = fn(items[i])
                    cache.save(piece_dir, keys[i], results[i], {"item": items[i]})
                    self.computed += 1
                    bar.update()
            else:
                futures = {i: self.executor.submit(fn, items[i]) for i in todo}
                for i in todo:  # in order: each piece is saved as soon as it is known
                    results[i] = futures[i].result()
                    cache.save(piece_dir, keys[i], results[i], {"item": items[i]})
                    self.computed += 1
                    bar.update()
        return results


def _resolve(exp) -> Experiment:
    return registry.get(exp) if isinstance(exp, str) else exp


def run(exp, mode: str = "quick", overrides: dict | None = None, seed: int | None = None, *,
        executor: Executor | None = None, progress: bool | None = None, force: bool = False,
        directory: Path | None = None, backend=None, device=None, dtype=None):
    """Run (or load from cache) one experiment; returns ``(result, config, info)``.

    ``backend`` / ``device`` / ``dtype`` choose where its arrays live (numpy float64 by default; see
    :func:`linmeta.array_backend`); an experiment lists the backends it supports in ``Experiment.backends``.
    The result records them (``result["run_backend"]``) and the cache keeps results of different backends
    and dtypes apart.

    ``force`` recomputes the result and every piece of it (cached entries are overwritten).

    ``info`` has ``key``, ``cached`` (whether the whole result came from the cache),
    ``seconds`` and ``pieces_computed``.
    """
    exp = _resolve(exp)
    config = exp.config(mode, overrides, seed)
    spec = backend_for(exp, backend, device, dtype)
    directory = Path(directory) if directory is not None else cache_dir()
    key = result_key(exp, config, spec)
    if not force:
        result = cache.load(directory, key)
        if result is not None:
            return result, config, {"key": key, "cached": True, "seconds": 0.0, "pieces_computed": 0,
                                    "backend": spec.describe()}
    ctx = RunContext(key, directory, executor, progress, force=force, backend=spec)
    t0 = time.perf_counter()
    result = dict(exp.run(exp.run_config(config), ctx))
    result["run_backend"] = spec.key()
    seconds = time.perf_counter() - t0
    cache.save(directory, key, result, {"experiment": exp.name, "config": config, "version": __version__,
                                        "code": code_fingerprint(exp), "backend": spec.key(), "mode": mode,
                                        "seconds": seconds})
    return result, config, {"key": key, "cached": False, "seconds": seconds, "pieces_computed": ctx.computed,
                            "backend": spec.describe()}


def is_cached(exp, mode: str = "quick", directory: Path | None = None, backend=None) -> bool:
    exp = _resolve(exp)
    return cache.exists(directory or cache_dir(), result_key(exp, exp.config(mode), backend_for(exp, backend)))


def write_figure(exp, mode: str = "quick", overrides=None, seed=None, *, result=None, config=None,
                 outdir: Path | None = None, **run_kwargs) -> list:
    """Write ``<figures>/<name>.png`` and ``.pdf`` from the (cached) result; returns the paths."""
    exp = _resolve(exp)
    if result is None:
        result, config, _ = run(exp, mode, overrides, seed, **run_kwargs)
    outdir = Path(outdir) if outdir is not None else figures_dir()
    outdir.mkdir(parents=True, exist_ok=True)
    fig = exp.plot(result, config)
    return plotting.save(fig, outdir / exp.name)


def run_checks(exp, mode: str = "quick", overrides=None, seed=None, *, result=None, config=None, **run_kwargs) -> list:
    """The experiment's checks on its (cached) result."""
    exp = _resolve(exp)
    if result is None:
        result, config, _ = run(exp, mode, overrides, seed, **run_kwargs)
    return list(exp.checks(result, config))


def reproduce_one(name: str, mode: str = "quick", progress: bool | None = None, backend=None) -> dict:
    """Run, plot and check one experiment (a picklable unit of work for ``reproduce --jobs``).

    ``backend`` applies to the experiments that support it; the others run on numpy.
    """
    exp = registry.get(name)
    t0 = time.perf_counter()
    spec = resolve(backend)
    if spec.name not in exp.backends:
        spec = ArrayBackend()
    result, config, info = run(exp, mode, progress=progress, backend=spec)
    paths = write_figure(exp, mode, result=result, config=config)
    checks = run_checks(exp, mode, result=result, config=config)
    return {"name": name, "info": info, "figures": [str(p) for p in paths],
            "checks": [c.as_dict() for c in checks], "seconds": time.perf_counter() - t0}
