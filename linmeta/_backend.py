"""Array backends: numpy (default, the oracle) and torch (optional, imported lazily), on CPU or CUDA.

The engine is written against the array API: :func:`namespace` returns the namespace of the arrays it
is given, so the same code runs on numpy arrays and on torch tensors on any device.  linmeta never
imports torch unless a caller asks for it, so it runs without torch installed.

:class:`ArrayBackend` is the *run option* ``backend`` / ``device`` / ``dtype``: where the arrays of a
computation live.  Random draws always come from a numpy Generator on the host (so a seed gives the
same tasks on every backend); :meth:`ArrayBackend.asarray` moves them to the backend once.
"""
from __future__ import annotations

from dataclasses import dataclass

import array_api_compat
import numpy as np

BACKENDS = ("numpy", "torch")
DTYPES = ("float64", "float32")
#: unit round-off of each floating dtype (half the machine epsilon)
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24}


_NS = {}


def namespace(*arrays):
    """The array-API namespace shared by ``arrays`` (``None`` entries are skipped), cached by array type.

    The generic lookup costs microseconds per call, and the engine asks for it on its hot path; the
    namespace depends only on the arrays' types.
    """
    if len(arrays) == 1:
        ns = _NS.get(type(arrays[0]))
        if ns is None:
            ns = _NS[type(arrays[0])] = array_api_compat.array_namespace(arrays[0])
        return ns
    key = tuple(type(a) for a in arrays if a is not None)
    ns = _NS.get(key)
    if ns is None:
        ns = _NS[key] = array_api_compat.array_namespace(*[a for a in arrays if a is not None])
    return ns


def is_torch(x) -> bool:
    return array_api_compat.is_torch_array(x)


def to_numpy(x) -> np.ndarray:
    """Convert a numpy array, a torch tensor (any device) or a scalar to numpy."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ValueError("backend 'torch' needs the optional torch extra: pip install 'linmeta[torch]'") from None
    return torch


@dataclass(frozen=True)
class ArrayBackend:
    """Where a computation's arrays live: ``name`` (numpy | torch), ``device`` (cpu | cuda | cuda:N), ``dtype``.

    Build one with :func:`resolve`, which checks that torch and the device are available.
    """

    name: str = "numpy"
    device: str = "cpu"
    dtype: str = "float64"

    @property
    def device_kind(self) -> str:
        """``"cpu"`` or ``"cuda"`` (the device without its index), as recorded with cached results."""
        return self.device.split(":")[0]

    @property
    def unit_roundoff(self) -> float:
        return UNIT_ROUNDOFF[self.dtype]

    def describe(self) -> str:
        return "numpy" if self == ArrayBackend() else f"{self.name}:{self.device}:{self.dtype}"

    def key(self) -> dict:
        """What a cached result records of the backend (the device index does not change results)."""
        return {"backend": self.name, "device": self.device_kind, "dtype": self.dtype}

    def asarray(self, x):
        """``x`` (numpy, torch or a scalar) as an array of this backend, device and dtype (no copy if it already is)."""
        if self.name == "numpy":
            return to_numpy(x).astype(self.dtype, copy=False)
        torch = _import_torch()
        return torch.as_tensor(to_numpy(x) if not is_torch(x) else x, dtype=getattr(torch, self.dtype),
                               device=self.device)

    def tree(self, tree):
        """:meth:`asarray` on every array of a nested tuple/list (``None`` kept)."""
        if isinstance(tree, (tuple, list)):
            return type(tree)(self.tree(t) for t in tree)
        return None if tree is None else self.asarray(tree)


def resolve(backend=None, device=None, dtype=None) -> ArrayBackend:
    """An :class:`ArrayBackend` from the run options, checked.

    Parameters
    ----------
    backend : ``"numpy"`` (default), ``"torch"``, or an :class:`ArrayBackend` (returned as is).
    device : ``"cpu"`` (default), ``"cuda"`` or ``"cuda:N"``; numpy runs on the CPU only.
    dtype : ``"float64"`` (default) or ``"float32"``.

    Raises
    ------
    ValueError naming the option and the fix: an unknown backend or dtype, torch not installed, a
    CUDA device asked of numpy, or no CUDA device found.
    """
    if isinstance(backend, ArrayBackend):
        if device is not None or dtype is not None:
            raise ValueError("pass either an ArrayBackend or backend/device/dtype names, not both")
        return backend
    name = "numpy" if backend is None else backend
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    dtype = "float64" if dtype is None else str(dtype).replace("torch.", "")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    device = "cpu" if device is None else str(device)
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and (kind == "cpu" or not index.isdigit())):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if name == "numpy" and kind != "cpu":
        raise ValueError(f"device={device!r} needs backend='torch' (numpy runs on the CPU)")
    if name == "torch":
        torch = _import_torch()
        if kind == "cuda":
            if not torch.cuda.is_available():
                raise ValueError(f"device={device!r}: no CUDA device was found (torch {torch.__version__}); "
                                 "use device='cpu'")
            if index and int(index) >= torch.cuda.device_count():
                raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s) were found")
    return ArrayBackend(name, device, dtype)


def backend_of(x) -> ArrayBackend:
    """The :class:`ArrayBackend` an array lives on (numpy, or torch with its device and dtype)."""
    if is_torch(x):
        dev = x.device
        device = dev.type if dev.index is None or dev.type == "cpu" else f"{dev.type}:{dev.index}"
        return ArrayBackend("torch", device, str(x.dtype).replace("torch.", ""))
    return ArrayBackend("numpy", "cpu", str(np.asarray(x).dtype))


def where(x) -> str:
    """A short description of an array's backend and device, for messages (``numpy`` or ``torch on cuda:0``)."""
    if is_torch(x):
        return f"torch on {x.device}"
    return "numpy"


def check_same_backend(named) -> None:
    """Raise if the arrays in ``named`` (``{argument: array or None}``) mix numpy and torch, or torch devices.

    The message names the arguments and where each lives, and says how to fix it.
    """
    seen = {}
    for name, x in named.items():
        if x is None:
            continue
        seen.setdefault(where(x), []).append(name)
    if len(seen) > 1:
        parts = "; ".join(f"{', '.join(names)}: {w}" for w, names in seen.items())
        raise ValueError(f"arguments live on different backends or devices ({parts}); move them to one, e.g. with "
                         "linmeta.ArrayBackend.tree / MetaBatch.to / loss.to")


def to_backend(tree, backend: str = "numpy", device: str | None = None, dtype=None):
    """Convert every array in a nested tuple/list tree to ``backend`` (see :func:`resolve` for the options).

    Parameters
    ----------
    tree : array, tuple or list of arrays (``None`` kept)
    backend : ``"numpy"`` or ``"torch"``.
    device : torch device such as ``"cuda"``; ``"cpu"`` by default.
    dtype : ``"float64"`` (default) or ``"float32"`` (numpy or torch dtype objects are accepted too).
    """
    if dtype is not None and not isinstance(dtype, str):
        dtype = str(np.dtype(dtype)) if not str(dtype).startswith("torch.") else str(dtype)
    return resolve(backend, device, dtype).tree(tree)
