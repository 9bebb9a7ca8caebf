r"""Simulation for the convex / non-convex separation (Saunshi, Zhang, Khodak & Arora 2020).

Tasks are linear regressions whose regressors lie on one line with zero mean: ``w* = ±c·u`` (a fair
sign), ``x ~ N(0, I_d)``, ``y = w*ᵀx + σε``.  :class:`LineTasks` samples them for
:func:`linmeta.meta_train`; the rest measures new-task errors by Monte Carlo: the convex learner
(a linear model's learned initialisation, then least squares to convergence or one gradient step) and
meta-trained deep linear networks adapted by the engine's inner loop.  The error of an adapted map
``M'`` on a task ``w*`` is the population excess risk ``½‖M' − w*‖²`` (Σ = I).  Closed forms:
:mod:`linmeta.theory.separation`.
"""
from __future__ import annotations

import numpy as np

import linmeta as lm

from .. import _validate


class LineTasks:
    """Regression tasks with ``w* = s·c·u``, ``s = ±1`` with probability ½ each, ``x ~ N(0, I_d)``.

    Parameters
    ----------
    u : array (d,), the task direction (normalised here).
    c : task scale. noise_std : label noise σ.
    """

    has_population_loss = True
    out = 1

    def __init__(self, u, c: float = 1.0, noise_std: float = 0.0):
        u = np.asarray(u, dtype=float).reshape(-1)
        _validate.finite_array("u", u)
        n = float(np.linalg.norm(u))
        if n == 0:
            raise ValueError("u must be a non-zero vector")
        self.u = u / n
        self.c = _validate.finite_float("c", c, positive=True)
        self.noise_std = _validate.finite_float("noise_std", noise_std, non_negative=True)

    @property
    def d(self) -> int:
        return self.u.size

    def sample_tasks(self, n_tasks: int, rng, *, n_runs: int | None = None) -> lm.TaskBatch:
        n_tasks = _validate.positive_int("n_tasks", n_tasks)
        lead = (n_tasks,) if n_runs is None else (_validate.positive_int("n_runs", n_runs), n_tasks)
        s = np.where(lm.as_generator(rng).random(lead) < 0.5, -1.0, 1.0)
        w = (s[..., None] * self.c * self.u)[..., None, :]
        return lm.TaskBatch(w, np.broadcast_to(np.eye(self.d), lead + (self.d, self.d)), np.full(lead, self.noise_std))

    def both_tasks(self) -> lm.TaskBatch:
        """The two tasks ``±c·u`` (equally likely): an exact expectation over tasks is their mean."""
        w = np.stack([self.c * self.u, -self.c * self.u])[:, None, :]
        return lm.TaskBatch(w, np.broadcast_to(np.eye(self.d), (2, self.d, self.d)), np.full(2, self.noise_std))

    def meta_batch(self, tasks, K, Q, rng):
        return lm.meta_batch(tasks, K, Q, rng)


def _errors(M, w):
    """``½‖M − w‖²`` per task: M (*, T, 1, d), w (T, 1, d) -> (*, T)."""
    return 0.5 * np.sum((M - w) ** 2, axis=(-2, -1))


CHUNK = 2048  # tasks per batch of the Monte Carlo estimators (bounds the memory of the d × d support moments)


def _chunks(tasks):
    tasks = _validate.positive_int("tasks", tasks)
    return [min(CHUNK, tasks - i) for i in range(0, tasks, CHUNK)]


def adapted_errors(params, family: LineTasks, n: int, rule: lm.InnerLoop, *, tasks: int, rng) -> np.ndarray:
    """New-task excess risk of ``params`` adapted by ``rule`` on ``n`` support samples (engine), per run and task.

    Returns
    -------
    array (*runs, tasks).
    """
    rng = lm.as_generator(rng)
    n = _validate.positive_int("n", n)
    out = []
    for size in _chunks(tasks):
        tb = family.sample_tasks(size, rng)
        M = lm.adapted_map(params, tb.moments(n, rng), rule)
        out.append(_errors(M, tb.w_star))
    return np.concatenate(out, axis=-1)


def least_squares_errors(w0, family: LineTasks, n: int, *, tasks: int, rng) -> np.ndarray:
    """The convex learner run to convergence: from the initialisation ``w0`` (d,), the least-squares solution
    closest to ``w0`` on ``n`` samples (gradient descent's limit), ``ŵ = w0 + X⁺(y − X w0)``: errors (tasks,)."""
    rng = lm.as_generator(rng)
    n = _validate.positive_int("n", n)
    w0 = np.asarray(w0, dtype=float).reshape(1, 1, -1)
    out = []
    for size in _chunks(tasks):
        tb = family.sample_tasks(size, rng)
        X, Y = tb.sample_data(n, rng)  # (T, n, d), (T, n, 1)
        resid = Y - X @ np.swapaxes(w0, -1, -2)
        Xt = np.swapaxes(X, -1, -2)
        if n < family.d:  # minimum-norm correction Xᵀ(XXᵀ)⁻¹r (XXᵀ is invertible with probability 1)
            step = Xt @ np.linalg.solve(X @ Xt, resid)
        else:  # the unique least-squares solution (XᵀX)⁻¹Xᵀy
            step = np.linalg.solve(Xt @ X, Xt @ resid)
        out.append(_errors(w0 + np.swapaxes(step, -1, -2), tb.w_star))
    return np.concatenate(out, axis=-1)


def alignment(W1, u) -> np.ndarray:
    """``|⟨v₁, u⟩|`` for the top right singular vector ``v₁`` of each first layer W1 (*runs, h, d): array (*runs,)."""
    _, _, Vt = np.linalg.svd(np.asarray(W1, dtype=float))
    return np.abs(Vt[..., 0, :] @ np.asarray(u, dtype=float))


def projection_gain(params, u, alpha: float) -> dict:
    """What a one-step rule does with the learned net near ``M = 0``: the preconditioner ``P = α(W1ᵀW1 + ‖W2‖²I)``.

    Returns ``gamma = uᵀPu`` (the step along u), ``leak = ‖P − uuᵀPuuᵀ‖_F`` (the step off u) and ``M_norm``
    (‖W2 W1‖, which the projection model assumes zero), arrays (*runs,).
    """
    W1, W2 = (np.asarray(W, dtype=float) for W in params[:2])
    d = W1.shape[-1]
    P = alpha * (np.swapaxes(W1, -1, -2) @ W1 + np.sum(W2**2, axis=(-2, -1))[..., None, None] * np.eye(d))
    uu = np.outer(u, u)
    gamma = np.einsum("i,...ij,j->...", u, P, u)
    return {"gamma": gamma, "leak": np.linalg.norm(P - gamma[..., None, None] * uu, axis=(-2, -1)),
            "M_norm": np.linalg.norm(W2 @ W1, axis=(-2, -1))}
