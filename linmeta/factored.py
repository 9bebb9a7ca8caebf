"""Per-task matrices stored as a shared base plus a low-rank correction: ``X = base + C R``.

Every inner-loop update of a deep linear network adds an outer product of thin
matrices (``S_lᵀ (G P_lᵀ)``, rank ``out``), so after k steps each task's layer is
the shared initialisation plus a rank ≤ k·out correction, and the reverse-mode
accumulators are sums of such outer products too.  Keeping them factored means
every product the engine needs is *thin* (``Z @ X`` or ``Z @ Xᵀ`` for ``Z`` with
``out`` rows) and costs O(n·(m + r)) per task instead of O(n·m) memory traffic
per full matrix, and the final sum over tasks is a single matrix product.

Shapes: ``base`` (*, n, m) or None (zero); ``C`` (*, n, r) and ``R`` (*, r, m), or
both None (r = 0).  Leading axes broadcast (run and task axes).  Transforms that
do not preserve low rank (Meta-SGD's elementwise scaling) fold the correction
into a dense base with :meth:`Factored.densified`.
"""
from __future__ import annotations

from .backend import namespace


def _lead(*arrays):
    import numpy as np

    return np.broadcast_shapes(*[tuple(a.shape[:-2]) for a in arrays if a is not None])


def _bcast(xp, a, lead):
    return xp.broadcast_to(a, tuple(lead) + tuple(a.shape[-2:]))


class Factored:
    """``base + C @ R`` (see module docstring)."""

    __slots__ = ("base", "C", "R")

    def __init__(self, base=None, C=None, R=None):
        self.base, self.C, self.R = base, C, R

    @classmethod
    def wrap(cls, x):
        """A Factored view of a dense array (or ``x`` itself if already Factored; None stays None)."""
        if x is None or isinstance(x, Factored):
            return x
        return cls(base=x)

    @classmethod
    def outer(cls, C, R):
        """The rank-r matrix ``C @ R``; ``C=None`` means the identity (``R`` is returned as the base)."""
        if C is None:
            return cls(base=R)
        return cls(C=C, R=R)

    @property
    def rank(self) -> int:
        return 0 if self.C is None else int(self.C.shape[-1])

    def dense(self):
        """The full matrix ``base + C R``."""
        if self.C is None:
            return self.base
        low = self.C @ self.R
        return low if self.base is None else self.base + low

    def densified(self) -> "Factored":
        return Factored(base=self.dense())

    def left(self, Z):
        """``Z @ X`` for a thin ``Z`` (*, k, n)."""
        out = None if self.base is None else Z @ self.base
        if self.C is not None:
            low = (Z @ self.C) @ self.R
            out = low if out is None else out + low
        return out

    def right_t(self, Z):
        """``Z @ Xᵀ`` for a thin ``Z`` (*, k, m)."""
        out = None if self.base is None else Z @ self.base.mT
        if self.C is not None:
            low = (Z @ self.R.mT) @ self.C.mT
            out = low if out is None else out + low
        return out

    def scaled(self, a) -> "Factored":
        """``a X`` for a scalar ``a`` (the correction's ``C`` is scaled)."""
        return Factored(None if self.base is None else a * self.base, None if self.C is None else a * self.C, self.R)

    def plus(self, other: "Factored") -> "Factored":
        """``X + Y``: bases add, low-rank parts concatenate (ranks add)."""
        if self.base is None:
            base = other.base
        elif other.base is None:
            base = self.base
        else:
            base = self.base + other.base
        if other.C is None:
            return Factored(base, self.C, self.R)
        if self.C is None:
            return Factored(base, other.C, other.R)
        xp = namespace(self.C, other.C)
        lead = _lead(self.C, self.R, other.C, other.R)
        C = xp.concat([_bcast(xp, self.C, lead), _bcast(xp, other.C, lead)], axis=-1)
        R = xp.concat([_bcast(xp, self.R, lead), _bcast(xp, other.R, lead)], axis=-2)
        return Factored(base, C, R)

    def map_factors(self, left=None, right=None) -> "Factored":
        """``L X R'`` for square matrices ``left`` (n x n) and ``right`` (m x m), keeping the factorisation."""
        def lm(a):
            return a if left is None else left @ a

        def rm(a):
            return a if right is None else a @ right

        base = None if self.base is None else rm(lm(self.base))
        if self.C is None:
            return Factored(base)
        return Factored(base, lm(self.C), rm(self.R))


def sum_tasks(x):
    """Sum of a Factored (or dense) matrix over the task axis (axis -3), as a dense array.

    The low-rank part becomes one matrix product: ``Σ_t C_t R_t = [C_1 … C_T] [R_1; …; R_T]``.
    A ``base`` must carry the full task axis (a broadcast size-1 axis would be counted once).
    """
    if not isinstance(x, Factored):
        return namespace(x).sum(x, axis=-3)
    out = None
    if x.base is not None:
        xp = namespace(x.base)
        out = xp.sum(x.base, axis=-3) if x.base.ndim >= 3 else x.base
    if x.C is not None:
        xp = namespace(x.C, x.R)
        lead = _lead(x.C, x.R)
        C, R = _bcast(xp, x.C, lead), _bcast(xp, x.R, lead)
        *outer, T, n, r = C.shape
        m = R.shape[-1]
        nd = len(outer)
        Cw = xp.reshape(xp.permute_dims(C, tuple(range(nd)) + (nd + 1, nd, nd + 2)), tuple(outer) + (n, T * r))
        Rw = xp.reshape(R, tuple(outer) + (T * r, m))
        low = Cw @ Rw
        out = low if out is None else out + low
    return out


def sum_tasks_nt(a, b):
    """``Σ_t a_t b_tᵀ`` for Factored or dense ``a`` (*, T, n, k), ``b`` (*, T, m, k): dense (*, n, m)."""
    a, b = Factored.wrap(a), Factored.wrap(b)
    if a.base is None and b.base is None and a.C is not None and b.C is not None:
        # (Ca Ra)(Cb Rb)ᵀ = Ca (Ra Rbᵀ) Cbᵀ
        return sum_tasks(Factored(C=a.C @ (a.R @ b.R.mT), R=b.C.mT))
    return sum_tasks(a.dense() @ b.dense().mT)


def sum_tasks_tn(a, b):
    """``Σ_t a_tᵀ b_t`` for Factored or dense ``a`` (*, T, k, n), ``b`` (*, T, k, m): dense (*, n, m)."""
    a, b = Factored.wrap(a), Factored.wrap(b)
    if a.base is None and b.base is None and a.C is not None and b.C is not None:
        # (Ca Ra)ᵀ(Cb Rb) = Raᵀ (Caᵀ Cb) Rb
        return sum_tasks(Factored(C=a.R.mT @ (a.C.mT @ b.C), R=b.R))
    return sum_tasks(a.dense().mT @ b.dense())
