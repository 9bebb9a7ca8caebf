"""Inner-loop gradient transforms (explicit meta-optimizers).

The inner step on an adapted layer is ``W ← W − α U(g; φ)``, with ``g`` the layer
gradient and ``φ`` meta-learned parameters.  Each transform is linear in ``g``
and provides three maps used by the exact meta-gradient:

``apply(phi_l, g)``       ``U(g; φ)``
``adjoint(phi_l, v)``     ``Uᵀ(v; φ)``, the adjoint in ``g``
``param_vjp(phi_l, g, v)`` the gradient of ``⟨v, U(g; φ)⟩`` in ``φ``, summed over the task axis

``phi_l`` is a tuple of arrays of shape ``(*runs, ...)`` (no task axis); ``g`` and
``v`` have shape ``(*runs, T, n, m)`` and may be dense arrays or
:class:`~linmeta._factored.Factored` (low-rank) matrices; the result has the same
kind (Meta-SGD, which does not preserve low rank, returns a dense-based Factored).
A layer that does not adapt has ``phi_l = ()``.

Every transform implements the :class:`Preconditioner` protocol (a base class) and is registered
under its :attr:`~Preconditioner.name`; ``get(p.name)`` returns an equal object for every registered
configuration, so names round-trip.  Transforms, all equal to plain MAML (``U = identity``) at their
initialisation:

* :class:`Identity` – MAML (name ``maml``).
* :class:`MetaSGD` – (``meta-sgd``) per-parameter step sizes ``U = λ ⊙ g`` (Li et al. 2017), ``λ = 1`` at init,
  so the effective step is ``α λ``.
* :class:`KFO` – (``kfo``, ``kfo-nonpsd``) Kronecker-factored ``U = L̃ g R̃`` with ``L̃ = LᵀL``, ``R̃ = RᵀR`` if ``psd``
  else ``L̃ = L``, ``R̃ = R`` (Arnold et al.; learn2learn ``KroneckerLinear``), identity init.
  In column-major vec form ``vec U = (R̃ᵀ ⊗ L̃) vec g``.
* :class:`MetaCurvature` – (``meta-curvature``) ``U = M_out g M_in`` with unconstrained factors (Park & Oliva 2019),
  i.e. the non-PSD KFO for fully connected layers.

``KFO(update_factors=True)`` (names ending in ``-updating``) lets the factors take their own
gradient step inside the inner loop, as in the reference KFO code; :mod:`linmeta.updating_kfo`
runs it.

Adding a meta-optimizer: subclass :class:`Preconditioner` (``init``, ``apply``, ``adjoint``,
``param_vjp``, ``name``) and call :func:`register`; the registry contract test
(``tests/test_preconditioners.py``) then checks its gradient, its reduction to MAML and its torch
agreement with no further edits.
"""
from __future__ import annotations

from dataclasses import dataclass


from array_api_compat import device as array_device

from . import _validate
from ._backend import namespace
from ._factored import Factored, sum_tasks, sum_tasks_nt, sum_tasks_tn


def _task(x):
    """Insert the task axis into a per-run array (*runs, a, b) -> (*runs, 1, a, b)."""
    return x[..., None, :, :]


def _dense(x):
    return x.dense() if isinstance(x, Factored) else x


def _full_like(W, value):
    """An array of ``W``'s shape, backend, device and dtype filled with ``value``."""
    xp = namespace(W)
    return xp.full(tuple(W.shape), value, dtype=W.dtype, device=array_device(W))


def _eye_like(W, n, runs):
    """Identity matrices (*runs, n, n) on ``W``'s backend, device and dtype (a copy, not a view)."""
    xp = namespace(W)
    eye = xp.eye(n, dtype=W.dtype, device=array_device(W))
    return xp.asarray(xp.broadcast_to(eye, runs + (n, n)), copy=True)


def _like(template, dense):
    return Factored(base=dense) if isinstance(template, Factored) else dense


class Preconditioner:
    """The protocol of an inner-loop gradient transform ``U(g; φ)`` (see the module docstring).

    Subclasses are frozen dataclasses; they implement :meth:`init`, :meth:`apply`, :meth:`adjoint`
    and :meth:`param_vjp`, and give a :attr:`name` under which :func:`register` files them.
    """

    #: whether the transform's own parameters take a step inside the inner loop (dense engine)
    updates_in_inner_loop = False

    @property
    def name(self) -> str:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def init(self, params, adapted) -> tuple:
        """Identity parameters: a tuple per layer (``()`` for layers not in ``adapted``), arrays (*runs, ...)."""
        raise NotImplementedError

    def apply(self, phi_l, g):
        """``U(g; φ_l)`` for layer gradients ``g`` (*runs, T, n, m), dense or Factored."""
        raise NotImplementedError

    def adjoint(self, phi_l, v):
        """``Uᵀ(v; φ_l)``, the adjoint of :meth:`apply` in ``g``."""
        raise NotImplementedError

    def param_vjp(self, phi_l, g, v) -> tuple:
        """Gradient of ``Σ_t ⟨v_t, U(g_t; φ_l)⟩`` in ``φ_l``: a tuple shaped like ``phi_l``."""
        raise NotImplementedError

    def effective_factors(self, phi_l):
        """For Kronecker-factored transforms, ``(L̃, R̃)`` with ``U(g) = L̃ g R̃``; None otherwise."""
        return None


@dataclass(frozen=True)
class Identity(Preconditioner):
    """Plain gradient descent in the inner loop (MAML)."""

    @property
    def name(self) -> str:
        return "maml"

    def init(self, params, adapted) -> tuple:
        return tuple(() for _ in params)

    def apply(self, phi_l, g):
        return g

    def adjoint(self, phi_l, v):
        return v

    def param_vjp(self, phi_l, g, v) -> tuple:
        return ()


@dataclass(frozen=True)
class MetaSGD(Preconditioner):
    """Per-parameter step sizes: ``U = λ ⊙ g``, ``λ`` of the layer's shape, initialised to ``init_value``.

    The inner step is ``α λ ⊙ g``.  With ``init_value = 1`` it equals MAML at initialisation.  Li et al.
    and learn2learn instead use ``α = 1`` and ``λ`` initialised to the step size (``init_value = α``); that
    is the same rule, but an outer optimizer such as Adam then moves the effective step ``αλ`` by about
    ``lr`` per iteration instead of ``α·lr`` — much faster when ``α`` is small.
    """

    init_value: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "init_value", _validate.finite_float("init_value", self.init_value))

    @property
    def name(self) -> str:
        return "meta-sgd"

    def init(self, params, adapted) -> tuple:
        return tuple((_full_like(W, float(self.init_value)),) if l in adapted else ()
                     for l, W in enumerate(params))

    def apply(self, phi_l, g):
        return _like(g, _task(phi_l[0]) * _dense(g))

    def adjoint(self, phi_l, v):
        return _like(v, _task(phi_l[0]) * _dense(v))

    def param_vjp(self, phi_l, g, v) -> tuple:
        return (sum_tasks(_dense(g) * _dense(v)),)


@dataclass(frozen=True)
class KFO(Preconditioner):
    """Kronecker-factored meta-optimizer ``U = L̃ g R̃`` (identity init; PSD factors if ``psd``).

    ``update_factors=True``: the factors themselves take a gradient step on the support loss at every
    inner step after the first, as in the reference implementation (:mod:`linmeta.updating_kfo`).
    """

    psd: bool = True
    update_factors: bool = False

    def __post_init__(self):
        object.__setattr__(self, "psd", _validate.boolean("psd", self.psd))
        object.__setattr__(self, "update_factors", _validate.boolean("update_factors", self.update_factors))

    @property
    def updates_in_inner_loop(self) -> bool:
        return self.update_factors

    @property
    def name(self) -> str:
        return ("kfo" if self.psd else "kfo-nonpsd") + ("-updating" if self.update_factors else "")

    def init(self, params, adapted) -> tuple:
        out = []
        for l, W in enumerate(params):
            if l not in adapted:
                out.append(())
                continue
            *runs, n, m = W.shape
            out.append((_eye_like(W, n, tuple(runs)), _eye_like(W, m, tuple(runs))))
        return tuple(out)

    def effective_factors(self, phi_l):
        """``(L̃, R̃)``: ``(LᵀL, RᵀR)`` if psd else ``(L, R)``, shapes (*runs, n, n), (*runs, m, m)."""
        Lf, Rf = phi_l
        if self.psd:
            return Lf.mT @ Lf, Rf.mT @ Rf
        return Lf, Rf

    def apply(self, phi_l, g):
        Lt, Rt = self.effective_factors(phi_l)
        if isinstance(g, Factored):
            return g.map_factors(_task(Lt), _task(Rt))
        return _task(Lt) @ g @ _task(Rt)

    def adjoint(self, phi_l, v):
        Lt, Rt = self.effective_factors(phi_l)
        if isinstance(v, Factored):
            return v.map_factors(_task(Lt).mT, _task(Rt).mT)
        return _task(Lt).mT @ v @ _task(Rt).mT

    def param_vjp(self, phi_l, g, v) -> tuple:
        # ⟨v, L̃ g R̃⟩:  ∂/∂L̃ = v (g R̃)ᵀ,  ∂/∂R̃ = gᵀ (L̃ᵀ v);  psd chain: ∂/∂L = L (X + Xᵀ) for L̃ = LᵀL
        Lt, Rt = self.effective_factors(phi_l)
        g, v = Factored.wrap(g), Factored.wrap(v)
        dLt = sum_tasks_nt(v, g.map_factors(None, _task(Rt)))
        dRt = sum_tasks_tn(g, v.map_factors(_task(Lt).mT, None))
        if not self.psd:
            return (dLt, dRt)
        Lf, Rf = phi_l
        return (Lf @ (dLt + dLt.mT), Rf @ (dRt + dRt.mT))


@dataclass(frozen=True)
class MetaCurvature(KFO):
    """Meta-Curvature for fully connected layers: ``U = M_out g M_in`` with unconstrained factors."""

    psd: bool = False

    @property
    def name(self) -> str:
        return "meta-curvature" + ("-updating" if self.update_factors else "")


_REGISTRY: dict = {}


def register(preconditioner: Preconditioner) -> Preconditioner:
    """File a preconditioner configuration under its name (``get(p.name) == p`` from then on)."""
    if not isinstance(preconditioner, Preconditioner):
        raise _validate.ArgumentTypeError(f"preconditioner must be a Preconditioner instance (register files one), "
                                          f"got {type(preconditioner).__name__}")
    name = preconditioner.name
    if name in _REGISTRY and _REGISTRY[name] != preconditioner:
        raise ValueError(f"a different preconditioner is already registered as {name!r}")
    _REGISTRY[name] = preconditioner
    return preconditioner


for _p in (Identity(), MetaSGD(), KFO(), KFO(psd=False), KFO(update_factors=True),
           KFO(psd=False, update_factors=True), MetaCurvature(), MetaCurvature(update_factors=True)):
    register(_p)


def names() -> list:
    """Every registered preconditioner name, sorted."""
    return sorted(_REGISTRY)


def get(name_or_obj) -> Preconditioner:
    """A preconditioner from its registered name (see :func:`names`), itself, or None (MAML)."""
    if name_or_obj is None:
        return Identity()
    if isinstance(name_or_obj, Preconditioner):
        return name_or_obj
    if not isinstance(name_or_obj, str) or name_or_obj not in _REGISTRY:
        raise ValueError(f"precond must be a Preconditioner or one of {names()}, got {name_or_obj!r}")
    return _REGISTRY[name_or_obj]
