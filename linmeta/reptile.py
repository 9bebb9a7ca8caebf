r"""Reptile as an outer rule (Nichol, Achiam & Schulman 2018): the meta-direction is the inner loop's displacement.

For parameters θ, a batch of T tasks and an inner rule (k steps of size α on the support loss),
Reptile moves θ toward the adapted parameters θ_t^k.  The direction returned here is

    D(θ) = (1/T) Σ_t (θ − θ_t^k) / (k α),

the mean displacement *per unit of inner step*.  Why normalised: (θ − θ_t^k)/(kα) is the average of
the k support gradients along the inner trajectory, so it tends to the gradient of the average
support loss as α → 0 and equals it exactly for k = 1 (Reptile with one step is joint training);
an outer optimizer then takes steps of the same scale whatever k and α are, and ``lr`` in
:func:`linmeta.train.meta_train` means the same as for MAML.  The classical update
``θ ← θ + ε (mean_t θ_t^k − θ)`` is outer SGD on ``D`` with ``lr = ε k α``.

With the same support set at every inner step (the engine's inner loop), a Taylor expansion in α
around θ with ``g = ∇ℓ_s(θ)`` and ``H = ∇²ℓ_s(θ)`` gives

    D = g − ½ (k − 1) α H g + O(α²),

while the first-order MAML gradient with the query loss equal to the support loss is
``g − kαHg + O(α²)`` and the MAML gradient ``g − 2kαHg + O(α²)``: ``D − FO = ½(k + 1) α H g + O(α²)``
and ``D − MAML = ½(3k + 1) α H g + O(α²)`` (one step: ``αHg`` and ``2αHg``).  On the shallow quadratic
``ℓ_s(θ) = ½(θ − θ*)ᵀH(θ − θ*)`` it is exact: ``D = [I − (I − αH)^k](θ − θ*)/(kα)``.
Reptile is not the gradient of an objective; the ``value`` it reports (for monitoring and the
divergence guard) is the post-adaptation query loss, the MAML meta-loss.
"""
from __future__ import annotations

from . import preconditioners as _pc
from ._backend import namespace
from .meta import adapted_layers_unchecked, check_inputs
from .models import end_to_end
from .reverse import MetaGradient
from .rule import InnerLoop


def check_rule(rule: InnerLoop, depth: int) -> tuple:
    """The adapted layers of ``rule``; a ValueError unless it has steps >= 1, an adapted layer and alpha != 0."""
    if not isinstance(rule, InnerLoop):
        raise ValueError(f"rule must be a linmeta.InnerLoop, got {type(rule).__name__}")
    adapted = rule.adapted_layers(depth)
    if rule.steps < 1 or not adapted:
        raise ValueError("Reptile needs an inner loop: rule.steps >= 1 and at least one adapted layer "
                         f"(got steps={rule.steps}, layers={rule.layers!r})")
    if rule.alpha == 0:
        raise ValueError("Reptile's direction is the displacement per unit inner step, (theta - theta_k)/(k alpha): "
                         "alpha must be non-zero")
    return adapted


def direction_unchecked(params, support, query, rule: InnerLoop, precond, phi) -> MetaGradient:
    """:func:`reptile_direction` for resolved ``precond`` and ``phi`` (the trainer's loop).

    Returns a :class:`~linmeta.reverse.MetaGradient` whose ``params`` hold the Reptile direction
    (zero for frozen layers) and whose ``phi`` are zeros: Reptile has no rule for preconditioner
    parameters.
    """
    adapted = check_rule(rule, len(params))
    theta = [f.dense() for f in adapted_layers_unchecked(params, support, rule, precond, phi)]
    xp = namespace(params[0])
    scale = 1.0 / (rule.steps * rule.alpha)
    direction = []
    for l, (W, Wk) in enumerate(zip(params, theta)):
        if l in adapted:
            direction.append(scale * xp.mean(W[..., None, :, :] - Wk, axis=-3))
        else:
            direction.append(0.0 * W)
    value = xp.mean(query.value(end_to_end(theta)), axis=-1)
    zeros = tuple(tuple(0.0 * p for p in phi_l) for phi_l in phi)
    return MetaGradient(value=value, params=tuple(direction), phi=zeros)


def reptile_direction(params, support, query, rule: InnerLoop, precond=None, phi=None) -> MetaGradient:
    """The Reptile meta-direction ``mean_t (θ − θ_t^k)/(kα)``, batched over tasks and runs.

    Parameters
    ----------
    params : tuple of arrays (*runs, n_l, n_{l-1}).
    support : loss object with a task axis; the inner loop adapts on it.
    query : loss object with the same task axis; only scored (``value``), never differentiated.
    rule : :class:`~linmeta.rule.InnerLoop` with ``steps >= 1`` and ``alpha != 0``.
    precond, phi : optional inner-loop preconditioner and its parameters (used as given).

    Returns
    -------
    :class:`~linmeta.reverse.MetaGradient`: ``value`` (*runs,) the mean post-adaptation query loss,
    ``params`` the direction shaped like ``params``, ``phi`` zeros shaped like ``phi``.
    """
    params, precond, phi = check_inputs(params, support, query, rule, precond, phi)
    return direction_unchecked(params, support, query, rule, precond, phi)


def uses_preconditioner_parameters(precond) -> bool:
    """Whether a preconditioner has parameters of its own (which Reptile cannot learn)."""
    return not isinstance(_pc.get(precond), _pc.Identity)
