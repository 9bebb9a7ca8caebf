"""Exact first and second derivatives of a loss of ``M = W_L ⋯ W_1`` in layer space.

With ``G = ∂ℓ/∂M`` (``out x d``), ``S_l`` the product of the layers above layer
``l`` and ``P_l`` the product below it (``M = S_l W_l P_l``):

* layer gradient: ``∂ℓ/∂W_l = S_lᵀ G P_lᵀ``;
* Hessian-vector product for a direction ``V = (V_1, ..., V_L)``: with the
  directional derivatives ``dM = Σ_l S_l V_l P_l``, ``dS_l``, ``dP_l`` and
  ``dG = ∇²ℓ(M)[dM]``,

      (H V)_l = S_lᵀ (dG P_lᵀ + G dP_lᵀ) + dS_lᵀ (G P_lᵀ)

  (derivation: ``derivations/layer_calculus.py``).

Cost.  Every quantity is evaluated through *thin* matrices with ``out`` rows, never
through the full ``n_l x d`` prefix products:

* ``S_l`` (out x n_{l+1}) by the top-down recursion ``S_l = S_{l+1} W_{l+1}``;
* ``Z P_lᵀ`` for a thin ``Z`` (out x d) by the bottom-up recursion ``Z P_{l+1}ᵀ = (Z P_lᵀ) W_lᵀ``;
* ``G dP_lᵀ`` by ``G dP_{l+1}ᵀ = (G P_lᵀ) V_lᵀ + (G dP_lᵀ) W_lᵀ``;
* ``dS_l = dS_{l+1} W_{l+1} + S_{l+1} V_{l+1}``;
* ``dM = Σ_l (S_l V_l) P_l`` by Horner's rule ``acc ← acc W_{l-1} + S_{l-1} V_{l-1}``.

Gradients and Hessian-vector products come out as outer products of thin
matrices, kept factored (:class:`~linmeta.factored.Factored`); layers may be
factored too (the shared initialisation plus each task's low-rank inner-loop
correction).  So a gradient or a Hessian-vector product costs O(L · out · n · r)
per task, with r the correction's rank, instead of O(L · n³).
``None`` stands for the identity (``S`` of the top layer) or for zero (directions).
Everything broadcasts over leading (run, task) axes.
"""
from __future__ import annotations

from .factored import Factored
from .models import tmm_eye


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _dense_or_none(f):
    return None if f is None else f.dense()


class LayerCalculus:
    """The thin partial products of one parameter setting, reused for gradients and Hessian-vector products.

    Parameters
    ----------
    params : sequence of arrays ``(*lead, n_{l+1}, n_l)`` or :class:`~linmeta.factored.Factored`
        (lead axes broadcast).

    Attributes
    ----------
    layers : the layers as Factored.
    S : list, ``S[l] = params[L-1] ⋯ params[l+1]`` (``(*, out, n_{l+1})``; ``None`` = identity for the top).
    M : the end-to-end map ``(*, out, d)``.
    """

    def __init__(self, params):
        self.layers = [Factored.wrap(W) for W in params]
        L = len(self.layers)
        S = [None] * L
        for l in range(L - 2, -1, -1):
            S[l] = self._apply_above(S[l + 1], self.layers[l + 1])
        self.S = S
        self.M = self._apply_above(S[0], self.layers[0])
        self._below_cache = {}

    @staticmethod
    def _apply_above(S, layer):
        """``S @ layer`` with ``S = None`` the identity."""
        return layer.dense() if S is None else layer.left(S)

    @property
    def params(self) -> list:
        """The layers as dense arrays."""
        return [f.dense() for f in self.layers]

    def below(self, Z) -> list:
        """``[Z P_lᵀ for l]`` for a thin ``Z`` (*, out, d): shapes (*, out, n_l)."""
        hit = self._below_cache.get(id(Z))
        if hit is not None and hit[0] is Z:
            return hit[1]
        out = [Z]
        for layer in self.layers[:-1]:
            out.append(layer.right_t(out[-1]))
        self._below_cache[id(Z)] = (Z, out)
        return out

    def layer_grads_factored(self, G, layers=None) -> list:
        """Layer gradients ``S_lᵀ (G P_lᵀ)`` as Factored outer products; None for layers not asked for."""
        L = len(self.layers)
        layers = range(L) if layers is None else layers
        GP = self.below(G)
        out = [None] * L
        for l in layers:
            out[l] = Factored.outer(tmm_eye(self.S[l]), GP[l])
        return out

    def layer_grads(self, G, layers=None) -> list:
        """Layer gradients as dense arrays (None for layers not asked for)."""
        return [_dense_or_none(f) for f in self.layer_grads_factored(G, layers)]

    def layer_grad(self, G, l: int):
        """``S_lᵀ G P_lᵀ`` for one layer (dense)."""
        return self.layer_grads_factored(G, [l])[l].dense()

    def directional_M(self, V, SV=None):
        """``dM = Σ_l S_l V_l P_l`` (*, out, d), by Horner's rule over the layers; ``None`` if V is zero.

        ``SV`` optionally holds the thin products ``S_l V_l`` already computed.
        """
        if SV is None:
            SV = self._above_products([Factored.wrap(v) for v in V])
        acc = None
        for l in range(len(self.layers) - 1, -1, -1):
            if acc is not None:
                acc = self.layers[l].left(acc)
            acc = _add(acc, SV[l])
        return acc

    def _above_products(self, V) -> list:
        """``[S_l V_l]`` (thin, (*, out, n_l)); None where ``V_l`` is zero."""
        return [None if v is None else self._apply_above(self.S[l], v) for l, v in enumerate(V)]

    def hvp_factored(self, loss, G, V) -> list:
        """Layer-space Hessian of ``loss(M)`` at these params applied to ``V``, as Factored (all layers).

        Parameters
        ----------
        loss : loss object with ``hess_action``.
        G : gradient of ``loss`` in ``M`` at ``self.M``.
        V : list of per-layer directions (dense or Factored), ``None`` for zero.
        """
        V = [Factored.wrap(v) for v in V]
        W, S, L = self.layers, self.S, len(self.layers)
        SV = self._above_products(V)  # S_l V_l, used by both dM and dS
        dM = self.directional_M(V, SV)
        if dM is None:
            return [None] * L
        dG = loss.hess_action(self.M, dM)
        GP, dGP = self.below(G), self.below(dG)
        GdP = [None] * L  # G dP_lᵀ, bottom-up
        for l in range(L - 1):
            nxt = None if V[l] is None else V[l].right_t(GP[l])
            if GdP[l] is not None:
                nxt = _add(nxt, W[l].right_t(GdP[l]))
            GdP[l + 1] = nxt
        dS = [None] * L  # dS_l, top-down
        for l in range(L - 2, -1, -1):
            nxt = None if dS[l + 1] is None else W[l + 1].left(dS[l + 1])
            dS[l] = _add(nxt, SV[l + 1])
        out = []
        for l in range(L):
            term = Factored.outer(tmm_eye(S[l]), _add(dGP[l], GdP[l]))
            if dS[l] is not None:
                term = term.plus(Factored.outer(dS[l].mT, GP[l]))
            out.append(term)
        return out

    def hvp(self, loss, G, V) -> list:
        """:meth:`hvp_factored` as dense arrays."""
        return [_dense_or_none(f) for f in self.hvp_factored(loss, G, V)]
