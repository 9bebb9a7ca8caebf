"""Meta-training: the outer loop.

:func:`meta_train` fits the initialisation (and, optionally, a preconditioner's parameters) by SGD or
Adam on fresh task batches every step or on a fixed task set, or by scipy's L-BFGS on a fixed task set.
Many independent runs go on the leading run axis of ``params`` and are trained in one batched
computation, each on its own task stream.  The same seed gives bit-identical results.

**Backends.**  Training runs where ``params`` live: numpy, or torch tensors on the CPU or a CUDA device
(see :func:`linmeta.array_backend`).  Tasks are always drawn by the numpy Generator on the host (so a
seed gives the same tasks on every backend) and each batch is moved to the device once; SGD and Adam
then run on the device, and only the per-step losses come back to the host, at the evaluation steps.
L-BFGS runs on the host (scipy), whatever the backend, and returns its result on the backend.

**Divergence.**  A non-finite or exploding meta-train loss, non-finite parameters after an update, or
a non-finite meta-test loss at an evaluation (the last one included) raises :class:`DivergenceError`
with the step, the last finite loss and the inner-step stability bound; nothing non-finite is returned.
On numpy this is checked at every step; on torch, at every evaluation step (``eval_every``) and at the
end, to keep the loop free of host round trips, and the error still names the first bad step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _validate
from . import preconditioners as _pc
from . import reptile as _reptile
from ._backend import ArrayBackend, backend_of, namespace, to_numpy
from ._errors import DivergenceError
from ._random import as_generator
from .meta import check_inputs, pre_adaptation_loss_unchecked, value_and_grad_unchecked
from .models import validate_params
from .progress import Progress
from .rule import InnerLoop
from .stability import inner_step_bound

OPTIMIZERS = ("sgd", "adam", "lbfgs")
OUTER_RULES = ("maml", "reptile")


@dataclass
class TrainResult:
    """Output of :func:`meta_train`.

    Attributes
    ----------
    params : tuple of arrays, the meta-learned initialisation (shapes and backend as given).
    phi : tuple, the meta-learned preconditioner parameters (same backend).
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
        xp = namespace(*xs)
        if self.m is None:
            self.m = [xp.zeros_like(x) for x in xs]
            self.v = [xp.zeros_like(x) for x in xs]
        self.t += 1
        out = []
        for i, (x, g) in enumerate(zip(xs, gs)):
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
            mh = self.m[i] / (1 - self.b1**self.t)
            vh = self.v[i] / (1 - self.b2**self.t)
            out.append(x - self.lr * mh / (xp.sqrt(vh) + self.eps))
        return out


class _SGD:
    def __init__(self, lr, momentum=0.0):
        self.lr, self.momentum, self.buf = lr, momentum, None

    def step(self, xs, gs):
        if self.momentum == 0:
            return [x - self.lr * g for x, g in zip(xs, gs)]
        if self.buf is None:
            xp = namespace(*xs)
            self.buf = [xp.zeros_like(x) for x in xs]
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


def _batch_from(family, tasks, rule, K, Q, rng, spec: ArrayBackend):
    """A support/query batch drawn on the host and moved to the training backend once."""
    batch = family.meta_batch(tasks, None if rule.inner_loss == "population" else K, Q, rng)
    return batch if spec.name == "numpy" and spec.dtype == "float64" else batch.to(spec)


def _as_training_arrays(params, phi):
    """Private float copies of the caller's arrays, on their backend (numpy arrays become float64 arrays)."""
    spec = backend_of(params[0])
    if spec.name == "numpy":
        spec = ArrayBackend("numpy", "cpu", "float64" if spec.dtype not in ("float32",) else "float32")
        conv = lambda x: np.array(x, dtype=spec.dtype)  # noqa: E731
    else:
        conv = lambda x: spec.asarray(x).clone()  # noqa: E731
    params = tuple(conv(W) for W in params)
    phi = None if phi is None else tuple(tuple(conv(p) for p in pl) for pl in phi)
    return spec, params, phi


class _Guard:
    """Divergence detection with as few host round trips as the backend needs (see the module docstring).

    ``push`` records a step's train loss and whether the parameters after its update are finite, on the
    device; ``sync`` brings the unchecked steps to the host, raises :class:`DivergenceError` at the first
    bad one, and otherwise remembers the current parameters as the last good ones.
    """

    def __init__(self, factor, bound_of, alpha):
        self.factor, self.bound_of, self.alpha = factor, bound_of, alpha
        self.values, self.finite = [], []
        self.checked = 0
        self.first = None
        self.first_eval = None
        self.last_finite = None
        self.good = None  # (params, phi) at the last sync that passed
        self.previous = None  # the good ones before those (the last healthy point before an update)

    def push(self, value, params_finite):
        self.values.append(value)
        self.finite.append(params_finite)

    def _raise(self, step, detail="", at=None):
        params, phi = at or self.good
        raise DivergenceError(step, self.last_finite, self.bound_of(params, phi), self.alpha, detail)

    def sync(self, params, phi):
        new = range(self.checked, len(self.values))
        if len(new):
            vals = to_numpy(namespace(self.values[0]).stack(self.values[self.checked:]))
            fin = to_numpy(namespace(self.finite[0]).stack(self.finite[self.checked:]))
            for i, v, ok in zip(new, vals, fin):
                if self.first is None:
                    self.first = np.maximum(np.abs(v), 1.0)
                bad = ~np.isfinite(v) | (np.abs(v) > self.factor * self.first)
                if np.any(bad):
                    detail = f" (runs {np.flatnonzero(bad).tolist()})" if np.ndim(v) else ""
                    self._raise(i + 1, detail)
                self.last_finite = v
                if not ok:
                    self._raise(i + 1, " (the parameters after the update are not finite)")
            self.checked = len(self.values)
        self.previous, self.good = self.good, (params, phi)

    def check_eval(self, step, post):
        """The meta-test loss at an evaluation must be finite and not explode (this covers the last update)."""
        post = to_numpy(post)
        if self.first_eval is None:
            self.first_eval = np.maximum(np.abs(post), 1.0)
        bad = ~np.isfinite(post) | (np.abs(post) > self.factor * self.first_eval)
        if np.any(bad):
            runs = np.flatnonzero(np.atleast_1d(bad)).tolist()
            self._raise(step, f" (meta-test loss after the update is {'not finite' if not np.all(np.isfinite(post)) else 'exploding'}"
                              f", runs {runs})", at=self.previous or self.good)


def _all_finite(arrays):
    xp = namespace(*arrays)
    flags = [xp.all(xp.isfinite(a)) for a in arrays]
    out = flags[0]
    for f in flags[1:]:
        out = out & f
    return out


def _quiet_overflow(func):
    """Run ``func`` with numpy's overflow/invalid warnings off: divergence is detected and raised explicitly
    (:class:`DivergenceError`), so a warning would only precede the error (or pre-empt it under ``-W error``)."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return func(*args, **kwargs)

    return wrapper


@_quiet_overflow
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
    fixed_batch=None,
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
    params : tuple of arrays (*runs, n_l, n_{l-1}), numpy or torch (any device); a run axis trains
        independent models at once.  Training runs on their backend and returns arrays there.
    family : task family with ``sample_tasks(n, rng, n_runs=)`` and ``meta_batch(tasks, K, Q, rng)``
        (:class:`~linmeta.tasks.GaussianRegression`, :class:`~linmeta.tasks.TaskMixture`,
        :class:`~linmeta.tasks.BinaryClassification`).
    rule : the inner loop; ``rule.inner_loss == "population"`` adapts on the exact task loss.
    steps : number of outer steps (L-BFGS: maximum iterations).
    lr : outer learning rate (SGD/Adam).
    optimizer : ``"sgd"``, ``"adam"`` or ``"lbfgs"`` (the last needs ``fixed_tasks`` and runs on the host).
    tasks_per_step : tasks in each fresh meta-batch.
    K, Q : support and query shots; ``Q=None`` scores on the population loss.
    precond, phi : optional meta-optimizer and its initial parameters; learned jointly if ``learn_phi``.
    fixed_tasks : if given, draw this many tasks (with their support/query sets) once, move them to the
        device once, and train full-batch on them; otherwise fresh tasks every step.
    fixed_batch : a :class:`~linmeta.MetaBatch` to train on full-batch instead (moved to the device once);
        ``family`` then only supplies the held-out evaluation set.
    eval_tasks, eval_every, eval_K, eval_Q : held-out meta-test set (drawn once from the seed),
        evaluated every ``eval_every`` steps (default: about 20 times per run) and at the end, with
        ``eval_K`` (default ``K``) support shots and ``eval_Q`` query shots (default: the population loss
        where available, else ``Q``).
    momentum : SGD momentum in [0, 1).
    seed : int or Generator; fixes every random draw.
    progress : show a progress bar (default: only on a terminal).
    check_stability : refuse a positive ``alpha`` above the inner-step stability bound at the start
        (only for two or more inner steps: a single step cannot diverge).
    divergence_factor : a loss above this factor times the first loss counts as divergence (> 1).
    lr_schedule : optional ``f(step) -> factor`` multiplying ``lr`` at each outer step (SGD/Adam).
    callback : optional ``f(step, params, phi, history)`` called after every outer step (SGD/Adam),
        e.g. to checkpoint; ``history`` holds lists so far (on torch, of device scalars).
    outer : ``"maml"`` (the meta-gradient of the post-adaptation loss, second order unless
        ``rule.first_order``) or ``"reptile"`` (the direction ``mean_t (θ − θ_t^k)/(kα)`` of
        :mod:`linmeta.reptile`; SGD/Adam only, no preconditioner parameters to learn).

    Returns
    -------
    :class:`TrainResult`.
    """
    params = validate_params(params)
    _validate.instance("rule", rule, InnerLoop, "a linmeta.InnerLoop, e.g. InnerLoop(steps=1, alpha=0.1)")
    if not hasattr(family, "sample_tasks") or not hasattr(family, "meta_batch"):
        raise _validate.ArgumentTypeError(
            f"family must be a task family (GaussianRegression, TaskMixture, BinaryClassification, ...), "
            f"got {type(family).__name__}")
    steps = _validate.positive_int("steps", steps)
    lr = _validate.finite_float("lr", lr, positive=True)
    _validate.one_of("optimizer", optimizer, OPTIMIZERS)
    tasks_per_step = _validate.positive_int("tasks_per_step", tasks_per_step)
    eval_tasks = _validate.positive_int("eval_tasks", eval_tasks)
    for name, val in (("K", K), ("Q", Q), ("eval_K", eval_K), ("eval_Q", eval_Q)):
        _validate.optional_int(name, val, none="the population loss")
    if eval_every is not None:
        eval_every = _validate.positive_int("eval_every", eval_every)
    momentum = _validate.finite_float("momentum", momentum, non_negative=True)
    if momentum >= 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if momentum != 0 and optimizer != "sgd":
        raise ValueError(f"momentum={momentum} applies to optimizer='sgd' only, got optimizer={optimizer!r}")
    divergence_factor = _validate.finite_float("divergence_factor", divergence_factor, positive=True)
    if divergence_factor <= 1:
        raise ValueError(f"divergence_factor must be > 1 (a loss this many times the first counts as divergence), "
                         f"got {divergence_factor}")
    learn_phi = _validate.boolean("learn_phi", learn_phi)
    check_stability = _validate.boolean("check_stability", check_stability)
    if progress is not None:
        _validate.boolean("progress", progress)
    if lr_schedule is not None:
        _validate.function("lr_schedule", lr_schedule, "a function of the step, f(step) -> factor")
    if callback is not None:
        _validate.function("callback", callback, "a function f(step, params, phi, history)")
    if fixed_tasks is not None:
        fixed_tasks = _validate.positive_int("fixed_tasks", fixed_tasks)
    if fixed_batch is not None:
        if fixed_tasks is not None:
            raise ValueError("pass fixed_tasks (a number of tasks to draw) or fixed_batch (the batch itself), not both")
        if not (hasattr(fixed_batch, "support") and hasattr(fixed_batch, "query")):
            raise _validate.ArgumentTypeError(f"fixed_batch must be a linmeta.MetaBatch, got {type(fixed_batch).__name__}")
    if optimizer == "lbfgs" and fixed_tasks is None and fixed_batch is None:
        raise ValueError("optimizer='lbfgs' needs a fixed task set: pass fixed_tasks=N or fixed_batch "
                         "(L-BFGS cannot use fresh batches)")
    _validate.one_of("outer", outer, OUTER_RULES)
    if outer == "reptile" and optimizer == "lbfgs":
        raise ValueError("outer='reptile' is not the gradient of an objective, so L-BFGS cannot use it: "
                         "use optimizer='sgd' or 'adam'")
    if outer == "reptile":
        _reptile.check_rule(rule, len(params))
    if outer == "reptile" and learn_phi and _reptile.uses_preconditioner_parameters(precond):
        raise ValueError("outer='reptile' has no update for preconditioner parameters: pass learn_phi=False "
                         "(the preconditioner is then used as given) or use outer='maml'")
    seed = as_generator(seed, "seed")
    precond = _pc.get(precond)
    spec, params, phi = _as_training_arrays(params, phi)
    adapted = rule.adapted_layers(len(params))
    if phi is None:
        phi = precond.init(params, adapted)

    runs = tuple(params[0].shape[:-2])
    n_runs = runs[0] if runs else None
    train_rng, eval_rng = as_generator(seed).spawn(2)

    # held-out meta-test set, shared by every run
    if eval_Q is None and not getattr(family, "has_population_loss", False):
        eval_Q = Q
    test_tasks = family.sample_tasks(eval_tasks, eval_rng)
    test_batch = _batch_from(family, test_tasks, rule, eval_K if eval_K is not None else K, eval_Q, eval_rng, spec)
    check_inputs(params, test_batch.support, test_batch.query, rule, precond, phi)

    fixed = None
    if fixed_tasks is not None:
        fixed = _batch_from(family, family.sample_tasks(fixed_tasks, train_rng, n_runs=n_runs), rule, K, Q, train_rng,
                            spec)
    elif fixed_batch is not None:
        fixed = fixed_batch if spec.name == "numpy" and spec.dtype == "float64" else fixed_batch.to(spec)
        check_inputs(params, fixed.support, fixed.query, rule, precond, phi)

    def next_batch():
        if fixed is not None:
            return fixed
        tasks = family.sample_tasks(tasks_per_step, train_rng, n_runs=n_runs)
        return _batch_from(family, tasks, rule, K, Q, train_rng, spec)

    probe = fixed if fixed is not None else test_batch

    def bound_of(p, f):
        return inner_step_bound(p, probe.support, rule, precond, f)

    if check_stability and rule.alpha > 0 and adapted and rule.steps >= 2:
        bound = bound_of(params, phi)
        if np.any(rule.alpha >= bound):
            raise ValueError(
                f"alpha={rule.alpha} is above the inner-step stability bound 2/lambda_max = "
                f"{np.array2string(np.min(bound), precision=4)} at the initial parameters: the inner loop "
                "would diverge. Use a smaller alpha (or check_stability=False to study divergence on purpose)"
            )

    if eval_every is None:
        eval_every = max(1, steps // 20)
    history = {"step": [], "train_loss": [], "eval_step": [], "test_pre": [], "test_post": []}
    guard = _Guard(divergence_factor, bound_of, rule.alpha)
    guard.good = (params, phi)
    every_step = spec.name == "numpy"  # host values are free on numpy: check each step

    def evaluate(step, p, f):
        history["eval_step"].append(step)
        history["test_pre"].append(pre_adaptation_loss_unchecked(p, test_batch.query))
        post = value_and_grad_unchecked(p, test_batch.support, test_batch.query, rule, precond, f).value
        history["test_post"].append(post)
        return post

    guard.check_eval(0, evaluate(0, params, phi))
    if optimizer == "lbfgs":
        params, phi = _lbfgs(params, phi, fixed, rule, precond, learn_phi, steps, history, guard, spec)
        post = evaluate(history["step"][-1] if history["step"] else 0, params, phi)
        guard.check_eval(history["eval_step"][-1], post)
    else:
        opt = _Adam(lr) if optimizer == "adam" else _SGD(lr, momentum)
        with Progress(steps, f"meta-train ({optimizer})", enabled=progress) as bar:
            for step in range(1, steps + 1):
                batch = next_batch()
                direction = _reptile.direction_unchecked if outer == "reptile" else value_and_grad_unchecked
                mg = direction(params, batch.support, batch.query, rule, precond, phi)
                history["step"].append(step)
                history["train_loss"].append(mg.value)
                if lr_schedule is not None:
                    factor = _validate.finite_float("lr_schedule(step)", lr_schedule(step), non_negative=True)
                    opt.lr = lr * factor
                arrays = opt.step(_flatten(params, phi, learn_phi), _flatten(mg.params, mg.phi, learn_phi))
                params, phi = _unflatten(arrays, params, phi, learn_phi)
                guard.push(mg.value, _all_finite(arrays))
                at_eval = step % eval_every == 0 or step == steps
                if every_step or at_eval:
                    guard.sync(params, phi)
                if at_eval:
                    guard.check_eval(step, evaluate(step, params, phi))
                if callback is not None:
                    callback(step, params, phi, history)
                if bar.enabled and (every_step or at_eval):
                    bar.update(0, postfix=f"loss {float(np.mean(to_numpy(mg.value))):.4g}")
                bar.update()
    history = {k: np.asarray([to_numpy(v) for v in vals]) for k, vals in history.items()}
    return TrainResult(params=params, phi=phi, history=history)


def _lbfgs(params, phi, batch, rule, precond, learn_phi, max_iter, history, guard, spec):
    """L-BFGS on a fixed task set, on the host; runs are independent, so their summed loss is minimised jointly."""
    from scipy.optimize import minimize

    host = spec.name != "numpy"
    if host:  # scipy works on numpy: move the problem to the host once
        params = tuple(to_numpy(W) for W in params)
        phi = tuple(tuple(to_numpy(p) for p in pl) for pl in phi)
        batch = batch.to("numpy")
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
        guard.push(mg.value, np.all(np.isfinite(x)))
        guard.sync(p, f)
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
    p, f = split(res.x)
    return (spec.tree(p), tuple(spec.tree(pl) for pl in f)) if host else (p, f)

