"""The inner loop: k steps of (preconditioned) gradient descent on a chosen set of layers.

:func:`run_inner_loop` adapts a batch of tasks at once (the task axis of the support loss), with
no Python loop over tasks.  Every per-task layer is kept as the shared initialisation plus a
low-rank correction (:class:`~linmeta._factored.Factored`).  The rule itself is
:class:`linmeta.rule.InnerLoop`; the reverse pass through this loop is :mod:`linmeta.reverse`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._chain_rule import LayerCalculus
from ._backend import namespace
from ._factored import Factored
from .rule import InnerLoop


@dataclass
class InnerTrace:
    """What the reverse pass needs from each inner step ``j``, all scaled by ``−α``.

    ``calculus[j]``: the :class:`~linmeta._chain_rule.LayerCalculus` at θ^j;
    ``GP[j]``: ``−α G P_lᵀ`` for every layer (``G`` the support gradient in ``M`` at θ^j);
    ``g[j]``: ``−α`` times the per-layer support gradients (None for frozen layers), as Factored.
    """

    calculus: list
    GP: list
    g: list


def _with_task_axis(params):
    return [Factored(base=W[..., None, :, :]) for W in params]


def run_inner_loop(params, support, rule: InnerLoop, precond, phi, *, keep_trace: bool = False, _ws=None):
    """Adapt ``params`` to every task of ``support``.

    Parameters
    ----------
    params : tuple of arrays (*runs, n_l, n_{l-1}).
    support : loss object with a task axis (``(*runs, T, ...)`` or ``(T, ...)``).
    rule : :class:`InnerLoop`.
    precond, phi : a :class:`~linmeta.preconditioners.Preconditioner` and its parameters (one tuple per layer).
    keep_trace : also return the :class:`InnerTrace` for the reverse pass.

    Returns
    -------
    adapted : list of :class:`~linmeta._factored.Factored` layers (the shared initialisation, with a
        task axis of size 1, plus each task's low-rank correction); ``.dense()`` gives arrays of shape
        (*runs, T, n_l, n_{l-1}) for adapted layers and (*runs, 1, ...) for frozen ones.
    trace : :class:`InnerTrace` (only if ``keep_trace``).

    Each step scales the support gradient in ``M`` by ``−α`` once, before the bottom-up recursion
    ``G P_{l+1}ᵀ = (G P_lᵀ) W_lᵀ``, so every layer's step ``−α S_lᵀ (G P_lᵀ)`` comes out scaled
    (the preconditioners are linear: ``U(−α g) = −α U(g)``).  ``_ws`` (engine-internal): a
    :class:`~linmeta._workspace.Workspace` for the long-lived products; the adapted layers then live
    in its buffers, so only a caller that is done with them before the workspace is reused may pass one.
    """
    adapted = rule.adapted_layers(len(params))
    theta = _with_task_axis(params)
    trace = InnerTrace([], [], [])
    neg_alpha = -rule.alpha
    for _ in range(rule.steps):
        calc = LayerCalculus(theta, _ws)
        G = support.grad(calc.M)
        if _ws is None:
            G = neg_alpha * G
        else:
            xp = namespace(G)
            G = xp.multiply(G, neg_alpha, out=_ws.take(xp, G.shape, G))
        GP = calc.below(G)
        g = calc.layer_grads_factored(None, adapted, GP=GP)
        if keep_trace:
            trace.calculus.append(calc)
            trace.GP.append(GP)
            trace.g.append(g)
        theta = list(theta)
        for l in adapted:
            theta[l] = theta[l].plus(precond.apply(phi[l], g[l]), _ws)
    return (theta, trace) if keep_trace else theta
