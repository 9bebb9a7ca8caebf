"""The house figure style (linmeta.experiments.plotting) holds on every registered experiment's figure.

Each figure is drawn from its experiment's tiny test configuration (``TINY`` in
``tests/experiments/test_<name>.py``), saved through :func:`plotting.save` and measured:

(a) every piece of text the renderer draws is at least 7 pt at the printed width: the figure is
    scaled to the house width it declared (3.4 or 7 in), and each ``draw_text`` call's font size in
    points is multiplied by that scale (the base size of the text; mathtext sets sub- and
    superscripts smaller, by convention);
(b) the saved PDF embeds no Type 3 font, only TrueType (Type 42) ones;
(c) the figure, and the saved PDF's page, are one of the two house widths;
(d) no drawn text sticks out of the figure, and no legend covers a data point or line of any panel.

The default suite draws every figure from its tiny configuration (about 45 s of CPU in all, mostly
drawing); ``-m slow`` checks the quick-preset (gallery) figures as well.
"""
from __future__ import annotations

import importlib
import re
from unittest import mock

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PathCollection, PolyCollection, QuadMesh
from matplotlib.contour import ContourSet
from matplotlib.image import AxesImage
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from linmeta.experiments import plotting, registry, runner

NAMES = sorted(registry.all_experiments())


# ---------------------------------------------------------------------------------------------
# measuring a figure


def drawn_texts(fig):
    """Draw ``fig`` with Agg; return ``([(text, size_pt)], [(text artist, extent)], renderer)`` for all text drawn.

    Sizes come from the renderer's ``draw_text`` calls (what is actually drawn, line by line); extents from
    every :class:`~matplotlib.text.Text` artist whose ``draw`` ran.
    """
    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    sizes, artists = [], []
    draw_text = renderer.draw_text

    def recording(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if s.strip():
            sizes.append((s, prop.get_size_in_points()))
        return draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    text_draw = Text.draw

    def recording_draw(self, r):
        if self.get_visible() and self.get_text().strip():
            artists.append(self)
        return text_draw(self, r)

    renderer.draw_text = recording
    with plotting.style(), mock.patch.object(Text, "draw", recording_draw):
        fig.draw(renderer)
    return sizes, [(t, t.get_window_extent(renderer)) for t in artists], renderer


def _segments_points(xy, step=2.0):
    """Points every ``step`` pixels along a polyline ``xy`` (display coordinates)."""
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    if len(xy) < 2:
        return xy
    out = [xy[:1]]
    for a, b in zip(xy[:-1], xy[1:]):
        n = int(np.ceil(np.hypot(*(b - a)) / step)) + 1
        out.append(a + np.linspace(0, 1, n)[1:, None] * (b - a))
    return np.concatenate(out)


def data_points(ax):
    """Display-space points of the data drawn in ``ax`` (lines sampled densely), clipped to the axes.

    Axes holding an image, a mesh or filled contours are covered by data everywhere: returns None.
    """
    if any(isinstance(a, (AxesImage, QuadMesh)) for a in ax.get_children()) or any(
            isinstance(c, ContourSet) and c.filled for c in ax.get_children()):
        return None
    pts = []
    for line in ax.get_lines():
        if not line.get_visible() or len(line.get_xydata()) == 0:
            continue
        xy = line.get_transform().transform(line.get_xydata())
        pts.append(_segments_points(xy) if line.get_linestyle() not in ("None", "none", "", " ") else xy)
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        if isinstance(coll, LineCollection):
            for seg in coll.get_segments():
                if len(seg):
                    pts.append(_segments_points(coll.get_transform().transform(seg)))
        elif isinstance(coll, PathCollection):
            offs = coll.get_offsets()
            if len(offs):
                pts.append(coll.get_offset_transform().transform(offs))
        elif isinstance(coll, PolyCollection):  # bands: their outlines are data
            for path in coll.get_paths():
                pts.append(_segments_points(coll.get_transform().transform(path.vertices)))
    for patch in ax.patches:  # bars
        if patch.get_visible():
            bb = patch.get_window_extent()
            pts.append(np.array([[bb.x0, bb.y1], [bb.x1, bb.y1], [(bb.x0 + bb.x1) / 2, bb.y1]]))
    if not pts:
        return np.zeros((0, 2))
    pts = np.concatenate(pts)
    box = ax.get_window_extent()
    inside = (pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)
    return pts[inside]


def legend_overlaps(fig, renderer):
    """``[(legend, axes, points covered)]`` for every legend whose entries cover data of some panel."""
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    bad = []
    for leg in legends:
        if not leg.get_visible():
            continue
        bb = leg._legend_box.get_window_extent(renderer)  # the entries, without the frame padding
        for ax in fig.axes:
            if not ax.get_visible() or not ax.get_window_extent().overlaps(bb):
                continue
            pts = data_points(ax)
            if pts is None:
                inter = Bbox.intersection(bb, ax.get_window_extent())
                if inter is not None and inter.width > 1 and inter.height > 1:
                    bad.append((leg, ax, "an image or filled contour"))
                continue
            n = int(np.sum((pts[:, 0] > bb.x0) & (pts[:, 0] < bb.x1) & (pts[:, 1] > bb.y0) & (pts[:, 1] < bb.y1)))
            if n:
                bad.append((leg, ax, n))
    return bad


def text_overlaps(extents, min_px: float = 1.0):
    """Pairs of drawn texts whose boxes overlap by more than ``min_px`` in both directions."""
    out = []
    for i, (a, ea) in enumerate(extents):
        for b, eb in extents[i + 1:]:
            inter = Bbox.intersection(ea, eb)
            if inter is not None and inter.width > min_px and inter.height > min_px:
                out.append((a.get_text(), b.get_text()))
    return out


def pdf_fonts(data: bytes):
    """The ``/Subtype`` of every font dictionary in a PDF (matplotlib writes them uncompressed)."""
    return re.findall(rb"/Type\s*/Font\b[^>]*?/Subtype\s*/(\w+)|/Subtype\s*/(\w+)[^>]*?/Type\s*/Font\b", data)


def pdf_page_width_in(data: bytes) -> float:
    m = re.search(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]", data)
    assert m, "no MediaBox in the PDF"
    return (float(m.group(3)) - float(m.group(1))) / 72.0


def measure(fig, pdf_bytes: bytes) -> dict:
    """Everything the house style is checked on, for one saved figure."""
    name = plotting.declared_width(fig)
    page = pdf_page_width_in(pdf_bytes)
    target = plotting.WIDTHS.get(name, np.nan)
    scale = target / page  # printed at its house width
    texts, extents, renderer = drawn_texts(fig)
    sizes = [(size * scale, s) for s, size in texts]
    figbox = fig.bbox
    outside = [t.get_text() for t, ext in extents
               if ext.x0 < figbox.x0 - 1 or ext.x1 > figbox.x1 + 1 or ext.y0 < figbox.y0 - 1 or ext.y1 > figbox.y1 + 1]
    overlaps = text_overlaps(extents)
    fonts = [a or b for a, b in pdf_fonts(pdf_bytes)]
    return {"declared": name, "fig_width": fig.get_figwidth(), "page_width": page, "sizes": sizes,
            "min_pt": min(sizes)[0] if sizes else np.inf, "smallest": min(sizes)[1] if sizes else None,
            "outside": outside, "text_overlaps": overlaps, "fonts": fonts, "legend_overlaps": legend_overlaps(fig, renderer)}


# ---------------------------------------------------------------------------------------------
# the tests


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("style-cache")


def _render(name, cache, tmp_path):
    exp = registry.get(name)
    tiny = importlib.import_module(f"tests.experiments.test_{name}").TINY
    res, cfg, _ = runner.run(exp, overrides=tiny, directory=cache, progress=False)
    fig = exp.plot(res, cfg)
    (pdf,) = plotting.save(fig, tmp_path / name, formats=("pdf",))  # as the gallery's PDF (PNG: same layout)
    return fig, measure(fig, pdf.read_bytes())


def _assert_house_style(name, m):
    assert m["declared"] in plotting.WIDTHS, f"{name}: figure not made by plotting.figure (no house width)"
    assert abs(m["fig_width"] - plotting.WIDTHS[m["declared"]]) < 1e-9, (name, m["fig_width"])
    assert abs(m["page_width"] - plotting.WIDTHS[m["declared"]]) < 0.01, (name, m["page_width"])
    assert m["sizes"], f"{name}: no text drawn"
    small = sorted({(round(p, 2), s) for p, s in m["sizes"] if p < plotting.MIN_FONT_PT - 1e-6})
    assert not small, f"{name}: text under {plotting.MIN_FONT_PT} pt at print width: {small[:5]}"
    assert m["fonts"], f"{name}: no font in the PDF"
    assert "Type3" not in {f.decode() for f in m["fonts"]}, f"{name}: Type 3 fonts in the PDF"
    assert {f.decode() for f in m["fonts"]} <= {"Type0", "CIDFontType2", "TrueType"}, (name, m["fonts"])
    assert not m["outside"], f"{name}: text outside the figure: {m['outside'][:3]}"
    assert not m["text_overlaps"], f"{name}: overlapping text: {m['text_overlaps'][:3]}"
    assert not m["legend_overlaps"], f"{name}: legend covers data: {[(b, n) for _, b, n in m['legend_overlaps']]}"


@pytest.mark.parametrize("name", NAMES)
def test_figure_follows_the_house_style(name, cache, tmp_path):
    fig, m = _render(name, cache, tmp_path)
    _assert_house_style(name, m)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_quick_preset_figure_follows_the_house_style(name, cache, tmp_path):
    """The gallery's own figures (quick preset), not only the tiny ones."""
    exp = registry.get(name)
    res, cfg, _ = runner.run(exp, mode="quick", directory=cache, progress=False)
    fig = exp.plot(res, cfg)
    (pdf,) = plotting.save(fig, tmp_path / name, formats=("pdf",))
    _assert_house_style(name, measure(fig, pdf.read_bytes()))


def test_every_experiment_has_a_tiny_configuration():
    for name in NAMES:
        assert isinstance(importlib.import_module(f"tests.experiments.test_{name}").TINY, dict), name


# ---------------------------------------------------------------------------------------------
# the measurements catch what they should (planted violations)


def _planted(tmp_path, build):
    fig, (ax,) = plotting.figure(1)
    build(fig, ax)
    (pdf,) = plotting.save(fig, tmp_path / "planted", formats=("pdf",))
    return measure(fig, pdf.read_bytes())


def test_a_small_legend_is_caught(tmp_path):
    def build(fig, ax):
        ax.plot([0, 1], [0, 1], label="a line")
        ax.legend(fontsize=5)
    m = _planted(tmp_path, build)
    assert m["min_pt"] == pytest.approx(5.0)


def test_text_is_measured_at_print_width(tmp_path):
    # a 7-inch figure drawn with 7 pt text but declared a column figure prints at 3.4/7 of its size
    fig, (ax,) = plotting.figure(1, width="text")
    ax.set_xlabel("x")
    fig._linmeta_width = "column"
    (pdf,) = plotting.save(fig, tmp_path / "scaled", formats=("pdf",))
    m = measure(fig, pdf.read_bytes())
    assert m["min_pt"] == pytest.approx(plotting.TICK_PT * plotting.COLUMN_WIDTH / plotting.TEXT_WIDTH)


def test_type3_fonts_are_detected(tmp_path):
    import matplotlib as mpl
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.4, 2))
    fig.text(0.5, 0.5, r"Type 3 $\alpha$")
    with mpl.rc_context({"pdf.fonttype": 3}):
        fig.savefig(tmp_path / "t3.pdf")
    assert b"Type3" in b"".join(a or b for a, b in pdf_fonts((tmp_path / "t3.pdf").read_bytes()))
    with plotting.style():
        fig.savefig(tmp_path / "t42.pdf")
    fonts = {(a or b) for a, b in pdf_fonts((tmp_path / "t42.pdf").read_bytes())}
    assert b"Type3" not in fonts and fonts & {b"CIDFontType2", b"TrueType"}


def test_a_legend_over_data_and_text_outside_are_caught(tmp_path):
    def build(fig, ax):
        x = np.linspace(0, 1, 50)
        ax.plot(x, np.full_like(x, 0.9), label="a long label that covers the line")
        ax.plot(x, x * 0.1, label="b")
        ax.legend(loc="upper right")
        fig.text(0.99, 0.5, "sticks out of the figure on the right")
    m = _planted(tmp_path, build)
    assert m["legend_overlaps"] and m["outside"]


def test_a_legend_beside_the_axes_covers_nothing(tmp_path):
    def build(fig, ax):
        x = np.linspace(0, 1, 50)
        ax.plot(x, np.full_like(x, 0.9), label="a line")
        plotting.errorbars(ax, x[::10], x[::10], 0.05 + 0 * x[::10], label="points")
        plotting.legend(ax, "right")
    m = _planted(tmp_path, build)
    assert not m["legend_overlaps"] and not m["outside"] and m["min_pt"] >= plotting.MIN_FONT_PT - 1e-6


@pytest.mark.parametrize("name", ["arnold_headline", "gao_sener_tradeoff"])
def test_an_override_note_is_drawn_inside_the_figure_and_covers_nothing(name, cache, tmp_path):
    """The line an override run adds (runner.annotate) is on the saved page, at 7 pt or more, overlapping nothing."""
    exp = registry.get(name)
    tiny = importlib.import_module(f"tests.experiments.test_{name}").TINY
    res, cfg, _ = runner.run(exp, overrides=tiny, directory=cache, progress=False)
    fig = exp.plot(res, cfg)
    width = fig.get_figwidth()
    note = f"{name}, quick preset with seed=9"
    runner.annotate(fig, note)
    (pdf,) = plotting.save(fig, tmp_path / name, formats=("pdf",))
    m = measure(fig, pdf.read_bytes())
    _assert_house_style(name, m)
    assert fig.get_figwidth() == width
    assert any(s == note for _, s in m["sizes"]), [s for _, s in m["sizes"]][:5]
    assert runner.override_note(fig) == note
