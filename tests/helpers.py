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
