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
