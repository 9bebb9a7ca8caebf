r"""Simulation of Gao & Sener's MAML-vs-DRS comparison (NeurIPS 2020), batched over trials.

Tasks (:class:`linmeta.theory.tradeoff.TradeoffTasks`): ``Θ ~ U(0, β)^p``, a Haar rotation ``U``,
``Q = U diag(Θ) Uᵀ``, noise variance ``σ ~ U(0, β)``; ``x ~ N(0, Q)``, ``y = xᵀΘ + N(0, σ)``.  A trial
draws M tasks with 2N points each, split into a support half ``(X₁, Y₁)`` and a query half
``(X₂, Y₂)``, and fits (as in isl-org/MetaLearningTradeoffs, ``linear_regression/algorithms.py``)

* DRS, pooled least squares over both halves: ``W = Σ_t (X₁ᵀX₁ + X₂ᵀX₂)/(2MN)``, ``z = Σ_t (X₁ᵀY₁ + X₂ᵀY₂)/(2MN)``;
* MAML with one inner step α: ``S_t = I − (α/N) X₁ᵀX₁``, ``W = Σ_t S_t X₂ᵀX₂ S_t/(MN)``,
  ``z = Σ_t S_t X₂ᵀ(Y₂ − (α/N) X₂ X₁ᵀY₁)/(MN)``;

and ``θ̂ = W⁺ z`` (their ``lstsq``; the pseudo-inverse here).  Only the sufficient statistics
``XᵀX`` and ``Xᵀy`` of each half enter, so they are drawn from their exact joint law instead of the
points: ``XᵀX = L ZᵀZ Lᵀ`` (``L = U diag(√Θ)``) with ``ZᵀZ`` Wishart by the Bartlett decomposition
``C Cᵀ`` when ``N ≥ p`` (``Zᵀε = √σ C w``, ``w ~ N(0, I)``) and from ``Z`` itself when ``N < p``.
The cost per task is independent of N.  The MAML sums are polynomials in α (degree 2), formed once
per trial for every α of a grid.

Expected losses of the fitted models are the closed forms of :mod:`linmeta.theory.tradeoff`
(exact) or Gao & Sener's Monte Carlo estimates of the same coefficients (:func:`mc_moments`:
1000 tasks, and 1000 inputs per task for ``V = E[xxᵀQxxᵀ] − Q³``), assembled by :func:`mc_loss`.
:func:`updated_loss_samples` simulates the test-time step itself (fresh task, N points, one SGD
step, the task's population loss), which checks the closed form directly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate, as_generator


def haar_rotations(rng, shape, p: int):
    """Haar-distributed rotations (det +1) of R^p, shape ``shape + (p, p)``."""
    if p == 1:
        return np.ones(shape + (1, 1))
    G = rng.standard_normal(shape + (p, p))
    Qm, R = np.linalg.qr(G)
    Qm = Qm * np.sign(np.diagonal(R, axis1=-2, axis2=-1))[..., None, :]    # Haar on O(p)
    det = np.linalg.det(Qm)
    Qm[..., :, 0] *= np.sign(det)[..., None]                               # → SO(p)
    return Qm


@dataclass(frozen=True)
class Tasks:
    """Sampled tasks: ``Theta`` (..., p), ``U`` (..., p, p), ``sigma`` (...) (noise variance)."""

    Theta: np.ndarray
    U: np.ndarray
    sigma: np.ndarray

    @property
    def Q(self):
        return (self.U * self.Theta[..., None, :]) @ np.swapaxes(self.U, -1, -2)


def sample_tasks(tasks, shape, rng) -> Tasks:
    """Draw tasks of the distribution ``tasks`` (:class:`~linmeta.theory.tradeoff.TradeoffTasks`)."""
    rng = as_generator(rng)
    shape = tuple(shape)
    Theta = rng.uniform(0.0, tasks.beta, shape + (tasks.p,))
    U = haar_rotations(rng, shape, tasks.p)
    return Tasks(Theta, U, rng.uniform(0.0, tasks.beta, shape))


def sufficient_statistics(t: Tasks, N: int, rng):
    """``(XᵀX, Xᵀy)`` of N points of each task, drawn from their exact joint law.

    Returns
    -------
    XtX : array (..., p, p);  Xty : array (..., p).
    """
    N = _validate.positive_int("N", N)
    rng = as_generator(rng)
    shape, p = t.Theta.shape[:-1], t.Theta.shape[-1]
    L = t.U * np.sqrt(t.Theta)[..., None, :]                               # Q = L Lᵀ
    if N >= p:
        # Bartlett: ZᵀZ = C Cᵀ, C lower triangular, C_ii² ~ χ²_{N−i}, C_ij ~ N(0, 1) below the diagonal
        C = np.tril(rng.standard_normal(shape + (p, p)), -1)
        diag = np.sqrt(rng.chisquare(N - np.arange(p), size=shape + (p,)))
        C[..., np.arange(p), np.arange(p)] = diag
        LC = L @ C
        XtX = LC @ np.swapaxes(LC, -1, -2)
        noise = np.sqrt(t.sigma)[..., None] * np.einsum("...ij,...j->...i", LC, rng.standard_normal(shape + (p,)))
    else:
        Z = rng.standard_normal(shape + (N, p))
        X = Z @ np.swapaxes(L, -1, -2)
        XtX = np.swapaxes(X, -1, -2) @ X
        eps = np.sqrt(t.sigma)[..., None] * rng.standard_normal(shape + (N,))
        noise = np.einsum("...np,...n->...p", X, eps)
    return XtX, np.einsum("...ij,...j->...i", XtX, t.Theta) + noise


def _solve(W, z):
    return np.einsum("...ij,...j->...i", np.linalg.pinv(W), z)


def drs_estimate(stats1, stats2):
    """Pooled least squares over both halves; inputs ``(XᵀX, Xᵀy)`` with a task axis: (T, M, p, p), (T, M, p).

    Returns
    -------
    array (T, p).
    """
    (B, c1), (A, c2) = stats1, stats2
    return _solve((B + A).sum(-3), (c1 + c2).sum(-2))      # the 1/(2MN) normalisation cancels


def maml_estimate(stats1, stats2, N: int, alphas):
    """Gao & Sener's closed-form MAML estimator for every α of a grid.

    Parameters
    ----------
    stats1, stats2 : ``(XᵀX, Xᵀy)`` of the support and query halves, (T, M, p, p) and (T, M, p).
    N : points per half;  alphas : array (k,).

    Returns
    -------
    array (k, T, p).
    """
    (B, c1), (A, c2) = stats1, stats2
    a = np.atleast_1d(np.asarray(alphas, dtype=float))[:, None, None, None] / N
    BA = B @ A
    # W = Σ S A S = Σ [A − (α/N)(BA + AB) + (α/N)² B A B],  z = Σ S (c₂ − (α/N) A c₁)
    W0, W1, W2 = A.sum(-3), (BA + np.swapaxes(BA, -1, -2)).sum(-3), (BA @ B).sum(-3)
    mv = lambda X, v: np.einsum("...ij,...j->...i", X, v)  # noqa: E731
    z0, z1, z2 = c2.sum(-2), (mv(B, c2) + mv(A, c1)).sum(-2), mv(BA, c1).sum(-2)
    W = W0 - a * W1 + a**2 * W2
    z = z0 - a[..., 0] * z1 + a[..., 0] ** 2 * z2
    return _solve(W, z)


def trial_estimates(tasks, M: int, N: int, trials: int, alphas, rng) -> dict:
    """DRS and MAML estimates of ``trials`` independent trials of M tasks with 2N points each.

    Returns
    -------
    dict with ``drs`` (trials, p) and ``maml`` (k, trials, p).
    """
    M, N, trials = (_validate.positive_int(n, v) for n, v in (("M", M), ("N", N), ("trials", trials)))
    rng = as_generator(rng)
    t = sample_tasks(tasks, (trials, M), rng)
    s1 = sufficient_statistics(t, N, rng)
    s2 = sufficient_statistics(t, N, rng)
    return {"drs": drs_estimate(s1, s2), "maml": maml_estimate(s1, s2, N, alphas)}


def mc_moments(tasks, rng, task_draws: int = 1000, x_draws: int = 1000) -> dict:
    """Gao & Sener's Monte Carlo estimates of the loss moments, with per-task samples for SEs.

    Each quantity is averaged over ``task_draws`` sampled tasks; ``V = E[xxᵀQxxᵀ] − Q³`` of a task is
    itself averaged over ``x_draws`` inputs ``x ~ N(0, Q)``.

    Returns
    -------
    dict of per-task samples: ``EQk`` (n, p, p) for k = 1..3, ``EV`` (n, p, p), ``EQkT``/``EVT`` (n, p),
    ``ETQkT``/``ETVT`` (n,), ``Es`` (n,), ``EsQ2`` (n,).  Means over axis 0 are the estimates
    (:func:`mc_estimates`).
    """
    rng = as_generator(rng)
    t = sample_tasks(tasks, (task_draws,), rng)
    Q = t.Q
    Th = t.Theta
    out = {}
    Qk = Q
    for k in (1, 2, 3):
        out[f"EQ{k}"] = Qk
        out[f"EQ{k}T"] = np.einsum("nij,nj->ni", Qk, Th)
        out[f"ETQ{k}T"] = np.einsum("ni,ni->n", Th, out[f"EQ{k}T"])
        Qk = Qk @ Q
    L = t.U * np.sqrt(t.Theta)[..., None, :]
    x = np.einsum("nij,nsj->nsi", L, rng.standard_normal((task_draws, x_draws, tasks.p)))
    xQx = np.einsum("nsi,nij,nsj->ns", x, Q, x)
    V = np.einsum("ns,nsi,nsj->nij", xQx, x, x) / x_draws - out["EQ3"]
    out["EV"] = V
    out["EVT"] = np.einsum("nij,nj->ni", V, Th)
    out["ETVT"] = np.einsum("ni,ni->n", Th, out["EVT"])
    out["Es"] = t.sigma
    out["EsQ2"] = t.sigma * np.trace(Q @ Q, axis1=-2, axis2=-1)
    return out


def mc_loss(moments: dict, theta, N: int | None = None, alpha: float = 0.0):
    """Gao & Sener's expected loss of ``theta`` (..., p) from (Monte Carlo) moments, shape (...).

    ``Qterm − 2α Q2term + α² Q3term + α² Vterm/N + Eσ/2 + α² E[σ tr Q²]/(2N)`` with
    ``Xterm = ½ θᵀ E[X] θ − E[XΘ]ᵀθ + ½ E[ΘᵀXΘ]``; ``N=None`` is the pre-update loss.  ``moments``
    holds the estimates (as returned by :func:`mc_moments` averaged over axis 0); see
    :func:`mc_loss_samples` for the per-task terms whose mean this is.
    """
    m = {k: np.asarray(v, dtype=float) for k, v in moments.items()}
    t = np.asarray(theta, dtype=float)
    inv_N = 0.0 if N is None else 1.0 / N

    def term(k):
        return 0.5 * np.einsum("...i,ij,...j->...", t, m[f"E{k}"], t) - t @ m[f"E{k}T"] + 0.5 * m[f"ET{k}T"]

    return (term("Q1") - 2 * alpha * term("Q2") + alpha**2 * term("Q3") + alpha**2 * inv_N * term("V")
            + m["Es"] / 2 + alpha**2 * inv_N * m["EsQ2"] / 2)


def mc_estimates(samples: dict) -> dict:
    """The Monte Carlo estimates (means over the sampled tasks) of :func:`mc_moments`' samples."""
    return {k: np.mean(v, axis=0) for k, v in samples.items()}


def mc_loss_samples(samples: dict, theta, N: int | None = None, alpha: float = 0.0):
    """Per-sampled-task terms of :func:`mc_loss` for one model ``theta`` (p,): shape (n,), mean = the estimate.

    Their standard deviation over the tasks gives the Monte Carlo SE of Gao & Sener's expected loss.
    """
    t = np.asarray(theta, dtype=float)
    inv_N = 0.0 if N is None else 1.0 / N

    def term(k):
        return (0.5 * np.einsum("i,nij,j->n", t, samples[f"E{k}"], t) - samples[f"E{k}T"] @ t
                + 0.5 * samples[f"ET{k}T"])

    return (term("Q1") - 2 * alpha * term("Q2") + alpha**2 * term("Q3") + alpha**2 * inv_N * term("V")
            + samples["Es"] / 2 + alpha**2 * inv_N * samples["EsQ2"] / 2)


def updated_loss_samples(tasks, theta, N: int | None, alpha: float, n_tasks: int, rng):
    """Population loss of ``theta`` (p,) on ``n_tasks`` fresh tasks after one SGD step on N of their points.

    ``N=None`` (or α = 0) scores ``theta`` itself.  Returns (n_tasks,): ``½(θ' − Θ)ᵀQ(θ' − Θ) + σ/2``.
    """
    rng = as_generator(rng)
    t = sample_tasks(tasks, (_validate.positive_int("n_tasks", n_tasks),), rng)
    th = np.broadcast_to(np.asarray(theta, dtype=float), t.Theta.shape)
    if N is not None and alpha != 0:
        XtX, Xty = sufficient_statistics(t, N, rng)
        grad = (np.einsum("nij,nj->ni", XtX, th) - Xty) / N
        th = th - alpha * grad
    e = th - t.Theta
    return 0.5 * np.einsum("ni,nij,nj->n", e, t.Q, e) + 0.5 * t.sigma


def bootstrap_estimates(samples: dict, replicas: int, rng) -> dict:
    """Bootstrap replicas of the Monte Carlo estimates: resample the sampled tasks with replacement.

    Returns
    -------
    dict like :func:`mc_estimates` with a leading replica axis (replicas, ...).
    """
    rng = as_generator(rng)
    n = next(iter(samples.values())).shape[0]
    idx = rng.integers(0, n, (_validate.positive_int("replicas", replicas), n))
    return {k: np.mean(np.asarray(v)[idx], axis=1) for k, v in samples.items()}


def mc_loss_difference(estimates: dict, theta1, theta2, N: int | None = None, alpha: float = 0.0):
    """``L(θ₁) − L(θ₂)`` of Gao & Sener's assembled loss for stacked estimates (B, ...) and models (T, p).

    The constant terms cancel.  Returns (B, T).
    """
    t1, t2 = (np.asarray(t, dtype=float) for t in (theta1, theta2))
    inv_N = 0.0 if N is None else 1.0 / N

    def term(k):
        E, ET = np.asarray(estimates[f"E{k}"]), np.asarray(estimates[f"E{k}T"])
        quad = 0.5 * (np.einsum("ti,bij,tj->bt", t1, E, t1) - np.einsum("ti,bij,tj->bt", t2, E, t2))
        return quad - np.einsum("bi,ti->bt", ET, t1 - t2)

    return term("Q1") - 2 * alpha * term("Q2") + alpha**2 * term("Q3") + alpha**2 * inv_N * term("V")
