r"""KFO whose factors update inside the inner loop (``KFO(update_factors=True)``), as in the reference KFO
implementation (Sha-Lab/kfo).

At every inner step after the first, the Kronecker factors ``φ = (L, R)`` of each adapted layer take
one gradient step on the support loss *before* the layer update (the training loop of Sha-Lab/kfo):

    for j in range(k):
        g_j = ∇_θ ℓ(θ_j)
        if j ≥ 1:  φ_j = φ_{j−1} − α ∇_φ ℓ(θ_j)|_{φ_{j−1}}          (θ_j = θ_{j−1} − α U(φ_{j−1}, g_{j−1}))
        θ_{j+1} = θ_j − α U(φ_j, g_j),        U(φ, g) = L̃ g R̃

Since ``θ_j`` depends on ``φ_{j−1}`` only through the last update, ``∇_φ ℓ(θ_j) = −α V(φ_{j−1}, g_{j−1}, g_j)``
with ``V(φ, a, b) = ∇_φ ⟨b, U(φ, a)⟩``, so ``φ_j = φ_{j−1} + α² V(φ_{j−1}, g_{j−1}, g_j)``, one set of factors per
task.  With one inner step nothing adapts and the rule is plain KFO.

The exact meta-gradient is written by hand in reverse mode, with dense per-task layers (the factors
make every task's layers full rank).  Going backwards through step ``j``:

* ``θ_{j+1} = θ_j − α U(φ_j, g_j)``:  ``ḡ_j −= α Uᵀ(φ_j, θ̄_{j+1})``,  ``φ̄_j −= α V(φ_j, g_j, θ̄_{j+1})``;
* ``φ_j = φ_{j−1} + α² V(φ_{j−1}, g_{j−1}, g_j)`` (``j ≥ 1``): ``φ̄_{j−1} = φ̄_j + α² ∂_φV*[φ̄_j]``,
  ``ḡ_j += α² ∂_bV*[φ̄_j]``, ``ḡ_{j−1} += α² ∂_aV*[φ̄_j]`` (the last one carried to the next step);
* ``g_j = ∇ℓ(θ_j)``: ``θ̄_j = θ̄_{j+1} + H_j ḡ_j`` (layer-space Hessian, :mod:`linmeta._chain_rule`).

``V`` is the φ-gradient of ``s(φ, a, b) = ⟨b, L̃ a R̃⟩``, so its adjoints are second derivatives of ``s``
(:func:`second_order`; checked against complex-step differences and torch autograd in the tests).
``first_order=True`` treats every inner-loop gradient as a constant, as autograd does without
``create_graph``: no Hessian terms and no flow into the gradients through ``V``.
"""
from __future__ import annotations

from ._backend import namespace
from ._chain_rule import LayerCalculus
from ._factored import Factored
from .reverse import MetaGradient, query_value_and_adjoint


def _eff(psd, X):
    """The effective factor: ``XᵀX`` if psd else ``X``."""
    return X.mT @ X if psd else X


def _d_eff(psd, X, Xbar):
    """Directional derivative of :func:`_eff` at ``X`` along ``Xbar``."""
    return Xbar.mT @ X + X.mT @ Xbar if psd else Xbar


def _eff_vjp(psd, X, A):
    """Gradient in ``X`` of ``⟨A, eff(X)⟩``."""
    return X @ (A + A.mT) if psd else A


def apply(psd, phi, g):
    """``U(φ, g) = L̃ g R̃``.

    Parameters
    ----------
    psd : whether the effective factors are ``LᵀL`` and ``RᵀR``.
    phi : ``(L, R)``, arrays (*runs, T or 1, n, n) and (*runs, T or 1, m, m).
    g : array (*runs, T, n, m), a layer gradient per task.

    Returns
    -------
    array (*runs, T, n, m)
    """
    L, R = phi
    return _eff(psd, L) @ g @ _eff(psd, R)


def adjoint(psd, phi, v):
    """``Uᵀ(φ, v) = L̃ᵀ v R̃ᵀ``."""
    L, R = phi
    return _eff(psd, L).mT @ v @ _eff(psd, R).mT


def param_vjp(psd, phi, a, b):
    """``V(φ, a, b) = ∇_φ ⟨b, U(φ, a)⟩`` per task (no sum over tasks).

    ``a``, ``b``: arrays (*runs, T, n, m); returns ``(dL, dR)`` of shapes (*runs, T, n, n), (*runs, T, m, m).
    """
    L, R = phi
    Lt, Rt = _eff(psd, L), _eff(psd, R)
    return (_eff_vjp(psd, L, b @ (a @ Rt).mT), _eff_vjp(psd, R, (Lt @ a).mT @ b))


def second_order(psd, phi, a, b, phibar):
    """Adjoints of ``V(φ, a, b)`` for a cotangent ``φ̄``: ``(∂_φV*[φ̄], ∂_aV*[φ̄], ∂_bV*[φ̄])``.

    With ``s = ⟨b, L̃ a R̃⟩`` and its derivative along ``φ̄``,
    ``D s[φ̄] = ⟨b, L̃' a R̃ + L̃ a R̃'⟩`` (``L̃' = D L̃[L̄]``), these are the gradients of ``D s[φ̄]`` in
    ``φ``, ``a`` and ``b``.

    Shapes: ``a``, ``b`` (*runs, T, n, m); ``phi`` and ``phibar`` pairs of (*runs, T, n, n), (*runs, T, m, m).
    Returns ``((gL, gR), grad_a, grad_b)`` with the same shapes.
    """
    L, R = phi
    Lbar, Rbar = phibar
    Lt, Rt = _eff(psd, L), _eff(psd, R)
    dLt, dRt = _d_eff(psd, L, Lbar), _d_eff(psd, R, Rbar)
    grad_b = dLt @ a @ Rt + Lt @ a @ dRt
    grad_a = dLt.mT @ b @ Rt.mT + Lt.mT @ b @ dRt.mT
    # in L: through L̃ in ⟨b, L̃ a R̃'⟩, and (psd) through L̃' = L̄ᵀL + LᵀL̄ in ⟨b, L̃' a R̃⟩
    gL = _eff_vjp(psd, L, b @ (a @ dRt).mT)
    gR = _eff_vjp(psd, R, (dLt @ a).mT @ b)
    if psd:
        A1 = b @ (a @ Rt).mT  # ⟨A1, L̃'⟩ = ⟨b, L̃' a R̃⟩
        B1 = (Lt @ a).mT @ b  # ⟨B1, R̃'⟩ = ⟨b, L̃ a R̃'⟩
        gL = gL + Lbar @ (A1 + A1.mT)
        gR = gR + Rbar @ (B1 + B1.mT)
    return (gL, gR), grad_a, grad_b


def _task(x):
    return x[..., None, :, :]


def inner_loop(params, support, rule, precond, phi, *, keep_trace: bool = False):
    """Adapt ``params`` to every task of ``support``, the KFO factors updating too.

    Parameters
    ----------
    params : tuple of arrays (*runs, n_l, n_{l-1}).
    support : loss object with a task axis of size T.
    rule : :class:`~linmeta.rule.InnerLoop`.
    precond : :class:`~linmeta.preconditioners.KFO` with ``update_factors=True``.
    phi : per layer ``(L, R)`` of shapes (*runs, n_l, n_l), (*runs, n_{l-1}, n_{l-1}); ``()`` if frozen.

    Returns
    -------
    adapted layers : list of :class:`~linmeta._factored.Factored` with dense bases (*runs, T, n_l, n_{l-1})
        (frozen layers keep a task axis of size 1);
    trace : only if ``keep_trace``, a list over steps ``j`` of ``(calc, G, g, phi_j)``.
    """
    adapted = rule.adapted_layers(len(params))
    theta = [_task(W) for W in params]
    phis = {l: tuple(_task(p) for p in phi[l]) for l in adapted}
    trace, g_prev = [], None
    for j in range(rule.steps):
        calc = LayerCalculus(theta)
        G = support.grad(calc.M)
        g = calc.layer_grads(G, adapted)
        if j >= 1:
            phis = {l: tuple(p + rule.alpha**2 * v for p, v in zip(phis[l], param_vjp(precond.psd, phis[l], g_prev[l], g[l])))
                    for l in adapted}
        if keep_trace:
            trace.append((calc, G, g, phis))
        theta = list(theta)
        for l in adapted:
            theta[l] = theta[l] - rule.alpha * apply(precond.psd, phis[l], g[l])
        g_prev = g
    theta = [Factored(base=W) for W in theta]
    return (theta, trace) if keep_trace else theta


def value_and_grad(params, support, query, rule, precond, phi):
    """Meta-loss and its exact gradient in the layers and the initial factors (see the module docstring).

    Arguments as in :func:`inner_loop`, plus ``query`` (the scored loss, same task axis).  Returns a
    :class:`~linmeta.reverse.MetaGradient`: ``value`` (*runs,), ``params`` shaped like ``params`` and ``phi``
    shaped like ``phi``.
    """
    psd, alpha = precond.psd, rule.alpha
    adapted = rule.adapted_layers(len(params))
    theta, trace = inner_loop(params, support, rule, precond, phi, keep_trace=True)
    value, bar = query_value_and_adjoint(theta, query)
    bar = [b.dense() for b in bar]  # θ̄_k, dense per task
    phibar, carry = None, {}
    for j in range(rule.steps - 1, -1, -1):
        calc, G, g, phis = trace[j]
        gbar = dict(carry)
        carry = {}
        # θ_{j+1} = θ_j − α U(φ_j, g_j)
        new_phibar = {}
        for l in adapted:
            gbar[l] = gbar.get(l, 0.0) - alpha * adjoint(psd, phis[l], bar[l])
            contrib = param_vjp(psd, phis[l], g[l], bar[l])
            prev = phibar[l] if phibar is not None else (0.0, 0.0)
            new_phibar[l] = tuple(p - alpha * c for p, c in zip(prev, contrib))
        phibar = new_phibar
        # φ_j = φ_{j−1} + α² V(φ_{j−1}, g_{j−1}, g_j)
        if j >= 1:
            _, _, g_prev, phis_prev = trace[j - 1]
            for l in adapted:
                if rule.first_order:
                    continue  # the inner-loop gradient inside V is a constant: φ̄_{j−1} = φ̄_j
                (hL, hR), grad_a, grad_b = second_order(psd, phis_prev[l], g_prev[l], g[l], phibar[l])
                phibar[l] = (phibar[l][0] + alpha**2 * hL, phibar[l][1] + alpha**2 * hR)
                gbar[l] = gbar[l] + alpha**2 * grad_b
                carry[l] = alpha**2 * grad_a
        # g_j = ∇ℓ(θ_j)
        if not rule.first_order:
            V = [gbar.get(l) if l in adapted else None for l in range(len(params))]
            Hv = calc.hvp_factored(support, G, V)
            bar = [b if h is None else b + h.dense() for b, h in zip(bar, Hv)]
    grads = tuple(_sum_to(b, W) for b, W in zip(bar, params))
    phi_grads = tuple(tuple(_sum_to(pb, p) for pb, p in zip(phibar[l], phi[l])) if l in adapted else ()
                      for l in range(len(params)))
    return MetaGradient(value=value, params=grads, phi=phi_grads)


def _sum_to(x, like):
    """Sum the task axis (and any broadcast axes) of a per-task adjoint down to ``like``'s shape."""
    xp = namespace(like)
    x = xp.sum(x, axis=-3)
    while x.ndim > like.ndim:
        x = xp.sum(x, axis=0)
    return x
