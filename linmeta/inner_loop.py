"""The inner loop: k steps of (preconditioned) gradient descent on a chosen set of layers.

:func:`run_inner_loop` adapts a batch of tasks at once (the task axis of the support loss), with
no Python loop over tasks.  Every per-task layer is kept as the shared initialisation plus a
low-rank correction (:class:`~linmeta.factored.Factored`).  The rule itself is
:class:`linmeta.rule.InnerLoop`; the reverse pass through this loop is :mod:`linmeta.reverse`.
"""
from __future__ import annotations

from dataclasses import dataclass

from .chain_rule import LayerCalculus
from .factored import Factored
from .rule import InnerLoop


@dataclass
class InnerTrace:
    """What the reverse pass needs from each inner step ``j``: the layer calculus and support gradients."""

    calculus: list  # LayerCalculus at θ^j, j = 0..k-1
    G: list  # support gradient in M at θ^j
    g: list  # per-layer support gradients at θ^j (None for frozen layers)


def _with_task_axis(params):
    return [Factored(base=W[..., None, :, :]) for W in params]


def run_inner_loop(params, support, rule: InnerLoop, precond, phi, *, keep_trace: bool = False):
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
    adapted : list of :class:`~linmeta.factored.Factored` layers (the shared initialisation, with a
        task axis of size 1, plus each task's low-rank correction); ``.dense()`` gives arrays of shape
        (*runs, T, n_l, n_{l-1}) for adapted layers and (*runs, 1, ...) for frozen ones.
    trace : :class:`InnerTrace` (only if ``keep_trace``).
    """
    adapted = rule.adapted_layers(len(params))
    theta = _with_task_axis(params)
    trace = InnerTrace([], [], [])
    for _ in range(rule.steps):
        calc = LayerCalculus(theta)
        G = support.grad(calc.M)
        g = calc.layer_grads_factored(G, adapted)
        if keep_trace:
            trace.calculus.append(calc)
            trace.G.append(G)
            trace.g.append(g)
        theta = list(theta)
        for l in adapted:
            theta[l] = theta[l].plus(precond.apply(phi[l], g[l]).scaled(-rule.alpha))
    return (theta, trace) if keep_trace else theta
