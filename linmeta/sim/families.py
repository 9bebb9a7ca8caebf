"""Task families with a planted structure, built from a seed (the representation-learning settings)."""
from __future__ import annotations

import numpy as np

from .._random import as_generator
from ..tasks import GaussianRegression

REPRESENTATION_FAMILIES = ("isotropic", "low_rank")


def low_rank_basis(d: int, k: int, seed) -> np.ndarray:
    """A Haar-random orthonormal ``B*`` (d x k) from a seed."""
    rng = as_generator(np.random.SeedSequence([int(seed), 1013]))
    return np.linalg.qr(rng.standard_normal((d, k)))[0]


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
    if name == "low_rank":
        B = low_rank_basis(d, k, seed)
        mu2 = np.ones(k) if head_var is None else np.asarray(head_var, dtype=float)
        cov = (B * mu2) @ B.T
        return GaussianRegression(d=d, out=1, cov=0.5 * (cov + cov.T), noise_std=noise)
    if name == "isotropic":
        rng = as_generator(np.random.SeedSequence([int(seed), 2027]))
        u = rng.standard_normal(d)
        mean = (mean_norm * u / np.linalg.norm(u))[None, :]
        return GaussianRegression(d=d, out=1, mean=mean, cov=k / d, noise_std=noise)
    raise ValueError(f"name must be one of {REPRESENTATION_FAMILIES}, got {name!r}")
