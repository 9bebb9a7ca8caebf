"""The house style of every linmeta figure, and shared figure helpers.

Figures are plain :class:`matplotlib.figure.Figure` objects, not registered with pyplot, so no
backend is chosen (or forced) on import and nothing needs closing; ``fig.savefig`` picks the
renderer from the file type.

The house style (the same for every experiment):

- a figure is exactly one of two widths, a paper's column (:data:`COLUMN_WIDTH`, 3.4 in) or its
  text width (:data:`TEXT_WIDTH`, 7 in), declared through :func:`figure`, and laid out by matplotlib's
  constrained layout, so the saved file has that width and nothing needs shrinking to print;
- no text is smaller than :data:`MIN_FONT_PT` (7 pt) at that width: tick labels and legends are 7 pt,
  axis labels and titles 8 pt, the figure title 8.5 pt;
- symbols are typeset with matplotlib's mathtext (``r"$\\rho_H/\\rho_E$"``), in the text's font;
- PDFs embed TrueType (Type 42) fonts, never Type 3;
- colours come from the colour-blind-safe Okabe–Ito palette (:data:`COLORS`);
- legends cover no data: one row for the figure (:func:`figlegend`), one under each panel
  (:func:`legend_below`), beside the axes, or in a corner checked to be empty (:func:`legend`);
  ``tests/experiments/test_style.py`` checks every figure for this, for the sizes and the fonts;
- closed forms are lines, simulations are points with ±SE error bars (:func:`errorbars`).

The style is an rc context (:func:`style`), applied while a figure is made (decorate ``plot`` with
:func:`styled`; :func:`figure` applies it too) and while it is saved (:func:`save`).  Importing this
module leaves the user's ``matplotlib.rcParams`` untouched.
"""
from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib import cycler
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

COLUMN_WIDTH = 3.4
"""Width of a one-column figure, inches."""
TEXT_WIDTH = 7.0
"""Width of a text-width (two-column) figure, inches."""
WIDTHS = {"column": COLUMN_WIDTH, "text": TEXT_WIDTH}
"""The two house widths, inches."""
MIN_FONT_PT = 7.0
"""The smallest text allowed at the printed width, points."""

# Okabe & Ito (2008), "Color universal design": distinguishable under the common colour-vision
# deficiencies; yellow (hard to see on white) last
OKABE_ITO = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "green": "#009E73",
    "purple": "#CC79A7",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "black": "#000000",
    "yellow": "#F0E442",
}
COLORS = list(OKABE_ITO.values())
"""The colour cycle of every figure (Okabe–Ito)."""
THEORY = "#000000"
"""Colour of a closed form drawn as a reference line."""
GREY = "#777777"
"""Colour of guide lines (chance level, tolerance, y = 1)."""

TICK_PT = 7.0
LEGEND_PT = 7.0
LABEL_PT = 8.0
TITLE_PT = 8.0
SUPTITLE_PT = 8.5

RC = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "mathtext.fontset": "dejavusans",
    "font.size": LABEL_PT,
    "axes.titlesize": TITLE_PT,
    "axes.labelsize": LABEL_PT,
    "xtick.labelsize": TICK_PT,
    "ytick.labelsize": TICK_PT,
    "legend.fontsize": LEGEND_PT,
    "legend.title_fontsize": LEGEND_PT,
    "figure.titlesize": SUPTITLE_PT,
    "figure.labelsize": LABEL_PT,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "axes.prop_cycle": cycler(color=COLORS),
    "image.cmap": "viridis",
    "axes.linewidth": 0.6,
    "axes.titlepad": 3.0,
    "axes.labelpad": 2.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "xtick.minor.size": 1.5,
    "ytick.minor.size": 1.5,
    "xtick.major.pad": 2.0,
    "ytick.major.pad": 2.0,
    "lines.linewidth": 1.1,
    "lines.markersize": 3.5,
    "errorbar.capsize": 1.5,
    "legend.frameon": False,
    "legend.handlelength": 1.6,
    "legend.handletextpad": 0.4,
    "legend.borderaxespad": 0.3,
    "legend.borderpad": 0.2,
    "legend.columnspacing": 1.0,
    "legend.labelspacing": 0.25,
    "figure.constrained_layout.h_pad": 0.03,
    "figure.constrained_layout.w_pad": 0.03,
    "figure.constrained_layout.hspace": 0.04,
    "figure.constrained_layout.wspace": 0.04,
    "savefig.dpi": 200,
}
"""The house rc settings; applied through :func:`style`, never to the global ``rcParams``."""


def style():
    """An rc context with the house style (``with plotting.style(): ...``)."""
    return mpl.rc_context(RC)


def styled(plot):
    """Decorate an experiment's ``plot(result, config)`` so that it runs inside :func:`style`."""

    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with style():
            return plot(*args, **kwargs)

    return wrapper


def _house_width(width) -> str:
    if isinstance(width, str):
        if width not in WIDTHS:
            raise ValueError(f"width must be one of {', '.join(WIDTHS)} (or a number of inches), got {width!r}")
        return width
    width = float(width)
    if not np.isfinite(width) or width <= 0:
        raise ValueError(f"width must be a positive number of inches, got {width!r}")
    return "column" if width <= 0.5 * (COLUMN_WIDTH + TEXT_WIDTH) else "text"


def figure(ncols: int = 1, nrows: int = 1, width="column", height: float | None = None, **kw):
    """A new house-style figure with a grid of axes (always returned as a flat array).

    Parameters
    ----------
    ncols, nrows : the grid of panels.
    width : ``"column"`` (3.4 in) or ``"text"`` (7 in); a number of inches is taken as the whole
        figure's width and snapped to the nearer house width.
    height : total height in inches; by default each row is ``0.75 ×`` a panel's width, at most
        2.6 in (2.4 in for a column figure).
    **kw : passed to :meth:`matplotlib.figure.Figure.subplots` (``sharex``, ``gridspec_kw``, ...).
    """
    name = _house_width(width)
    w = WIDTHS[name]
    if height is None:
        row = min(0.75 * w / ncols, 2.4 if name == "column" else 2.6)
        height = max(row * nrows, 1.6)
    with style():
        fig = Figure(figsize=(w, float(height)), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False, **kw).ravel()
        for ax in axes:
            _style_axes(ax)
    fig._linmeta_width = name
    return fig, axes


def declared_width(fig) -> str | None:
    """The house width a figure was made for (``"column"`` / ``"text"``), or None if not made by :func:`figure`."""
    return getattr(fig, "_linmeta_width", None)


def _style_axes(ax):
    # tick labels are created lazily at draw time: fix their size on the axes, not only in the rc
    ax.tick_params(which="both", labelsize=TICK_PT)


def colorbar(fig, mappable, ax, label: str | None = None, **kw):
    """A colorbar in house style (7 pt ticks, 8 pt label) beside ``ax``."""
    kw.setdefault("fraction", 0.05)
    kw.setdefault("pad", 0.02)
    with style():
        cb = fig.colorbar(mappable, ax=ax, **kw)
        _style_axes(cb.ax)
        if label:
            cb.set_label(label, fontsize=LABEL_PT)
    return cb


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
    """Simulation points with ±k·SE error bars (no joining line unless ``fmt`` asks for one)."""
    kw.setdefault("fmt", "o")
    kw.setdefault("ms", 3.5)
    kw.setdefault("capsize", 1.5)
    kw.setdefault("elinewidth", 0.8)
    kw.setdefault("capthick", 0.8)
    return ax.errorbar(x, mean, yerr=k * np.asarray(se), label=label, color=color, **kw)


def _unique(handles, labels):
    seen, out_h, out_l = set(), [], []
    for h, lab in zip(handles, labels):
        if lab and not lab.startswith("_") and lab not in seen:
            seen.add(lab)
            out_h.append(h)
            out_l.append(lab)
    return out_h, out_l


def handle(label: str, color=THEORY, ls="-", marker=None, **kw) -> Line2D:
    """A legend entry not tied to drawn data (e.g. one "closed form" entry for several coloured lines)."""
    kw.setdefault("lw", RC["lines.linewidth"])
    kw.setdefault("ms", RC["lines.markersize"] + 0.5)
    return Line2D([], [], color=color, ls=ls, marker=marker, label=label, **kw)


def legend(ax, where: str = "right", ncol: int = 1, **kw):
    """A legend for ``ax`` that does not cover its data.

    ``where`` is ``"right"`` (beside the axes; constrained layout makes room for it) or a matplotlib
    ``loc`` inside the axes (``"upper left"``, ...) for a caller who has checked that corner is empty
    (``tests/experiments/test_style.py`` checks that no legend covers a data point).  For a row of
    entries under or over the panels use :func:`figlegend`.  Repeated labels are shown once.
    """
    handles, labels = _unique(*ax.get_legend_handles_labels())
    if not handles:
        return None
    kw.setdefault("fontsize", LEGEND_PT)
    if where == "right":
        kw.update(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    else:
        kw["loc"] = where
    return ax.legend(handles, labels, ncol=ncol, **kw)


def figlegend(fig, axes=None, where: str = "lower center", ncol: int | None = None, handles=None, labels=None, **kw):
    """One legend for the whole figure, in its own row outside the panels (``"outside <where>"``).

    Collects the labelled artists of ``axes`` (default: every axes of ``fig``), each label once.
    """
    if handles is None:
        hs, ls = [], []
        for ax in (fig.axes if axes is None else axes):
            h, lab = ax.get_legend_handles_labels()
            hs += h
            ls += lab
        handles, labels = hs, ls
    handles, labels = _unique(handles, labels if labels is not None else [h.get_label() for h in handles])
    if not handles:
        return None
    kw.setdefault("fontsize", LEGEND_PT)
    with style():
        if ncol:
            return fig.legend(handles, labels, loc=f"outside {where}", ncol=ncol, **kw)
        # the most columns whose legend fits in the figure's width, measured
        from matplotlib.backends.backend_agg import RendererAgg

        renderer = RendererAgg(int(fig.get_figwidth() * fig.dpi), int(fig.get_figheight() * fig.dpi), fig.dpi)
        for n in range(min(len(handles), 6), 0, -1):
            leg = fig.legend(handles, labels, loc=f"outside {where}", ncol=n, **kw)
            if n == 1 or leg.get_window_extent(renderer).width <= 0.98 * fig.bbox.width:
                return leg
            leg.remove()


def legend_below(fig, panels, ncol: int = 1, extra=(), **kw):
    """Each panel's legend right under its x-axis label (so it covers no data); returns the legends.

    Constrained layout makes room for them.  Each legend gets at most ``ncol`` columns, fewer where
    they would not fit the width of its panel; ``extra`` handles (:func:`handle`) end every legend.
    """
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.transforms import ScaledTranslation

    renderer = RendererAgg(int(fig.get_figwidth() * fig.dpi), int(fig.get_figheight() * fig.dpi), fig.dpi)
    kw.setdefault("fontsize", LEGEND_PT)
    out = []
    with style():
        for ax in panels:
            h, lab = ax.get_legend_handles_labels()
            handles, labels = _unique(h + list(extra), lab + [e.get_label() for e in extra])
            if not handles:
                out.append(None)
                continue
            # how far the tick labels and the x label reach below the axes: points, whatever the layout
            drop = ax.get_window_extent(renderer).y0 - ax.xaxis.get_tightbbox(renderer).y0
            shift = ScaledTranslation(0, -(drop / fig.dpi + 0.04), fig.dpi_scale_trans)
            width = ax.get_window_extent(renderer).width * 1.25  # a legend may reach into the gutters
            for n in range(min(ncol, len(handles)), 0, -1):
                leg = ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                                bbox_transform=ax.transAxes + shift, borderaxespad=0.0, ncol=n, **kw)
                if n == 1 or leg.get_window_extent(renderer).width <= width:
                    break
            out.append(leg)
    return out


def plain_log_ticks(axis, subs=(1.0, 2.0, 5.0)):
    """Ticks at 1, 2, 5 × 10^k written as plain numbers, for a log axis spanning about a decade or two."""
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(StrMethodFormatter("{x:g}"))
    axis.set_minor_formatter(NullFormatter())


def ticks_at(axis, values):
    """Major ticks at exactly ``values``, written as plain numbers, and no minor tick labels (e.g. a log axis of N)."""
    from matplotlib.ticker import NullFormatter

    axis.set_ticks(values, [f"{v:g}" for v in values])
    axis.set_minor_formatter(NullFormatter())


def label_panels(axes, start: str = "a"):
    """Prefix each panel's title with ``(a)``, ``(b)``, ... (the title goes to the left if it was centred)."""
    for i, ax in enumerate(axes):
        tag = f"({chr(ord(start) + i)})"
        left, centre = ax.get_title(loc="left"), ax.get_title()
        ax.set_title(f"{tag} {left or centre}".rstrip(), loc="left")
        if centre and not left:
            ax.set_title("")


def _wrap(text: str, chars: int) -> str:
    """Wrap ``text`` at spaces outside ``$...$`` so that each line has about ``chars`` characters."""
    words, cur, in_math = [], "", False
    for tok in text.split(" "):
        cur = tok if not cur else cur + " " + tok
        in_math ^= tok.count("$") % 2 == 1
        if not in_math:
            words.append(cur)
            cur = ""
    if cur:
        words.append(cur)
    lines, line = [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > chars:
            lines.append(line)
            line = w
        else:
            line = w if not line else line + " " + w
    lines.append(line)
    return "\n".join(lines)


def finish(fig, title: str | None = None):
    """Add the figure title (wrapped to the figure's width) and return ``fig``."""
    if title:
        # about 0.52 em per character in DejaVu Sans; math markup counts for less than it looks
        chars = int(fig.get_figwidth() * 72 / (0.52 * SUPTITLE_PT))
        with style():
            fig.suptitle(_wrap(title, chars), fontsize=SUPTITLE_PT)
    return fig


def save(fig, stem, formats=("png", "pdf")) -> list:
    """Write ``fig`` to ``<stem>.<format>`` for each format, atomically, in the house style; returns the paths.

    Each file is written to a unique temporary file in the same folder and moved into place, so two
    processes writing the same figure never collide.  Metadata that changes between runs (dates,
    software versions) is left out, so a rerun rewrites identical bytes.  The page keeps the figure's
    own size (no tight bounding box), so a house-width figure prints at its width; PDFs embed
    TrueType fonts.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in formats:
        path = stem.with_name(f"{stem.name}.{ext}")
        fd, tmp = tempfile.mkstemp(dir=stem.parent, prefix=f".{stem.name}.", suffix=f".tmp.{ext}")
        os.close(fd)
        try:
            with style():
                fig.savefig(tmp, format=ext, dpi=RC["savefig.dpi"] if ext == "png" else None,
                            metadata=_METADATA.get(ext, {}))
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; a figure is not
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        paths.append(path)
    return paths


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_METADATA = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None},
             "svg": {"Date": None}}
