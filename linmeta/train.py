"""Meta-training: the outer loop.

:func:`meta_train` fits the initialisation (and, optionally, a preconditioner's
parameters) by SGD or Adam on fresh task batches every step or on a fixed task
set, or by scipy's L-BFGS on a fixed task set.  Many independent runs go on the
leading run axis of ``params`` and are trained in one batched computation, each
on its own task stream.  The same seed gives bit-identical results.

Divergence stops training with :class:`DivergenceError`, which reports the
step, the last finite loss and the inner-step stability bound; NaNs are never
returned.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _validate
from . import preconditioners as _pc
from . import reptile as _reptile
from ._random import as_generator
from .meta import check_inputs, pre_adaptation_loss, value_and_grad_unchecked
from .models import validate_params
from .progress import Progress
from .rule import InnerLoop
from .stability import inner_step_bound

OPTIMIZERS = ("sgd", "adam", "lbfgs")
OUTER_RULES = ("maml", "reptile")


class DivergenceError(RuntimeError):
    """Meta-training diverged; carries ``step``, ``last_finite_loss`` and ``inner_step_bound``."""

    def __init__(self, step, last_finite_loss, bound, alpha, detail=""):
        self.step, self.last_finite_loss, self.inner_step_bound, self.alpha = step, last_finite_loss, bound, alpha
        super().__init__(
            f"meta-training diverged at outer step {step}{detail}: last finite meta-train loss "
            f"{np.array2string(np.asarray(last_finite_loss), precision=4)}; inner-step stability bound "
            f"2/lambda_max = {np.array2string(np.asarray(bound), precision=4)} (alpha = {alpha}). "
            "Lower the outer learning rate or the inner step alpha."
        )


@dataclass
class TrainResult:
    """Output of :func:`meta_train`.

    Attributes
    ----------
    params : tuple of arrays, the meta-learned initialisation (shapes as given).
    phi : tuple, the meta-learned preconditioner parameters.
    history : dict of numpy arrays:
        ``step`` (n,), ``train_loss`` (n, *runs): meta-train loss of each outer step;
        ``eval_step`` (m,), ``test_pre`` / ``test_post`` (m, *runs): mean meta-test loss
        before / after adaptation on a fixed held-out task set.
    """

    params: tuple
    phi: tuple
    history: dict = field(default_factory=dict)


class _Adam:
    def __init__(self, lr, b1=0.9, b2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = self.v = None

    def step(self, xs, gs):
        if self.m is None:
            self.m = [np.zeros_like(x) for x in xs]
            self.v = [np.zeros_like(x) for x in xs]
        self.t += 1
        out = []
        for i, (x, g) in enumerate(zip(xs, gs)):
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
            mh = self.m[i] / (1 - self.b1**self.t)
            vh = self.v[i] / (1 - self.b2**self.t)
            out.append(x - self.lr * mh / (np.sqrt(vh) + self.eps))
        return out


class _SGD:
    def __init__(self, lr, momentum=0.0):
        self.lr, self.momentum, self.buf = lr, momentum, None

    def step(self, xs, gs):
        if self.momentum == 0:
            return [x - self.lr * g for x, g in zip(xs, gs)]
        if self.buf is None:
            self.buf = [np.zeros_like(x) for x in xs]
        self.buf = [self.momentum * b + g for b, g in zip(self.buf, gs)]
        return [x - self.lr * b for x, b in zip(xs, self.buf)]


def _flatten(params, phi, learn_phi):
    arrays = list(params)
    if learn_phi:
        for phi_l in phi:
            arrays.extend(phi_l)
    return arrays


def _unflatten(arrays, params, phi, learn_phi):
    L = len(params)
    new_params = tuple(arrays[:L])
    if not learn_phi:
        return new_params, phi
    i, new_phi = L, []
    for phi_l in phi:
        new_phi.append(tuple(arrays[i : i + len(phi_l)]))
        i += len(phi_l)
    return new_params, tuple(new_phi)


def _batch_from(family, tasks, rule, K, Q, rng):
    return family.meta_batch(tasks, None if rule.inner_loss == "population" else K, Q, rng)


def meta_train(
    params,
    family,
    rule: InnerLoop,
    *,
    steps: int,
    lr: float = 1e-2,
    optimizer: str = "adam",
    tasks_per_step: int = 32,
    K: int | None = 10,
    Q: int | None = 20,
    precond=None,
    phi=None,
    learn_phi: bool = True,
    fixed_tasks: int | None = None,
    eval_tasks: int = 256,
    eval_every: int | None = None,
    eval_K: int | None = None,
    eval_Q: int | None = None,
    momentum: float = 0.0,
    seed=0,
    progress: bool | None = None,
    check_stability: bool = True,
    divergence_factor: float = 1e8,
    lr_schedule=None,
    callback=None,
    outer: str = "maml",
) -> TrainResult:
    """Meta-train ``params`` on tasks from ``family``.

    Parameters
    ----------
    params : tuple of arrays (*runs, n_l, n_{l-1}); a run axis trains independent models at once.
    family : task family with ``sample_tasks(n, rng, n_runs=)`` and ``meta_batch(tasks, K, Q, rng)``
        (:class:`~linmeta.tasks.GaussianRegression`, :class:`~linmeta.tasks.TaskMixture`,
        :class:`~linmeta.tasks.BinaryClassification`).
    rule : the inner loop; ``rule.inner_loss == "population"`` adapts on the exact task loss.
    steps : number of outer steps (L-BFGS: maximum iterations).
    lr : outer learning rate (SGD/Adam).
    optimizer : ``"sgd"``, ``"adam"`` or ``"lbfgs"`` (the last needs ``fixed_tasks``).
    tasks_per_step : tasks in each fresh meta-batch.
    K, Q : support and query shots; ``Q=None`` scores on the population loss.
    precond, phi : optional meta-optimizer and its initial parameters; learned jointly if ``learn_phi``.
    fixed_tasks : if given, draw this many tasks (with their support/query sets) once and
        train full-batch on them; otherwise fresh tasks every step.
    eval_tasks, eval_every, eval_K, eval_Q : held-out meta-test set (drawn once from the seed),
        evaluated every ``eval_every`` steps (default: about 20 times per run) with ``eval_K``
        (default ``K``) support shots and ``eval_Q`` query shots (default: the population loss
        where available, else ``Q``).
    seed : int or Generator; fixes every random draw.
    progress : show a progress bar (default: only on a terminal).
    check_stability : refuse a positive ``alpha`` above the inner-step stability bound at the start
        (only for two or more inner steps: a single step cannot diverge).
    divergence_factor : a loss above this factor times the first loss counts as divergence.
    lr_schedule : optional ``f(step) -> factor`` multiplying ``lr`` at each outer step (SGD/Adam).
    callback : optional ``f(step, params, phi, history)`` called after every outer step (SGD/Adam),
        e.g. to checkpoint; ``history`` holds lists so far.
    outer : ``"maml"`` (the meta-gradient of the post-adaptation loss, second order unless
        ``rule.first_order``) or ``"reptile"`` (the direction ``mean_t (θ − θ_t^k)/(kα)`` of
        :mod:`linmeta.reptile`; SGD/Adam only, no preconditioner parameters to learn).
    """
    params = validate_params(params)
    params = tuple(np.array(W, dtype=float) for W in params)
    steps = _validate.positive_int("steps", steps)
    lr = _validate.finite_float("lr", lr, positive=True)
    _validate.one_of("optimizer", optimizer, OPTIMIZERS)
    tasks_per_step = _validate.positive_int("tasks_per_step", tasks_per_step)
    for name, val in (("K", K), ("Q", Q), ("eval_K", eval_K), ("eval_Q", eval_Q)):
        if val is not None:
            _validate.positive_int(name, val)
    if fixed_tasks is not None:
        fixed_tasks = _validate.positive_int("fixed_tasks", fixed_tasks)
    _validate.one_of("outer", outer, OUTER_RULES)
    if outer == "reptile" and optimizer == "lbfgs":
        raise ValueError("outer='reptile' is not the gradient of an objective, so L-BFGS cannot use it: "
                         "use optimizer='sgd' or 'adam'")
    if outer == "reptile":
        _reptile.check_rule(rule, len(params))
    if outer == "reptile" and learn_phi and _reptile.uses_preconditioner_parameters(precond):
        raise ValueError("outer='reptile' has no update for preconditioner parameters: pass learn_phi=False "
                         "(the preconditioner is then used as given) or use outer='maml'")
    if optimizer == "lbfgs" and fixed_tasks is None:
        raise ValueError("optimizer='lbfgs' needs a fixed task set: pass fixed_tasks=N (L-BFGS cannot use fresh batches)")
    precond = _pc.get(precond)
    adapted = rule.adapted_layers(len(params))
    phi = precond.init(params, adapted) if phi is None else tuple(tuple(np.array(p, dtype=float) for p in pl) for pl in phi)

    runs = tuple(params[0].shape[:-2])
    n_runs = runs[0] if runs else None
    train_rng, eval_rng = as_generator(seed).spawn(2)

    # held-out meta-test set, shared by every run
    if not hasattr(family, "sample_tasks") or not hasattr(family, "meta_batch"):
        raise ValueError(f"family must be a task family (GaussianRegression, TaskMixture, ...), got {type(family).__name__}")
    if eval_Q is None and not getattr(family, "has_population_loss", False):
        eval_Q = Q
    test_tasks = family.sample_tasks(eval_tasks, eval_rng)
    test_batch = _batch_from(family, test_tasks, rule, eval_K if eval_K is not None else K, eval_Q, eval_rng)
    check_inputs(params, test_batch.support, test_batch.query, rule, precond, phi)

    fixed = None
    if fixed_tasks is not None:
        fixed = _batch_from(family, family.sample_tasks(fixed_tasks, train_rng, n_runs=n_runs), rule, K, Q, train_rng)

    def next_batch():
        if fixed is not None:
            return fixed
        tasks = family.sample_tasks(tasks_per_step, train_rng, n_runs=n_runs)
        return _batch_from(family, tasks, rule, K, Q, train_rng)

    if check_stability and rule.alpha > 0 and adapted and rule.steps >= 2:
        probe = fixed if fixed is not None else test_batch
        bound = inner_step_bound(params, probe.support, rule, precond, phi)
        if np.any(rule.alpha >= bound):
            raise ValueError(
                f"alpha={rule.alpha} is above the inner-step stability bound 2/lambda_max = "
                f"{np.array2string(np.min(bound), precision=4)} at the initial parameters: the inner loop "
                "would diverge. Use a smaller alpha (or check_stability=False to study divergence on purpose)"
            )

    if eval_every is None:
        eval_every = max(1, steps // 20)
    history = {"step": [], "train_loss": [], "eval_step": [], "test_pre": [], "test_post": []}

    def evaluate(step, p, f):
        history["eval_step"].append(step)
        history["test_pre"].append(np.asarray(pre_adaptation_loss(p, test_batch.query)))
        post = value_and_grad_unchecked(p, test_batch.support, test_batch.query, rule, precond, f).value
        history["test_post"].append(np.asarray(post))

    state = {"first": None, "last_finite": None, "last_params": (params, phi)}

    def guard(step, value, p, f):
        value = np.asarray(value)
        if state["first"] is None:
            state["first"] = np.maximum(np.abs(value), 1.0)
        bad = ~np.isfinite(value) | (np.abs(value) > divergence_factor * state["first"])
        if np.any(bad):
            lp, lf = state["last_params"]
            probe = fixed if fixed is not None else test_batch
            bound = inner_step_bound(lp, probe.support, rule, precond, lf)
            detail = f" (runs {np.flatnonzero(bad).tolist()})" if value.ndim else ""
            raise DivergenceError(step, state["last_finite"], bound, rule.alpha, detail)
        state["last_finite"] = value
        state["last_params"] = (p, f)

    evaluate(0, params, phi)
    if optimizer == "lbfgs":
        params, phi = _lbfgs(params, phi, fixed, rule, precond, learn_phi, steps, history, guard)
        evaluate(history["step"][-1] if history["step"] else 0, params, phi)
    else:
        opt = _Adam(lr) if optimizer == "adam" else _SGD(lr, momentum)
        with Progress(steps, f"meta-train ({optimizer})", enabled=progress) as bar:
            for step in range(1, steps + 1):
                batch = next_batch()
                direction = _reptile.direction_unchecked if outer == "reptile" else value_and_grad_unchecked
                mg = direction(params, batch.support, batch.query, rule, precond, phi)
                guard(step, mg.value, params, phi)
                history["step"].append(step)
                history["train_loss"].append(np.asarray(mg.value))
                if lr_schedule is not None:
                    opt.lr = lr * float(lr_schedule(step))
                arrays = opt.step(_flatten(params, phi, learn_phi), _flatten(mg.params, mg.phi, learn_phi))
                params, phi = _unflatten(arrays, params, phi, learn_phi)
                if step % eval_every == 0 or step == steps:
                    evaluate(step, params, phi)
                if callback is not None:
                    callback(step, params, phi, history)
                bar.update(postfix=f"loss {np.mean(mg.value):.4g}")
    history = {k: np.asarray(v) for k, v in history.items()}
    return TrainResult(params=params, phi=phi, history=history)


def _lbfgs(params, phi, batch, rule, precond, learn_phi, max_iter, history, guard):
    """L-BFGS on a fixed task set; runs are independent, so their summed loss is minimised jointly."""
    from scipy.optimize import minimize

    template = _flatten(params, phi, learn_phi)
    shapes = [a.shape for a in template]
    sizes = [a.size for a in template]

    def split(x):
        out, i = [], 0
        for shp, n in zip(shapes, sizes):
            out.append(x[i : i + n].reshape(shp))
            i += n
        return _unflatten(out, params, phi, learn_phi)

    counter = {"n": 0}
    last = {"x": None, "value": None}

    def fun(x):
        p, f = split(x)
        mg = value_and_grad_unchecked(p, batch.support, batch.query, rule, precond, f)
        counter["n"] += 1
        guard(counter["n"], mg.value, p, f)
        last["x"], last["value"] = x.copy(), np.asarray(mg.value)
        g = np.concatenate([a.reshape(-1) for a in _flatten(mg.params, mg.phi, learn_phi)])
        return float(np.sum(mg.value)), g

    def callback(xk):
        # the accepted iterate is the last point evaluated; recompute only if scipy says otherwise
        if last["x"] is None or not np.array_equal(xk, last["x"]):
            fun(xk)
        history["step"].append(len(history["step"]) + 1)
        history["train_loss"].append(last["value"])

    x0 = np.concatenate([a.reshape(-1) for a in template])
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", callback=callback,
                   options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-12})
    return split(res.x)
