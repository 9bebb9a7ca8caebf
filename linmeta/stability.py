"""Stability of the inner step: the largest step size before gradient descent on the support loss diverges.

For one inner step ``θ ← θ − α U(∇ℓ(θ))`` on the adapted layers, the linearised
map is ``I − α U H``, with ``H`` the layer-space Hessian of the support loss
restricted to the adapted layers.  Positive steps are stable while
``α < 2 / λ_max(U H)``; that bound is what the trainer reports on divergence
and checks before training.  ``λ_max`` is found by batched power iteration with
the exact Hessian-vector product, per task, and the worst task is reported.
"""
from __future__ import annotations

import numpy as np
from array_api_compat import device as array_device

from . import preconditioners as _pc
from ._backend import namespace, to_numpy
from ._chain_rule import LayerCalculus
from .rule import InnerLoop


def curvature_max(params, support, rule: InnerLoop, precond=None, phi=None, *, iters: int = 60, seed: int = 0):
    """Largest |eigenvalue| of ``U H`` (adapted layers) per task, numpy array ``(*runs, T)``."""
    precond = _pc.get(precond)
    adapted = rule.adapted_layers(len(params))
    if not adapted:
        return np.zeros(tuple(params[0].shape[:-2]) + (support.n_tasks,))
    if phi is None:
        phi = precond.init(params, adapted)
    xp = namespace(params[0])
    calc = LayerCalculus([W[..., None, :, :] for W in params])
    G = support.grad(calc.M)
    rng = np.random.default_rng(seed)
    lead = np.broadcast_shapes(tuple(G.shape[:-2]))
    V = [None] * len(params)
    for l in adapted:
        shape = lead + tuple(params[l].shape[-2:])
        V[l] = xp.asarray(rng.standard_normal(shape), dtype=params[0].dtype, device=array_device(params[0]))

    def norm(vs):
        return xp.sqrt(sum(xp.sum(v * v, axis=(-2, -1)) for v in vs if v is not None))

    lam = None
    for _ in range(iters):
        n = norm(V)
        V = [None if v is None else v / n[..., None, None] for v in V]
        HV = calc.hvp(support, G, V)
        V = [None if l not in adapted else precond.apply(phi[l], HV[l]) for l in range(len(params))]
        lam = norm(V)
    return to_numpy(lam)


def inner_step_bound(params, support, rule: InnerLoop, precond=None, phi=None) -> np.ndarray:
    """``2 / λ_max`` of the inner step's curvature, worst task, per run: numpy array ``(*runs,)``."""
    lam = curvature_max(params, support, rule, precond, phi)
    with np.errstate(divide="ignore"):
        return 2.0 / np.max(lam, axis=-1)
