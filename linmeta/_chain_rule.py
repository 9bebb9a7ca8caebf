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
* ``dM = Σ_l (S_l V_l) P_l`` by Horner's rule top-down, ``acc_l = acc_{l+1} W_l + S_l V_l``, whose
  partial sums are the ``dS``: ``dS_l = acc_{l+1}``;
* ``E_l = dG P_lᵀ + G dP_lᵀ`` by one bottom-up recursion, ``E_{l+1} = E_l W_lᵀ + (G P_lᵀ) V_lᵀ``
  (``dP_{l+1} = V_l P_l + W_l dP_l``), so that ``(H V)_l = S_lᵀ E_l + dS_lᵀ (G P_lᵀ)``.

Each step of a recursion is one sum of a few large operations (:func:`~linmeta._factored.sum_products`),
and the reverse pass gets ``−α H V`` from ``−α G P_lᵀ`` directly (:meth:`LayerCalculus.scaled_hvp`).

Gradients and Hessian-vector products come out as outer products of thin
matrices, kept factored (:class:`~linmeta._factored.Factored`); layers may be
factored too (the shared initialisation plus each task's low-rank inner-loop
correction).  So a gradient or a Hessian-vector product costs O(L · out · n · r)
per task, with r the correction's rank, instead of O(L · n³).
``None`` stands for the identity (``S`` of the top layer) or for zero (directions).
Everything broadcasts over leading (run, task) axes.
"""
from __future__ import annotations

from ._backend import namespace
from ._factored import Factored, sum_products


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
    params : sequence of arrays ``(*lead, n_{l+1}, n_l)`` or :class:`~linmeta._factored.Factored`
        (lead axes broadcast).
    ws : optional :class:`~linmeta._workspace.Workspace` that receives the long-lived products
        (``S``, ``M``, :meth:`below`, the Hessian terms); the engine passes one, callers outside
        the engine need not.

    Attributes
    ----------
    layers : the layers as Factored.
    S : list, ``S[l] = params[L-1] ⋯ params[l+1]`` (``(*, out, n_{l+1})``; ``None`` = identity for the top).
    M : the end-to-end map ``(*, out, d)``.
    """

    def __init__(self, params, ws=None):
        self.layers = layers = [Factored.wrap(W) for W in params]
        self.ws = ws
        L = len(layers)
        S = [None] * L
        if L > 1:
            S[L - 2] = layers[L - 1].dense()
            for l in range(L - 3, -1, -1):
                S[l] = layers[l + 1].left(S[l + 1], ws)
        self.S = S
        self.M = layers[0].dense() if L == 1 else layers[0].left(S[0], ws)
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
            out.append(layer.right_t(out[-1], self.ws))
        self._below_cache[id(Z)] = (Z, out)
        return out

    def layer_grads_factored(self, G, layers=None, *, GP=None) -> list:
        """Layer gradients ``S_lᵀ (G P_lᵀ)`` as Factored outer products; None for layers not asked for.

        ``GP`` optionally holds ``below(G)`` already (then ``G`` is not used).
        """
        L = len(self.layers)
        layers = range(L) if layers is None else layers
        if GP is None:
            GP = self.below(G)
        out = [None] * L
        for l in layers:
            out[l] = Factored(base=GP[l]) if self.S[l] is None else Factored(Ct=self.S[l], R=GP[l])
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
        return self.scaled_hvp(loss, self.below(G), V)

    def scaled_hvp(self, loss, GP, V, scale=None) -> list:
        """``scale · (H V)`` as Factored (all layers), given ``GP = scale · [G P_lᵀ for l]``.

        The reverse pass needs ``−α H V`` and already holds ``−α G P_lᵀ`` (the inner step's
        gradient factors), so the scale costs one product (on ``dM``) instead of one per factor.
        ``scale=None`` means 1.  Two recursions give every term (``derivations/layer_calculus.py``):

        * top-down, Horner's rule for ``dM``: ``acc_l = acc_{l+1} W_l + S_l V_l``, whose partial sums
          are the ``dS``: ``dS_l = acc_{l+1}``, and ``dM = acc_0``;
        * bottom-up, ``E_l = dG P_lᵀ + G dP_lᵀ`` in one: ``E_0 = dG``, ``E_{l+1} = E_l W_lᵀ + (G P_lᵀ) V_lᵀ``;

        and ``(H V)_l = S_lᵀ E_l + dS_lᵀ (G P_lᵀ)``.  Everything is linear in ``(dG, G)``, so scaling
        both scales the result.  The terms of each step of a recursion are summed in one pass.
        """
        V = [Factored.wrap(v) for v in V]
        W, S, L, ws = self.layers, self.S, len(self.layers), self.ws
        dS = [None] * L
        acc = None
        for l in range(L - 1, -1, -1):
            if l < L - 1:
                dS[l] = acc
            v = V[l]
            if acc is None:
                if v is not None:
                    acc = v.base if S[l] is None and not v.pieces else (v.dense() if S[l] is None else v.left(S[l], ws))
            elif v is None:
                acc = W[l].left(acc, ws)
            else:
                acc = sum_products([(W[l], acc, False), (v, S[l], False)], ws)  # acc W_l + S_l V_l
        if acc is None:
            return [None] * L
        E = loss.hess_action(self.M, acc)
        if scale is not None:  # the Hessian action is linear in dM: scale its (smaller or equal) output
            if ws is None:
                E = scale * E
            else:
                xp = namespace(E)
                E = xp.multiply(E, scale, out=ws.take(xp, E.shape, E))
        out = []
        for l in range(L):
            if l > 0:
                v = V[l - 1]
                if v is None:
                    E = W[l - 1].right_t(E, ws)
                else:
                    E = sum_products([(W[l - 1], E, True), (v, GP[l - 1], True)], ws)
            term = Factored(base=E) if S[l] is None else Factored(Ct=S[l], R=E)
            if dS[l] is not None:
                term.pieces = term.pieces + ((dS[l], GP[l]),)
            out.append(term)
        return out

    def hvp(self, loss, G, V) -> list:
        """:meth:`hvp_factored` as dense arrays."""
        return [_dense_or_none(f) for f in self.hvp_factored(loss, G, V)]
