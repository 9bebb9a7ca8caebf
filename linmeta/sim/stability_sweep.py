r"""Simulated stability of N-step MAML meta-training: the engine's outer loop on quadratic tasks.

The closed form is :mod:`linmeta.theory.multistep_stability`; this module measures the same thing
with the engine only.  Task ``i`` is the quadratic ``f_i(w) = ½(w − w_i)ᵀH_i(w − w_i)`` given as
:class:`linmeta.QuadraticLoss` moments (``A = H_i``, indefinite allowed); outer gradient descent
``w ← w − β ∇F(w)`` uses the engine's exact meta-gradient through the N unrolled inner steps
(:func:`linmeta.meta_value_and_grad`, population inner and query loss).

*Inner step sizes on the run axis.*  A step of size α on ``f`` is a step of size 1 on ``α f``, so the
support loss of run ``r`` is ``α_r · f_i`` (the query loss stays ``f_i``) and one engine call
trains a whole grid of α values at once, each run with its own α.  N is the rule's ``steps``.

*Divergence as a growth rate.*  Whether outer GD converges does not depend on the optima ``w_i``
(they only move the stationary point), so the rate is measured on the homogeneous problem
(``w_i = 0``), where the outer step ``u ← A u`` is linear: after every step the iterate is
renormalised (which commutes with a linear map) and its growth factor is recorded, with no overflow
and no round-off floor.  Two growth factors are tracked over the last ``tail`` steps, that of the
iterate ``u`` and that of its meta-gradient ``∇F(u)``; ``ρ̂`` is the larger geometric mean.  For the
symmetric outer map every such ratio ``‖Av‖/‖v‖`` is at most the spectral radius ρ, so ``ρ̂ ≤ ρ``
(a verdict "diverges" is never a false alarm beyond ``tol``) and ``ρ̂ → ρ`` from a generic start.
The gradient weights a mode by its curvature, so it is not fooled by slowly decaying flat modes at
the upper (``μ > 2/β``) boundary; the iterate is not fooled at the zero crossing, where the critical
mode itself is flat (there the gradient is a cancellation of O(1) task terms down to round-off, so it
is used only while its norm stays above ``GRAD_RESOLVED`` times its initial norm).  Two top modes of nearly equal ``|1 − βμ|`` still mix for ~1/gap steps: that
limits the resolution, which the bracket half-width then has to cover.  A run counts as diverging
when ``ρ̂ > 1 + tol`` (``TOL = 1e-11``: well above the round-off of a growth rate averaged over the tail,
far below any bracket width).  :func:`meta_train_outcome` cross-checks the verdict with ``linmeta.meta_train``
itself (non-zero optima, its own :class:`linmeta.DivergenceError`).

*Boundary by bisection.*  :func:`locate_boundary` scans a geometric α grid (one engine run per grid
point, all on the run axis), brackets the first stable → unstable transition, and shrinks the
bracket by ``points + 1`` per round with ``points`` equally spaced α inside it.  The result is a
bracket ``[lo, hi]`` found by simulation alone; its half-width is the stated resolution.
"""
from __future__ import annotations

import numpy as np

import linmeta as lm
from ..meta import check_inputs, value_and_grad_unchecked
from ..preconditioners import Identity

from .. import _validate

TOL = 1e-11  # verdict threshold: a run diverges when its measured growth exceeds 1 + TOL
GRAD_RESOLVED = 1e-4  # the gradient's growth is used only while its norm stays above this fraction of its start


def _hessians(hessians):
    H = np.asarray(hessians, dtype=float)
    if H.ndim != 3 or H.shape[-1] != H.shape[-2]:
        raise ValueError(f"hessians must have shape (T, d, d), got {np.shape(hessians)}")
    _validate.finite_array("hessians", H)
    return 0.5 * (H + np.swapaxes(H, -1, -2))


def _weights(weights, T):
    if weights is None:
        return np.full(T, 1.0 / T)
    p = np.asarray(weights, dtype=float)
    if p.shape != (T,) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError(f"weights must be {T} non-negative numbers summing to 1, got {weights!r}")
    return p


def task_losses(hessians, optima=None, scale=None) -> lm.QuadraticLoss:
    """``f_i(w) = ½(w − w_i)ᵀH_i(w − w_i)`` as moments, times ``scale_i`` (default 1).

    Parameters
    ----------
    hessians : array (T, d, d). optima : array (T, d) or None (zero). scale : array (T,) or None.

    Returns
    -------
    :class:`linmeta.QuadraticLoss` with task axis T (``A`` (T, d, d), ``B`` (T, d, 1), ``c`` (T,)).
    """
    H = _hessians(hessians)
    T, d = H.shape[0], H.shape[-1]
    w = np.zeros((T, d)) if optima is None else np.asarray(optima, dtype=float).reshape(T, d)
    s = np.ones(T) if scale is None else np.asarray(scale, dtype=float).reshape(T)
    Hw = np.einsum("tij,tj->ti", H, w)
    return lm.QuadraticLoss.indefinite(A=s[:, None, None] * H, B=(s[:, None] * Hw)[..., None],
                                       c=0.5 * s * np.sum(w * Hw, -1))


def _support_on_runs(loss: lm.QuadraticLoss, alphas) -> lm.QuadraticLoss:
    """``α_r · loss`` with a leading run axis (R, T, ...): run r's inner step is then α_r."""
    a = np.asarray(alphas, dtype=float).reshape(-1)
    return lm.QuadraticLoss.indefinite(A=a[:, None, None, None] * loss.A, B=a[:, None, None, None] * loss.B,
                            c=a[:, None] * loss.c)


def _query(H, weights):
    # weighted mean over tasks: the engine averages uniformly, so task i's query is T p_i f_i
    T = H.shape[0]
    return task_losses(H, None, T * _weights(weights, T))


def _start(d, R, seed):
    rng = lm.as_generator(np.random.SeedSequence([int(seed), 7]))
    w0 = rng.standard_normal(d)
    return np.broadcast_to(w0 / np.linalg.norm(w0), (R, 1, d)).copy()


def outer_growth(hessians, alphas, steps: int, beta: float, *, weights=None, outer_steps: int = 200,
                 tail: int = 50, seed: int = 0) -> np.ndarray:
    """Per-step growth ``ρ̂`` of outer gradient descent on the N-step meta-objective, one run per α.

    Parameters
    ----------
    hessians : array (T, d, d), task curvatures (indefinite allowed).
    alphas : array (R,), inner step sizes, one per run (run axis).
    steps : inner steps N. beta : outer learning rate.
    weights : task probabilities (T,) or None (uniform).
    outer_steps, tail : steps run, and the final steps whose mean log growth gives ``ρ̂``.
    seed : the (shared, random, unit) starting direction.

    Returns
    -------
    array (R,): ``ρ̂`` (inf for a run whose iterate became non-finite).
    """
    H = _hessians(hessians)
    steps = _validate.positive_int("steps", steps)
    beta = _validate.finite_float("beta", beta, positive=True)
    outer_steps = _validate.positive_int("outer_steps", outer_steps)
    tail = _validate.positive_int("tail", tail)
    if tail > outer_steps:
        raise ValueError(f"tail={tail} must be at most outer_steps={outer_steps}")
    a = np.asarray(alphas, dtype=float).reshape(-1)
    _validate.finite_array("alphas", a)
    support = _support_on_runs(task_losses(H), a)
    query = _query(H, weights)
    rule = lm.InnerLoop(steps=steps, alpha=1.0, inner_loss="population")
    W = _start(H.shape[-1], a.size, seed)
    # far inside the unstable region a single step can overflow: such a run is flagged and restarted
    with np.errstate(over="ignore", invalid="ignore"):
        return _growth_loop(W, support, query, rule, beta, outer_steps, tail, seed, a.size, H.shape[-1])


def _meta_gradient(W, support, query, rule):
    """The engine's exact meta-gradient without the public entry points' divergence guard: this sweep walks
    into the unstable region on purpose and reads the growth itself (inputs are checked once, up front)."""
    return value_and_grad_unchecked((W,), support, query, rule, Identity(), ((),)).params[0]


def _growth_loop(W, support, query, rule, beta, outer_steps, tail, seed, R, d):
    log_w, log_g, bad = np.zeros(R), np.zeros(R), np.zeros(R, dtype=bool)
    check_inputs((W,), support, query, rule, None, None)
    g = _meta_gradient(W, support, query, rule)
    g_first = np.linalg.norm(g, axis=(-2, -1))
    resolved = np.ones(R, dtype=bool)  # is the gradient far above its round-off level?
    for t in range(outer_steps):
        W = W - beta * g
        n = np.linalg.norm(W, axis=(-2, -1))
        bad |= ~np.isfinite(n) | (n == 0)
        n = np.where(bad, 1.0, n)
        W = np.where(bad[:, None, None], _start(d, R, seed), W / n[:, None, None])
        g_new = _meta_gradient(W, support, query, rule)
        if t >= outer_steps - tail:
            # growth of the iterate u_t and of its gradient H u_t (unnormalised: u_{t+1} = n_t · W_{t+1})
            gn, gn_new = (np.linalg.norm(x, axis=(-2, -1)) for x in (g, g_new))
            resolved &= (gn >= GRAD_RESOLVED * g_first) & (gn_new >= GRAD_RESOLVED * g_first)
            with np.errstate(divide="ignore"):
                log_w += np.log(n)
                log_g += np.log(n * gn_new / gn)
        g = g_new
    log_g = np.where(resolved, np.nan_to_num(log_g, nan=-np.inf), -np.inf)
    rate = np.exp(np.maximum(log_w, log_g) / tail)
    return np.where(bad, np.inf, rate)


def diverges(rates, tol: float = TOL) -> np.ndarray:
    """The verdict on measured growth rates: ``ρ̂ > 1 + tol`` (boolean array)."""
    return np.asarray(rates) > 1.0 + tol


def locate_boundary(hessians, steps: int, beta: float, alpha_lo: float, alpha_hi: float, *, weights=None,
                    points: int = 24, rounds: int = 3, outer_steps: int = 200, tail: int = 50, seed: int = 0,
                    tol: float = None) -> dict:
    """Bracket the first α in ``[alpha_lo, alpha_hi]`` at which simulated meta-training diverges.

    A geometric grid of ``points`` step sizes is run at once (run axis); the first diverging grid
    point and its predecessor bracket the boundary, and each of ``rounds`` rounds runs ``points``
    equally spaced α inside the bracket, shrinking it by a factor ``points + 1``.

    Returns
    -------
    dict with ``lo``, ``hi`` (the final bracket), ``found`` (False if no grid point diverged, or the
    first one already did: then ``lo``/``hi`` are nan), the coarse scan ``grid`` (points,),
    ``grid_rate`` (points,), and ``engine_runs`` (total α values simulated).
    """
    lo = _validate.finite_float("alpha_lo", alpha_lo, positive=True)
    hi = _validate.finite_float("alpha_hi", alpha_hi, positive=True)
    if hi <= lo:
        raise ValueError(f"alpha_hi={alpha_hi} must exceed alpha_lo={alpha_lo}")
    points = _validate.positive_int("points", points)
    rounds = _validate.positive_int("rounds", rounds, allow_zero=True)
    tol = TOL if tol is None else _validate.finite_float("tol", tol, non_negative=True)
    kw = dict(weights=weights, outer_steps=outer_steps, tail=tail, seed=seed)
    grid = np.geomspace(lo, hi, max(points, 2))
    rate = outer_growth(hessians, grid, steps, beta, **kw)
    bad = diverges(rate, tol)
    out = {"grid": grid, "grid_rate": rate, "engine_runs": grid.size}
    idx = np.flatnonzero(bad)
    if idx.size == 0 or idx[0] == 0:
        return dict(out, lo=float("nan"), hi=float("nan"), found=False)
    a, b = float(grid[idx[0] - 1]), float(grid[idx[0]])
    for _ in range(rounds):
        inner = np.linspace(a, b, points + 2)[1:-1]
        bad_in = diverges(outer_growth(hessians, inner, steps, beta, **kw), tol)
        out["engine_runs"] += inner.size
        j = np.flatnonzero(bad_in)
        if j.size:
            b = float(inner[j[0]])
            a = float(inner[j[0] - 1]) if j[0] > 0 else a
        else:
            a = float(inner[-1])
    return dict(out, lo=a, hi=b, found=True)


def engine_meta_hessian(hessians, alpha: float, steps: int, weights=None) -> np.ndarray:
    """The Hessian of the engine's N-step meta-objective, column by column from exact meta-gradients.

    On the homogeneous problem the meta-gradient is linear in ``w``, so its value at the unit vector
    ``e_j`` is column ``j`` of the Hessian (exactly, up to round-off).  Returns an array (d, d).
    """
    H = _hessians(hessians)
    d = H.shape[-1]
    alpha = _validate.finite_float("alpha", alpha, non_negative=True)
    support = _support_on_runs(task_losses(H), np.full(d, alpha))
    rule = lm.InnerLoop(steps=_validate.positive_int("steps", steps), alpha=1.0, inner_loss="population")
    G = lm.meta_value_and_grad((np.eye(d)[:, None, :],), support, _query(H, weights), rule).params[0][:, 0, :]
    return G.T


class FixedQuadraticTasks:
    """A fixed task set as a task family for :func:`linmeta.meta_train` (full-batch: every step sees all tasks).

    ``sample_tasks(n)`` returns task indices ``0..T−1`` cyclically (no randomness); ``meta_batch`` returns
    the support and query losses of those tasks.  Used to let ``meta_train`` run outer gradient
    descent on given quadratics, indefinite ones included, which no Gaussian family can express.
    """

    has_population_loss = True

    def __init__(self, support: lm.QuadraticLoss, query: lm.QuadraticLoss):
        if support.n_tasks != query.n_tasks:
            raise ValueError(f"support has {support.n_tasks} tasks but query has {query.n_tasks}")
        self.support, self.query = support, query

    @property
    def d(self) -> int:
        return self.support.d

    @property
    def out(self) -> int:
        return self.support.out

    def sample_tasks(self, n_tasks, rng=None, *, n_runs=None):
        n_tasks = _validate.positive_int("n_tasks", n_tasks)
        return np.arange(n_tasks) % self.support.n_tasks

    def meta_batch(self, tasks, K, Q, rng=None):
        return lm.MetaBatch(self.support.take(tasks), self.query.take(tasks))


def meta_train_outcome(hessians, optima, alpha: float, steps: int, beta: float, *, weights=None,
                       outer_steps: int = 2000, seed: int = 0) -> dict:
    """Run ``linmeta.meta_train`` (SGD = full-batch outer GD here) and report whether it raised ``DivergenceError``.

    Returns
    -------
    dict with ``diverged`` (bool), ``step`` (the outer step of divergence, or ``outer_steps``) and
    ``final_distance`` (distance of the last iterate from the first one's start, nan if diverged).
    """
    H = _hessians(hessians)
    T, d = H.shape[0], H.shape[-1]
    fam = FixedQuadraticTasks(task_losses(H, optima), task_losses(H, optima, T * _weights(weights, T)))
    rule = lm.InnerLoop(steps=_validate.positive_int("steps", steps), alpha=float(alpha), inner_loss="population")
    W0 = _start(d, 1, seed)[0]
    try:
        res = lm.meta_train((W0,), fam, rule, steps=outer_steps, lr=beta, optimizer="sgd", tasks_per_step=T,
                            K=None, Q=None, eval_tasks=T, eval_every=outer_steps, seed=seed, progress=False,
                            check_stability=False)
    except lm.DivergenceError as err:
        return {"diverged": True, "step": int(err.step), "final_distance": float("nan")}
    return {"diverged": False, "step": int(outer_steps),
            "final_distance": float(np.linalg.norm(res.params[0] - W0))}
