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
do not preserve low rank (Meta-SGD's elementwise scaling) return a dense base
(``Factored(base=...)``).
"""
from __future__ import annotations

from ._backend import namespace as _namespace

_NS = {}


def namespace(*arrays):
    """Array-API namespace, cached by array type (the generic lookup costs microseconds per call)."""
    key = tuple(type(a) for a in arrays if a is not None)
    ns = _NS.get(key)
    if ns is None:
        ns = _NS[key] = _namespace(*arrays)
    return ns


def _lead(*arrays):
    import numpy as np

    return np.broadcast_shapes(*[tuple(a.shape[:-2]) for a in arrays if a is not None])


def _bcast(xp, a, lead):
    return xp.broadcast_to(a, tuple(lead) + tuple(a.shape[-2:]))


def thin_matmul(Z, B):
    """``Z @ B`` where ``B`` may be shared across the task axis (size 1 at axis -3).

    Multiplying T thin per-task blocks by one shared matrix is one GEMM on the stacked rows,
    ``(T·k, n) @ (n, m)``, instead of T small products (which numpy runs one by one).
    """
    if B.ndim >= 3 and Z.ndim >= 3 and B.shape[-3] == 1 and Z.shape[-3] > 1:
        T, k, n = Z.shape[-3:]
        out = Z.reshape(tuple(Z.shape[:-3]) + (T * k, n)) @ B.reshape(tuple(B.shape[:-3]) + tuple(B.shape[-2:]))
        return out.reshape(tuple(out.shape[:-2]) + (T, k, out.shape[-1]))
    return Z @ B


class Factored:
    """``base + C @ R`` (see module docstring).

    ``C`` is stored transposed, ``Ct = Cᵀ`` (*, r, n), so that adding two factored matrices stacks
    both factors along rows (axis -2), a contiguous copy.  The stacking is lazy: :meth:`plus` only
    collects the pieces, and they are concatenated once, the first time the factors are used.
    """

    __slots__ = ("base", "_Ct", "_R")

    def __init__(self, base=None, C=None, R=None, *, Ct=None):
        self.base = base
        Ct = Ct if C is None else C.mT
        self._Ct = None if Ct is None else [Ct]
        self._R = None if R is None else [R]

    @classmethod
    def _from_pieces(cls, base, Cts, Rs):
        out = cls(base)
        out._Ct, out._R = Cts, Rs
        return out

    def _stack(self):
        if len(self._Ct) > 1:
            xp = namespace(self._Ct[0])
            lead = _lead(*self._Ct, *self._R)
            self._Ct = [xp.concat([_bcast(xp, a, lead) for a in self._Ct], axis=-2)]
            self._R = [xp.concat([_bcast(xp, a, lead) for a in self._R], axis=-2)]

    @property
    def Ct(self):
        if self._Ct is None:
            return None
        self._stack()
        return self._Ct[0]

    @property
    def R(self):
        if self._R is None:
            return None
        self._stack()
        return self._R[0]

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
        return 0 if self._Ct is None else sum(int(a.shape[-2]) for a in self._Ct)

    def dense(self):
        """The full matrix ``base + C R``."""
        if self.Ct is None:
            return self.base
        low = self.Ct.mT @ self.R
        return low if self.base is None else self.base + low

    def left(self, Z):
        """``Z @ X`` for a thin ``Z`` (*, k, n)."""
        out = None if self.base is None else thin_matmul(Z, self.base)
        if self.Ct is not None:
            low = thin_matmul(thin_matmul(Z, self.Ct.mT), self.R)
            out = low if out is None else out + low
        return out

    def right_t(self, Z):
        """``Z @ Xᵀ`` for a thin ``Z`` (*, k, m)."""
        out = None if self.base is None else thin_matmul(Z, self.base.mT)
        if self.Ct is not None:
            low = thin_matmul(thin_matmul(Z, self.R.mT), self.Ct)
            out = low if out is None else out + low
        return out

    def scaled(self, a) -> "Factored":
        """``a X`` for a scalar ``a`` (the correction's ``C`` is scaled)."""
        base = None if self.base is None else a * self.base
        if self._Ct is None:
            return Factored(base)
        return Factored._from_pieces(base, [a * c for c in self._Ct], list(self._R))

    def plus(self, other: "Factored") -> "Factored":
        """``X + Y``: bases add, low-rank parts stack (ranks add)."""
        if self.base is None:
            base = other.base
        elif other.base is None:
            base = self.base
        else:
            base = self.base + other.base
        Cts = (self._Ct or []) + (other._Ct or [])
        Rs = (self._R or []) + (other._R or [])
        return Factored._from_pieces(base, Cts or None, Rs or None)

    def map_factors(self, left=None, right=None) -> "Factored":
        """``L X R'`` for square matrices ``left`` (n x n) and ``right`` (m x m), keeping the factorisation."""
        base = self.base
        if base is not None:
            base = base if left is None else left @ base
            base = base if right is None else base @ right
        if self.Ct is None:
            return Factored(base)
        Ct = self.Ct if left is None else self.Ct @ left.mT  # (L C)ᵀ = Cᵀ Lᵀ
        R = self.R if right is None else self.R @ right
        return Factored(base, R=R, Ct=Ct)


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
    if x.Ct is not None:
        xp = namespace(x.Ct, x.R)
        lead = _lead(x.Ct, x.R)
        Ct, R = _bcast(xp, x.Ct, lead), _bcast(xp, x.R, lead)
        *outer, T, r, n = Ct.shape
        m = R.shape[-1]
        Ctw = xp.reshape(Ct, tuple(outer) + (T * r, n))
        Rw = xp.reshape(R, tuple(outer) + (T * r, m))
        low = Ctw.mT @ Rw
        out = low if out is None else out + low
    return out


def sum_tasks_nt(a, b):
    """``Σ_t a_t b_tᵀ`` for Factored or dense ``a`` (*, T, n, k), ``b`` (*, T, m, k): dense (*, n, m)."""
    a, b = Factored.wrap(a), Factored.wrap(b)
    if a.base is None and b.base is None and a.Ct is not None and b.Ct is not None:
        # (Ca Ra)(Cb Rb)ᵀ = Ca (Ra Rbᵀ) Cbᵀ:  new Cᵀ = (Rb Raᵀ) Caᵀ, new R = Cbᵀ
        return sum_tasks(Factored(R=b.Ct, Ct=(b.R @ a.R.mT) @ a.Ct))
    return sum_tasks(a.dense() @ b.dense().mT)


def sum_tasks_tn(a, b):
    """``Σ_t a_tᵀ b_t`` for Factored or dense ``a`` (*, T, k, n), ``b`` (*, T, k, m): dense (*, n, m)."""
    a, b = Factored.wrap(a), Factored.wrap(b)
    if a.base is None and b.base is None and a.Ct is not None and b.Ct is not None:
        # (Ca Ra)ᵀ(Cb Rb) = Raᵀ (Caᵀ Cb) Rb:  new Cᵀ = (Cbᵀ Ca) Ra, new R = Rb
        return sum_tasks(Factored(R=b.R, Ct=(b.Ct @ a.Ct.mT) @ a.R))
    return sum_tasks(a.dense().mT @ b.dense())
