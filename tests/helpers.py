"""Shared test utilities: derivative checks and statistical comparisons."""
from __future__ import annotations

import numpy as np


def rel_err(a, b) -> float:
    """max|a − b| / max(max|b|, tiny)."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def complex_step_grad(f, x, h: float = 1e-30) -> np.ndarray:
    """Gradient of a real-analytic scalar ``f`` at ``x`` by complex steps (exact to round-off)."""
    x = np.asarray(x, dtype=float)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xc = x.astype(complex)
        xc[idx] += 1j * h
        g[idx] = np.imag(f(xc)) / h
    return g


def central_diff_grad(f, x, h: float = 1e-5) -> np.ndarray:
    """Gradient of scalar ``f`` at ``x`` by 4th-order central differences (error O(h⁴))."""
    x = np.asarray(x, dtype=float)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        vals = []
        for s in (-2, -1, 1, 2):
            xs = x.copy()
            xs[idx] += s * h
            vals.append(float(f(xs)))
        g[idx] = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
    return g


def within_se(mean, theory, se, k: float = 4.0) -> bool:
    return bool(np.all(np.abs(np.asarray(mean) - np.asarray(theory)) <= k * np.asarray(se)))


def every_check_passes(experiment, res, cfg):
    """Run ``experiment.checks``; assert every row is a Check and every "check" row passed; return the rows."""
    from linmeta.experiments.base import Check

    rows = experiment.checks(res, cfg)
    assert rows and all(isinstance(c, Check) for c in rows)
    failed = [c.name for c in rows if c.kind == "check" and not c.passed]
    assert not failed, failed
    return rows


def read_only_under(monkeypatch, root, code=None):
    """Make every write under the folder ``root`` fail with ``OSError(code)`` (default EROFS).

    The tests may run as root, where ``chmod`` does not stop writes, so file creation
    (``tempfile.mkstemp``) and removal (``Path.unlink``) under ``root`` are patched instead.
    """
    import errno
    import os
    import tempfile
    from pathlib import Path

    code = errno.EROFS if code is None else code
    root = Path(root)
    mkstemp, unlink = tempfile.mkstemp, Path.unlink

    def fake_mkstemp(*args, dir=None, **kw):
        if dir is not None and Path(dir).resolve().is_relative_to(root.resolve()):
            raise OSError(code, os.strerror(code), str(dir))
        return mkstemp(*args, dir=dir, **kw)

    def fake_unlink(self, *args, **kw):
        if self.resolve().is_relative_to(root.resolve()):
            raise OSError(code, os.strerror(code), str(self))
        return unlink(self, *args, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", fake_mkstemp)
    monkeypatch.setattr(Path, "unlink", fake_unlink)


def isolate_registry(monkeypatch, tmp_path):
    """Point the real registry at isolated storage under ``tmp_path``, with no external experiment paths.

    Sets ``LINMETA_CACHE``/``LINMETA_FIGURES``/``LINMETA_RESULTS`` under ``tmp_path``, clears
    ``LINMETA_EXPERIMENTS`` and the registry's extra paths, restores ``sys.path`` after the test, and
    clears the registry's cache (the caller clears it again when the test ends).
    """
    import sys

    from linmeta.experiments import registry

    monkeypatch.setattr(registry, "_EXTRA_PATHS", [])
    monkeypatch.setenv("LINMETA_EXPERIMENTS", "")  # so that add_path's own os.environ edit is undone too
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("LINMETA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LINMETA_FIGURES", str(tmp_path / "figs"))
    monkeypatch.setenv("LINMETA_RESULTS", str(tmp_path / "results"))
    registry.cache_clear()
