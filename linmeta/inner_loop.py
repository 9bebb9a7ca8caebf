"""The inner loop: k steps of (preconditioned) gradient descent on a chosen set of layers.

``InnerLoop`` describes the rule; :func:`adapt` runs it for a batch of tasks at
once (the task axis of the support loss), with no Python loop over tasks.

Layer sets (``layers``):

* ``"all"``   every layer adapts (MAML);
* ``"last"``  only the head adapts (ANIL);
* ``"first"`` only the bottom layer adapts;
* ``"none"``  nothing adapts (NAL: non-adaptive learning, the pre-adaptation loss);
* a tuple of 0-based layer indices (negative indices count from the top).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import _validate
from . import preconditioners as _pc
from .chain_rule import LayerCalculus
from .factored import Factored

LAYER_SETS = ("all", "last", "first", "none")
INNER_LOSSES = ("support", "population")


@dataclass(frozen=True)
class InnerLoop:
    """An inner-loop rule.

    Parameters
    ----------
    steps : number of inner gradient steps k ≥ 0.
    alpha : inner step size α (any finite real; negative values are allowed).
    layers : which layers adapt, see the module docstring.
    first_order : drop the second-order terms of the meta-gradient (FO-MAML).  The
        adapted parameters and the meta-loss are unchanged; only the gradient differs.
    inner_loss : ``"support"`` (K-shot support set) or ``"population"`` (exact expected
        task loss) – used by the samplers and trainers to build the inner loss.
    """

    steps: int = 1
    alpha: float = 0.01
    layers: object = "all"
    first_order: bool = False
    inner_loss: str = "support"

    def __post_init__(self):
        _validate.positive_int("steps", self.steps, allow_zero=True)
        object.__setattr__(self, "alpha", _validate.finite_float("alpha", self.alpha))
        if isinstance(self.layers, str):
            _validate.one_of("layers", self.layers, LAYER_SETS)
        else:
            try:
                layers = tuple(int(i) for i in self.layers)
            except TypeError:
                raise ValueError(f"layers must be one of {LAYER_SETS} or a tuple of layer indices, got {self.layers!r}")
            object.__setattr__(self, "layers", layers)
        _validate.one_of("inner_loss", self.inner_loss, INNER_LOSSES)
        if not isinstance(self.first_order, bool):
            raise ValueError(f"first_order must be True or False, got {self.first_order!r}")
        if self.first_order and (self.steps == 0 or self.layers == "none" or self.layers == ()):
            raise ValueError(
                "first_order=True needs an inner loop to approximate: set steps >= 1 and layers to "
                "'all', 'last', 'first' or a non-empty tuple (or use first_order=False)"
            )

    def adapted_layers(self, depth: int) -> tuple:
        """0-based indices of the layers that adapt in a model of ``depth`` layers."""
        if self.steps == 0 or self.layers == "none":
            return ()
        if self.layers == "all":
            return tuple(range(depth))
        if self.layers == "last":
            return (depth - 1,)
        if self.layers == "first":
            return (0,)
        out = []
        for i in self.layers:
            if not -depth <= i < depth:
                raise ValueError(f"layers contains index {i}, but the model has only {depth} layers (0..{depth - 1})")
            out.append(i % depth)
        return tuple(sorted(set(out)))


@dataclass
class InnerTrace:
    """What the reverse pass needs from each inner step ``j``: the layer calculus and support gradients."""

    calculus: list  # LayerCalculus at θ^j, j = 0..k-1
    G: list  # support gradient in M at θ^j
    g: list  # per-layer support gradients at θ^j (None for frozen layers)


def _with_task_axis(params):
    return [Factored(base=W[..., None, :, :]) for W in params]


def run_inner_loop(params, support, rule: InnerLoop, precond=None, phi=None, *, keep_trace: bool = False):
    """Adapt ``params`` to every task of ``support``.

    Parameters
    ----------
    params : tuple of arrays (*runs, n_l, n_{l-1}).
    support : loss object with a task axis (``(*runs, T, ...)`` or ``(T, ...)``).
    rule : :class:`InnerLoop`.
    precond, phi : optional preconditioner and its parameters (see :mod:`linmeta.preconditioners`).
    keep_trace : also return the :class:`InnerTrace` for the reverse pass.

    Returns
    -------
    adapted : list of :class:`~linmeta.factored.Factored` layers (the shared initialisation, with a
        task axis of size 1, plus each task's low-rank correction); ``.dense()`` gives arrays of shape
        (*runs, T, n_l, n_{l-1}) for adapted layers and (*runs, 1, ...) for frozen ones.
    trace : :class:`InnerTrace` (only if ``keep_trace``).
    """
    precond = _pc.get(precond)
    adapted = rule.adapted_layers(len(params))
    if phi is None:
        phi = precond.init(params, adapted)
    if getattr(precond, "adapt", False) and rule.steps >= 2:
        from . import adaptive_kfo  # the factors adapt too: dense per-task layers

        return adaptive_kfo.inner_loop(params, support, rule, precond, phi, keep_trace=keep_trace)
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
