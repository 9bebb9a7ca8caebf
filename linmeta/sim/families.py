"""Task families with a planted structure: low-rank representation families, and one landscape per run."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate
from .._random import as_generator
from ..tasks import GaussianRegression, TaskBatch, meta_batch
from ..theory.landscape import TwoCluster

REPRESENTATION_FAMILIES = ("isotropic", "low_rank")


def low_rank_basis(d: int, k: int, seed) -> np.ndarray:
    """A Haar-random orthonormal ``B*`` (d x k) from a seed."""
    d, k, seed = _dims(d, k, seed)
    rng = as_generator(np.random.SeedSequence([seed, 1013]))
    return np.linalg.qr(rng.standard_normal((d, k)))[0]


def _dims(d, k, seed):
    d = _validate.positive_int("d", d)
    k = _validate.positive_int("k", k)
    if k > d:
        raise ValueError(f"k must be at most d = {d} (a k-dimensional subspace of R^d), got k = {k}")
    return d, k, _validate.positive_int("seed", seed, allow_zero=True)


def representation_family(name: str, d: int, k: int, noise: float, mean_norm: float = 1.0, seed: int = 0,
                          head_var=None) -> GaussianRegression:
    """A scalar-output Gaussian regression family ``name`` in R^d.

    * ``"low_rank"``: ``w* = B* h`` with a fixed random orthonormal ``B*`` (d x k) and zero-mean heads
      ``h ~ N(0, diag(head_var))`` (``head_var`` (k,) defaults to ones), so tasks share a k-dimensional
      representation;
    * ``"isotropic"``: ``w* ~ N(μ, (k/d) I)`` with a random mean direction of norm ``mean_norm`` (the
      same total task variance k, no shared subspace).

    Label noise ``noise``; ``seed`` fixes ``B*`` or ``μ``.
    """
    _validate.one_of("name", name, REPRESENTATION_FAMILIES)
    d, k, seed = _dims(d, k, seed)
    noise = _validate.finite_float("noise", noise, non_negative=True)
    mean_norm = _validate.finite_float("mean_norm", mean_norm, non_negative=True)
    if name == "low_rank":
        B = low_rank_basis(d, k, seed)
        if head_var is None:
            mu2 = np.ones(k)
        else:
            mu2 = _validate.real_array("head_var", head_var)
            _validate.shape("head_var", mu2, (k,), describe=f"(k,) = ({k},)")
            if np.any(mu2 < 0):
                raise ValueError("head_var must be non-negative (variances of the heads)")
        cov = (B * mu2) @ B.T
        return GaussianRegression(d=d, out=1, cov=0.5 * (cov + cov.T), noise_std=noise)
    if name == "isotropic":
        if head_var is not None:
            raise ValueError("head_var applies to the 'low_rank' family only")
        rng = as_generator(np.random.SeedSequence([seed, 2027]))
        u = rng.standard_normal(d)
        mean = (mean_norm * u / np.linalg.norm(u))[None, :]
        return GaussianRegression(d=d, out=1, mean=mean, cov=k / d, noise_std=noise)
    raise ValueError(f"name must be one of {REPRESENTATION_FAMILIES}, got {name!r}")


@dataclass(frozen=True)
class TwoClusterRuns:
    """One isotropic easy/hard landscape per run, sampled with exact cluster counts.

    Run ``r`` draws its tasks from ``landscapes[r]`` (a :class:`linmeta.theory.landscape.TwoCluster`):
    of ``n`` tasks, the first ``n_hard(n)`` are hard (``Σ = ρ_H I``, optimum ``w_H + δ``) and the rest easy,
    with Gaussian ``δ ~ N(0, R²/d I)`` (``w_H = 0``, ``w_E = D e_1``, as :meth:`TwoCluster.family`).  Exact
    counts make the sample's MAML and NAL minimisers unbiased weighted means of the cluster means, whose
    expected excess risk is :func:`linmeta.theory.landscape.two_cluster_fixed_tasks`.

    It implements the task-family interface (``sample_tasks``, ``meta_batch``) with the run axis built in:
    ``sample_tasks(n, rng)`` returns tasks of shape ``(R, n, ...)`` for the ``R`` landscapes.
    """

    landscapes: tuple

    has_population_loss = True
    out = 1

    def __post_init__(self):
        if isinstance(self.landscapes, TwoCluster) or not isinstance(self.landscapes, (tuple, list)):
            raise _validate.ArgumentTypeError(f"landscapes must be a sequence of TwoCluster (for one landscape pass "
                                              f"(tc,)), got {type(self.landscapes).__name__}")
        ls = tuple(self.landscapes)
        if not ls or not all(isinstance(t, TwoCluster) for t in ls):
            raise ValueError("landscapes must be a non-empty sequence of linmeta.theory.landscape.TwoCluster")
        if len({t.d for t in ls}) != 1:
            raise ValueError("every landscape must have the same dimension d")
        object.__setattr__(self, "landscapes", ls)

    @property
    def d(self) -> int:
        return self.landscapes[0].d

    @property
    def n_runs(self) -> int:
        return len(self.landscapes)

    def n_hard(self, n_tasks: int) -> np.ndarray:
        """Hard tasks per run in a sample of ``n_tasks``: ``round(p_H n)``, kept within 1..n−1; array (R,)."""
        n_tasks = _validate.positive_int("n_tasks", n_tasks)
        if n_tasks < 2:
            raise ValueError(f"n_tasks must be at least 2 (one hard and one easy task), got {n_tasks}")
        p = np.array([t.p_hard for t in self.landscapes])
        return np.clip(np.round(p * n_tasks).astype(int), 1, n_tasks - 1)

    def sample_tasks(self, n_tasks: int, rng, *, n_runs: int | None = None):
        """Tasks of every run, a :class:`linmeta.TaskBatch` with ``w_star`` (R, n, 1, d); hard tasks first."""
        n_tasks = _validate.positive_int("n_tasks", n_tasks)
        if n_tasks < 2:
            raise ValueError(f"n_tasks must be at least 2 (one hard and one easy task), got {n_tasks}")
        _validate.optional_int("n_runs", n_runs)
        if n_runs is not None and n_runs != self.n_runs:
            raise ValueError(f"n_runs must be None or the number of landscapes ({self.n_runs}), got {n_runs}")
        rng = as_generator(rng)
        R, d = self.n_runs, self.d
        hard = np.arange(n_tasks)[None, :] < self.n_hard(n_tasks)[:, None]  # (R, n)
        col = lambda name: np.array([getattr(t, name) for t in self.landscapes])[:, None]  # noqa: E731
        radius = np.where(hard, col("radius_hard"), col("radius_easy"))
        rho = np.where(hard, col("rho_hard"), col("rho_easy"))
        centre = np.zeros((R, n_tasks, d))
        centre[..., 0] = np.where(hard, 0.0, col("distance"))
        w = centre + (radius / np.sqrt(d))[..., None] * rng.standard_normal((R, n_tasks, d))
        cov = rho[..., None, None] * np.eye(d)
        noise = np.broadcast_to(col("noise"), (R, n_tasks))
        return TaskBatch(w[..., None, :], cov, noise)

    def meta_batch(self, tasks, K, Q, rng):
        """Support and query losses of ``tasks`` (see :func:`linmeta.meta_batch`)."""
        return meta_batch(tasks, K, Q, rng)
