"""Meta-training recipes shared by the experiments: one Adam run read at checkpoints, and a two-phase run."""
from __future__ import annotations

import numpy as np

from .. import _validate
from ..models import init_deep_linear, validate_params
from ..train import meta_train


def checkpoint_steps(steps: int, checkpoints: int) -> np.ndarray:
    """Checkpoint steps ``0 = b_0 < b_1 < ... = steps``, about evenly spaced (at most ``checkpoints + 1``)."""
    steps = _validate.positive_int("steps", steps)
    checkpoints = _validate.positive_int("checkpoints", checkpoints)
    return np.unique(np.round(np.linspace(0, steps, checkpoints + 1)).astype(int))


def train_with_checkpoints(params, family, rule, *, bounds, lr, lr_drop, K, tasks_per_step, seed, Q=None,
                           precond=None, phi=None, learn_phi=True, on_checkpoint=None):
    """One Adam meta-training run (:func:`linmeta.meta_train`) that reports checkpoints at ``bounds``.

    Fresh task batches at every step from ``SeedSequence(seed)``; the learning rate is ``lr`` for the
    first three quarters of the ``bounds[-1]`` steps and ``lr * lr_drop`` after.  Adam's state carries
    through the checkpoints (they are read by a callback, not by restarting the optimizer).

    Parameters
    ----------
    params : tuple of arrays (*runs, n_l, n_{l-1}), the initialisation.
    family, rule : task family and inner loop.
    bounds : increasing checkpoint steps (:func:`checkpoint_steps`); ``bounds[-1]`` is the run's length.
    lr, lr_drop : Adam learning rate and its factor for the last quarter.
    K, Q, tasks_per_step : support/query shots (``Q=None``: population query) and tasks per step.
    seed : sequence of ints for the task stream.
    precond, phi, learn_phi : optional meta-optimizer, as in :func:`linmeta.meta_train`.
    on_checkpoint : ``f(step, params, phi)``, called at step 0 and at every later step in ``bounds``.

    Returns
    -------
    (params, phi) at the end of training.
    """
    params = validate_params(params)
    bounds = _validate.sequence_of_ints("bounds", bounds, low=0, what="checkpoint steps")
    if len(bounds) < 2 or bounds[0] != 0 or any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise ValueError(f"bounds must be increasing checkpoint steps starting at 0 (see checkpoint_steps), got {bounds}")
    lr_drop = _validate.finite_float("lr_drop", lr_drop, non_negative=True)
    if isinstance(seed, (str, bytes)) or not hasattr(seed, "__iter__"):
        raise _validate.ArgumentTypeError(f"seed must be a sequence of ints (for SeedSequence), got {seed!r}")
    seed = _validate.sequence_of_ints("seed", seed, low=0)
    if on_checkpoint is not None:
        _validate.function("on_checkpoint", on_checkpoint, "a function f(step, params, phi)")
    total = int(bounds[-1])
    marks = {int(b) for b in bounds[1:]}
    if on_checkpoint is not None:
        on_checkpoint(0, params, phi)

    def callback(step, p, f, history):
        if on_checkpoint is not None and step in marks:
            on_checkpoint(step, p, f)

    res = meta_train(params, family, rule, steps=total, lr=lr, optimizer="adam", tasks_per_step=tasks_per_step, K=K, Q=Q,
                     precond=precond, phi=phi, learn_phi=learn_phi, eval_tasks=1, eval_every=total,
                     seed=np.random.SeedSequence(list(seed)), progress=False,
                     lr_schedule=lambda step: lr_drop if step > 0.75 * total else 1.0, callback=callback,
                     # the GD-stability bound 2/λ_max is a many-step notion; the one-step optimum itself
                     # (α_eff ≈ K/(K+d+1) against λ_max(Σ̂) up to (1+√(d/K))²) sits near it by design
                     check_stability=False)
    return res.params, res.phi


@_validate.finite_result
def orthogonal_init_scale(alpha: float, depth: int, init_step: float = 0.01) -> float:
    """Orthogonal-init scale ``s`` with ``α s^{2(L−1)} = init_step`` (a stable inner step at the start)."""
    alpha = _validate.finite_float("alpha", alpha, positive=True)
    depth = _validate.positive_int("depth", depth)
    init_step = _validate.finite_float("init_step", init_step, positive=True)
    return (init_step / alpha) ** (1.0 / (2 * max(depth - 1, 1)))


def train_two_phase(family, widths, rule, *, steps, lr, K, tasks_per_step, seeds, seed, init_seed,
                    init_step: float = 0.01, backend=None):
    """Meta-train ``seeds`` independent networks (run axis) with Adam on fresh K-shot task batches.

    Two phases: ``steps`` steps at ``lr``, then ``steps // 2`` at ``lr / 10`` (less SGD jitter in the
    final iterate; Adam restarts with fresh moments, deliberately).  The initialisation is orthogonal
    with the scale of :func:`orthogonal_init_scale`.  ``seed`` (task stream) and ``init_seed``
    (initialisation) are sequences of ints; methods that share ``init_seed`` start from the same networks.
    ``backend`` (an :class:`~linmeta.ArrayBackend` or name) is where the networks are trained.

    Returns
    -------
    the trained parameters, a tuple of arrays (seeds, n_l, n_{l-1}) on ``backend``.
    """
    widths = _validate.sequence_of_ints("widths", widths, low=1, what="hidden widths")
    steps = _validate.positive_int("steps", steps)
    seeds = _validate.positive_int("seeds", seeds)
    for name, value in (("seed", seed), ("init_seed", init_seed)):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise _validate.ArgumentTypeError(f"{name} must be a sequence of ints (for SeedSequence), got {value!r}")
        _validate.sequence_of_ints(name, value, low=0)
    depth = len(widths) + 1
    params = init_deep_linear(family.d, tuple(widths), 1, scheme="orthogonal",
                              scale=orthogonal_init_scale(rule.alpha, depth, init_step),
                              rng=np.random.SeedSequence([*map(int, init_seed), 31]), n_runs=seeds, backend=backend)
    for phase, (n, rate) in enumerate(((steps, lr), (max(steps // 2, 1), lr / 10))):
        # the guard on the inner step is for the start; a trained MAML net may be unstable on rare
        # support sets (a large sample covariance), which is part of its expected loss
        params = meta_train(params, family, rule, steps=n, lr=rate, optimizer="adam", tasks_per_step=tasks_per_step,
                            K=K, Q=None, eval_tasks=8, eval_every=n, progress=False, check_stability=phase == 0,
                            seed=np.random.SeedSequence([*map(int, seed), 37, phase])).params
    return params
