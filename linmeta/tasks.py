"""Task families and seeded, batched task sampling.

A *task* of the Gaussian linear-regression family is ``(W*, Σ, σ)``:
``x ~ N(0, Σ)`` in R^d, ``y = W* x + σ ε`` in R^out.  A :class:`TaskBatch` holds
many tasks along a task axis (and optionally a leading run axis); it reduces to
quadratic-loss moments (:class:`~linmeta.losses.QuadraticLoss`) either exactly
(the population) or through sampled data (K-shot support / Q-shot query sets).

Randomness always comes from an explicit ``numpy.random.Generator`` (or a seed).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validate
from ._random import as_generator
from .losses import LogisticLoss, QuadraticLoss, _trusted, moments_unchecked


def _shared_matrix(cov: np.ndarray):
    """The one matrix behind a broadcast stack (all leading strides 0), else None."""
    if cov.ndim > 2 and all(st == 0 for st in cov.strides[:-2]):
        return cov[(0,) * (cov.ndim - 2)]
    return None


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of a PSD matrix (works for singular ones); a broadcast stack is factored once."""
    shared = _shared_matrix(cov)
    if shared is not None:
        return np.broadcast_to(_psd_sqrt(shared), cov.shape)
    lam, U = np.linalg.eigh(cov)
    # eigenvalues below n·eps·λ_max are round-off of a singular covariance: zero them, or a
    # low-rank task family leaks sqrt(1e-17) ≈ 3e-9 outside its span
    cutoff = cov.shape[-1] * np.finfo(float).eps * np.max(np.abs(lam), axis=-1, keepdims=True)
    lam = np.where(lam > cutoff, lam, 0.0)
    return (U * np.sqrt(lam)[..., None, :]) @ np.swapaxes(U, -1, -2)


def _broadcast(name, x, shape, expected):
    try:
        return np.broadcast_to(x, shape)
    except ValueError:
        raise ValueError(f"{name} must be {expected} broadcastable to {shape}, got shape {x.shape}") from None


def _finite_loss(*arrays):
    """Raise if a loss built from finite tasks overflowed float64 (e.g. huge w_star, input_cov or noise_std)."""
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise ValueError("the tasks' loss overflows float64 (non-finite moments from finite w_star, input_cov and "
                         "noise_std): rescale the tasks (their magnitudes are too large)")


@dataclass(frozen=True)
class TaskBatch:
    """Concrete regression tasks along a task axis.

    Parameters
    ----------
    w_star : array (*runs, T, out, d), each task's true linear map
    input_cov : array (*runs, T, d, d), each task's input covariance Σ
    noise_std : array (*runs, T), each task's label-noise standard deviation σ
    """

    w_star: np.ndarray
    input_cov: np.ndarray
    noise_std: np.ndarray

    def __post_init__(self):
        w = _validate.real_array("w_star", self.w_star, finite=False)
        if w.ndim < 3:
            raise ValueError(f"w_star must have shape (*runs, T, out, d), got {w.shape}")
        if 0 in w.shape:
            raise ValueError(f"w_star has shape {w.shape}: a TaskBatch needs at least one task (T >= 1), "
                             "out >= 1 and d >= 1 (and no empty run axis)")
        lead, d = w.shape[:-2], w.shape[-1]
        cov = _broadcast("input_cov", _validate.real_array("input_cov", self.input_cov, finite=False), lead + (d, d),
                         "(d, d) or (*runs, T, d, d)")
        noise = _broadcast("noise_std", _validate.real_array("noise_std", self.noise_std, finite=False), lead,
                           "a float or an array (*runs, T)")
        _validate.finite_array("w_star", w)
        shared = _shared_matrix(cov)
        _validate.psd_matrix("input_cov", cov if shared is None else shared)
        _validate.finite_array("noise_std", noise)
        if np.any(noise < 0):
            raise ValueError("noise_std must be non-negative")
        object.__setattr__(self, "w_star", w)
        object.__setattr__(self, "input_cov", cov)
        object.__setattr__(self, "noise_std", noise)

    @property
    def n_tasks(self) -> int:
        return self.w_star.shape[-3]

    @property
    def d(self) -> int:
        return self.w_star.shape[-1]

    @property
    def out(self) -> int:
        return self.w_star.shape[-2]

    def population(self) -> QuadraticLoss:
        """Exact population loss ``½ E‖y − M x‖²`` as moments (A, B, c)."""
        S, W = self.input_cov, self.w_star
        SW = S @ np.swapaxes(W, -1, -2)  # Σ W*ᵀ, (…, d, out)
        with np.errstate(over="ignore", invalid="ignore"):
            c = 0.5 * np.einsum("...od,...do->...", W, SW) + 0.5 * self.out * self.noise_std**2
        _finite_loss(SW, c)
        return _trusted(QuadraticLoss, A=S.copy(), B=SW, c=c)  # PSD and finite: built from a checked batch

    def sample_data(self, n: int, rng):
        """Draw ``n`` samples per task.

        Returns
        -------
        X : array (*runs, T, n, d)
        Y : array (*runs, T, n, out)
        """
        n = _validate.positive_int("n", n)
        rng = as_generator(rng)
        lead = self.w_star.shape[:-2]
        Z = rng.standard_normal(lead + (n, self.d))
        X = Z @ self._input_sqrt()
        eps = rng.standard_normal(lead + (n, self.out))
        Y = X @ np.swapaxes(self.w_star, -1, -2) + self.noise_std[..., None, None] * eps
        return X, Y

    def _input_sqrt(self):
        cached = self.__dict__.get("_sqrt_cache")
        if cached is None:
            cached = _psd_sqrt(self.input_cov)
            object.__setattr__(self, "_sqrt_cache", cached)
        return cached

    def moments(self, n: int | None, rng) -> QuadraticLoss:
        """Loss moments from ``n`` fresh samples per task, or the population if ``n`` is None."""
        if n is None:
            return self.population()
        with np.errstate(over="ignore", invalid="ignore"):
            loss = moments_unchecked(*self.sample_data(n, rng))
        _finite_loss(loss.A, loss.B, loss.c)
        return loss

    def take(self, index) -> "TaskBatch":
        """Select tasks along the task axis."""
        index = _validate.indices("index", index, self.n_tasks)
        ax = self.w_star.ndim - 3
        return TaskBatch(
            np.take(self.w_star, index, axis=ax),
            np.take(self.input_cov, index, axis=ax),
            np.take(self.noise_std, index, axis=ax),
        )


@dataclass(frozen=True)
class MetaBatch:
    """The support (inner-loop) and query (outer-loop) losses of a batch of tasks."""

    support: object
    query: object

    def __post_init__(self):
        for name in ("support", "query"):
            loss = getattr(self, name)
            if not all(callable(getattr(loss, m, None)) for m in ("value", "grad", "hess_action")):
                raise _validate.ArgumentTypeError(f"{name} must be a loss object (linmeta.QuadraticLoss, SquaredLoss "
                                                  f"or LogisticLoss), got {type(loss).__name__}")

    def to(self, backend, device=None, dtype=None) -> "MetaBatch":
        """Both losses on another backend/device/dtype (a name or a :class:`~linmeta.ArrayBackend`)."""
        return MetaBatch(self.support.to(backend, device, dtype), self.query.to(backend, device, dtype))


def meta_batch(tasks: TaskBatch, K: int | None, Q: int | None, rng) -> MetaBatch:
    """Support (K shots, or the population if ``K`` is None) and query (Q shots / population) losses."""
    _validate.instance("tasks", tasks, TaskBatch, "a linmeta.TaskBatch (from family.sample_tasks(n, rng)); "
                       "for classification tasks use BinaryClassification.meta_batch")
    _validate.optional_int("K", K, none="the population loss")
    _validate.optional_int("Q", Q, none="the population loss")
    rng = as_generator(rng)
    return MetaBatch(tasks.moments(K, rng), tasks.moments(Q, rng))


@dataclass(frozen=True)
class GaussianRegression:
    """Gaussian linear-regression task family.

    ``W* ~ N(mean, cov)`` (out x d), ``x ~ N(0, input_cov)``, ``y = W* x + noise_std ε``.

    Parameters
    ----------
    d : input dimension.
    out : output dimension (multi-output allowed).
    mean : array (out, d) or None (zero), the mean task E[W*].
    cov : float, array (d, d) or array (out*d, out*d), or None (identity).
        Covariance of W*: a float is ``cov * I``; a (d, d) matrix is shared by each
        output row independently; an (out*d, out*d) matrix is the covariance of
        ``W*.reshape(-1)`` (row-major).
    input_cov : array (d, d) or None (identity), the input covariance Σ, shared by all tasks.
        For tasks with different Σ, use :class:`TaskMixture` or build a :class:`TaskBatch`.
    noise_std : label noise σ ≥ 0.
    """

    d: int
    out: int = 1
    mean: object = None
    cov: object = None
    input_cov: object = None
    noise_std: float = 0.0

    has_population_loss = True

    def __post_init__(self):
        d = _validate.positive_int("d", self.d)
        out = _validate.positive_int("out", self.out)
        mean = np.zeros((out, d)) if self.mean is None else _validate.real_array("mean", self.mean, finite=False)
        if mean.shape != (out, d):
            raise ValueError(f"mean must have shape (out, d) = ({out}, {d}), got {mean.shape}")
        _validate.finite_array("mean", mean)
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "out", out)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", self._full_cov(self.cov, out, d))
        S = np.eye(d) if self.input_cov is None else _validate.psd_matrix("input_cov", self.input_cov)
        if S.shape != (d, d):
            raise ValueError(f"input_cov must have shape (d, d) = ({d}, {d}), got {S.shape}")
        object.__setattr__(self, "input_cov", S)
        object.__setattr__(self, "noise_std", _validate.finite_float("noise_std", self.noise_std, non_negative=True))
        object.__setattr__(self, "_cov_sqrt", _psd_sqrt(self.cov))

    @staticmethod
    def _full_cov(cov, out, d) -> np.ndarray:
        if cov is None:
            return np.eye(out * d)
        if np.isscalar(cov) or np.ndim(cov) == 0 and not isinstance(cov, (list, tuple)):
            v = _validate.finite_float("cov", cov.item() if isinstance(cov, np.ndarray) else cov, non_negative=True)
            return v * np.eye(out * d)
        cov = _validate.psd_matrix("cov", cov)
        if cov.shape == (d, d):
            return np.kron(np.eye(out), cov)
        if cov.shape == (out * d, out * d):
            return cov
        raise ValueError(
            f"cov must be a float, a (d, d) = ({d}, {d}) or an (out*d, out*d) = ({out * d}, {out * d}) matrix, got {cov.shape}"
        )

    def sample_tasks(self, n_tasks: int, rng, *, n_runs: int | None = None) -> TaskBatch:
        """Draw ``n_tasks`` tasks (per run, if ``n_runs`` is given: leading run axis)."""
        n_tasks = _validate.positive_int("n_tasks", n_tasks)
        lead = (n_tasks,) if n_runs is None else (_validate.positive_int("n_runs", n_runs), n_tasks)
        rng = as_generator(rng)
        z = rng.standard_normal(lead + (self.out * self.d,))
        w = self.mean + (z @ self._cov_sqrt).reshape(lead + (self.out, self.d))
        return TaskBatch(w, np.broadcast_to(self.input_cov, lead + (self.d, self.d)), np.full(lead, self.noise_std))

    def mean_task(self) -> np.ndarray:
        """E[W*], shape (out, d)."""
        return self.mean

    def meta_batch(self, tasks: TaskBatch, K: int | None, Q: int | None, rng) -> MetaBatch:
        """Support and query losses of ``tasks`` (see :func:`meta_batch`)."""
        return meta_batch(tasks, K, Q, rng)


@dataclass(frozen=True)
class TaskMixture:
    """A mixture of task families: each task is drawn from component ``i`` with probability ``weights[i]``.

    The components must share ``d`` and ``out``; they may differ in anything else
    (mean, spread, input covariance, noise), which is how easy/hard mixtures are built.
    """

    components: tuple
    weights: tuple

    has_population_loss = True

    def __post_init__(self):
        if isinstance(self.components, (str, bytes)) or not hasattr(self.components, "__iter__"):
            raise _validate.ArgumentTypeError(f"components must be a sequence of task families, got "
                                              f"{type(self.components).__name__}")
        comps = tuple(self.components)
        if not comps:
            raise ValueError("components must be a non-empty sequence of task families")
        for i, c in enumerate(comps):
            _validate.instance(f"components[{i}]", c, (GaussianRegression, TaskMixture),
                               "a linmeta.GaussianRegression or TaskMixture (regression task families)")
        if isinstance(self.weights, (str, bytes)):
            raise _validate.ArgumentTypeError(f"weights must be a sequence of {len(comps)} probabilities, got str")
        w = _validate.real_array("weights", self.weights)
        if w.shape != (len(comps),) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
            raise ValueError(f"weights must be {len(comps)} non-negative numbers summing to 1, got {self.weights!r}")
        if len({(c.d, c.out) for c in comps}) != 1:
            raise ValueError("all components must share d and out; got (d, out) = "
                             f"{[(c.d, c.out) for c in comps]}")
        object.__setattr__(self, "components", comps)
        object.__setattr__(self, "weights", tuple(float(x) for x in w))

    @property
    def d(self) -> int:
        return self.components[0].d

    @property
    def out(self) -> int:
        return self.components[0].out

    def sample_tasks(self, n_tasks: int, rng, *, n_runs: int | None = None, return_labels: bool = False):
        n_tasks = _validate.positive_int("n_tasks", n_tasks)
        lead = (n_tasks,) if n_runs is None else (_validate.positive_int("n_runs", n_runs), n_tasks)
        _validate.boolean("return_labels", return_labels)
        rng = as_generator(rng)
        labels = rng.choice(len(self.components), size=lead, p=self.weights)
        flat = labels.reshape(-1)
        parts = [c.sample_tasks(flat.size, rng) for c in self.components]
        pick = lambda name: np.stack([getattr(p, name) for p in parts])[flat, np.arange(flat.size)]
        w, S, s = pick("w_star"), pick("input_cov"), pick("noise_std")
        batch = TaskBatch(
            w.reshape(lead + w.shape[1:]), S.reshape(lead + S.shape[1:]), s.reshape(lead)
        )
        return (batch, labels) if return_labels else batch

    def mean_task(self) -> np.ndarray:
        return sum(p * c.mean_task() for p, c in zip(self.weights, self.components))

    def meta_batch(self, tasks: TaskBatch, K: int | None, Q: int | None, rng) -> MetaBatch:
        """Support and query losses of ``tasks`` (see :func:`meta_batch`)."""
        return meta_batch(tasks, K, Q, rng)


def mixture_components(family) -> list:
    """``[(probability, GaussianRegression), ...]`` of a family, flattening nested mixtures.

    A :class:`GaussianRegression` is its own single component.
    """
    if isinstance(family, GaussianRegression):
        return [(1.0, family)]
    if isinstance(family, TaskMixture):
        out = []
        for p, c in zip(family.weights, family.components):
            out.extend((p * q, cc) for q, cc in mixture_components(c))
        return out
    raise _validate.ArgumentTypeError(f"family must be a GaussianRegression or a TaskMixture of them, got "
                                      f"{type(family).__name__}")


@dataclass(frozen=True)
class BinaryClassification:
    """Linearly separable binary tasks: ``y = 1[w*ᵀx > 0]``, each label flipped with probability ``label_noise``.

    ``w* ~ N(mean, cov I)`` in R^d, ``x ~ N(0, input_cov)``.
    """

    d: int
    mean: object = None
    cov: float = 1.0
    input_cov: object = None
    label_noise: float = 0.0

    has_population_loss = False

    def __post_init__(self):
        d = _validate.positive_int("d", self.d)
        mean = np.zeros(d) if self.mean is None else _validate.real_array("mean", self.mean, finite=False)
        if mean.shape not in ((d,), (1, d)):
            raise ValueError(f"mean must have shape (d,) = ({d},), got {mean.shape}")
        mean = mean.reshape(-1)
        _validate.finite_array("mean", mean)
        object.__setattr__(self, "d", d)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "cov", _validate.finite_float("cov", self.cov, non_negative=True))
        S = np.eye(d) if self.input_cov is None else _validate.psd_matrix("input_cov", self.input_cov)
        if S.shape != (d, d):
            raise ValueError(f"input_cov must have shape (d, d) = ({d}, {d}), got {S.shape}")
        object.__setattr__(self, "input_cov", S)
        p = _validate.finite_float("label_noise", self.label_noise, non_negative=True)
        if p > 0.5:
            raise ValueError(f"label_noise must be in [0, 0.5], got {p}")
        object.__setattr__(self, "label_noise", p)

    @property
    def out(self) -> int:
        return 1

    def sample_tasks(self, n_tasks: int, rng, *, n_runs: int | None = None) -> np.ndarray:
        """Task vectors w*, shape (*runs, T, 1, d)."""
        n_tasks = _validate.positive_int("n_tasks", n_tasks)
        lead = (n_tasks,) if n_runs is None else (_validate.positive_int("n_runs", n_runs), n_tasks)
        rng = as_generator(rng)
        return (self.mean + np.sqrt(self.cov) * rng.standard_normal(lead + (self.d,)))[..., None, :]

    def sample_loss(self, w_star: np.ndarray, n: int, rng) -> LogisticLoss:
        """A logistic loss on ``n`` fresh labelled samples per task."""
        w_star = self._check_w_star(w_star)
        n = _validate.positive_int("n", n)
        rng = as_generator(rng)
        lead = w_star.shape[:-2]
        X = rng.standard_normal(lead + (n, self.d)) @ _psd_sqrt(self.input_cov)
        y = ((X @ np.swapaxes(w_star, -1, -2))[..., 0] > 0).astype(float)
        flip = rng.random(y.shape) < self.label_noise
        return _trusted(LogisticLoss, X=X, y=np.where(flip, 1.0 - y, y))  # finite, labels in {0, 1}

    def _check_w_star(self, w_star):
        w = _validate.real_array("w_star", w_star)
        if w.ndim < 3 or w.shape[-2:] != (1, self.d) or 0 in w.shape:
            raise ValueError(f"w_star must have shape (*runs, T, 1, d) = (..., 1, {self.d}) with T >= 1 (from "
                             f"sample_tasks), got {w.shape}")
        return w

    def meta_batch(self, w_star: np.ndarray, K: int, Q: int, rng) -> MetaBatch:
        """Support (K samples) and query (Q samples) logistic losses of the tasks ``w_star``."""
        if K is None or Q is None:
            raise ValueError(f"K and Q must be integers for classification tasks (no closed-form population loss), "
                             f"got K={K!r}, Q={Q!r}")
        w_star = self._check_w_star(w_star)
        _validate.positive_int("K", K)
        _validate.positive_int("Q", Q)
        rng = as_generator(rng)
        return MetaBatch(self.sample_loss(w_star, K, rng), self.sample_loss(w_star, Q, rng))
