"""Exact first and second derivatives of a loss of ``M = W_L ⋯ W_1`` in layer space.

With ``G = ∂ℓ/∂M`` (``out x d``), ``S_l`` the product of the layers above layer
``l`` and ``P_l`` the product below it (``M = S_l W_l P_l``):

* layer gradient (arnold_depth_kfo.md, T1): ``∂ℓ/∂W_l = S_lᵀ G P_lᵀ``;
* Hessian-vector product for a direction ``V = (V_1, ..., V_L)``: with the
  directional derivatives ``dM = Σ_l S_l V_l P_l``, ``dS_l``, ``dP_l`` and
  ``dG = ∇²ℓ(M)[dM]``,

      (H V)_l = S_lᵀ dG P_lᵀ + dS_lᵀ G P_lᵀ + S_lᵀ G dP_lᵀ,

  computed in O(L) matrix products with the recursions
  ``dP_{l+1} = V_l P_l + W_l dP_l`` and ``dS_l = dS_{l+1} W_{l+1} + S_{l+1} V_{l+1}``
  (derivation: ``derivations/layer_calculus.py``).

``None`` stands for the identity in ``P``/``S`` and for zero in ``V``/``dP``/``dS``.
Everything broadcasts over leading (run, task) axes.
"""
from __future__ import annotations

from .models import prefix_products, suffix_products


def mm_eye(a, b):
    """``a @ b`` where ``None`` is the identity."""
    if a is None:
        return b
    if b is None:
        return a
    return a @ b


def tmm_eye(a):
    """Transpose where ``None`` is the identity."""
    return None if a is None else a.mT


def _mm_zero(a, b):
    """``a @ b`` where a zero factor (``None``) gives zero (``None``); identities must not be ``None`` here."""
    if a is None or b is None:
        return None
    return a @ b


def _mm_zero_eye(zero_or_mat, eye_or_mat, zero_first: bool):
    """Product of a maybe-zero factor and a maybe-identity factor."""
    if zero_or_mat is None:
        return None
    if eye_or_mat is None:
        return zero_or_mat
    return zero_or_mat @ eye_or_mat if zero_first else eye_or_mat @ zero_or_mat


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class LayerCalculus:
    """Partial products of one parameter setting, reused for gradients and Hessian-vector products.

    Parameters
    ----------
    params : sequence of arrays ``(*lead, n_l, n_{l-1})`` (lead axes broadcast).
    """

    def __init__(self, params):
        self.params = tuple(params)
        self.P = prefix_products(self.params)
        self.S = suffix_products(self.params)
        self.M = mm_eye(self.params[-1], self.P[-1])

    def layer_grad(self, G, l: int):
        """``S_lᵀ G P_lᵀ`` for one layer."""
        return mm_eye(mm_eye(tmm_eye(self.S[l]), G), tmm_eye(self.P[l]))

    def layer_grads(self, G, layers=None) -> list:
        """Layer gradients for ``layers`` (all if None); entries of other layers are None."""
        L = len(self.params)
        layers = range(L) if layers is None else layers
        out = [None] * L
        for l in layers:
            out[l] = self.layer_grad(G, l)
        return out

    def directional_M(self, V):
        """``dM = Σ_l S_l V_l P_l`` and the partial products' directional derivatives."""
        W, P, S, L = self.params, self.P, self.S, len(self.params)
        dP = [None] * L
        for l in range(1, L):
            dP[l] = _add(_mm_zero_eye(V[l - 1], P[l - 1], True), _mm_zero(W[l - 1], dP[l - 1]))
        dM = _add(_mm_zero_eye(V[L - 1], P[L - 1], True), _mm_zero(W[L - 1], dP[L - 1]))
        dS = [None] * L
        for l in range(L - 2, -1, -1):
            dS[l] = _add(_mm_zero(dS[l + 1], W[l + 1]), _mm_zero_eye(V[l + 1], S[l + 1], False))
        return dM, dP, dS

    def hvp(self, loss, G, V, dG=None) -> list:
        """Layer-space Hessian of ``loss(M)`` at these params applied to ``V`` (all layers returned).

        Parameters
        ----------
        loss : loss object with ``hess_action``.
        G : gradient of ``loss`` in ``M`` at ``self.M``.
        V : list of per-layer directions, ``None`` for zero.
        """
        dM, dP, dS = self.directional_M(V)
        if dM is None:
            return [None] * len(self.params)
        dG = loss.hess_action(self.M, dM)
        out = []
        for l in range(len(self.params)):
            term = self.layer_grad(dG, l)
            if dS[l] is not None:
                term = term + mm_eye(dS[l].mT @ G, tmm_eye(self.P[l]))
            if dP[l] is not None:
                term = term + mm_eye(tmm_eye(self.S[l]), G) @ dP[l].mT
            out.append(term)
        return out
