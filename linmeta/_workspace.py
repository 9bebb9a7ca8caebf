"""Buffers for the engine's per-call arrays, reused from one call to the next.

Why.  A meta-gradient keeps every inner step's thin products alive until the reverse pass has
used them: a few megabytes at 256 tasks.  Allocated afresh at every call, that memory is handed
back to the operating system when the call ends (glibc trims the top of the heap once more than
``M_TRIM_THRESHOLD`` is free there, and arrays above ``M_MMAP_THRESHOLD`` are unmapped outright),
and the next call faults every page of it back in, zeroed: 930 page faults per call at the
standard configuration, at several microseconds each on a virtual machine.  Whether this happens
depends on the allocator's history (importing torch, or any earlier large temporary, raises
glibc's dynamic thresholds), so the same code ran 2-3x slower in a plain numpy process than in a
benchmark.  Writing the engine's arrays into buffers kept here makes its memory traffic
independent of the allocator: after the first call with a given configuration, no large array is
allocated during a call except its results.

How.  A call takes a :class:`Workspace` with :func:`acquire` and hands it back with
:func:`release`.  Inside the call, :meth:`Workspace.take` returns buffers for the arrays that live
until the call ends (the inner steps' products, the reverse pass's factors), in the order they are
asked for; the sequence of shapes is the same at every call with the same configuration, so the
n-th request finds the n-th buffer of the previous call.  Temporaries (the terms of a product
before they are summed) come from a second region with stack discipline: a product marks it,
takes its temporaries with :meth:`Workspace.scratch`, and resets it to the mark once their sum is
written, so the next product reuses the same buffers, still in cache.  Nothing a call returns may
live in a workspace buffer (the engine's results are fresh arrays: sums over tasks, means), so a
buffer is free again as soon as the call that took it has ended.  Each thread has its own
workspaces, and a call made while another is running in the same thread (re-entrancy) gets a
separate one.  Tensors that carry autograd history get no workspace (``out=`` would cut the graph),
and small calls (:func:`worthwhile`) none either: the allocator keeps their memory by itself.

Memory bound.  A workspace holds one call's arrays, for each configuration it has seen, up to
:data:`MAX_BYTES` per thread in all; past that it forgets everything and starts again.  The
engine's chunking (:mod:`linmeta._chunking`) keeps one call's arrays small (about 16 MiB).
"""
from __future__ import annotations

import threading

#: per-thread bound on the bytes kept in workspaces (past it, a workspace starts afresh)
MAX_BYTES = 256 * 2**20

_local = threading.local()


def _device(x):
    return getattr(x, "device", "cpu")


class Workspace:
    """Buffers handed out in request order (see the module docstring)."""

    __slots__ = ("_bufs", "_cursor", "_scratch", "nbytes")

    def __init__(self):
        self._bufs = {}
        self._cursor = 0
        self._scratch = 0
        self.nbytes = 0

    def take(self, xp, shape, like):
        """An uninitialised array of ``shape`` with the dtype and device of ``like``, for the whole call."""
        key = (self._cursor, shape, like.dtype, getattr(like, "device", None))
        self._cursor += 1
        return self._get(xp, key, shape, like)

    def scratch(self, xp, shape, like):
        """Like :meth:`take`, for a temporary: valid until the :meth:`reset` to a :meth:`mark` taken before it."""
        key = (-1 - self._scratch, shape, like.dtype, getattr(like, "device", None))
        self._scratch += 1
        return self._get(xp, key, shape, like)

    def mark(self) -> int:
        return self._scratch

    def reset(self, mark: int):
        """Free the temporaries taken since ``mark`` (their buffers serve the next ones)."""
        self._scratch = mark

    def _get(self, xp, key, shape, like):
        buf = self._bufs.get(key)
        if buf is None:
            buf = xp.empty(shape, dtype=like.dtype, device=_device(like))
            size = 1
            for s in shape:
                size *= int(s)
            nbytes = size * int(getattr(like, "itemsize", None) or like.element_size())
            if self.nbytes + nbytes > MAX_BYTES:
                self._bufs.clear()
                self.nbytes = 0
            self._bufs[key] = buf
            self.nbytes += nbytes
        return buf

    def clear(self):
        self._bufs.clear()
        self.nbytes = 0


#: a call whose thin products take less than this per inner step runs without a workspace
MIN_STEP_BYTES = 64 * 2**10


def worthwhile(params, n_tasks: int) -> bool:
    """Whether a call on ``params`` (*runs, n_l, n_{l-1}) over ``n_tasks`` tasks needs a workspace.

    One inner step's thin products take ``T · out · (d + Σ_l n_l)`` numbers per run.  Below
    :data:`MIN_STEP_BYTES` of them the allocator keeps the memory between calls by itself (at the
    standard configuration: no page faults at 64 tasks, 300 per call at 128 without a workspace),
    and the buffer bookkeeping would only cost time.
    """
    W = params[0]
    n = int(W.shape[-1]) + sum(int(V.shape[-2]) for V in params)
    size = int(n_tasks) * n * int(params[-1].shape[-2])
    for s in W.shape[:-2]:
        size *= int(s)
    item = getattr(W, "itemsize", None) or W.element_size()
    return size * int(item) >= MIN_STEP_BYTES


def acquire(like):
    """A workspace for one engine call on arrays like ``like``, or None where none applies."""
    if getattr(like, "requires_grad", False):
        return None
    free = getattr(_local, "free", None)
    if free is None:
        free = _local.free = []
    ws = free.pop() if free else Workspace()
    ws._cursor = ws._scratch = 0
    return ws


def release(ws):
    """Hand ``ws`` back (after the call's results no longer refer to its buffers)."""
    if ws is not None:
        _local.free.append(ws)


def clear():
    """Drop every buffer of this thread's idle workspaces."""
    for ws in getattr(_local, "free", ()):
        ws.clear()
