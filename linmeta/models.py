"""Deep linear networks: parameters, initialisation, end-to-end map and partial products.

A model of depth L is a tuple of layer matrices ``(W_1, ..., W_L)`` with
``W_l`` of shape ``(*runs, n_l, n_{l-1})``, ``n_0 = d`` and ``n_L = out``.  Its
end-to-end map is ``M = W_L ⋯ W_1`` (``(*runs, out, d)``).  ``L = 1`` is the
shallow model.  The optional leading run axis holds many independent models in
one array.  In code, layers are indexed from 0: ``params[l]`` is ``W_{l+1}``.
"""
from __future__ import annotations

import numpy as np

from . import _validate
from ._backend import check_same_backend, is_torch, namespace, resolve, to_numpy
from ._random import as_generator

INIT_SCHEMES = ("gaussian", "orthogonal", "balanced", "zero_head")


def layer_sizes(params) -> tuple:
    """``(d, n_1, ..., n_L)`` of a model."""
    return (int(params[0].shape[-1]),) + tuple(int(W.shape[-2]) for W in params)


def validate_params(params, name: str = "params", *, any_lead: bool = False) -> tuple:
    """Check that ``params`` is a non-empty chain of finite matrices with matching sizes and run axes.

    With ``any_lead`` the layers may carry any leading axes that broadcast together (e.g. adapted layers
    with a task axis) instead of one shared run axis.
    """
    if not isinstance(params, (tuple, list)):
        raise _validate.ArgumentTypeError(f"{name} must be a non-empty tuple of layer matrices (W_1, ..., W_L), e.g. "
                                          f"from linmeta.init_deep_linear; got {type(params).__name__}")
    if len(params) == 0:
        raise ValueError(f"{name} must be a non-empty tuple of layer matrices (W_1, ..., W_L)")
    for l, W in enumerate(params):
        if not (isinstance(W, np.ndarray) or is_torch(W)):
            raise _validate.ArgumentTypeError(f"{name}[{l}] must be a numpy array or a torch tensor of shape "
                                              f"(*runs, n_out, n_in), got {type(W).__name__}")
        kind = W.dtype.kind if isinstance(W, np.ndarray) else ("b" if str(W.dtype) == "torch.bool" else "f")
        if kind not in "iufc":
            raise _validate.ArgumentTypeError(f"{name}[{l}] must hold floating-point numbers, got dtype {W.dtype}")
    check_same_backend({f"{name}[{l}]": W for l, W in enumerate(params)})
    runs = None
    for l, W in enumerate(params):
        if W.ndim < 2:
            raise ValueError(f"{name}[{l}] must be a matrix of shape (*runs, n_out, n_in), got shape {tuple(W.shape)}")
        if 0 in tuple(W.shape):
            raise ValueError(f"{name}[{l}] has shape {tuple(W.shape)}: every layer size (and the run axis) must be >= 1")
        _validate.finite_array(f"{name}[{l}]", W)
        if any_lead:
            try:
                runs = np.broadcast_shapes(tuple(W.shape[:-2]), () if runs is None else runs)
            except ValueError:
                raise ValueError(f"{name}[{l}] has leading shape {tuple(W.shape[:-2])}, which does not broadcast with "
                                 f"the layers below ({runs})") from None
        elif runs is None:
            runs = tuple(W.shape[:-2])
        elif tuple(W.shape[:-2]) != runs:
            raise ValueError(f"{name}[{l}] has run shape {tuple(W.shape[:-2])}, but {name}[0] has {runs}")
        if l > 0 and W.shape[-1] != params[l - 1].shape[-2]:
            raise ValueError(
                f"{name}[{l}] takes inputs of size {W.shape[-1]} but {name}[{l - 1}] outputs size "
                f"{params[l - 1].shape[-2]}: layer widths must chain"
            )
    if len(runs) > 1 and not any_lead:
        raise ValueError(f"{name} may have at most one leading run axis, got run shape {runs}")
    return tuple(params)


def real_params(params, name: str = "params", *, any_lead: bool = False) -> tuple:
    """``params`` as float64 numpy layers, checked (:func:`validate_params`); complex layers are refused.

    For closed forms, which take numpy models (torch layers are copied to the host).
    """
    if not isinstance(params, (tuple, list)):
        raise _validate.ArgumentTypeError(f"{name} must be a non-empty tuple of layer matrices (W_1, ..., W_L), e.g. "
                                          f"from linmeta.init_deep_linear; got {type(params).__name__}")
    return validate_params(tuple(_validate.real_array(f"{name}[{l}]", W, finite=False) for l, W in enumerate(params)),
                           name, any_lead=any_lead)


def end_to_end(params):
    """``M = W_L ⋯ W_1``, shape ``(*runs, out, d)``."""
    if not isinstance(params, (tuple, list)) or not params:
        raise _validate.ArgumentTypeError(f"params must be a non-empty tuple of layer matrices (W_1, ..., W_L), got "
                                          f"{type(params).__name__}")
    for l in range(1, len(params)):
        if getattr(params[l], "ndim", 0) < 2 or getattr(params[l - 1], "ndim", 0) < 2 \
                or params[l].shape[-1] != params[l - 1].shape[-2]:
            validate_params(params)  # raises with a message naming the layer
    M = params[0]
    with np.errstate(over="ignore", invalid="ignore"):
        for W in params[1:]:
            M = W @ M
    if len(params) > 1 and not bool(namespace(M).all(namespace(M).isfinite(M))):
        if all(bool(namespace(W).all(namespace(W).isfinite(W))) for W in params):
            raise ValueError("the end-to-end map W_L ... W_1 overflows float64 although every layer of params is "
                             "finite: the layers are too large (rescale them)")
    return M


def mm_eye(a, b):
    """``a @ b`` where ``None`` stands for the identity (the convention of the partial products below)."""
    if a is None:
        return b
    if b is None:
        return a
    return a @ b


def tmm_eye(a):
    """Transpose, where ``None`` (the identity) stays ``None``."""
    return None if a is None else a.mT


def prefix_products(params) -> list:
    """Products of the layers below each layer: ``P[l] = params[l-1] ⋯ params[0]``, shape (*, n_l, d).

    ``P[0]`` is ``None``, standing for the identity.
    """
    P = [None]
    for W in params[:-1]:
        P.append(W if P[-1] is None else W @ P[-1])
    return P


def suffix_products(params) -> list:
    """Products of the layers above each layer: ``S[l] = params[L-1] ⋯ params[l+1]``, shape (*, out, n_{l+1}).

    ``S[L-1]`` is ``None``, standing for the identity.  With ``P`` from :func:`prefix_products`,
    ``M = S[l] @ params[l] @ P[l]`` for every ``l``.
    """
    L = len(params)
    S = [None] * L
    for l in range(L - 2, -1, -1):
        S[l] = params[l + 1] if S[l + 1] is None else S[l + 1] @ params[l + 1]
    return S


def _orthogonal(rng, shape) -> np.ndarray:
    """Random (semi-)orthogonal matrices of shape (*lead, n, m) (Haar measure)."""
    *lead, n, m = shape
    big, small = max(n, m), min(n, m)
    Z = rng.standard_normal(tuple(lead) + (big, small))
    Q, R = np.linalg.qr(Z)
    Q = Q * np.sign(np.diagonal(R, axis1=-2, axis2=-1))[..., None, :]
    return Q if n >= m else np.swapaxes(Q, -1, -2)


def init_deep_linear(
    d: int,
    widths=(),
    out: int = 1,
    *,
    scheme: str = "gaussian",
    scale: float = 1.0,
    rng=None,
    n_runs: int | None = None,
    backend=None,
    device=None,
    dtype=None,
) -> tuple:
    """Initialise a deep linear network.

    Parameters
    ----------
    d : input dimension.
    widths : sequence of hidden widths ``(n_1, ..., n_{L-1})``; empty for the shallow model.
    out : output dimension.
    scheme : {"gaussian", "orthogonal", "balanced", "zero_head"}
        ``gaussian``: ``W_l ~ N(0, scale² / n_{l-1})`` entries (so ``E‖W_l x‖² = scale² ‖x‖²·n_l/n_{l-1}``);
        ``orthogonal``: ``scale`` times a Haar (semi-)orthogonal matrix per layer;
        ``balanced``: Arora et al. (2018) balanced layers, ``W_{l+1}ᵀW_{l+1} = W_l W_lᵀ``, whose
        product is a Gaussian end-to-end map of entry variance ``scale² / d`` truncated to the
        narrowest width;
        ``zero_head``: gaussian layers with a zero last layer.
    scale : overall scale (see ``scheme``).
    rng : numpy Generator or int seed.
    n_runs : if given, a leading run axis of that size (independent draws).
    backend, device, dtype : where the parameters live (see :func:`linmeta.array_backend`; numpy float64 by
        default).  The draws are made by the numpy Generator on the host and moved once, so a seed gives
        the same initialisation on every backend.

    Returns
    -------
    params : tuple of arrays ``W_l`` of shape ``(*runs, n_l, n_{l-1})``.
    """
    spec = resolve(backend, device, dtype)
    return spec.tree(_init_numpy(d, widths, out, scheme=scheme, scale=scale, rng=rng, n_runs=n_runs))


def _init_numpy(d, widths, out, *, scheme, scale, rng, n_runs) -> tuple:
    d = _validate.positive_int("d", d)
    out = _validate.positive_int("out", out)
    widths = _validate.sequence_of_ints("widths", widths, low=1, what="hidden widths")
    _validate.one_of("scheme", scheme, INIT_SCHEMES)
    scale = _validate.finite_float("scale", scale, non_negative=True)
    lead = () if n_runs is None else (_validate.positive_int("n_runs", n_runs),)
    rng = as_generator(rng)
    sizes = (d,) + widths + (out,)
    L = len(sizes) - 1

    if scheme in ("gaussian", "zero_head"):
        params = [
            scale / np.sqrt(sizes[l]) * rng.standard_normal(lead + (sizes[l + 1], sizes[l])) for l in range(L)
        ]
        if scheme == "zero_head":
            params[-1] = np.zeros_like(params[-1])
        return tuple(params)
    if scheme == "orthogonal":
        return tuple(scale * _orthogonal(rng, lead + (sizes[l + 1], sizes[l])) for l in range(L))
    # balanced: M = U S Vᵀ, W_l = Q_l Ŝ Q_{l-1}ᵀ with Ŝ the rank-r diagonal S^{1/L}, Q_0 = V, Q_L = U
    r = min(sizes)
    M = scale / np.sqrt(d) * rng.standard_normal(lead + (out, d))
    U, s, Vt = np.linalg.svd(M)
    frames = [np.swapaxes(Vt, -1, -2)]
    frames += [_orthogonal(rng, lead + (n, n)) for n in widths]
    frames.append(U)
    root = s[..., :r] ** (1.0 / L)
    params = []
    for l in range(L):
        core = np.zeros(lead + (sizes[l + 1], sizes[l]))
        idx = np.arange(r)
        core[..., idx, idx] = root
        params.append(frames[l + 1] @ core @ np.swapaxes(frames[l], -1, -2))
    return tuple(params)


def is_balanced(params, tol: float = 1e-10) -> bool:
    """Whether ``W_{l+1}ᵀ W_{l+1} = W_l W_lᵀ`` for every l (relative tolerance ``tol``)."""
    tol = _validate.finite_float("tol", tol, non_negative=True)
    ps = [to_numpy(W) for W in validate_params(params)]
    for lo, hi in zip(ps[:-1], ps[1:]):
        a, b = np.swapaxes(hi, -1, -2) @ hi, lo @ np.swapaxes(lo, -1, -2)
        if np.max(np.abs(a - b)) > tol * max(1.0, np.max(np.abs(a))):
            return False
    return True
