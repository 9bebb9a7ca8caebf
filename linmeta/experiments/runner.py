"""Running experiments: caching, resumable sweeps, executors, figures and checks.

The Python API mirrors the CLI:

>>> from linmeta.experiments import runner
>>> result = runner.run("arnold_depth", mode="quick")          # doctest: +SKIP
>>> runner.write_figure("arnold_depth", mode="quick")           # doctest: +SKIP
>>> runner.run_checks("arnold_depth", mode="quick")             # doctest: +SKIP

Any ``concurrent.futures.Executor`` can run the pieces of a sweep, e.g. a
``ProcessPoolExecutor`` or a ``dask.distributed`` client's ``get_executor()``.

Where output goes: a preset run (no overrides, the default seed) writes its figures to the gallery
(:func:`figures_dir`); a run whose config differs from its preset (``overrides`` or another seed)
writes to its own folder under :func:`results_dir`, named after the experiment and what was changed
(:func:`output_dir`), and its figure carries a line saying what was overridden.  A figure is only
re-plotted when its result, config or plot code changed (:func:`write_figure`).
"""
from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import sys
import time
import warnings
from concurrent.futures import Executor
from functools import partial
from pathlib import Path

import numpy as np

from .. import __version__, cache
from .. import progress as _progress
from .._backend import ArrayBackend, resolve
from .._errors import DivergenceError
from .._imports import source_fingerprint
from ..progress import Progress
from . import plotting, registry
from .base import ConfigError, Experiment

MAX_COST_RATIO = 100.0
"""A run estimated to cost more than this many times the full preset is refused unless ``force_large``."""


class ExperimentDiverged(DivergenceError):
    """An experiment's computation diverged (a :class:`~linmeta.DivergenceError`), with the experiment named.

    Unlike its base class it survives pickling, so it travels back from worker processes intact.
    """

    def __init__(self, message: str, experiment: str | None = None):
        RuntimeError.__init__(self, message)
        self.experiment = experiment
        self.step = self.last_finite_loss = self.inner_step_bound = self.alpha = None

    def __reduce__(self):
        return type(self), (str(self), self.experiment), dict(self.__dict__)


def _diverged(exc: DivergenceError, experiment: str | None = None) -> ExperimentDiverged:
    if isinstance(exc, ExperimentDiverged) and (experiment is None or exc.experiment == experiment):
        return exc
    text = " ".join(str(exc).split())
    new = ExperimentDiverged(text if experiment is None else f"{experiment} diverged: {text}", experiment)
    for attr in ("step", "last_finite_loss", "inner_step_bound", "alpha"):
        setattr(new, attr, getattr(exc, attr, None))
    return new


def _call_guarded(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except DivergenceError as exc:
        raise _diverged(exc) from None


def _guarded(fn) -> partial:
    """``fn`` whose DivergenceError comes back from a worker process as a picklable exception.

    A ``partial`` keeps its keywords (the backend) visible: ``_guarded(fn).keywords == fn.keywords``.
    """
    if isinstance(fn, partial):
        return partial(_call_guarded, fn.func, *fn.args, **fn.keywords)
    return partial(_call_guarded, fn)


def cache_dir() -> Path:
    """Where results are cached: ``$LINMETA_CACHE`` or ``./.linmeta-cache``."""
    return Path(os.environ.get("LINMETA_CACHE", ".linmeta-cache"))


def figures_dir() -> Path:
    """The gallery, where preset figures are written: ``$LINMETA_FIGURES`` or ``./figures``."""
    return Path(os.environ.get("LINMETA_FIGURES", "figures"))


def results_dir() -> Path:
    """Where everything that is not the gallery goes: ``$LINMETA_RESULTS`` or ``./results``.

    Runs with overrides write to ``<results>/<experiment>--<mode>--<key>=<value>.../``, and
    ``linmeta reproduce`` (without ``--gallery``) to ``<results>/reproduce-<mode>/``.
    """
    return Path(os.environ.get("LINMETA_RESULTS", "results"))


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


# --------------------------------------------------------------------------- overrides and output folders


def _value_text(v) -> str:
    if isinstance(v, tuple):
        return ",".join(_value_text(x) for x in v) or "()"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def override_label(exp: Experiment, config: dict, mode: str = "quick") -> str:
    """What ``config`` changes from the ``mode`` preset, as ``key=value, ...`` (empty for the preset)."""
    return ", ".join(f"{k}={_value_text(v)}" for k, v in exp.changes(config, mode).items())


def variant_name(exp: Experiment, config: dict, mode: str = "quick", backend: ArrayBackend | None = None):
    """The folder name of a run that differs from its preset (``None`` for the preset itself).

    ``<experiment>--<mode>--<key>=<value>...`` in key order (the seed included), with a non-default
    backend appended; characters other than letters, digits and ``._=,+-`` become ``_``, and a name over
    120 characters is cut and ends in a hash of the whole, so it stays unique.
    """
    changes = exp.changes(config, mode)
    if not changes:
        return None
    parts = [exp.name, mode] + [f"{k}={_value_text(v)}" for k, v in changes.items()]
    if backend is not None and backend != ArrayBackend():
        parts.append("backend=" + "-".join(str(v) for v in backend.key().values()))
    name = re.sub(r"[^A-Za-z0-9._=,+-]", "_", "--".join(parts))
    if len(name) > 120:
        name = name[:100] + "--" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return name


def output_dir(exp: Experiment, config: dict, mode: str = "quick", out=None, backend=None) -> Path:
    """Where a run's figures go: ``out`` if given, the gallery for a preset run, else its own results folder."""
    if out is not None:
        return Path(out)
    name = variant_name(exp, config, mode, backend)
    return figures_dir() if name is None else results_dir() / name


def check_cost(exp: Experiment, config: dict, force_large: bool = False) -> float:
    """Refuse (ConfigError) a config estimated to cost over :data:`MAX_COST_RATIO` x the full preset."""
    ratio, parts = exp.cost_ratio(config)
    if ratio > MAX_COST_RATIO and not force_large:
        detail = ", ".join(f"{k} {r:.3g}x" for k, r in sorted(parts, key=lambda kr: -kr[1])[:4])
        raise ConfigError(f"{exp.name}: this config would cost about {ratio:.3g} times the full preset "
                          f"({detail}); that looks endless. Use smaller values, or pass --force-large "
                          "(force_large=True) to run it anyway")
    return ratio


# --------------------------------------------------------------------------- the run context


_WARNED: set = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, cache.CacheWarning, stacklevel=3)


class RunContext:
    """Handed to ``Experiment.run``: caches independent pieces and farms them out.

    Parameters
    ----------
    key : the result's cache key; pieces are stored under ``<cache>/pieces/<key>/``.
    executor : optional ``concurrent.futures.Executor`` for :meth:`map`.
    progress : show progress bars (default: only on a terminal).
    backend : the :class:`~linmeta.ArrayBackend` the run asked for; :meth:`map` hands it to every piece
        function that takes a ``backend`` keyword, also through an executor (each chunk carries it).
    name : the experiment's name: every progress bar of :meth:`map` is labelled with it.
    persist : save pieces to the cache (False for a read-only cache: pieces are kept in memory).

    Attributes ``computed`` and ``loaded`` count the pieces computed and those loaded from the cache.
    """

    def __init__(self, key: str, directory: Path, executor: Executor | None = None, progress: bool | None = None,
                 force: bool = False, backend: ArrayBackend | None = None, name: str | None = None,
                 persist: bool = True):
        self.key, self.directory, self.executor, self.progress = key, Path(directory), executor, progress
        self.backend = backend or ArrayBackend()
        self.force = force  # recompute every piece (after a code change, say) instead of reusing cached ones
        self.name = name or key.rsplit("-", 1)[0]
        self.persist = persist
        self.computed = 0  # pieces computed (not loaded) by this context
        self.loaded = 0  # pieces loaded from the cache

    def _save(self, piece_dir, key, result, meta):
        if not self.persist:
            return
        try:
            cache.save(piece_dir, key, result, meta)
        except cache.ReadOnlyError as exc:
            self.persist = False
            _warn_once(f"cache {self.directory} is read-only ({exc}); results computed now are kept in memory only")

    def map(self, fn, items, desc: str = "pieces") -> list:
        """``[fn(item) for item in items]``, each result cached on its own and reused on a re-run.

        ``fn`` must be a picklable top-level function returning a dict of arrays/scalars.
        Items must be JSON-serialisable.  A piece's cache key is the function's qualified name and
        the item, so two maps in one run never share pieces unless they compute the same thing.
        If ``fn`` takes a ``backend`` keyword it is called as ``fn(item, backend=ctx.backend)``.
        The progress bar is labelled with the experiment's name, and its time left counts only the
        pieces still to compute.
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
        self.loaded += len(items) - len(todo)
        with _progress.label(self.name), Progress(len(items), desc, enabled=self.progress,
                                                  initial=len(items) - len(todo)) as bar:
            if self.executor is None:
                for i in todo:
                    results[i] = fn(items[i])
                    self._save(piece_dir, keys[i], results[i], {"item": items[i]})
                    self.computed += 1
                    bar.update()
            else:
                guarded = _guarded(fn)
                futures = {i: self.executor.submit(guarded, items[i]) for i in todo}
                try:
                    for i in todo:  # in order: each piece is saved as soon as it is known
                        results[i] = futures[i].result()
                        self._save(piece_dir, keys[i], results[i], {"item": items[i]})
                        self.computed += 1
                        bar.update()
                except BaseException:
                    for f in futures.values():
                        f.cancel()
                    raise
        return results


def _resolve(exp) -> Experiment:
    return registry.get(exp) if isinstance(exp, str) else exp


def _first_line(exc) -> str:
    """The exception's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _reraise_under_overrides(exc, exp, config, mode, stage: str) -> None:
    """A ValueError/TypeError of an experiment's own code under a config that differs from its preset is the
    user's to fix: re-raise it as a ConfigError naming the experiment and the overrides.  Under a preset it
    is a bug, and the caller re-raises the original (with its traceback)."""
    if not isinstance(exc, (ValueError, TypeError)) or isinstance(exc, ConfigError):
        return
    changed = override_label(exp, config, mode)
    if changed:
        raise ConfigError(f"{exp.name} with {changed}: {stage}{_first_line(exc)}") from exc


def run(exp, mode: str = "quick", overrides: dict | None = None, seed: int | None = None, *,
        executor: Executor | None = None, progress: bool | None = None, force: bool = False,
        directory: Path | None = None, backend=None, device=None, dtype=None, force_large: bool = False):
    """Run (or load from cache) one experiment; returns ``(result, config, info)``.

    ``backend`` / ``device`` / ``dtype`` choose where its arrays live (numpy float64 by default; see
    :func:`linmeta.array_backend`); an experiment lists the backends it supports in ``Experiment.backends``.
    The result records them (``result["run_backend"]``) and the cache keeps results of different backends
    and dtypes apart.

    ``force`` recomputes the result and every piece of it (cached entries are overwritten).
    A config estimated to cost over :data:`MAX_COST_RATIO` times the full preset is refused
    (ConfigError) unless ``force_large``.

    A read-only cache serves what it holds; what has to be computed is kept in memory (one
    :class:`~linmeta.cache.CacheWarning`).  A cache folder that cannot be used at all (a regular file,
    below a file) raises :class:`~linmeta.cache.StorageError` before anything is computed.  A
    divergence raises :class:`ExperimentDiverged` (a :class:`~linmeta.DivergenceError`) naming the
    experiment; a ValueError from a config that differs from its preset becomes a ConfigError naming
    the experiment and the overrides.

    ``info`` has ``key``, ``cached`` (whether the whole result came from the cache),
    ``seconds``, ``pieces_computed``, ``pieces_loaded``, ``backend`` and ``saved`` (whether the result
    is in the cache).
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
                                    "pieces_loaded": 0, "backend": spec.describe(), "saved": True}
    check_cost(exp, config, force_large)
    persist = True
    try:
        cache.check_writable(directory, "cache folder")
    except cache.ReadOnlyError as exc:
        persist = False
        _warn_once(f"{exc}; results computed now are kept in memory only")
    ctx = RunContext(key, directory, executor, progress, force=force, backend=spec, name=exp.name, persist=persist)
    t0 = time.perf_counter()
    try:
        with _progress.label(exp.name):
            result = dict(exp.run(exp.run_config(config), ctx))
    except DivergenceError as exc:
        raise _diverged(exc, exp.name) from None
    except Exception as exc:
        _reraise_under_overrides(exc, exp, config, mode, "")
        raise
    result["run_backend"] = spec.key()
    seconds = time.perf_counter() - t0
    if ctx.persist:
        try:
            cache.save(directory, key, result, {"experiment": exp.name, "config": config, "version": __version__,
                                                "code": code_fingerprint(exp), "backend": spec.key(), "mode": mode,
                                                "seconds": seconds})
        except cache.ReadOnlyError as exc:
            ctx.persist = False
            _warn_once(f"cache {directory} is read-only ({exc}); results computed now are kept in memory only")
    return result, config, {"key": key, "cached": False, "seconds": seconds, "pieces_computed": ctx.computed,
                            "pieces_loaded": ctx.loaded, "backend": spec.describe(), "saved": ctx.persist}


def is_cached(exp, mode: str = "quick", directory: Path | None = None, backend=None, overrides=None,
              seed=None) -> bool:
    exp = _resolve(exp)
    config = exp.config(mode, overrides, seed)
    return cache.exists(directory or cache_dir(), result_key(exp, config, backend_for(exp, backend)))


# --------------------------------------------------------------------------- figures


OVERRIDE_GID = "linmeta-override"


def annotate(fig, text: str):
    """Put ``text`` (what a run overrode) on a line of its own at the top of ``fig``, above its title.

    The note becomes the first line of the figure title, so the figure's layout (constrained layout in
    the house style) makes room for it and it overlaps nothing; the figure grows by that line's height
    (its width, the house width, stays).  :func:`override_note` reads it back.
    """
    title = fig.get_suptitle()
    old = getattr(fig, "_suptitle", None)
    size = old.get_fontsize() if old is not None else 8.0
    fig.set_figheight(fig.get_figheight() + 1.3 * size / 72)
    fig.suptitle(f"{text}\n{title}" if title else text, fontsize=size).set_gid(OVERRIDE_GID)
    return fig


def override_note(fig) -> str | None:
    """The override note :func:`annotate` put on ``fig``: the first line of its title (None for a preset figure)."""
    title = getattr(fig, "_suptitle", None)
    return title.get_text().split("\n", 1)[0] if title is not None and title.get_gid() == OVERRIDE_GID else None


def _digest(result: dict) -> str:
    """sha256 of a result's arrays (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    flat = cache._flatten(result)
    for name in sorted(flat):
        a = np.ascontiguousarray(flat[name])
        h.update(name.encode() + b"\0" + str(a.dtype).encode() + str(a.shape).encode() + b"\0")
        h.update(a.tobytes() if a.dtype != object else repr(a.tolist()).encode())
    return h.hexdigest()[:20]


def figure_fingerprint(exp: Experiment, result: dict, config: dict, note: str = "",
                       formats=("png", "pdf")) -> str:
    """What a figure depends on: the result's bytes, the full config, the plot code, the note and matplotlib."""
    import matplotlib

    module = exp.plot.__module__
    plot_code = source_fingerprint(module, getattr(sys.modules.get(module), "__file__", None))
    # an override figure is also drawn by annotate: its code is part of what the figure depends on
    note_code = hashlib.sha256(inspect.getsource(annotate).encode()).hexdigest()[:16] if note else ""
    return cache.config_key("figure", exp.name, _digest(result), config, note, note_code, list(formats),
                            plot_code, matplotlib.__version__, __version__)


def _manifest_path(stem: Path, directory: Path) -> Path:
    tag = hashlib.sha256(str(stem.resolve()).encode()).hexdigest()[:24]
    return directory / "figures" / f"{tag}.json"


def _file_sha(path: Path):
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _up_to_date(stem: Path, fingerprint: str, formats, directory: Path) -> bool:
    try:
        entry = json.loads(_manifest_path(stem, directory).read_text())
    except (OSError, ValueError):
        return False
    if entry.get("fingerprint") != fingerprint or entry.get("stem") != str(stem.resolve()):
        return False
    files = entry.get("files", {})
    return all(files.get(ext) is not None and files.get(ext) == _file_sha(stem.with_name(f"{stem.name}.{ext}"))
               for ext in formats)


def _record(stem: Path, fingerprint: str, paths, directory: Path) -> None:
    entry = {"stem": str(stem.resolve()), "fingerprint": fingerprint,
             "files": {p.suffix[1:]: _file_sha(p) for p in paths}}
    try:
        cache.atomic_write(_manifest_path(stem, directory), json.dumps(entry, indent=1).encode())
    except cache.StorageError:
        pass  # a read-only cache: the figure is simply re-plotted next time


def figure_status(exp, mode: str = "quick", overrides=None, seed=None, *, result=None, config=None,
                  outdir: Path | None = None, force: bool = False, formats=("png", "pdf"), **run_kwargs) -> tuple:
    """:func:`write_figure`, also saying whether anything was written: ``(paths, written)``."""
    exp = _resolve(exp)
    if result is None:
        result, config, _ = run(exp, mode, overrides, seed, **run_kwargs)
    spec = run_kwargs.get("backend")
    outdir = Path(outdir) if outdir is not None else output_dir(
        exp, config, mode, backend=spec if isinstance(spec, ArrayBackend) else None)
    cache.ensure_dir(outdir, "figures folder")
    stem = outdir / exp.name
    directory = Path(run_kwargs.get("directory") or cache_dir())
    note = override_label(exp, config, mode)
    note = f"{exp.name}, {mode} preset with {note}" if note else ""
    fingerprint = figure_fingerprint(exp, result, config, note, formats)
    paths = [stem.with_name(f"{stem.name}.{ext}") for ext in formats]
    if not force and _up_to_date(stem, fingerprint, formats, directory):
        return paths, False
    try:
        fig = exp.plot(result, config)
    except DivergenceError as exc:
        raise _diverged(exc, exp.name) from None
    except Exception as exc:
        _reraise_under_overrides(exc, exp, config, mode, "plotting failed: ")
        raise
    if note:
        annotate(fig, note)
    try:
        paths = plotting.save(fig, stem, formats)
    except OSError as exc:
        raise cache.storage_error(exc, stem.parent, "write figures in") from None
    _record(stem, fingerprint, paths, directory)
    return paths, True


def write_figure(exp, mode: str = "quick", overrides=None, seed=None, *, result=None, config=None,
                 outdir: Path | None = None, force: bool = False, **run_kwargs) -> list:
    """Write ``<name>.png`` and ``.pdf`` from the (cached) result; returns the paths.

    A preset run goes to the gallery (:func:`figures_dir`); a run whose config differs from its preset
    goes to its own folder (:func:`output_dir`) and its figure says what was overridden; ``outdir``
    chooses the folder.  A figure whose result, config, plot code and files are unchanged since it was
    written is not re-plotted (a small manifest per figure lives under ``<cache>/figures/``); ``force``
    re-plots it anyway.
    """
    return figure_status(exp, mode, overrides, seed, result=result, config=config, outdir=outdir, force=force,
                         **run_kwargs)[0]


def run_checks(exp, mode: str = "quick", overrides=None, seed=None, *, result=None, config=None, **run_kwargs) -> list:
    """The experiment's checks on its (cached) result."""
    exp = _resolve(exp)
    if result is None:
        result, config, _ = run(exp, mode, overrides, seed, **run_kwargs)
    try:
        return list(exp.checks(result, config))
    except DivergenceError as exc:
        raise _diverged(exc, exp.name) from None
    except Exception as exc:
        _reraise_under_overrides(exc, exp, config, mode, "the checks failed: ")
        raise


def reproduce_one(name: str, mode: str = "quick", progress: bool | None = None, backend=None, outdir=None,
                  replot: bool = False) -> dict:
    """Run, plot and check one experiment (a picklable unit of work for ``reproduce --jobs``).

    ``backend`` applies to the experiments that support it; the others run on numpy.  Figures go to
    ``outdir`` (default: the gallery) and are re-plotted only if something they depend on changed
    (or ``replot``).
    """
    exp = registry.get(name)
    t0 = time.perf_counter()
    spec = resolve(backend)
    if spec.name not in exp.backends:
        spec = ArrayBackend()
    result, config, info = run(exp, mode, progress=progress, backend=spec)
    paths, written = figure_status(exp, mode, result=result, config=config,
                                   outdir=outdir if outdir is not None else figures_dir(), force=replot)
    checks = run_checks(exp, mode, result=result, config=config)
    return {"name": name, "info": info, "figures": [str(p) for p in paths], "figures_written": written,
            "checks": [c.as_dict() for c in checks], "seconds": time.perf_counter() - t0,
            "paper": exp.paper, "figure": exp.figure, "claim": exp.claim}
