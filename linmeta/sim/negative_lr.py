r"""Simulation of MAML on mixed linear regression (Bernacchia 2021): train exactly, adapt, score.

Setting (:class:`linmeta.theory.negative_lr.MixedRegression`): ``x ~ N(0, I_p)``,
``y = wᵀx + σε``, task regressors ``w ~ N(w₀, ν²/p · I)``.  Training draws ``m`` tasks, each with
``n_t`` support points ``(X_t, y_t)`` and ``n_v`` query points ``(X_v, y_v)``.  MAML with one inner
step of size ``α_t`` on the mean squared loss ``½|y − Xω|²/n`` adapts ``ω`` to

    ω'_i = (I − α_t X_tᵢᵀX_tᵢ/n_t) ω + α_t X_tᵢᵀ y_tᵢ/n_t,

so the meta-loss ``(1/m) Σᵢ ½|y_vᵢ − X_vᵢ ω'_i|²/n_v`` is the least-squares loss ``½|b − Aω|²/(m n_v)``
of the stacked system

    A_i = X_vᵢ (I − α_t X_tᵢᵀX_tᵢ/n_t)      (n_v × p),
    b_i = y_vᵢ − α_t X_vᵢ X_tᵢᵀ y_tᵢ / n_t     (n_v),

and the outer solution is exact: the minimum-norm solution closest to ``ω₀``,
``ω̂ = ω₀ + A⁺(b − Aω₀)``, when ``N = m n_v < p`` (it interpolates: the meta-loss is 0), and the
unique least-squares solution when ``N > p``.  Both are computed from a batched QR factorisation
(no normal equations).  :func:`engine_meta_gradient` evaluates the engine's MAML meta-gradient
(:func:`linmeta.meta_value_and_grad`, second order) at ``ω̂``: it vanishes there to round-off, which
ties this estimator to the engine's objective.

Testing draws fresh tasks, adapts ``ω̂`` with one step of size ``α_r`` on ``n_r`` points, and scores
the adapted model by its population loss ``½(|ω_r − w|² + σ²)`` (the exact expectation over query
points, ``x ~ N(0, I)``) or, if ``test_points`` is given, by the mean squared loss on that many fresh
points (the paper's 50).  The post-adaptation loss is a quadratic in ``α_r``, so one draw scores every
``α_r`` of a grid exactly (common random numbers across the grid).

Everything is batched over runs (and over a grid of ``α_t``); no Python loop over runs or tasks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import InnerLoop, as_generator, meta_value_and_grad, sample_moments
from .. import _validate


@dataclass(frozen=True)
class TrainingData:
    """Training tasks of ``R`` independent runs.

    Attributes
    ----------
    Xt : array (R, m, n_t, p), support inputs.
    yt : array (R, m, n_t), support labels.
    Xv : array (R, m, n_v, p), query inputs.
    yv : array (R, m, n_v), query labels.
    w : array (R, m, p), the tasks' regressors.
    """

    Xt: np.ndarray
    yt: np.ndarray
    Xv: np.ndarray
    yv: np.ndarray
    w: np.ndarray


@dataclass(frozen=True)
class TestData:
    """Test tasks of ``R`` runs, ``T`` tasks each.

    Attributes
    ----------
    Xr : array (R, T, n_r, p), adaptation inputs.
    yr : array (R, T, n_r), adaptation labels.
    w : array (R, T, p), the tasks' regressors.
    Xs, ys : arrays (R, T, n_s, p) and (R, T, n_s): scoring points, or None (population loss).
    """

    Xr: np.ndarray
    yr: np.ndarray
    w: np.ndarray
    Xs: np.ndarray | None = None
    ys: np.ndarray | None = None


def _vector(name, value, p):
    v = np.zeros(p) if value is None else np.asarray(value, dtype=float)
    if v.shape != (p,):
        raise ValueError(f"{name} must be a vector of shape ({p},), got shape {v.shape}")
    _validate.finite_array(name, v)
    return v


def _tasks(rng, shape, setting, w0):
    return w0 + setting.nu / np.sqrt(setting.p) * rng.standard_normal(shape + (setting.p,))


def _labels(rng, X, w, sigma):
    return np.einsum("...np,...p->...n", X, w) + sigma * rng.standard_normal(X.shape[:-1])


def draw_training(setting, runs: int, rng, w0=None) -> TrainingData:
    """Draw ``runs`` independent training sets of ``setting.m`` tasks.

    Parameters
    ----------
    setting : :class:`~linmeta.theory.negative_lr.MixedRegression` (p, n_t, n_v, m, σ, ν are used).
    runs : number of independent runs R.
    rng : seed or ``numpy.random.Generator``.
    w0 : array (p,), the mean task ``w₀`` (default 0).
    """
    runs = _validate.positive_int("runs", runs)
    rng = as_generator(rng)
    s = setting
    w0 = _vector("w0", w0, s.p)
    w = _tasks(rng, (runs, s.m), s, w0)
    Xt = rng.standard_normal((runs, s.m, s.n_t, s.p))
    Xv = rng.standard_normal((runs, s.m, s.n_v, s.p))
    return TrainingData(Xt, _labels(rng, Xt, w, s.sigma), Xv, _labels(rng, Xv, w, s.sigma), w)


def _design_parts(data: TrainingData):
    """``A = A₀ − α A₁``, ``b = b₀ − α b₁``: the parts (R, N, p), (R, N, p), (R, N), (R, N)."""
    R, m, n_t, p = data.Xt.shape
    N = m * data.Xv.shape[-2]
    C = data.Xv @ np.swapaxes(data.Xt, -1, -2) / n_t          # X_v X_tᵀ / n_t   (R, m, n_v, n_t)
    A1 = (C @ data.Xt).reshape(R, N, p)                        # X_v S_t
    b1 = np.einsum("rmvt,rmt->rmv", C, data.yt).reshape(R, N)  # X_v X_tᵀ y_t / n_t
    return data.Xv.reshape(R, N, p), A1, data.yv.reshape(R, N), b1


def maml_design(data: TrainingData, alpha_t):
    """The stacked least-squares system ``(A, b)`` of the one-step MAML meta-loss.

    Parameters
    ----------
    data : :class:`TrainingData` of R runs.
    alpha_t : float or array (k,), training inner step sizes.

    Returns
    -------
    A : array (R, N, p) or (k, R, N, p) with ``N = m n_v``;  b : array (R, N) or (k, R, N).
    """
    a = np.asarray(alpha_t, dtype=float)
    if a.ndim > 1:
        raise ValueError(f"alpha_t must be a float or a 1-D array, got shape {a.shape}")
    _validate.finite_array("alpha_t", a)
    A0, A1, b0, b1 = _design_parts(data)
    return A0 - a[..., None, None, None] * A1, b0 - a[..., None, None] * b1


def maml_solution(A, b, omega0=None):
    """The exact outer solution: min-norm from ``ω₀`` if ``N < p``, least squares if ``N > p``.

    Parameters
    ----------
    A : array (..., N, p);  b : array (..., N);  omega0 : array (p,) (default 0; unused if N > p).

    Returns
    -------
    array (..., p).
    """
    A, b = np.asarray(A, dtype=float), np.asarray(b, dtype=float)
    N, p = A.shape[-2:]
    if b.shape != A.shape[:-1]:
        raise ValueError(f"b must have shape {A.shape[:-1]} to match A {A.shape}, got {b.shape}")
    if N == p:
        raise ValueError(f"m*n_v = {N} equals p: the outer problem is square (the expected loss diverges); "
                         "use m*n_v < p or > p")
    if N < p:
        omega0 = _vector("omega0", omega0, p)
        # Aᵀ = QR (Q: p × N): the min-norm solution of A θ = r is θ = Q R⁻ᵀ r
        Q, Rm = np.linalg.qr(np.swapaxes(A, -1, -2))
        r = b - A @ omega0
        c = np.linalg.solve(np.swapaxes(Rm, -1, -2), r[..., None])
        return omega0 + (Q @ c)[..., 0]
    Q, Rm = np.linalg.qr(A)                                     # A = QR (Q: N × p)
    return np.linalg.solve(Rm, (np.swapaxes(Q, -1, -2) @ b[..., None]))[..., 0]


def maml_solutions(data: TrainingData, alpha_t, omega0=None):
    """:func:`maml_solution` of :func:`maml_design` for a grid of ``α_t``, without forming every ``A``.

    For ``N > p`` the normal equations are quadratic in ``α_t``: with ``A = A₀ − α A₁`` and
    ``b = b₀ − α b₁``, ``AᵀA = A₀ᵀA₀ − α(A₀ᵀA₁ + A₁ᵀA₀) + α² A₁ᵀA₁`` and likewise ``Aᵀb``, so the three
    ``p × p`` Gram pieces are formed once per run and each ``α_t`` costs one ``p × p`` solve.
    For ``N < p`` the (thin) designs are formed and solved by QR.

    Parameters
    ----------
    data : :class:`TrainingData` of R runs;  alpha_t : array (k,);  omega0 : array (p,) (N < p only).

    Returns
    -------
    array (k, R, p).
    """
    a = np.atleast_1d(np.asarray(alpha_t, dtype=float))
    R, m, n_t, p = data.Xt.shape
    N = m * data.Xv.shape[-2]
    if N <= p:
        A, b = maml_design(data, a)
        return maml_solution(A, b, omega0)
    _validate.finite_array("alpha_t", a)
    A0, A1, b0, b1 = _design_parts(data)
    T = lambda X: np.swapaxes(X, -1, -2)  # noqa: E731
    G0, G1, G2 = T(A0) @ A0, T(A0) @ A1, T(A1) @ A1
    G1 = G1 + T(G1)
    c0, c1, c2 = (np.einsum("rnp,rn->rp", X, y) for X, y in ((A0, b0), (A0, b1), (A1, b1)))
    c1 = c1 + np.einsum("rnp,rn->rp", A1, b0)
    ax = a[:, None, None, None]
    G = G0 - ax * G1 + ax**2 * G2
    c = c0 - a[:, None, None] * c1 + a[:, None, None] ** 2 * c2
    return np.linalg.solve(G, c[..., None])[..., 0]


def engine_meta_gradient(data: TrainingData, alpha_t: float, omega, first_order: bool = False):
    """The engine's one-step MAML meta-loss and meta-gradient at ``ω`` (one value per run).

    Uses :func:`linmeta.meta_value_and_grad` with the shallow model ``(ω[None, :],)``, the support
    and query sets as sample moments (:func:`linmeta.sample_moments`), and one inner step of size
    ``alpha_t``.

    Parameters
    ----------
    data : :class:`TrainingData` of R runs.
    alpha_t : float.
    omega : array (R, p), one model per run.
    first_order : drop the second-order terms (FO-MAML).

    Returns
    -------
    value : array (R,), the meta-loss;  grad : array (R, p), its gradient.
    """
    omega = np.asarray(omega, dtype=float)
    R, p = data.Xt.shape[0], data.Xt.shape[-1]
    if omega.shape != (R, p):
        raise ValueError(f"omega must have shape ({R}, {p}) (one model per run), got {omega.shape}")
    support = sample_moments(data.Xt, data.yt[..., None])
    query = sample_moments(data.Xv, data.yv[..., None])
    g = meta_value_and_grad((omega[:, None, :],), support, query,
                            InnerLoop(steps=1, alpha=float(alpha_t), first_order=first_order))
    return np.asarray(g.value), np.asarray(g.params[0])[:, 0, :]


def draw_test(setting, runs: int, tasks: int, rng, w0=None, test_points: int | None = None) -> TestData:
    """Draw ``tasks`` test tasks for each of ``runs`` runs, ``n_r`` adaptation points each.

    ``test_points`` None scores by the population loss; an int draws that many scoring points.
    """
    runs = _validate.positive_int("runs", runs)
    tasks = _validate.positive_int("tasks", tasks)
    rng = as_generator(rng)
    s = setting
    w0 = _vector("w0", w0, s.p)
    w = _tasks(rng, (runs, tasks), s, w0)
    Xr = rng.standard_normal((runs, tasks, s.n_r, s.p))
    yr = _labels(rng, Xr, w, s.sigma)
    if test_points is None:
        return TestData(Xr, yr, w)
    test_points = _validate.positive_int("test_points", test_points)
    Xs = rng.standard_normal((runs, tasks, test_points, s.p))
    return TestData(Xr, yr, w, Xs, _labels(rng, Xs, w, s.sigma))


def test_losses(test: TestData, omega, alpha_r, sigma: float):
    """Mean post-adaptation test loss over each run's test tasks.

    Parameters
    ----------
    test : :class:`TestData` of R runs.
    omega : array (..., R, p), the trained models (any leading axes, e.g. an ``α_t`` grid).
    alpha_r : array (k,) or float, adaptation step sizes.
    sigma : label noise (used only for the population loss).

    Returns
    -------
    array (..., k, R) (or (..., R) for a float ``alpha_r``).
    """
    omega = np.asarray(omega, dtype=float)
    a = np.asarray(alpha_r, dtype=float)
    n_r = test.Xr.shape[-2]
    om = omega[..., :, None, :]                                          # (..., R, 1, p)
    resid = test.yr - np.einsum("rtnp,...rtp->...rtn", test.Xr, np.broadcast_to(om, om.shape[:-2] + test.w.shape[-2:]))
    g = np.einsum("rtnp,...rtn->...rtp", test.Xr, resid) / n_r          # the adaptation direction
    if test.Xs is None:
        e = om - test.w                                                  # ω − w
        c0, c1, c2 = (0.5 * np.sum(e * e, -1) + 0.5 * sigma**2, np.sum(e * g, -1), 0.5 * np.sum(g * g, -1))
    else:
        n_s = test.Xs.shape[-2]
        r0 = test.ys - np.einsum("rtnp,...rtp->...rtn", test.Xs, np.broadcast_to(om, g.shape))
        Xg = np.einsum("rtnp,...rtp->...rtn", test.Xs, g)
        c0, c1, c2 = (0.5 * np.sum(r0 * r0, -1) / n_s, -np.sum(r0 * Xg, -1) / n_s, 0.5 * np.sum(Xg * Xg, -1) / n_s)
    c0, c1, c2 = (c.mean(-1) for c in (c0, c1, c2))                      # mean over test tasks: (..., R)
    if a.ndim == 0:
        return c0 + a * c1 + a * a * c2
    ax = a[:, None]
    return c0[..., None, :] + ax * c1[..., None, :] + ax * ax * c2[..., None, :]


def simulate(setting, alpha_t, alpha_r, runs: int, tasks: int, rng, w0=None, omega0=None,
             test_points: int | None = None) -> dict:
    """Train MAML exactly for every ``α_t``, adapt on test tasks for every ``α_r``, score.

    The same training and test draws serve every ``(α_t, α_r)`` (common random numbers).

    Parameters
    ----------
    setting : :class:`~linmeta.theory.negative_lr.MixedRegression`.
    alpha_t : array (kt,), training step sizes;  alpha_r : array (kr,), adaptation step sizes.
    runs : R independent runs;  tasks : test tasks per run.
    rng : seed or Generator;  w0, omega0 : arrays (p,) (default 0).
    test_points : None (population test loss) or the number of scoring points per test task.

    Returns
    -------
    dict with ``loss`` (kt, kr, R), the mean test loss of each run, and ``err2`` (kt, R),
    ``|ω̂ − w₀|²`` of each run.
    """
    rng = as_generator(rng)
    w0v = _vector("w0", w0, setting.p)
    at = np.atleast_1d(np.asarray(alpha_t, dtype=float))
    ar = np.atleast_1d(np.asarray(alpha_r, dtype=float))
    data = draw_training(setting, runs, rng, w0v)
    test = draw_test(setting, runs, tasks, rng, w0v, test_points)
    omega = maml_solutions(data, at, omega0)                             # (kt, R, p)
    return {"loss": test_losses(test, omega, ar, setting.sigma),
            "err2": np.sum((omega - w0v) ** 2, -1)}


def estimator_errors(setting, alpha_t, runs: int, rng, w0=None, omega0=None):
    """``|ω̂ − w₀|²`` of ``runs`` independent trainings for every ``α_t`` (common random numbers).

    Returns
    -------
    array (kt, R).
    """
    rng = as_generator(rng)
    w0v = _vector("w0", w0, setting.p)
    at = np.atleast_1d(np.asarray(alpha_t, dtype=float))
    data = draw_training(setting, runs, rng, w0v)
    return np.sum((maml_solutions(data, at, omega0) - w0v) ** 2, -1)


def _vertex(alpha, curve, window, j=None):
    j = int(np.argmin(curve)) if j is None else j
    if j < window or j > curve.size - 1 - window:
        return np.nan
    sl = slice(j - window, j + window + 1)
    c2, c1, _ = np.polyfit(alpha[sl] - alpha[j], curve[sl], 2)
    return alpha[j] - c1 / (2 * c2) if c2 > 0 else np.nan


def grid_minimiser(alpha, samples, batches: int = 50, window: int = 3):
    """Minimiser of the mean curve of ``samples`` over a grid, with a jackknife standard error.

    The minimiser is the vertex of the parabola fitted to the ``2 window + 1`` grid points around
    the discrete minimum of the mean curve; its SE is the delete-one-batch jackknife over
    ``batches`` contiguous batches of runs (every replicate fits the same window).

    Parameters
    ----------
    alpha : array (k,), increasing grid.
    samples : array (k, R), one curve per run (e.g. from :func:`estimator_errors`).
    batches : jackknife batches (at most R).
    window : half-width of the fit, in grid points.

    Returns
    -------
    (minimiser, stderr) : floats; ``nan`` (with SE ``inf``) if the minimum is within ``window``
    points of the grid's ends.
    """
    alpha = np.asarray(alpha, dtype=float)
    x = np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[0] != alpha.size:
        raise ValueError(f"samples must have shape ({alpha.size}, runs), got {x.shape}")
    batches = min(_validate.positive_int("batches", batches), x.shape[1])
    if batches < 2:
        raise ValueError("grid_minimiser needs at least 2 runs for a standard error")
    j = int(np.argmin(x.mean(1)))
    est = _vertex(alpha, x.mean(1), window, j)
    if not np.isfinite(est):
        return float("nan"), float("inf")
    parts = np.array_split(np.arange(x.shape[1]), batches)
    sums, counts = np.stack([x[:, i].sum(1) for i in parts], 1), np.array([i.size for i in parts])
    # the replicates fit the same window (a smooth function of the means, as the jackknife needs)
    jack = np.array([_vertex(alpha, (sums.sum(1) - sums[:, b]) / (counts.sum() - counts[b]), window, j)
                     for b in range(batches)])
    if not np.all(np.isfinite(jack)):
        return float(est), float("inf")
    se = np.sqrt((batches - 1) / batches * np.sum((jack - jack.mean()) ** 2))
    return float(est), float(se)
