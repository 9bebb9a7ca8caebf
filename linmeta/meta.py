"""The meta-objective: public entry points, input checks, and the one choice of engine.

``meta_loss`` / ``meta_value_and_grad`` score and differentiate the post-adaptation query loss;
``adapt`` / ``adapted_map`` return the adapted parameters or end-to-end maps.  Each validates its
inputs once and hands them to an *engine*: the factored inner loop and its reverse pass
(:mod:`linmeta.inner_loop`, :mod:`linmeta.reverse`), or, for a preconditioner whose own parameters
update inside the inner loop (``KFO(update_factors=True)`` with two or more steps), the dense
engine of :mod:`linmeta.updating_kfo`.  :func:`engine_for` is the only place that choice is made.
"""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np

from . import _chunking
from . import inner_loop as _inner_loop
from . import preconditioners as _pc
from . import reverse as _reverse
from . import updating_kfo as _updating_kfo
from . import _validate
from ._backend import check_same_backend, is_torch, namespace, to_numpy
from ._errors import DivergenceError
from ._chain_rule import LayerCalculus
from .models import validate_params
from .reverse import MetaGradient
from .rule import InnerLoop
from ._validate import ArgumentTypeError
from .stability import inner_step_bound

_FACTORED = SimpleNamespace(name="factored", inner_loop=_inner_loop.run_inner_loop, value_and_grad=_reverse.value_and_grad)
_UPDATING = SimpleNamespace(name="updating-kfo", inner_loop=_updating_kfo.inner_loop,
                            value_and_grad=_updating_kfo.value_and_grad)


def engine_for(precond, rule: InnerLoop) -> SimpleNamespace:
    """The engine that runs ``rule`` with ``precond``: an object with ``inner_loop`` and ``value_and_grad``.

    A preconditioner whose parameters take their own step inside the inner loop
    (:attr:`~linmeta.preconditioners.Preconditioner.updates_in_inner_loop`) needs the dense engine once
    there are two or more steps (with one step nothing updates, and the factored engine is exact).
    """
    if precond.updates_in_inner_loop and rule.steps >= 2:
        return _UPDATING
    return _FACTORED


def check_inputs(params, support, query, rule, precond, phi, *, need_query: bool = False):
    """Validate the arguments of the public entry points; return ``(params, precond, phi)`` resolved.

    ``support`` must be a loss object; ``query`` may be None when the caller does not use it (unless
    ``need_query``).  ``precond`` may be a name, an object or None (MAML); ``phi`` None means its identity
    initialisation, otherwise it must be shaped like that initialisation (one tuple per layer) and finite.
    """
    params = validate_params(params)
    if not isinstance(rule, InnerLoop):
        raise ArgumentTypeError(f"rule must be a linmeta.InnerLoop, e.g. InnerLoop(steps=1, alpha=0.1), "
                                f"got {type(rule).__name__}")
    _check_loss("support", support)
    if query is not None or need_query:
        _check_loss("query", query)
    phi_arrays = _check_phi_structure(phi, params)
    check_same_backend({"params": params[0], "support": _first_array(support), "query": _first_array(query),
                        **{name: p for name, p in phi_arrays}})
    d, out = params[0].shape[-1], params[-1].shape[-2]
    runs = tuple(params[0].shape[:-2])
    for name, loss in (("support", support), ("query", query)):
        if loss is None:
            continue
        if loss.d != d or loss.out != out:
            raise ValueError(
                f"{name} tasks have d={loss.d}, out={loss.out} but the model maps d={d} to out={out}"
            )
        if loss.batch_shape not in ((), runs):
            raise ValueError(
                f"{name} has leading run shape {loss.batch_shape}; expected () (tasks shared by all runs) "
                f"or the params' run shape {runs}"
            )
    if support is not None and query is not None and support.n_tasks != query.n_tasks:
        raise ValueError(f"support has {support.n_tasks} tasks but query has {query.n_tasks}")
    precond = _pc.get(precond)
    adapted = rule.adapted_layers(len(params))
    init = precond.init(params, adapted)
    if phi is None:
        return params, precond, init
    for l, (given, expected) in enumerate(zip(phi, init)):
        if len(given) != len(expected):
            raise ValueError(
                f"phi[{l}] must hold {len(expected)} array(s) for {precond.name} "
                f"({'an adapted layer' if l in adapted else 'a layer that does not adapt: pass ()'}), got {len(given)}; "
                "precond.init(params, rule.adapted_layers(len(params))) gives the expected structure")
        for i, (g, e) in enumerate(zip(given, expected)):
            if tuple(g.shape) != tuple(e.shape):
                raise ValueError(f"phi[{l}][{i}] must have shape {tuple(e.shape)} ({precond.name}'s parameters for "
                                 f"params[{l}] of shape {tuple(params[l].shape)}), got {tuple(g.shape)}")
            _validate.finite_array(f"phi[{l}][{i}]", g)
    return params, precond, tuple(tuple(pl) for pl in phi)


_LOSS_METHODS = ("value", "grad", "hess_action")


def _check_loss(name, loss):
    """``loss`` must be a loss object with a task axis (e.g. ``meta_batch(...).support``)."""
    if loss is None or not all(callable(getattr(loss, m, None)) for m in _LOSS_METHODS):
        raise ArgumentTypeError(
            f"{name} must be a loss object (linmeta.QuadraticLoss, SquaredLoss or LogisticLoss, e.g. "
            f"meta_batch(tasks, K, Q, rng).{name if name in ('support', 'query') else 'support'}), "
            f"got {type(loss).__name__}")
    first = _first_array(loss)
    tail = getattr(loss, "_tail_ndim", None)
    if first is not None and tail is not None:
        field = dataclasses.fields(loss)[0].name
        if first.ndim < tail[field] + 1:
            raise ValueError(f"{name} has no task axis: its {field} has shape {tuple(first.shape)}; the engine needs "
                             f"(*batch, T, ...) with T tasks (add one with {field}[None])")


def _check_phi_structure(phi, params):
    """``phi`` is None or one tuple of arrays per layer; returns ``[(name, array)]`` for the backend check."""
    if phi is None:
        return []
    if not isinstance(phi, (tuple, list)):
        raise ArgumentTypeError(f"phi must be None (the identity initialisation) or a tuple with one tuple of "
                                f"arrays per layer, got {type(phi).__name__}")
    if len(phi) != len(params):
        raise ValueError(f"phi must have one entry per layer ({len(params)}), got {len(phi)}")
    out = []
    for l, pl in enumerate(phi):
        if not isinstance(pl, (tuple, list)):
            raise ArgumentTypeError(f"phi[{l}] must be a tuple of arrays (() for a layer that does not adapt), "
                                    f"got {type(pl).__name__}")
        for i, p in enumerate(pl):
            if not (isinstance(p, np.ndarray) or is_torch(p)):
                raise ArgumentTypeError(f"phi[{l}][{i}] must be a numpy array or a torch tensor, got "
                                        f"{type(p).__name__}")
            if isinstance(p, np.ndarray) and p.dtype.kind not in "iufc":
                raise ArgumentTypeError(f"phi[{l}][{i}] must hold numbers, got dtype {p.dtype}")
            out.append((f"phi[{l}][{i}]", p))
    return out


def _first_array(loss):
    """One array of a loss object (they share a backend), or None."""
    if loss is None or not dataclasses.is_dataclass(loss):
        return None
    return getattr(loss, dataclasses.fields(loss)[0].name)


def adapted_layers_unchecked(params, support, rule, precond, phi) -> list:
    """The adapted layers (inputs trusted): a list of :class:`~linmeta._factored.Factored` (*runs, T or 1, n_l, n_{l-1})."""
    return engine_for(precond, rule).inner_loop(params, support, rule, precond, phi)


def value_and_grad_unchecked(params, support, query, rule, precond, phi) -> MetaGradient:
    """:func:`meta_value_and_grad` without input validation (for hot loops such as the trainer).

    Large batches run in chunks of runs and tasks with bounded memory (:mod:`linmeta._chunking`).
    """
    return _chunking.value_and_grad(engine_for(precond, rule).value_and_grad, params, support, query, rule,
                                    precond, phi)


#: a finite meta-loss above this factor times (1 + the pre-adaptation loss) counts as a diverged inner loop,
#: when the inner step is also above its stability bound (two or more steps)
EXPLOSION_FACTOR = 1e8


def _all_finite(arrays) -> bool:
    xp = namespace(*arrays)
    return all(bool(xp.all(xp.isfinite(a))) for a in arrays)


def guard_result(arrays, params, support, query, rule, precond, phi, value=None) -> None:
    """Raise :class:`~linmeta.DivergenceError` if a public call produced non-finite output from finite inputs.

    A finite value counts as divergence too when it explodes (above :data:`EXPLOSION_FACTOR` times
    ``1 +`` the pre-adaptation loss) while ``alpha`` exceeds the inner-step bound ``2/λ_max`` with two or
    more inner steps.  The error reports that bound.
    """
    finite = _all_finite(arrays)
    if finite and (value is None or rule.steps < 2 or query is None):
        return
    if finite:
        pre = to_numpy(pre_adaptation_loss_unchecked(params, query))
        if not np.any(np.abs(to_numpy(value)) > EXPLOSION_FACTOR * (1.0 + np.abs(pre))):
            return
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        bound = inner_step_bound(params, support, rule, precond, phi)
    if finite and not np.any(rule.alpha > bound):
        return  # a large but honest value: the inner loop is stable
    detail = " (non-finite output from finite inputs)" if not finite else " (the meta-loss exploded)"
    raise DivergenceError(None, None, bound, rule.alpha, detail)


def adapt(params, support, rule: InnerLoop, precond=None, phi=None) -> tuple:
    """Adapted parameters for every task.

    Returns
    -------
    tuple of arrays: adapted layers (*runs, T, n_l, n_{l-1}); frozen layers keep a broadcastable task
    axis of size 1, (*runs, 1, n_l, n_{l-1}).
    """
    params, precond, phi = check_inputs(params, support, None, rule, precond, phi)
    with np.errstate(over="ignore", invalid="ignore"):
        out = tuple(f.dense() for f in adapted_layers_unchecked(params, support, rule, precond, phi))
    guard_result(out, params, support, None, rule, precond, phi)
    return out


def adapted_map(params, support, rule: InnerLoop, precond=None, phi=None):
    """End-to-end map after adaptation, shape ``(*runs, T, out, d)``."""
    params, precond, phi = check_inputs(params, support, None, rule, precond, phi)
    with np.errstate(over="ignore", invalid="ignore"):
        M = LayerCalculus(adapted_layers_unchecked(params, support, rule, precond, phi)).M
    guard_result((M,), params, support, None, rule, precond, phi)
    return M


def meta_loss(params, support, query, rule: InnerLoop, precond=None, phi=None):
    """Mean post-adaptation query loss over the tasks, shape ``(*runs,)``.

    Parameters
    ----------
    params : tuple of arrays (*runs, n_l, n_{l-1}).
    support : loss object with a task axis, the inner-loop loss.
    query : loss object with the same task axis, scored after adaptation.
    rule : :class:`~linmeta.rule.InnerLoop`.
    precond : preconditioner name or object (``None`` = plain MAML).
    phi : its parameters (``None`` = its identity initialisation).
    """
    params, precond, phi = check_inputs(params, support, query, rule, precond, phi, need_query=True)
    xp = namespace(params[0])
    with np.errstate(over="ignore", invalid="ignore"):
        theta = adapted_layers_unchecked(params, support, rule, precond, phi)
        value = xp.mean(query.value(LayerCalculus(theta).M), axis=-1)
    guard_result((value,), params, support, query, rule, precond, phi, value=value)
    return value


def pre_adaptation_loss_unchecked(params, query):
    """:func:`pre_adaptation_loss` of trusted inputs, unguarded (the trainer guards its own values)."""
    xp = namespace(params[0])
    with np.errstate(over="ignore", invalid="ignore"):
        M = params[0]
        for W in params[1:]:
            M = W @ M
        return xp.mean(query.value(M[..., None, :, :]), axis=-1)


def pre_adaptation_loss(params, query):
    """Mean query loss of the un-adapted model, shape ``(*runs,)``."""
    params = validate_params(params)
    _check_loss("query", query)
    value = pre_adaptation_loss_unchecked(params, query)
    if not _all_finite((value,)):
        raise ValueError("the query loss of params is not finite although params and query are: it overflows "
                         "float64 (the parameters or the tasks are too large; rescale them)")
    return value


def meta_value_and_grad(params, support, query, rule: InnerLoop, precond=None, phi=None) -> MetaGradient:
    """Meta-loss and its exact gradient in every layer and preconditioner parameter.

    See :func:`meta_loss` for the arguments.  The gradient includes every second-order term
    through all inner steps unless ``rule.first_order``.

    Returns
    -------
    :class:`~linmeta.reverse.MetaGradient`: ``value`` (*runs,), ``params`` shaped like ``params``,
    ``phi`` shaped like ``phi``.
    """
    params, precond, phi = check_inputs(params, support, query, rule, precond, phi, need_query=True)
    with np.errstate(over="ignore", invalid="ignore"):
        mg = value_and_grad_unchecked(params, support, query, rule, precond, phi)
    guard_result((mg.value, *mg.params, *(p for pl in mg.phi for p in pl)), params, support, query, rule, precond,
                 phi, value=mg.value)
    return mg
