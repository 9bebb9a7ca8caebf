"""Task losses as functions of the end-to-end linear map ``M`` (out x d).

A loss object is a thin frozen dataclass holding batched arrays with a task
axis.  Each implements the same small interface, used by the inner loop and the
meta-gradient:

``value(M)``
    the loss, shape ``(*batch, T)``;
``grad(M)``
    its gradient in ``M``, shape ``(*batch, T, out, d)``;
``hess_action(M, dM)``
    the Hessian in ``M`` applied to a direction ``dM``, same shape as ``grad``.

``M`` may carry the task axis or broadcast against it (shape ``(*batch, 1, out, d)``).
All methods are written against the array API, so numpy and torch arrays both work,
and complex inputs pass through unchanged (no conjugation), which makes
complex-step differentiation of the quadratic loss exact.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import _validate
from ._backend import check_same_backend, is_torch, namespace, to_backend, to_numpy


def _trusted(cls, **fields):
    """An instance of the loss dataclass ``cls`` built without validation (its arrays come from a checked one)."""
    obj = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(obj, name, value)
    return obj


def _loss_to(loss, backend, device=None, dtype=None):
    """The same loss with every array moved to ``backend`` (a name or a :class:`~linmeta.ArrayBackend`)."""
    fields = {f.name: to_backend(getattr(loss, f.name), backend, device, dtype) for f in dataclasses.fields(loss)}
    return _trusted(type(loss), **fields)


def _arrays(named: dict) -> dict:
    """Each array of a loss checked to be real (lists become float64 arrays), on one backend."""
    out = {name: _validate.loss_array(name, x) for name, x in named.items()}
    check_same_backend(out)
    return out


def _all_in_unit_interval(y) -> bool:
    xp = namespace(y)
    return bool(xp.all((y >= 0) & (y <= 1)))


def _shape(x) -> tuple:
    return tuple(int(n) for n in x.shape)


def _take(loss, index):
    """Select tasks along the task axis (axis ``-1`` of the per-task scalars)."""
    index = _validate.indices("index", index, loss.n_tasks)
    fields = {}
    for f in dataclasses.fields(loss):
        arr = getattr(loss, f.name)
        nd_tail = loss._tail_ndim[f.name]
        axis = arr.ndim - nd_tail - 1
        fields[f.name] = np.take(to_numpy(arr), index, axis=axis)
    return _trusted(type(loss), **fields)


@dataclass(frozen=True)
class QuadraticLoss:
    r"""The quadratic loss :math:`\tfrac12\operatorname{tr}(M A M^\top) - \operatorname{tr}(M B) + c`.

    This is every linear-regression task, population or K-shot (see ``ARCHITECTURE.md``):
    population: ``A = Σ``, ``B = Σ W*ᵀ``, ``c = ½ tr(W* Σ W*ᵀ) + ½ out σ²``;
    sample (X, Y): ``A = XᵀX/K``, ``B = XᵀY/K``, ``c = ‖Y‖²/(2K)``.

    Parameters
    ----------
    A : array (*batch, T, d, d), symmetric PSD second moment of the inputs
    B : array (*batch, T, d, out), input-output cross moment
    c : array (*batch, T), half the output second moment

    The arrays are checked on construction (real, finite, shapes consistent, ``A`` symmetric PSD to
    round-off).  The engine's entry points need the task axis ``T``; a single task without it, ``A``
    (d, d), is accepted for direct use of :meth:`value` and :meth:`grad`.  Quadratic tasks with
    negative curvature (a non-convex task, not a regression) are built with :meth:`indefinite`.
    """

    A: object
    B: object
    c: object

    _tail_ndim = {"A": 2, "B": 2, "c": 0}

    def __post_init__(self):
        self._check(psd=True)

    @classmethod
    def indefinite(cls, A, B, c) -> "QuadraticLoss":
        """A quadratic task whose ``A`` is symmetric but may have negative eigenvalues (negative curvature).

        The same checks as the constructor, except positive semi-definiteness.
        """
        obj = _trusted(cls, A=A, B=B, c=c)
        obj._check(psd=False)
        return obj

    def _check(self, *, psd: bool):
        f = _arrays({"A": self.A, "B": self.B, "c": self.c})
        A, B, c = f["A"], f["B"], f["c"]
        if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
            raise ValueError(f"A must have shape (*batch, T, d, d) (a square matrix per task), got {_shape(A)}")
        lead, d = _shape(A)[:-2], int(A.shape[-1])
        if d == 0 or 0 in lead:
            raise ValueError(f"A has shape {_shape(A)}: a loss needs at least one task and d >= 1")
        if B.ndim != A.ndim or _shape(B)[:-1] != lead + (d,) or B.shape[-1] == 0:
            raise ValueError(f"B must have shape (*batch, T, d, out) = {lead + (d,)} + (out,) with out >= 1 to "
                             f"match A {_shape(A)}, got {_shape(B)}")
        if _shape(c) != lead:
            raise ValueError(f"c must have shape (*batch, T) = {lead} to match A {_shape(A)}, got {_shape(c)}")
        for name, x in f.items():
            _validate.finite_array(name, x)
        if psd:
            _validate.psd_matrix("A", A)
        else:
            _validate.symmetric_matrix("A", A)
        for name, x in f.items():
            object.__setattr__(self, name, x)

    @property
    def d(self) -> int:
        return int(self.A.shape[-1])

    @property
    def out(self) -> int:
        return int(self.B.shape[-1])

    @property
    def n_tasks(self) -> int:
        return int(self.A.shape[-3])

    @property
    def batch_shape(self) -> tuple:
        return tuple(self.A.shape[:-3])

    def value(self, M):
        return _value_and_grad(self, M)[0]

    def grad(self, M):
        return M @ self.A - self.B.mT

    def hess_action(self, M, dM):
        return dM @ self.A

    def curvature_max(self):
        """Largest eigenvalue of ``A`` per task, shape ``(*batch, T)`` (numpy)."""
        return np.linalg.eigvalsh(to_numpy(self.A))[..., -1]

    def optimum(self):
        """Least-squares minimiser ``M* = Bᵀ A⁺`` per task, shape ``(*batch, T, out, d)`` (numpy)."""
        A = to_numpy(self.A)
        return np.swapaxes(np.linalg.pinv(A, hermitian=True) @ to_numpy(self.B), -1, -2)

    def to(self, backend, device=None, dtype=None) -> "QuadraticLoss":
        """The same loss on another backend/device/dtype (see :func:`linmeta.array_backend`)."""
        return _loss_to(self, backend, device, dtype)

    def take(self, index) -> "QuadraticLoss":
        return _take(self, index)


def _sigmoid(xp, z):
    # stable for large |z|: never exponentiates a positive number
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class _OnSamples:
    """Shared by the losses that keep their samples ``X`` (*batch, T, n, d): sizes, backend move, task selection."""

    @property
    def d(self) -> int:
        return int(self.X.shape[-1])

    @property
    def n_tasks(self) -> int:
        return int(self.X.shape[-3])

    @property
    def batch_shape(self) -> tuple:
        return tuple(self.X.shape[:-3])

    def to(self, backend, device=None, dtype=None):
        """The same loss on another backend/device/dtype (see :func:`linmeta.array_backend`)."""
        return _loss_to(self, backend, device, dtype)

    def take(self, index):
        return _take(self, index)


@dataclass(frozen=True)
class LogisticLoss(_OnSamples):
    r"""Binary cross-entropy of a scalar-output linear map on samples.

    ``loss(M) = mean_i [softplus(z_i) - y_i z_i]`` with logits ``z_i = M x_i``.

    Parameters
    ----------
    X : array (*batch, T, n, d), inputs
    y : array (*batch, T, n), labels in {0, 1} (soft labels in [0, 1] allowed)
    """

    X: object
    y: object

    _tail_ndim = {"X": 2, "y": 1}

    def __post_init__(self):
        f = _arrays({"X": self.X})
        X = f["X"]
        y = _validate.loss_array("y", self.y, allow_bool=True)
        check_same_backend({"X": X, "y": y})
        _check_sample_shape(X)
        if _shape(y) != _shape(X)[:-1]:
            raise ValueError(f"y must have shape (*batch, T, n) = {_shape(X)[:-1]} to match X {_shape(X)} "
                             f"(one label per sample), got {_shape(y)}")
        _validate.finite_array("X", X)
        _validate.finite_array("y", y)
        if not _all_in_unit_interval(y):
            raise ValueError("y must hold labels in [0, 1] (0/1, or soft labels); got values outside it. "
                             "Map labels {-1, +1} to {0, 1} with (y + 1) / 2")
        if is_torch(y) and not y.is_floating_point():
            y = y.to(X.dtype)  # boolean labels: 0/1 in the inputs' dtype
        elif not is_torch(y) and y.dtype.kind == "b":
            y = y.astype(X.dtype)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)

    @property
    def out(self) -> int:
        return 1

    def _logits(self, M):
        return (self.X @ M.mT)[..., 0]

    def value(self, M):
        xp = namespace(M, self.X)
        z = self._logits(M)
        softplus = xp.where(z > 0, z, 0.0 * z) + xp.log1p(xp.exp(-xp.abs(z)))
        return xp.mean(softplus - self.y * z, axis=-1)

    def grad(self, M):
        xp = namespace(M, self.X)
        z = self._logits(M)
        r = (_sigmoid(xp, z) - self.y)[..., None, :]
        return (r @ self.X) / self.X.shape[-2]

    def hess_action(self, M, dM):
        xp = namespace(M, self.X)
        z = self._logits(M)
        s = _sigmoid(xp, z)
        dz = (self.X @ dM.mT)[..., 0]
        return ((s * (1.0 - s) * dz)[..., None, :] @ self.X) / self.X.shape[-2]

    def accuracy(self, M):
        """Fraction of correctly classified samples per task, shape ``(*batch, T)``."""
        xp = namespace(M, self.X)
        pred = xp.astype(self._logits(M) > 0, self.X.dtype)
        return xp.mean(xp.astype(pred == (self.y > 0.5), self.X.dtype), axis=-1)

    def curvature_max(self):
        """Upper bound ¼ λ_max(XᵀX/n) on the largest Hessian eigenvalue per task (numpy)."""
        X = to_numpy(self.X)
        return 0.25 * np.linalg.eigvalsh(np.swapaxes(X, -1, -2) @ X / X.shape[-2])[..., -1]


def _check_sample_shape(X):
    if X.ndim < 3:
        raise ValueError(f"X must have shape (*batch, T, n, d) (tasks, samples, features), got {_shape(X)}")
    if 0 in _shape(X):
        raise ValueError(f"X has shape {_shape(X)}: a loss needs at least one task (T), one sample (n) and d >= 1 "
                         "(an empty support or query set has no loss)")


def _check_samples(X, Y):
    """``(X, Y)`` checked: real, on one backend, shapes (*batch, T, n, d) and (*batch, T, n, out), non-empty, finite."""
    f = _arrays({"X": X, "Y": Y})
    X, Y = f["X"], f["Y"]
    _check_sample_shape(X)
    if Y.ndim != X.ndim or _shape(X)[:-1] != _shape(Y)[:-1] or Y.shape[-1] == 0:
        raise ValueError(
            f"X (*batch, T, n, d) and Y (*batch, T, n, out) must share their leading shape (*batch, T, n), with "
            f"out >= 1; got X {_shape(X)} and Y {_shape(Y)}"
        )
    _validate.finite_array("X", X)
    _validate.finite_array("Y", Y)
    return X, Y


@dataclass(frozen=True)
class SquaredLoss(_OnSamples):
    r"""Mean squared loss ``½‖Y − X Mᵀ‖²/n`` on samples, kept in data form.

    The same loss as ``sample_moments(X, Y)``, but every product goes through the ``n`` samples
    instead of the d × d moment ``XᵀX/n``: it skips building the moments (O(n d²) per task) and is
    cheaper per Hessian action when ``n < d``, as in few-shot support sets.  The engine accepts
    either form; their values and gradients agree to round-off.

    Parameters
    ----------
    X : array (*batch, T, n, d), inputs
    Y : array (*batch, T, n, out), targets
    """

    X: object
    Y: object

    _tail_ndim = {"X": 2, "Y": 2}

    def __post_init__(self):
        X, Y = _check_samples(self.X, self.Y)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "Y", Y)

    @property
    def out(self) -> int:
        return int(self.Y.shape[-1])

    def _residual(self, M):
        return self.X @ M.mT - self.Y  # (*batch, T, n, out)

    def value(self, M):
        return _value_and_grad(self, M, grad=False)[0]

    def grad(self, M):
        return self._residual(M).mT @ self.X / self.X.shape[-2]

    def hess_action(self, M, dM):
        return (self.X @ dM.mT).mT @ self.X / self.X.shape[-2]

    def moments(self) -> QuadraticLoss:
        """The same loss as moments ``(A, B, c)``."""
        return moments_unchecked(self.X, self.Y)

    def curvature_max(self):
        """Largest eigenvalue of ``XᵀX/n`` per task, shape ``(*batch, T)`` (numpy)."""
        X = to_numpy(self.X)
        return np.linalg.svd(X, compute_uv=False)[..., 0] ** 2 / X.shape[-2]

    def optimum(self):
        """Least-squares minimiser per task, shape ``(*batch, T, out, d)`` (numpy)."""
        return self.moments().optimum()


def _value_and_grad(loss, M, grad: bool = True):
    """``(loss.value(M), loss.grad(M))`` sharing the work both need (``grad=False``: value only).

    The meta-gradient's query step needs both at the same ``M``: for the quadratic loss
    ``G = M A − Bᵀ`` and ``ℓ = ½ ⟨M, G − Bᵀ⟩ + c`` share ``M A``; for the squared loss both go
    through the residual ``X Mᵀ − Y``.  Other losses fall back to the two methods.
    """
    if type(loss) is QuadraticLoss:
        xp = namespace(M)
        Bt = loss.B.mT
        G = M @ loss.A - Bt
        return 0.5 * xp.sum(M * (G - Bt), axis=(-2, -1)) + loss.c, G
    if type(loss) is SquaredLoss:
        xp = namespace(M)
        n = loss.X.shape[-2]
        R = loss._residual(M)
        value = xp.sum(R * R, axis=(-2, -1)) * (0.5 / n)
        return value, ((R.mT @ loss.X) * (1.0 / n) if grad else None)
    return loss.value(M), (loss.grad(M) if grad else None)


def sample_moments(X, Y) -> QuadraticLoss:
    """Moments of the mean squared loss ``½‖Y - X Mᵀ‖²/n`` on samples.

    Parameters
    ----------
    X : array (*batch, T, n, d)
    Y : array (*batch, T, n, out)
    """
    X, Y = _check_samples(X, Y)
    return moments_unchecked(X, Y)


def moments_unchecked(X, Y) -> QuadraticLoss:
    """:func:`sample_moments` of trusted samples (no validation; the moments are PSD by construction)."""
    xp = namespace(X, Y)
    n = X.shape[-2]
    return _trusted(QuadraticLoss, A=X.mT @ X / n, B=X.mT @ Y / n, c=0.5 * xp.sum(Y * Y, axis=(-2, -1)) / n)
