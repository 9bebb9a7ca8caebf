"""Per-task matrices stored as a shared base plus a low-rank correction: ``X = base + Σ_i C_i R_i``.

Every inner-loop update of a deep linear network adds an outer product of thin
matrices (``S_lᵀ (G P_lᵀ)``, rank ``out``), so after k steps each task's layer is
the shared initialisation plus a rank ≤ k·out correction, and the reverse-mode
accumulators are sums of such outer products too.  Keeping them factored means
every product the engine needs is *thin* (``Z @ X`` or ``Z @ Xᵀ`` for ``Z`` with
``out`` rows) and costs O(n·(m + r)) per task instead of O(n·m) memory traffic
per full matrix, and the final sum over tasks is a single matrix product.

Shapes: ``base`` (*, n, m) or None (zero); each correction is a *piece* ``(Cᵀ, R)`` with
``Cᵀ`` (*, r_i, n) and ``R`` (*, r_i, m).  Leading axes broadcast (run and task axes), and a
factor may be shared by all tasks (size 1 on the task axis, axis -3): the first inner step's
left factors are, since every task starts from the same layers.  Adding corrections only collects
pieces (nothing is concatenated, and a shared factor is never copied per task).  A product with a
thin ``Z`` (:meth:`Factored.left`, :meth:`Factored.right_t`) then issues a handful of large
operations, whatever the number of pieces:

* one GEMM over the stacked task rows with the shared parts side by side, ``[base | C_i ...]``
  for the pieces with a shared ``C_i`` (their coefficients ``Z C_i`` come out of the same GEMM);
* one contraction and one expansion for all the pieces that vary by task, stacked once per
  matrix (:meth:`Factored._task_stack`);
* one sum of the terms, written into a workspace buffer (:mod:`linmeta._workspace`) when the
  engine passes one.

Transforms that do not preserve low rank (Meta-SGD's elementwise scaling) return a dense base
(``Factored(base=...)``).
"""
from __future__ import annotations

from ._backend import namespace




_MM = {}


def _matmul_into(a, b, out):
    """``matmul(a, b, out=out)`` with the backend's own function (array_api_compat wraps numpy's in Python)."""
    fn = _MM.get(type(a))
    if fn is None:
        root = type(a).__module__.split(".")[0]
        if root in ("numpy", "torch"):
            import importlib

            fn = importlib.import_module(root).matmul
        else:
            fn = namespace(a).matmul
        fn = _MM[type(a)] = fn
    return fn(a, b, out=out)


def _broadcast(*shapes) -> tuple:
    """Broadcast shape of ``shapes`` (tuples); raises ValueError if they do not broadcast."""
    out = shapes[0]
    for s in shapes[1:]:
        if s == out:
            continue
        n = max(len(s), len(out))
        a, b = (1,) * (n - len(out)) + tuple(out), (1,) * (n - len(s)) + tuple(s)
        res = []
        for x, y in zip(a, b):
            if x == y or y == 1:
                res.append(x)
            elif x == 1:
                res.append(y)
            else:
                raise ValueError(f"shapes {shapes} do not broadcast")
        out = tuple(res)
    return tuple(out)


def _lead(*arrays):
    return _broadcast(*[tuple(a.shape[:-2]) for a in arrays if a is not None])


def _bcast(xp, a, lead):
    return xp.broadcast_to(a, tuple(lead) + tuple(a.shape[-2:]))


def _shared(a) -> bool:
    """Whether ``a`` (*, T, k, n) is the same for every task (no task axis, or one of size 1)."""
    return a.ndim < 3 or a.shape[-3] == 1


def _result_like(xp, arrays):
    """An array with the dtype the sum or product of ``arrays`` has (the first one if all agree)."""
    a0 = arrays[0]
    for a in arrays[1:]:
        if a.dtype != a0.dtype:
            return xp.empty((), dtype=xp.result_type(*arrays), device=getattr(a0, "device", None))
    return a0


def _shape_of(arrays):
    shape = tuple(arrays[0].shape)
    for a in arrays[1:]:
        if tuple(a.shape) != shape:
            return _broadcast(*[tuple(a.shape) for a in arrays])
    return shape


def thin_matmul(Z, B, ws=None, scratch=False):
    """``Z @ B`` where ``B`` may be shared across the task axis (size 1 at axis -3).

    Multiplying T thin per-task blocks by one shared matrix is one GEMM on the stacked rows,
    ``(T·k, n) @ (n, m)``, instead of T small products (which numpy runs one by one).  When ``B``
    has no run axis either, the run axis is stacked into the rows too.  ``ws``: write the result
    into a buffer of that :class:`~linmeta._workspace.Workspace` (a temporary one if ``scratch``).
    """
    zs, bs = Z.shape, B.shape
    nz = len(zs)
    if nz >= 3 and zs[-3] > 1 and (len(bs) < 3 or bs[-3] == 1):
        n, m = zs[-1], bs[-1]
        if len(bs) <= 3 or all(b == 1 for b in bs[:-3]):
            # one matrix for all runs and tasks: a single GEMM over every row
            Bm = B.reshape(bs[-2:]) if len(bs) > 2 else B
            Zr = Z.reshape((-1, n))
            shape = tuple(zs[:-1]) + (m,)
            if ws is None:
                return (Zr @ Bm).reshape(shape)
            xp = namespace(Z)
            like = Z if Z.dtype == B.dtype else _result_like(xp, (Z, B))
            out = ws.scratch(xp, shape, like) if scratch else ws.take(xp, shape, like)
            _matmul_into(Zr, Bm, out.reshape((-1, m)))
            return out
        # a matrix per run: one GEMM per run over its stacked task rows
        Bm = B.reshape(tuple(bs[:-3]) + tuple(bs[-2:]))
        Zr = Z.reshape(tuple(zs[:-3]) + (zs[-3] * zs[-2], n))
        lead = _broadcast(tuple(zs[:-3]), tuple(bs[:-3]))
        if ws is None:
            out = Zr @ Bm
            return out.reshape(tuple(out.shape[:-2]) + (zs[-3], zs[-2], m))
        xp = namespace(Z)
        like = Z if Z.dtype == B.dtype else _result_like(xp, (Z, B))
        shape = lead + (zs[-3], zs[-2], m)
        out = ws.scratch(xp, shape, like) if scratch else ws.take(xp, shape, like)
        _matmul_into(Zr, Bm, out.reshape(lead + (zs[-3] * zs[-2], m)))
        return out
    return _matmul(Z, B, ws, scratch)


def _matmul(a, b, ws, scratch=True):
    """``a @ b``, into a workspace buffer if ``ws``."""
    if ws is None:
        return a @ b
    xp = namespace(a)
    la, lb = a.shape[:-2], b.shape[:-2]
    shape = (la if la == lb else _broadcast(tuple(la), tuple(lb))) + (a.shape[-2], b.shape[-1])
    like = a if a.dtype == b.dtype else _result_like(xp, (a, b))
    out = ws.scratch(xp, shape, like) if scratch else ws.take(xp, shape, like)
    _matmul_into(a, b, out)
    return out


def _expand(coef, F, ws=None):
    """``coef @ F`` for small coefficients ``coef`` (*, o, r) and a factor ``F`` (*, r, m) (a temporary).

    Rank 1 is a broadcast product (no per-task matrix products at all); a shared ``F`` is one GEMM.
    """
    if F.shape[-2] == 1:
        if ws is None:
            return coef * F
        xp = namespace(coef)
        cs, fs = coef.shape, F.shape
        shape = cs[:-1] + fs[-1:] if cs[:-2] == fs[:-2] else _broadcast(tuple(cs), tuple(fs))
        return xp.multiply(coef, F, out=ws.scratch(xp, shape, coef if coef.dtype == F.dtype else _result_like(xp, (coef, F))))
    if _shared(F):
        return thin_matmul(coef, F, ws, True)
    return _matmul(coef, F, ws)


def sum_terms(terms, ws=None):
    """``Σ terms`` (broadcasting), into a buffer of the workspace ``ws`` if given (never one of the terms).

    Without ``ws`` the sum is accumulated in place in a fresh array (``terms[0] + terms[1]``); no
    term is modified, and a single term is returned as it is.
    """
    if ws is None:
        if len(terms) == 1:
            return terms[0]
        out = terms[0] + terms[1]
        if any(t.dtype != out.dtype for t in terms[2:]):  # mixed real and complex: no in-place sums
            for t in terms[2:]:
                out = out + t
            return out
        for t in terms[2:]:
            out += t
        return out
    xp = namespace(terms[0])
    out = ws.take(xp, _shape_of(terms), _result_like(xp, terms))
    if len(terms) == 1:
        out[...] = terms[0]
        return out
    xp.add(terms[0], terms[1], out=out)
    for t in terms[2:]:
        out += t
    return out


def sum_products(items, ws=None, extra=()):
    """``Σ Z X`` (or ``Z Xᵀ``) over ``items = [(X, Z, right)]``, plus the arrays ``extra``, as one sum.

    With a workspace the result lands in one of its buffers, and the temporaries of the products are
    recycled as soon as the sum is written.
    """
    if ws is None:
        terms = list(extra)
        for X, Z, right in items:
            terms += X.terms(Z, right)
        return sum_terms(terms)
    mark = ws.mark()
    terms = list(extra)
    for X, Z, right in items:
        terms += X.terms(Z, right, ws)
    out = sum_terms(terms, ws)
    ws.reset(mark)
    return out


class Factored:
    """``base + Σ_i C_i R_i`` (see module docstring).

    Each ``C_i`` is stored transposed, ``Ct_i = C_iᵀ`` (*, r_i, n).  :attr:`Ct` and :attr:`R` give the
    pieces stacked along rows (the rank axis, -2), broadcast to a common leading shape; the engine
    itself works on the pieces (:attr:`pieces`) and never stacks them.
    """

    __slots__ = ("base", "pieces", "_plan_left", "_plan_right", "_stack")

    def __init__(self, base=None, C=None, R=None, *, Ct=None):
        self.base = base
        Ct = Ct if C is None else C.mT
        self.pieces = () if Ct is None else ((Ct, R),)
        self._plan_left = self._plan_right = self._stack = None

    @classmethod
    def _from_pieces(cls, base, pieces):
        out = cls(base)
        out.pieces = tuple(pieces)
        return out

    def _stacked(self, i):
        if not self.pieces:
            return None
        if len(self.pieces) == 1:
            return self.pieces[0][i]
        xp = namespace(self.pieces[0][0])
        lead = _lead(*[a for p in self.pieces for a in p])
        return xp.concat([_bcast(xp, p[i], lead) for p in self.pieces], axis=-2)

    @property
    def Ct(self):
        """All left factors, transposed and stacked: (*, rank, n); None if there is no correction."""
        return self._stacked(0)

    @property
    def R(self):
        """All right factors, stacked: (*, rank, m); None if there is no correction."""
        return self._stacked(1)

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
        return sum(int(Ct.shape[-2]) for Ct, _ in self.pieces)

    def dense(self):
        """The full matrix ``base + Σ C_i R_i``."""
        out = self.base
        for Ct, R in self.pieces:
            low = Ct.mT @ R
            out = low if out is None else out + low
        return out

    def _task_stack(self, ws=None):
        """The pieces whose factors both vary by task, stacked into one ``(Ct, R)`` (None if fewer than two).

        Built once per matrix (into ``ws`` if given): products then contract and expand once
        whatever the number of such pieces, and the sum over tasks is one GEMM.
        """
        if self._stack is None:
            full = [p for p in self.pieces if not _shared(p[0]) and not _shared(p[1])]
            if len(full) < 2:
                self._stack = False
            else:
                xp = namespace(full[0][0])
                lead = _lead(*[a for p in full for a in p])
                stacks = []
                for i in (0, 1):
                    parts = [p[i] if tuple(p[i].shape[:-2]) == lead else _bcast(xp, p[i], lead) for p in full]
                    shape = lead + (sum(int(a.shape[-2]) for a in parts), parts[0].shape[-1])
                    out = None if ws is None else ws.take(xp, shape, _result_like(xp, parts))
                    stacks.append(xp.concat(parts, axis=-2) if out is None else xp.concat(parts, axis=-2, out=out))
                self._stack = tuple(stacks)
        return self._stack or None

    def _plan(self, right: bool, ws=None):
        """How :meth:`left` (``right=False``) or :meth:`right_t` meets a thin ``Z``, built once per matrix.

        The shared parts, ``[base | C_i ...]`` for the pieces whose ``C_i`` is the same for all tasks
        (``[baseᵀ | R_iᵀ ...]`` for :meth:`right_t`), sit side by side in one per-run matrix, so that
        ``Z`` meets all of them in one GEMM over the stacked task rows; each such piece then only
        needs its small coefficients expanded.  Pieces that vary by task are contracted with ``Z``
        (all at once, stacked, when there are several).
        Returns ``(matrix or None, width of its base part, its width, [(start, stop, factor)],
        [(factorᵀ to contract, factor to expand)], per-task base or None)``.
        """
        plan = self._plan_right if right else self._plan_left
        if plan is not None:
            return plan
        base = self.base
        shared_base = base is not None and _shared(base)
        cols, sparts, tparts = [], [], []
        width = 0
        if shared_base:
            cols.append(base.mT if right else base)
            width = int(base.shape[-2] if right else base.shape[-1])
        off = width
        stack = self._task_stack(ws)
        for Ct, R in self.pieces:
            f, other = (R, Ct) if right else (Ct, R)
            if _shared(f):
                r = int(f.shape[-2])
                cols.append(f.mT)
                sparts.append((off, off + r, other))
                off += r
            elif stack is None or _shared(other):
                tparts.append((f.mT, other))
        if stack is not None:
            tparts.append((stack[1].mT, stack[0]) if right else (stack[0].mT, stack[1]))
        if not cols:
            mat = None
        elif len(cols) == 1:
            mat = cols[0]
        else:
            xp = namespace(cols[0])
            lead = _lead(*cols)
            cols = [c if tuple(c.shape[:-2]) == lead else _bcast(xp, c, lead) for c in cols]
            if ws is None:
                mat = xp.concat(cols, axis=-1)
            else:
                shape = lead + (cols[0].shape[-2], sum(int(c.shape[-1]) for c in cols))
                mat = xp.concat(cols, axis=-1, out=ws.take(xp, shape, _result_like(xp, cols)))
        task_base = None if base is None or shared_base else (base.mT if right else base)
        plan = (mat, width, off, sparts, tparts, task_base)
        if right:
            self._plan_right = plan
        else:
            self._plan_left = plan
        return plan

    def terms(self, Z, right: bool = False, ws=None) -> list:
        """The arrays whose sum is ``Z @ X`` (``right=False``) or ``Z @ Xᵀ``, left unsummed.

        Callers that add further terms (Horner's rule, the Hessian recursions) sum them all at once
        (:func:`sum_products`).  With ``ws`` the terms are workspace temporaries: valid until the
        workspace is reset to a mark taken before this call.
        """
        mat, width, total, sparts, tparts, task_base = self._plan(right, ws)
        terms = []
        if mat is not None:
            ZB = thin_matmul(Z, mat, ws, True)
            if width:
                terms.append(ZB if width == total else ZB[..., :width])
            for a, b, F in sparts:
                terms.append(_expand(ZB[..., a:b], F, ws))
        if task_base is not None:
            terms.append(_matmul(Z, task_base, ws))
        for Ft, F in tparts:
            terms.append(_expand(_matmul(Z, Ft, ws), F, ws))
        return terms

    def _product(self, Z, right: bool, ws):
        plan = self._plan(right, ws)
        if not plan[3] and not plan[4] and plan[5] is None:  # a single shared matrix: one GEMM
            return thin_matmul(Z, plan[0], ws)
        return sum_products([(self, Z, right)], ws)

    def left(self, Z, ws=None):
        """``Z @ X`` for a thin ``Z`` (*, k, n); into a workspace buffer if ``ws``."""
        return self._product(Z, False, ws)

    def right_t(self, Z, ws=None):
        """``Z @ Xᵀ`` for a thin ``Z`` (*, k, m); into a workspace buffer if ``ws``."""
        return self._product(Z, True, ws)

    def scaled(self, a) -> "Factored":
        """``a X`` for a scalar ``a`` (each correction scales its smaller factor; a shared one if any)."""
        base = None if self.base is None else a * self.base
        pieces = []
        for Ct, R in self.pieces:
            sc, sr = _shared(Ct), _shared(R)
            left = sc if sc != sr else Ct.shape[-1] <= R.shape[-1]
            pieces.append((a * Ct, R) if left else (Ct, a * R))
        return Factored._from_pieces(base, pieces)

    def plus(self, other: "Factored", ws=None) -> "Factored":
        """``X + Y``: bases add (into a workspace buffer if ``ws``), corrections are collected (ranks add)."""
        if self.base is None:
            base = other.base
        elif other.base is None:
            base = self.base
        else:
            base = sum_terms([self.base, other.base], ws)
        return Factored._from_pieces(base, self.pieces + other.pieces)

    def map_factors(self, left=None, right=None) -> "Factored":
        """``L X R'`` for square matrices ``left`` (n x n) and ``right`` (m x m), keeping the factorisation."""
        base = self.base
        if base is not None:
            base = base if left is None else left @ base
            base = base if right is None else base @ right
        pieces = []
        for Ct, R in self.pieces:
            pieces.append((Ct if left is None else thin_matmul(Ct, left.mT),  # (L C)ᵀ = Cᵀ Lᵀ
                           R if right is None else thin_matmul(R, right)))
        return Factored._from_pieces(base, pieces)


def _task_size(x) -> int:
    return 1 if x.ndim < 3 else int(x.shape[-3])


def _sum_piece(xp, Ct, R, ws=None):
    """``Σ_t Ct_tᵀ R_t`` (*, n, m) for one piece; a factor shared by all tasks is broadcast over them.

    ``ws``: the result is a workspace temporary (to be added to another array at once).
    """
    Ts, Tr = _task_size(Ct), _task_size(R)
    if Ts == 1 and Tr == 1:
        Cm = Ct if Ct.ndim < 3 else Ct[..., 0, :, :]
        Rm = R if R.ndim < 3 else R[..., 0, :, :]
        return Cm.mT @ Rm
    if Ts == 1:  # C shared: C (Σ_t R_t)
        return (Ct if Ct.ndim < 3 else Ct[..., 0, :, :]).mT @ xp.sum(R, axis=-3)
    if Tr == 1:
        return xp.sum(Ct, axis=-3).mT @ (R if R.ndim < 3 else R[..., 0, :, :])
    if tuple(Ct.shape[:-2]) != tuple(R.shape[:-2]):
        lead = _lead(Ct, R)
        Ct, R = _bcast(xp, Ct, lead), _bcast(xp, R, lead)
    *outer, T, r, n = Ct.shape
    Ctw = xp.reshape(Ct, tuple(outer) + (T * r, n))
    Rw = xp.reshape(R, tuple(outer) + (T * r, R.shape[-1]))
    return _matmul(Ctw.mT, Rw, ws)


def sum_tasks(x, ws=None):
    """Sum of a Factored (or dense) matrix over the task axis (axis -3), as a fresh dense array.

    The low-rank part becomes matrix products: ``Σ_t C_t R_t = [C_1 … C_T] [R_1; …; R_T]``, one GEMM
    for the pieces that vary by task (stacked) and one per piece with a shared factor (summed first:
    ``C Σ_t R_t``).
    A ``base`` must carry the full task axis (a broadcast size-1 axis would be counted once).
    ``ws``: a workspace for the stacked factors and the partial sums (the result itself is fresh).
    """
    if not isinstance(x, Factored):
        return namespace(x).sum(x, axis=-3)
    out = None
    if x.base is not None:
        out = namespace(x.base).sum(x.base, axis=-3) if x.base.ndim >= 3 else x.base + 0
    if not x.pieces:
        return out
    xp = namespace(x.pieces[0][0])
    stack = x._task_stack(ws)
    pieces = [p for p in x.pieces if stack is None or _shared(p[0]) or _shared(p[1])]
    if stack is not None:
        pieces.append(stack)
    mark = None if ws is None else ws.mark()
    for Ct, R in pieces:
        if out is None:
            out = _sum_piece(xp, Ct, R)
            continue
        low = _sum_piece(xp, Ct, R, ws)
        if low.dtype == out.dtype and tuple(low.shape) == tuple(out.shape):
            out += low
        else:
            out = out + low
    if mark is not None:
        ws.reset(mark)
    return out


def sum_tasks_nt(a, b):
    """``Σ_t a_t b_tᵀ`` for Factored or dense ``a`` (*, T, n, k), ``b`` (*, T, m, k): dense (*, n, m)."""
    a, b = Factored.wrap(a), Factored.wrap(b)
    if a.base is None and b.base is None and a.pieces and b.pieces:
        # (Ca Ra)(Cb Rb)ᵀ = Ca (Ra Rbᵀ) Cbᵀ:  a piece with Cᵀ = (Rb Raᵀ) Caᵀ, R = Cbᵀ for each pair
        pieces = [((Rb @ Ra.mT) @ Cta, Ctb) for Cta, Ra in a.pieces for Ctb, Rb in b.pieces]
        return sum_tasks(Factored._from_pieces(None, pieces))
    return sum_tasks(a.dense() @ b.dense().mT)


def sum_tasks_tn(a, b):
    """``Σ_t a_tᵀ b_t`` for Factored or dense ``a`` (*, T, k, n), ``b`` (*, T, k, m): dense (*, n, m)."""
    a, b = Factored.wrap(a), Factored.wrap(b)
    if a.base is None and b.base is None and a.pieces and b.pieces:
        # (Ca Ra)ᵀ(Cb Rb) = Raᵀ (Caᵀ Cb) Rb:  a piece with Cᵀ = (Cbᵀ Ca) Ra, R = Rb for each pair
        pieces = [((Ctb @ Cta.mT) @ Ra, Rb) for Cta, Ra in a.pieces for Ctb, Rb in b.pieces]
        return sum_tasks(Factored._from_pieces(None, pieces))
    return sum_tasks(a.dense().mT @ b.dense())
