"""The meta-objective and its exact gradient, second-order terms included.

For parameters θ, a batch of T tasks with support losses ℓˢ_t and query losses
ℓ^q_t, and an inner rule (k steps, step α, adapted layers, preconditioner U_φ):

    θ_t^{j+1} = θ_t^j − α U_φ(∇_adapted ℓˢ_t(θ_t^j)),     F(θ, φ) = (1/T) Σ_t ℓ^q_t(θ_t^k).

The gradient is computed by reverse mode written out by hand (no autodiff):

    θ̄^k = ∇ℓ^q(θ^k) / T,
    θ̄^j = θ̄^{j+1} − α H_s(θ^j) Uᵀ(θ̄^{j+1}_adapted)      (dropped when first_order),
    φ̄  −= α ∂_φ⟨θ̄^{j+1}, U_φ(g^j)⟩,

where ``H_s`` is the layer-space Hessian of the support loss (see
:mod:`linmeta.chain_rule`).  Everything is batched over the task axis (and the
optional run axis) and written against the array API, so it runs unchanged on
torch tensors (CPU or CUDA).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import preconditioners as _pc
from .inner_loop import InnerLoop, run_inner_loop
from .backend import namespace
from .chain_rule import LayerCalculus
from .factored import sum_tasks
from .models import end_to_end, validate_params


@dataclass(frozen=True)
class MetaGradient:
    """Meta-loss and its gradient.

    Attributes
    ----------
    value : array (*runs,), mean post-adaptation query loss over the task batch.
    params : tuple of arrays, the gradient in each layer (shapes of ``params``).
    phi : tuple (per layer) of tuples of arrays, the gradient in the preconditioner parameters.
    """

    value: object
    params: tuple
    phi: tuple


def _check_inputs(params, support, query, rule, precond, phi):
    params = validate_params(params)
    if not isinstance(rule, InnerLoop):
        raise ValueError(f"rule must be a linmeta.InnerLoop, got {type(rule).__name__}")
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
    if phi is None:
        phi = precond.init(params, adapted)
    elif len(phi) != len(params):
        raise ValueError(f"phi must have one entry per layer ({len(params)}), got {len(phi)}")
    return params, precond, phi


def adapt(params, support, rule: InnerLoop, precond=None, phi=None) -> tuple:
    """Adapted parameters for every task: adapted layers get shape ``(*runs, T, n_l, n_{l-1})``.

    Frozen layers are returned with a broadcastable task axis of size 1.
    """
    params, precond, phi = _check_inputs(params, support, None, rule, precond, phi)
    return tuple(f.dense() for f in run_inner_loop(params, support, rule, precond, phi))


def adapted_map(params, support, rule: InnerLoop, precond=None, phi=None):
    """End-to-end map after adaptation, shape ``(*runs, T, out, d)``."""
    params, precond, phi = _check_inputs(params, support, None, rule, precond, phi)
    return LayerCalculus(run_inner_loop(params, support, rule, precond, phi)).M


def meta_loss(params, support, query, rule: InnerLoop, precond=None, phi=None):
    """Mean post-adaptation query loss over the tasks, shape ``(*runs,)``.

    Parameters
    ----------
    params : tuple of arrays (*runs, n_l, n_{l-1}).
    support : loss object with a task axis, the inner-loop loss.
    query : loss object with the same task axis, scored after adaptation.
    rule : :class:`InnerLoop`.
    precond : preconditioner name or object (``None`` = plain MAML).
    phi : its parameters (``None`` = its identity initialisation).
    """
    params, precond, phi = _check_inputs(params, support, query, rule, precond, phi)
    theta = run_inner_loop(params, support, rule, precond, phi)
    xp = namespace(params[0])
    return xp.mean(query.value(LayerCalculus(theta).M), axis=-1)


def pre_adaptation_loss(params, query):
    """Mean query loss of the un-adapted model, shape ``(*runs,)``."""
    params = validate_params(params)
    xp = namespace(params[0])
    return xp.mean(query.value(end_to_end(params)[..., None, :, :]), axis=-1)


def meta_value_and_grad(params, support, query, rule: InnerLoop, precond=None, phi=None) -> MetaGradient:
    """Meta-loss and its exact gradient in every layer and preconditioner parameter.

    See :func:`meta_loss` for the arguments.  The gradient includes every
    second-order term through all inner steps unless ``rule.first_order``.
    """
    params, precond, phi = _check_inputs(params, support, query, rule, precond, phi)
    return value_and_grad_unchecked(params, support, query, rule, precond, phi)


def query_value_and_adjoint(theta, query) -> tuple:
    """The meta-loss of adapted layers ``theta`` and where the reverse pass starts.

    Returns ``(value, bar)``: the mean query loss over the tasks, shape (*runs,), and its gradient in every
    adapted layer, per task, as :class:`~linmeta.factored.Factored` (*runs, T, n_l, n_{l-1}).
    """
    final = LayerCalculus(theta)
    per_task = query.value(final.M)
    value = namespace(per_task).mean(per_task, axis=-1)
    return value, final.layer_grads_factored(query.grad(final.M) / per_task.shape[-1])


def value_and_grad_unchecked(params, support, query, rule, precond, phi) -> MetaGradient:
    """:func:`meta_value_and_grad` without input validation (for hot loops)."""
    if getattr(precond, "adapt", False) and rule.steps >= 2:
        from . import adaptive_kfo  # KFO factors adapting in the inner loop: its own reverse pass

        return adaptive_kfo.value_and_grad(params, support, query, rule, precond, phi)
    xp = namespace(params[0])
    adapted = rule.adapted_layers(len(params))
    theta, trace = run_inner_loop(params, support, rule, precond, phi, keep_trace=True)
    value, bar = query_value_and_adjoint(theta, query)

    phi_bar = [tuple(xp.zeros_like(p) for p in phi_l) for phi_l in phi]
    for j in range(rule.steps - 1, -1, -1):
        calc, G, g = trace.calculus[j], trace.G[j], trace.g[j]
        for l in adapted:
            contrib = precond.param_vjp(phi[l], g[l], bar[l])
            phi_bar[l] = tuple(acc - rule.alpha * c for acc, c in zip(phi_bar[l], contrib))
        if rule.first_order:
            continue
        V = [None] * len(params)
        for l in adapted:
            V[l] = precond.adjoint(phi[l], bar[l])
        Hv = calc.hvp_factored(support, G, V)
        bar = [b if h is None else b.plus(h.scaled(-rule.alpha)) for b, h in zip(bar, Hv)]

    grads = tuple(sum_tasks(b) for b in bar)
    return MetaGradient(value=value, params=grads, phi=tuple(phi_bar))
