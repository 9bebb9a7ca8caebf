"""The exact meta-gradient through the factored inner loop, by reverse mode written out by hand.

For parameters θ, a batch of T tasks with support losses ℓˢ_t and query losses ℓ^q_t, and an
inner rule (k steps, step α, adapted layers, preconditioner U_φ):

    θ_t^{j+1} = θ_t^j − α U_φ(∇_adapted ℓˢ_t(θ_t^j)),     F(θ, φ) = (1/T) Σ_t ℓ^q_t(θ_t^k).

Going backwards (no autodiff):

    θ̄^k = ∇ℓ^q(θ^k) / T,
    θ̄^j = θ̄^{j+1} − α H_s(θ^j) Uᵀ(θ̄^{j+1}_adapted)      (dropped when first_order),
    φ̄  −= α ∂_φ⟨θ̄^{j+1}, U_φ(g^j)⟩,

where ``H_s`` is the layer-space Hessian of the support loss (:mod:`linmeta._chain_rule`,
``derivations/layer_calculus.py``).  Everything is batched over the task axis (and the optional
run axis) and written against the array API, so it runs unchanged on torch tensors.

The inner loop keeps ``−α g^j`` and ``−α G P_lᵀ`` (one scaling per step), so each reverse step is
one scaled Hessian-vector product and the φ̄ terms need no further scaling.  A call's arrays live
in a workspace reused from call to call (:mod:`linmeta._workspace`); the results are fresh arrays.

This module owns the result type :class:`MetaGradient` and the start of every reverse pass,
:func:`query_value_and_adjoint`; :mod:`linmeta.updating_kfo` reuses both.  Which reverse pass a
call takes is decided in one place, :func:`linmeta.meta.engine_for`.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import _workspace
from ._chain_rule import LayerCalculus
from ._backend import namespace
from ._factored import sum_tasks
from .inner_loop import run_inner_loop
from .losses import _value_and_grad as _loss_value_and_grad


@dataclass(frozen=True)
class MetaGradient:
    """Meta-loss and its gradient.

    Attributes
    ----------
    value : array (*runs,), mean post-adaptation query loss over the task batch.
    params : tuple of arrays, the gradient in each layer (shapes of ``params``).
    phi : tuple (per layer) of tuples of arrays, the gradient in the preconditioner parameters.
    """

    value: object
    params: tuple
    phi: tuple


def query_value_and_adjoint(theta, query, _ws=None) -> tuple:
    """The meta-loss of adapted layers ``theta`` and where the reverse pass starts.

    Parameters
    ----------
    theta : list of adapted layers (arrays or :class:`~linmeta._factored.Factored`), (*runs, T, n_l, n_{l-1}).
    query : loss object with the same task axis.

    Returns
    -------
    ``(value, bar)``: the mean query loss over the tasks, shape (*runs,), and its gradient in every
    adapted layer, per task, as :class:`~linmeta._factored.Factored` (*runs, T, n_l, n_{l-1}).
    """
    final = LayerCalculus(theta, _ws)
    per_task, G = _loss_value_and_grad(query, final.M)
    xp = namespace(per_task)
    T = per_task.shape[-1]
    value = xp.sum(per_task, axis=-1) * (1.0 / T)
    if _ws is None:
        G = G * (1.0 / T)
    else:
        G = xp.multiply(G, 1.0 / T, out=_ws.take(xp, G.shape, G))
    return value, final.layer_grads_factored(None, GP=final.below(G))


def value_and_grad(params, support, query, rule, precond, phi) -> MetaGradient:
    """Meta-loss and its exact gradient through :func:`~linmeta.inner_loop.run_inner_loop` (inputs trusted).

    Parameters
    ----------
    params : tuple of arrays (*runs, n_l, n_{l-1}).
    support, query : loss objects with a task axis of size T (run axis () or ``runs``).
    rule : :class:`~linmeta.rule.InnerLoop`.
    precond : :class:`~linmeta.preconditioners.Preconditioner`; ``phi`` its parameters, one tuple per layer.

    Returns
    -------
    :class:`MetaGradient`
    """
    ws = _workspace.acquire(params[0]) if _workspace.worthwhile(params, support.n_tasks) else None
    try:
        return _value_and_grad(params, support, query, rule, precond, phi, ws)
    finally:
        _workspace.release(ws)


def _value_and_grad(params, support, query, rule, precond, phi, ws):
    xp = namespace(params[0])
    adapted = rule.adapted_layers(len(params))
    theta, trace = run_inner_loop(params, support, rule, precond, phi, keep_trace=True, _ws=ws)
    value, bar = query_value_and_adjoint(theta, query, ws)

    # the trace holds −α g^j and −α G P_lᵀ, so  φ̄ −= α ∂_φ⟨θ̄, U_φ(g)⟩ = ∂_φ⟨θ̄, U_φ(−α g)⟩  and the
    # Hessian term −α H_s Uᵀ(θ̄) comes out of one scaled Hessian-vector product
    phi_bar = [None] * len(params)
    neg_alpha = -rule.alpha
    for j in range(rule.steps - 1, -1, -1):
        calc, GP, g = trace.calculus[j], trace.GP[j], trace.g[j]
        for l in adapted:
            if phi[l]:
                contrib = precond.param_vjp(phi[l], g[l], bar[l])
                phi_bar[l] = contrib if phi_bar[l] is None else tuple(a + c for a, c in zip(phi_bar[l], contrib))
        if rule.first_order:
            continue
        V = [None] * len(params)
        for l in adapted:
            V[l] = precond.adjoint(phi[l], bar[l])
        Hv = calc.scaled_hvp(support, GP, V, neg_alpha)
        bar = [b if h is None else b.plus(h, ws) for b, h in zip(bar, Hv)]

    grads = tuple(sum_tasks(b, ws) for b in bar)
    phi_grads = tuple(tuple(xp.zeros_like(p) for p in phi_l) if phi_bar[l] is None else tuple(phi_bar[l])
                      for l, phi_l in enumerate(phi))
    return MetaGradient(value=value, params=grads, phi=phi_grads)
