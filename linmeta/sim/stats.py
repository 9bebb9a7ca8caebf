"""Standard errors: one helper for each estimator the experiments use.

* :func:`mean_se` – the mean of independent samples;
* :func:`crossed_mean_se` – the grand mean of a seeds × tasks table measured on one test set shared by
  every seed (a crossed design, where both the seed and the task vary);
* :func:`ratio_mean_se` – a ratio of two means of paired samples (delta method).

:class:`Estimate` bundles a mean with its standard error.  The checks of :mod:`linmeta.experiments`
turn these into tolerances of k standard errors.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate


def _samples(name, x, least: int = 1, *, flat: bool = True):
    """``x`` as a finite float array (flattened with ``flat``) with at least ``least`` entries."""
    x = _validate.real_array(name, x)
    if flat:
        x = x.reshape(-1)
    if x.size < least:
        raise ValueError(f"{name} needs at least {least} sample(s), got {x.size}"
                         + ("; a standard error needs two" if least >= 2 else ""))
    return x


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo mean with its standard error (``n`` samples)."""

    mean: float
    stderr: float
    n: int

    def z(self, reference: float) -> float:
        """Distance to ``reference`` in standard errors (±inf if the standard error is 0 and they differ)."""
        reference = _validate.finite_float("reference", reference)
        diff = self.mean - reference
        if self.stderr > 0:
            return diff / self.stderr
        return 0.0 if diff == 0 else float(np.inf * np.sign(diff))


@_validate.finite_result
def mean_se(x, axis=0):
    """Mean and standard error of independent samples along ``axis``.

    Parameters
    ----------
    x : array (..., n, ...), the samples along ``axis``.
    axis : int, or None for every element.

    Returns
    -------
    (mean, se) : arrays of ``x``'s shape without ``axis`` (floats if ``axis`` is None); the SE is
    ``std(ddof=1)/√n``, and 0 for a single sample.
    """
    x = _validate.real_array("x", x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    axis = _validate.integer("axis", axis)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for x of shape {x.shape}")
    n = x.shape[axis]
    if n == 0:
        raise ValueError(f"x has no samples along axis {axis} (shape {x.shape}): a mean needs at least one")
    mean = x.mean(axis=axis)
    se = x.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
    if np.ndim(mean) == 0:
        return float(mean), float(se)
    return mean, se


@_validate.finite_result
def estimate(samples) -> Estimate:
    """:class:`Estimate` of the mean of a sample (flattened)."""
    x = _samples("samples", samples)
    mean, se = mean_se(x)
    return Estimate(mean, se, int(x.size))


@_validate.finite_result
def crossed_mean_se(seed_means, task_means) -> tuple:
    """Grand mean and SE of a seeds × tasks table from its margins (one test set shared by every seed).

    With ``v[s, t] = μ + a_s + b_t + c_st``, var(seed means)/S estimates ``σ_a²/S + σ_c²/(ST)`` and
    var(task means)/T estimates ``σ_b²/T + σ_c²/(ST)``; their sum is the variance of the grand mean,
    counting ``σ_c²/(ST)`` twice (slightly conservative).  A paired difference of two methods on the
    same seeds and tasks is the same estimator applied to the margins of the difference.

    Parameters
    ----------
    seed_means : array (S,), each seed's mean over the tasks.
    task_means : array (T,), each task's mean over the seeds.

    Returns
    -------
    (mean, se) : floats.
    """
    seed_means = _samples("seed_means", seed_means, 2)
    task_means = _samples("task_means", task_means, 2)
    var = seed_means.var(ddof=1) / seed_means.size + task_means.var(ddof=1) / task_means.size
    return float(seed_means.mean()), float(np.sqrt(var))


@_validate.finite_result
def crossed_table_mean_se(values) -> tuple:
    """:func:`crossed_mean_se` of a full table ``values`` (S, T)."""
    v = _validate.real_array("values", values)
    if v.ndim != 2 or min(v.shape) < 2:
        raise ValueError(f"values must be a (seeds, tasks) table with at least 2 seeds and 2 tasks, got shape {v.shape}")
    return crossed_mean_se(v.mean(axis=1), v.mean(axis=0))


@_validate.finite_result
def ratio_mean_se(num, den) -> tuple:
    """``mean(num)/mean(den)`` for paired samples and its delta-method standard error.

    Parameters
    ----------
    num, den : arrays (n,), paired samples.

    Returns
    -------
    (ratio, se) : floats.
    """
    num, den = _samples("num", num, 2), _samples("den", den, 2)
    if num.size != den.size:
        raise ValueError(f"num and den must be paired samples of the same size, got {num.size} and {den.size}")
    n = num.size
    a, b = num.mean(), den.mean()
    if b == 0:
        raise ValueError("den has mean 0: the ratio mean(num) / mean(den) is undefined")
    r = a / b
    cov = np.cov(num, den, ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n * b * b)
    return float(r), float(np.sqrt(max(var, 0.0)))


@_validate.finite_result
def crossed_difference_se(a, b=None) -> tuple:
    """:func:`crossed_mean_se` of the paired difference ``a − b`` (or of ``a``) of two methods' margins.

    ``a`` and ``b`` are records (dicts) holding the margins of one method's seeds × tasks table on a
    shared test set: ``"mc"`` (S,), each seed's mean over the tasks, and ``"mc_task_mean"`` (T,), each
    task's mean over the seeds.

    Returns
    -------
    (mean, se) : floats.
    """
    for name, rec in (("a", a), ("b", b)):
        if rec is None and name == "b":
            continue
        if not isinstance(rec, dict) or "mc" not in rec or "mc_task_mean" not in rec:
            raise _validate.ArgumentTypeError(f"{name} must be a record (dict) with the margins 'mc' and "
                                              f"'mc_task_mean', got {type(rec).__name__}")
    sa, ta = _samples("a['mc']", a["mc"], 2), _samples("a['mc_task_mean']", a["mc_task_mean"], 2)
    sb = 0.0 if b is None else _samples("b['mc']", b["mc"], 2)
    tb = 0.0 if b is None else _samples("b['mc_task_mean']", b["mc_task_mean"], 2)
    if b is not None and (sa.shape != sb.shape or ta.shape != tb.shape):
        raise ValueError(f"a and b must hold margins of the same table shape, got {sa.size}x{ta.size} and "
                         f"{sb.size}x{tb.size}")
    seed_means, task_means = sa - sb, ta - tb
    return crossed_mean_se(seed_means, task_means)
