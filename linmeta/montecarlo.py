"""Monte Carlo estimates, with standard errors, of expected meta-losses.

The expected meta-loss over random K-shot support sets is exact in closed form for
the shallow model (:mod:`linmeta.theory.shallow`, k ≤ 4 steps) and for deep models
after one step that adapts at most two layers (:mod:`linmeta.theory.deep_one_step`);
beyond that, these functions average the exact post-adaptation loss over many
sampled support sets (batched on the task axis) and report the standard error of
the mean.  The query side is the population
loss by default, i.e. the exact expectation over query sets.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validate
from ._random import as_generator
from .meta import adapted_map
from .rule import InnerLoop
from .tasks import TaskBatch


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo mean with its standard error (``n`` samples)."""

    mean: float
    stderr: float
    n: int

    def z(self, reference: float) -> float:
        """Distance to ``reference`` in standard errors."""
        return (self.mean - reference) / self.stderr if self.stderr > 0 else np.inf * np.sign(self.mean - reference)


def estimate(samples) -> Estimate:
    """Mean and standard error of a 1-D sample."""
    x = np.asarray(samples, dtype=float).reshape(-1)
    return Estimate(float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)), int(x.size))


def post_adaptation_samples(params, tasks: TaskBatch, K: int | None, rule: InnerLoop, *, draws: int, rng,
                            Q: int | None = None, precond=None, phi=None, chunk: int = 4096) -> np.ndarray:
    """Post-adaptation loss for ``draws`` independent support (and query) sets of each task.

    Returns
    -------
    array (draws, T): each entry the query loss after adapting on one fresh K-shot support set
    (population query if ``Q`` is None).
    """
    draws = _validate.positive_int("draws", draws)
    if params[0].ndim != 2:
        raise ValueError(f"params must be one model without a run axis (layers of shape (n_out, n_in)); got "
                         f"params[0] of shape {tuple(params[0].shape)}: estimate each run separately")
    rng = as_generator(rng)
    T = tasks.n_tasks
    reps = max(1, chunk // T)
    out = []
    done = 0
    while done < draws:
        r = min(reps, draws - done)
        idx = np.tile(np.arange(T), r)
        rep_tasks = tasks.take(idx)
        support = rep_tasks.moments(K, rng)
        query = rep_tasks.moments(Q, rng)
        vals = np.asarray(query.value(adapted_map(params, support, rule, precond, phi)))
        out.append(vals.reshape(r, T))
        done += r
    return np.concatenate(out, axis=0)


def expected_meta_loss_mc(params, tasks: TaskBatch, K: int | None, rule: InnerLoop, *, draws: int, rng,
                          Q: int | None = None, precond=None, phi=None) -> Estimate:
    """Expected post-adaptation loss over the given tasks and random support sets, with its standard error."""
    return estimate(post_adaptation_samples(params, tasks, K, rule, draws=draws, rng=rng, Q=Q, precond=precond, phi=phi))

