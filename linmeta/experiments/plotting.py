"""Shared figure helpers: one style for every experiment.

Figures are plain :class:`matplotlib.figure.Figure` objects, not registered with pyplot, so no
backend is chosen (or forced) on import and nothing needs closing; ``fig.savefig`` picks the
renderer from the file type.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

COLORS = mpl.rcParams["axes.prop_cycle"].by_key()["color"]


def figure(ncols: int = 1, nrows: int = 1, width: float = 4.6, height: float = 3.4, **kw):
    """A new figure with a grid of axes (always returned as a flat array)."""
    fig = Figure(figsize=(width * ncols, height * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes.ravel()


def band(ax, x, Y, label=None, color=None, axis=0, spread="se", **kw):
    """Plot the mean of ``Y`` over ``axis`` (seeds) with a shaded band of ±1 SE (or ±1 SD / min-max)."""
    Y = np.asarray(Y, dtype=float)
    mean = Y.mean(axis=axis)
    n = Y.shape[axis]
    if spread == "se":
        half = Y.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
        lo, hi = mean - half, mean + half
    elif spread == "sd":
        half = Y.std(axis=axis, ddof=1) if n > 1 else np.zeros_like(mean)
        lo, hi = mean - half, mean + half
    else:
        lo, hi = Y.min(axis=axis), Y.max(axis=axis)
    (line,) = ax.plot(x, mean, label=label, color=color, **kw)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def errorbars(ax, x, mean, se, label=None, color=None, k: float = 1.0, **kw):
    """Simulation points with ±k·SE error bars."""
    kw.setdefault("fmt", "o")
    kw.setdefault("ms", 4)
    kw.setdefault("capsize", 2)
    return ax.errorbar(x, mean, yerr=k * np.asarray(se), label=label, color=color, **kw)


def finish(fig, title: str | None = None):
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def save(fig, stem, formats=("png", "pdf")) -> list:
    """Write ``fig`` to ``<stem>.<format>`` for each format, atomically; returns the paths.

    Each file is written to a unique temporary file in the same folder and moved into place, so two
    processes writing the same figure never collide.  Metadata that changes between runs (dates,
    software versions) is left out, so a rerun rewrites identical bytes.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        path = stem.with_name(f"{stem.name}.{ext}")
        fd, tmp = tempfile.mkstemp(dir=stem.parent, prefix=f".{stem.name}.", suffix=f".tmp.{ext}")
        os.close(fd)
        try:
            fig.savefig(tmp, format=ext, dpi=130 if ext == "png" else None, bbox_inches="tight",
                        metadata={"Software": None} if ext == "png" else {"CreationDate": None, "Producer": None})
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        paths.append(path)
    return paths
