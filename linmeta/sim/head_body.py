"""The head/body split of one MAML step's query-loss reduction, evaluated exactly by the engine, per task.

Its expectation over Gaussian tasks for a two-layer network is the closed form
:func:`linmeta.theory.anil.two_layer_split_expectation` (``derivations/head_body_split.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate
from ..meta import adapted_map, check_inputs
from ..models import end_to_end, validate_params
from ..rule import InnerLoop
from ..theory.precondition import factors


@dataclass(frozen=True)
class HeadBodySplit:
    """Query-loss reductions of one inner step, per task (arrays (*runs, T)).

    Attributes
    ----------
    total : ``ℓ_q(θ) − ℓ_q(θ⁺)`` when every layer adapts (MAML).
    head : the same when only the head adapts (ANIL).
    body : the same when only the body (layers 1..L−1) adapts.
    interaction : ``total − head − body``.
    head_linear, body_linear : the first-order (in α) parts, ``α⟨G_q, G_s R⟩`` and
        ``α Σ_{l<L} ⟨G_q, S_lS_lᵀ G_s P_lᵀP_l⟩``; ``head_linear + body_linear`` is the first-order total.
    """

    total: np.ndarray
    head: np.ndarray
    body: np.ndarray
    interaction: np.ndarray
    head_linear: np.ndarray
    body_linear: np.ndarray


@_validate.finite_result
def head_body_split(params, support, query, alpha: float) -> HeadBodySplit:
    """Split one MAML step's query-loss reduction into the head's and the body's parts (exact, per task).

    Parameters
    ----------
    params : tuple of arrays (*runs, n_l, n_{l-1}), depth L ≥ 2.
    support, query : loss objects with a task axis (population or sampled moments).
    alpha : inner step size.

    Returns
    -------
    :class:`HeadBodySplit`.
    """
    alpha = _validate.finite_float("alpha", alpha)
    if len(validate_params(params)) < 2:
        raise ValueError("head_body_split needs a body: use a network with at least 2 layers")
    params, _, _ = check_inputs(params, support, query, InnerLoop(1, alpha), None, None, need_query=True)
    L = len(params)
    M = end_to_end(params)[..., None, :, :]
    base = query.value(M)

    def reduction(layers):
        return base - query.value(adapted_map(params, support, InnerLoop(1, alpha, layers)))

    total, head, body = reduction("all"), reduction("last"), reduction(tuple(range(L - 1)))
    Gs, Gq = support.grad(M), query.grad(M)
    lin = []
    for left, right in factors(params):
        step = left[..., None, :, :] @ Gs @ right[..., None, :, :]
        lin.append(alpha * np.sum(Gq * step, axis=(-2, -1)))
    return HeadBodySplit(total=total, head=head, body=body, interaction=total - head - body,
                         head_linear=lin[-1], body_linear=sum(lin[:-1]))
