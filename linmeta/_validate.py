"""Input validation at the public boundary.

Every helper raises :class:`ValueError` with a message that names the argument,
says what was expected and, where there is one, how to fix it.  Inside the
engine the types are trusted.
"""
from __future__ import annotations

import numbers

import numpy as np

from ._backend import is_torch, namespace, to_numpy


def positive_int(name: str, value, *, allow_zero: bool = False) -> int:
    """Return ``value`` as an int, or raise if it is not a (non-negative) integer."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    lo = 0 if allow_zero else 1
    if value < lo:
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {kind} integer, got {value}")
    return int(value)


def finite_float(name: str, value, *, positive: bool = False, non_negative: bool = False) -> float:
    """Return ``value`` as a float, or raise if it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    if non_negative and value < 0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    return value


def finite_array(name: str, x):
    """Raise if ``x`` (numpy or torch, on any device) holds a NaN or an infinity; return ``x``.

    The test runs where ``x`` lives: for a CUDA tensor only one boolean comes back to the host.
    """
    if is_torch(x):
        ok = bool(namespace(x).all(namespace(x).isfinite(x)))
    else:
        ok = bool(np.all(np.isfinite(np.asarray(x))))
    if not ok:
        arr = to_numpy(x)
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(
            f"{name} contains {bad} non-finite value(s) (NaN or inf); clean or drop those entries"
        )
    return x


def psd_matrix(name: str, cov, *, tol: float = 1e-10) -> np.ndarray:
    """Check that ``cov`` (..., n, n) is finite, symmetric and positive semi-definite."""
    cov = np.asarray(cov, dtype=float)
    if cov.ndim < 2 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (..., n, n), got shape {cov.shape}")
    finite_array(name, cov)
    scale = max(1.0, float(np.max(np.abs(cov)))) if cov.size else 1.0
    asym = float(np.max(np.abs(cov - np.swapaxes(cov, -1, -2)))) if cov.size else 0.0
    if asym > tol * scale:
        raise ValueError(
            f"{name} must be symmetric; max |C - C^T| = {asym:.3g}. Pass (C + C.T) / 2 if this is round-off"
        )
    lam_min = float(np.min(np.linalg.eigvalsh(cov))) if cov.size else 0.0
    if lam_min < -tol * scale:
        raise ValueError(
            f"{name} must be positive semi-definite; its smallest eigenvalue is {lam_min:.3g}. "
            "Build it as L @ L.T or clip negative eigenvalues"
        )
    return cov


def matrix_pair(names: tuple, a, b, *, shape: str, shared: str) -> tuple:
    """``(a, b)`` as finite float arrays of at least 2 dimensions with the same size along axis -2.

    ``shape`` describes the expected shape in messages (e.g. ``"(..., n, features)"``) and ``shared``
    names what axis -2 counts (e.g. ``"samples n"``).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    for name, x in zip(names, (a, b)):
        if x.ndim < 2:
            raise ValueError(f"{name} must have shape {shape}, got shape {x.shape}")
        finite_array(name, x)
    if a.shape[-2] != b.shape[-2]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same number of {shared} (axis -2); "
                         f"got {a.shape[-2]} and {b.shape[-2]}")
    return a, b


def one_of(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(map(str, allowed))}, got {value!r}")
