"""Array backends: numpy (default, the oracle) and torch (optional, imported lazily).

The engine is written against the array API.  ``namespace`` returns the
namespace of the arrays it is given; linmeta itself never imports torch unless a
caller asks for the torch backend, so it runs without torch installed.
"""
from __future__ import annotations

import numpy as np
import array_api_compat


def namespace(*arrays):
    """The array-API namespace shared by ``arrays`` (``None`` entries are skipped)."""
    return array_api_compat.array_namespace(*[a for a in arrays if a is not None])


def is_torch(x) -> bool:
    return array_api_compat.is_torch_array(x)


def to_numpy(x) -> np.ndarray:
    """Convert a numpy array, a torch tensor (any device) or a scalar to numpy."""
    if is_torch(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)



def to_backend(tree, backend: str = "numpy", device: str | None = None, dtype=None):
    """Convert every array in a nested tuple/list/dataclass-free tree to ``backend``.

    Parameters
    ----------
    tree : array, tuple or list of arrays (``None`` kept)
    backend : {"numpy", "torch"}
    device : torch device string such as ``"cuda"``; ignored for numpy.
    dtype : optional dtype; float64 by default.
    """
    if isinstance(tree, (tuple, list)):
        return type(tree)(to_backend(t, backend, device, dtype) for t in tree)
    if tree is None:
        return None
    if backend == "numpy":
        return to_numpy(tree).astype(dtype or np.float64, copy=False)
    if backend == "torch":
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValueError(
                "backend='torch' needs the optional torch extra: pip install 'linmeta[torch]'"
            ) from exc
        return torch.as_tensor(to_numpy(tree), dtype=dtype or torch.float64, device=device)
    raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")
