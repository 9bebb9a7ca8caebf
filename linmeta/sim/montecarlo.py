"""Monte Carlo estimates, with standard errors, of expected meta-losses and related quantities.

The expected meta-loss over random K-shot support sets is exact in closed form for
the shallow model (:mod:`linmeta.theory.shallow`, k ≤ 4 steps) and for deep models
after one step that adapts at most two layers (:mod:`linmeta.theory.deep_one_step`);
beyond that, these functions average the exact post-adaptation loss over many
sampled support sets (batched on the task axis) and report the standard error of
the mean.  The query side is the population
loss by default, i.e. the exact expectation over query sets.
"""
from __future__ import annotations

import numpy as np

from .. import _validate
from .._backend import to_numpy
from .._random import as_generator
from ..meta import adapted_map, meta_value_and_grad
from ..models import validate_params
from ..rule import InnerLoop
from ..tasks import MetaBatch, TaskBatch
from ..theory.metaopt import expected_softplus
from .evaluation import on_backend_of
from .stats import Estimate, estimate

#: floats of sampled inputs held at once by :func:`excess_samples`
CHUNK_ELEMS = 2_000_000


def _check_shots(K, Q=None):
    _validate.optional_int("K", K, none="the population support loss")
    _validate.optional_int("Q", Q, none="the population query loss")


def _check_family(family):
    if not hasattr(family, "sample_tasks") or not hasattr(family, "meta_batch"):
        raise _validate.ArgumentTypeError(f"family must be a task family (GaussianRegression, TaskMixture, ...), got "
                                          f"{type(family).__name__}")


@_validate.finite_result
def post_adaptation_samples(params, tasks: TaskBatch, K: int | None, rule: InnerLoop, *, draws: int, rng,
                            Q: int | None = None, precond=None, phi=None, chunk: int = 4096) -> np.ndarray:
    """Post-adaptation loss for ``draws`` independent support (and query) sets of each task.

    Parameters
    ----------
    params : one model (no run axis), layers (n_l, n_{l-1}) on any backend; the sampled sets are moved there.
    tasks : :class:`linmeta.TaskBatch` of T tasks.
    K, Q : support and query shots (``None``: the population).
    rule, precond, phi : the inner loop.
    draws : support sets per task; ``rng`` the Generator (or seed) drawing them; ``chunk`` tasks per batch.

    Returns
    -------
    numpy array (draws, T): each entry the query loss after adapting on one fresh K-shot support set
    (population query if ``Q`` is None).
    """
    draws = _validate.positive_int("draws", draws)
    chunk = _validate.positive_int("chunk", chunk)
    _check_shots(K, Q)
    _validate.instance("tasks", tasks, TaskBatch, "a linmeta.TaskBatch (from family.sample_tasks(n, rng))")
    if tasks.w_star.ndim != 3:
        raise ValueError(f"tasks must have no run axis (w_star of shape (T, out, d)), got {tasks.w_star.shape}")
    params = validate_params(params)
    _validate.instance("rule", rule, InnerLoop, "a linmeta.InnerLoop")  # precond and phi: checked by adapted_map
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
        batch = on_backend_of(MetaBatch(rep_tasks.moments(K, rng), rep_tasks.moments(Q, rng)), params)
        vals = to_numpy(batch.query.value(adapted_map(params, batch.support, rule, precond, phi)))
        out.append(vals.reshape(r, T))
        done += r
    return np.concatenate(out, axis=0)


def expected_meta_loss_mc(params, tasks: TaskBatch, K: int | None, rule: InnerLoop, *, draws: int, rng,
                          Q: int | None = None, precond=None, phi=None) -> Estimate:
    """Expected post-adaptation loss over the given tasks and random support sets, with its standard error."""
    return estimate(post_adaptation_samples(params, tasks, K, rule, draws=draws, rng=rng, Q=Q, precond=precond, phi=phi))


@_validate.finite_result
def excess_samples(inits, family, alpha: float, steps: int, K: int | None, n_tasks: int, rng, *,
                   sampling: str = "same") -> np.ndarray:
    """Post-adaptation excess population loss of several shallow initialisations on the same tasks and support sets.

    Parameters
    ----------
    inits : array (R, out, d), R shallow models.
    family : task family with ``sample_tasks`` (e.g. :meth:`linmeta.theory.landscape.TwoCluster.family`).
    alpha, steps : the inner rule.
    K : support samples per inner gradient (``None``: population gradients).
    n_tasks : tasks drawn (in chunks of about :data:`CHUNK_ELEMS` sampled floats).
    sampling : ``"same"`` (the engine's inner loop on one support set) or ``"fresh"`` (a new batch per step).

    Returns
    -------
    array (R, n_tasks): ``f_i(W') − ½ out ν²`` for each init and task.
    """
    _check_family(family)
    alpha = _validate.finite_float("alpha", alpha)
    steps = _validate.positive_int("steps", steps, allow_zero=True)
    _check_shots(K)
    n_tasks = _validate.positive_int("n_tasks", n_tasks)
    _validate.one_of("sampling", sampling, ("same", "fresh"))
    inits = _validate.real_array("inits", inits)
    _validate.shape("inits", inits, (None, family.out, family.d), describe=f"(R, out, d) = (R, {family.out}, {family.d})")
    rng = as_generator(rng)
    per = max(1, CHUNK_ELEMS // ((K or 1) * family.d * max(1, steps if sampling == "fresh" else 1)))
    out, done = [], 0
    while done < n_tasks:
        nc = min(per, n_tasks - done)
        tasks = family.sample_tasks(nc, rng)
        query = tasks.population()
        if sampling == "same" or K is None or steps == 0:
            support = tasks.moments(K, rng)
            M = adapted_map((inits,), support, InnerLoop(steps=steps, alpha=alpha))  # (R, nc, out, d)
        else:
            M = inits[:, None]
            for _ in range(steps):  # a fresh K-sample batch per step, the engine's loss gradient
                M = M - alpha * tasks.moments(K, rng).grad(M)
        out.append(np.asarray(query.value(M)) - 0.5 * tasks.out * tasks.noise_std**2)
        done += nc
    return np.concatenate(out, axis=-1)


@_validate.finite_result
def meta_gradient_batches(W, family, rule: InnerLoop, K: int | None, batches: int, tasks: int, rng) -> np.ndarray:
    """The engine's meta-gradient of a shallow model ``W`` (out, d) on independent task batches.

    Support: ``K`` samples (or the population); query: the population loss.

    Returns
    -------
    array (batches, out, d).
    """
    _check_family(family)
    _validate.instance("rule", rule, InnerLoop, "a linmeta.InnerLoop")
    _check_shots(K)
    batches = _validate.positive_int("batches", batches)
    tasks = _validate.positive_int("tasks", tasks)
    W = _validate.real_array("W", W)
    _validate.shape("W", W, (family.out, family.d), describe=f"(out, d) = ({family.out}, {family.d})")
    rng = as_generator(rng)
    out = []
    for _ in range(batches):
        batch = family.meta_batch(family.sample_tasks(tasks, rng), K, None, rng)
        out.append(meta_value_and_grad((W,), batch.support, batch.query, rule).params[0])
    return np.stack(out)


@_validate.finite_result
def logr_zero_init_limits(alpha: float, d: int, K: int, label_noise: float = 0.0, *, samples: int = 400_000,
                          rng=0) -> dict:
    """Expected post-adaptation accuracy and query loss of LogR after one step from ``w = 0``, by Monte Carlo.

    Isotropic inputs; any task distribution (only the direction of ``w*`` matters).  One inner step
    from ``w = 0`` on K samples gives ``w' = (α/2K) Σ_i s_i |x_i·u| u + (α/2K) Σ_i (I − uuᵀ) x_i s_i``, so
    the adapted model reduces to two scalars: ``a`` along ``w*`` and ``‖b‖`` across it
    (:mod:`linmeta.theory.metaopt`); the accuracy of a direction at angle θ to ``w*`` is
    ``(1 − p)(1 − θ/π) + pθ/π`` and its expected query loss is :func:`~linmeta.theory.metaopt.expected_softplus`
    of ``‖w'‖``.  This averages those two closed forms over ``samples`` draws of ``(a, ‖b‖)``.

    Returns
    -------
    dict with ``accuracy``, ``accuracy_se``, ``loss``, ``loss_se`` (the standard errors of the
    Monte Carlo over the two scalars) and ``loss_first_order`` = ``log 2 − α(1 − 2p)²/(2π)``.
    """
    alpha = _validate.finite_float("alpha", alpha, positive=True)
    d = _validate.positive_int("d", d)
    K = _validate.positive_int("K", K)
    p = _validate.finite_float("label_noise", label_noise, non_negative=True)
    if p > 0.5:
        raise ValueError(f"label_noise must be in [0, 0.5], got {p}")
    samples = _validate.positive_int("samples", samples)
    rng = as_generator(rng)
    acc, loss = [], []
    chunk = max(1, 2_000_000 // K)
    done = 0
    while done < samples:
        n = min(chunk, samples - done)
        t = np.abs(rng.standard_normal((n, K)))
        s = np.where(rng.random((n, K)) < p, -1.0, 1.0)
        a = alpha / (2 * K) * np.sum(s * t, axis=1)
        b = alpha / (2 * np.sqrt(K)) * np.sqrt(rng.chisquare(d - 1, n)) if d > 1 else np.zeros(n)
        theta = np.arctan2(b, a)
        acc.append((1 - p) * (1 - theta / np.pi) + p * theta / np.pi)
        loss.append(expected_softplus(np.hypot(a, b)))
        done += n
    acc, loss = np.concatenate(acc), np.concatenate(loss)
    mean_a = 0.5 * alpha * (1 - 2 * p) * np.sqrt(2 / np.pi)
    linear = (1 - 2 * p) * mean_a / np.sqrt(2 * np.pi)
    acc_est, loss_est = estimate(acc), estimate(loss)
    return {
        "accuracy": acc_est.mean, "accuracy_se": acc_est.stderr,
        "loss": loss_est.mean - linear, "loss_se": loss_est.stderr,
        "loss_first_order": float(np.log(2.0) - alpha * (1 - 2 * p) ** 2 / (2 * np.pi)),
    }

