"""Shared figure helpers (linmeta.experiments.plotting)."""
import numpy as np

from linmeta.experiments import plotting


def test_band_draws_the_mean_and_a_standard_error_band():
    fig, (ax,) = plotting.figure(1)
    Y = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
    line = plotting.band(ax, [0, 1, 2], Y, label="x")
    assert np.allclose(line.get_ydata(), [2.0, 3.0, 4.0])
    poly = ax.collections[0]
    ys = poly.get_paths()[0].vertices[:, 1]
    se = np.std([1.0, 3.0], ddof=1) / np.sqrt(2)
    assert np.isclose(ys.max(), 4.0 + se) and np.isclose(ys.min(), 2.0 - se)


def test_errorbars_and_finish():
    fig, axes = plotting.figure(2, 1)
    assert len(axes) == 2
    plotting.errorbars(axes[0], [1, 2], [1.0, 2.0], [0.1, 0.2], k=2)
    assert plotting.finish(fig, "title") is fig


# ---------------------------------------------------------------------------------------------
# the house style (see also tests/experiments/test_style.py, which checks every experiment's figure)

import os
import subprocess
import sys

import matplotlib as mpl
import pytest


def _rc_snapshot():
    return {k: repr(v) for k, v in mpl.rcParams.items()}


def test_importing_linmeta_leaves_the_users_rcparams_alone():
    code = ("import matplotlib as mpl; before = {k: repr(v) for k, v in mpl.rcParams.items()}; "
            "import linmeta, linmeta.experiments.plotting, linmeta.experiments.registry as r; r.all_experiments(); "
            "after = {k: repr(v) for k, v in mpl.rcParams.items()}; "
            "print(sorted(k for k in before if before[k] != after[k]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, MPLBACKEND="agg"))
    assert out.stdout.strip() == "[]", out.stdout


def test_making_and_saving_a_figure_leaves_the_rcparams_alone(tmp_path):
    before = _rc_snapshot()

    @plotting.styled
    def plot():
        assert mpl.rcParams["pdf.fonttype"] == 42 and mpl.rcParams["legend.fontsize"] == plotting.LEGEND_PT
        fig, (ax,) = plotting.figure(1)
        ax.plot([0, 1], [0, 1], label="x")
        plotting.legend(ax)
        return plotting.finish(fig, "a title")

    plotting.save(plot(), tmp_path / "f")
    assert _rc_snapshot() == before


@pytest.mark.parametrize("width, name", [("column", "column"), ("text", "text"), (3.0, "column"), (9.2, "text")])
def test_figures_have_a_house_width(width, name):
    fig, axes = plotting.figure(2, 3, width=width)
    assert len(axes) == 6 and plotting.declared_width(fig) == name
    assert fig.get_figwidth() == plotting.WIDTHS[name]


def test_a_bad_width_is_refused_naming_the_argument():
    with pytest.raises(ValueError, match="width"):
        plotting.figure(1, width="poster")
    with pytest.raises(ValueError, match="width"):
        plotting.figure(1, width=-1.0)


def test_saved_pdfs_embed_truetype_even_if_the_user_asked_for_type3(tmp_path):
    fig, (ax,) = plotting.figure(1)
    ax.set_xlabel(r"$\rho_H/\rho_E$")
    with mpl.rc_context({"pdf.fonttype": 3}):
        png, pdf = plotting.save(fig, tmp_path / "f")
    data = pdf.read_bytes()
    assert b"/Type3" not in data and b"/CIDFontType2" in data
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_is_reproducible_and_leaves_no_temporary_files(tmp_path):
    fig, (ax,) = plotting.figure(1)
    ax.plot([0, 1], [1, 0])
    first = [p.read_bytes() for p in plotting.save(fig, tmp_path / "f")]
    second = [p.read_bytes() for p in plotting.save(fig, tmp_path / "f")]
    assert first == second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png"]
    with pytest.raises(ValueError):
        plotting.save(fig, tmp_path / "g", formats=("no-such-format",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.pdf", "f.png"]


def test_the_title_is_wrapped_at_spaces_outside_math():
    text = "a " * 30 + r"$\alpha = 1, \beta = 2$ " + "b " * 30
    lines = plotting._wrap(text.strip(), 40).split("\n")
    assert len(lines) > 2 and all(line.count("$") % 2 == 0 for line in lines)
    assert r"$\alpha = 1, \beta = 2$" in "\n".join(lines)


def test_the_palette_is_okabe_ito_and_distinct():
    assert plotting.COLORS[:3] == ["#0072B2", "#D55E00", "#009E73"]
    assert len(set(plotting.COLORS)) == len(plotting.COLORS) >= 7


def test_figlegend_fits_the_figure_width():
    fig, (ax,) = plotting.figure(1, width="column")
    for i in range(8):
        ax.plot([0, 1], [i, i], label=f"a fairly long legend label number {i}")
    leg = plotting.figlegend(fig)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    assert leg.get_window_extent().width <= fig.bbox.width
    assert len({t.get_text() for t in leg.get_texts()}) == 8


def test_label_panels_prefixes_titles():
    fig, axes = plotting.figure(2)
    axes[0].set_title("first")
    plotting.label_panels(axes)
    assert axes[0].get_title(loc="left") == "(a) first" and axes[0].get_title() == ""
    assert axes[1].get_title(loc="left") == "(b)"


def test_saved_figures_have_ordinary_permissions(tmp_path):
    fig, (ax,) = plotting.figure(1)
    old = os.umask(0o022)
    try:
        paths = plotting.save(fig, tmp_path / "f")
    finally:
        os.umask(old)
    assert all((p.stat().st_mode & 0o777) == 0o644 for p in paths)
