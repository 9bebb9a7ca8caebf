r"""Simulated MAML and FO-MAML fixed points: SGD meta-training with the engine, and full-batch GD on fixed tasks.

The closed forms are :mod:`linmeta.theory.fo_bias`.  Both objectives are quadratic in the shallow
model and the engine's stochastic meta-gradient on fresh tasks is an affine function of ``w`` with
random coefficients independent of ``w``, so the *mean* SGD iterate converges to the closed-form
fixed point exactly (``E w_{t+1} = (I − η J) E w_t + η c``); the average of the late iterates of one
run is therefore an unbiased estimate of it once the transient has decayed, and independent runs
(the run axis) give its standard error.  MAML and FO-MAML are trained with the same seed, hence on
the same task stream (common random numbers), so the per-run difference estimates the bias with a
much smaller standard error than two independent estimates would.
"""
from __future__ import annotations

import numpy as np

import linmeta as lm

from .. import _validate
from .stability_sweep import FixedQuadraticTasks, task_losses


def sgd_late_average(family, rule: lm.InnerLoop, *, runs: int, burn: int, average: int, lr: float,
                     tasks_per_step: int, K: int | None = None, seed=0, w0=None) -> np.ndarray:
    """Mean of the SGD iterates over steps ``burn+1 .. burn+average`` of each run (``linmeta.meta_train``).

    Parameters
    ----------
    family : task family (e.g. a :class:`linmeta.TaskMixture`), shallow model ``(out, d)``.
    rule : the inner loop (``first_order=True`` for FO-MAML; ``inner_loss="population"`` or K-shot).
    runs : independent runs on the run axis. burn, average : steps discarded, then averaged.
    lr : SGD learning rate. tasks_per_step : fresh tasks per step. K : support shots (ignored for population).
    seed : fixes every draw (same seed, same task stream). w0 : array (out, d) start (default zeros).

    Returns
    -------
    array (runs, out, d).
    """
    runs = _validate.positive_int("runs", runs)
    burn = _validate.positive_int("burn", burn, allow_zero=True)
    average = _validate.positive_int("average", average)
    W0 = np.zeros((family.out, family.d)) if w0 is None else np.asarray(w0, dtype=float).reshape(family.out, family.d)
    acc = {"sum": np.zeros((runs, family.out, family.d))}

    def callback(step, params, phi, history):
        if step > burn:
            acc["sum"] += params[0]

    lm.meta_train((np.broadcast_to(W0, (runs,) + W0.shape).copy(),), family, rule, steps=burn + average, lr=lr,
                  optimizer="sgd", tasks_per_step=tasks_per_step, K=K, Q=None, eval_tasks=1,
                  eval_every=burn + average, seed=seed, progress=False, check_stability=False, callback=callback)
    return acc["sum"] / average


def paired_fixed_points(family, alpha: float, steps: int, *, K: int | None = None, **kw) -> dict:
    """MAML and FO-MAML late averages trained on the same task stream: ``{"maml", "fo"}`` arrays (runs, out, d)."""
    inner = "population" if K is None else "support"
    out = {}
    for name, fo in (("maml", False), ("fo", True)):
        rule = lm.InnerLoop(steps=steps, alpha=alpha, first_order=fo, inner_loss=inner)
        out[name] = sgd_late_average(family, rule, K=K, **kw)
    return out


def full_batch_fixed_point(hessians, optima, alpha: float, steps: int, *, first_order: bool, weights=None,
                           lr: float = 1.0, iters: int = 2000) -> np.ndarray:
    """Outer gradient descent (``linmeta.meta_train``, full batch) on a fixed task set: the converged ``w`` (d,).

    Task ``i`` is ``½(w − w_i)ᵀH_i(w − w_i)``; inner steps use the task loss itself.
    """
    H = np.asarray(hessians, dtype=float)
    T, d = H.shape[0], H.shape[-1]
    p = np.full(T, 1.0 / T) if weights is None else np.asarray(weights, dtype=float)
    fam = FixedQuadraticTasks(task_losses(H, optima), task_losses(H, optima, T * p))
    rule = lm.InnerLoop(steps=steps, alpha=alpha, first_order=first_order, inner_loss="population")
    res = lm.meta_train((np.zeros((1, d)),), fam, rule, steps=iters, lr=lr, optimizer="sgd", tasks_per_step=T,
                        K=None, Q=None, eval_tasks=T, eval_every=iters, seed=0, progress=False, check_stability=False)
    return res.params[0][0]
