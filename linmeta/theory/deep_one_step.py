r"""Exact expected K-shot loss of a deep linear model after one inner step (any depth, ≤ 2 adapted layers).

Setting: a task ``(W*, Σ, σ)``; a support set of K Gaussian samples; one gradient step of size α on
the layers ``S`` the rule adapts; the query loss scored on fresh samples (its expectation is the
population loss).  This extends the shallow closed form (:mod:`linmeta.theory.shallow`) to depth,
the stretch goal of the core issue (``derivations/deep_one_step_loss.py``).

With ``M = W_L ⋯ W_1``, ``Δ = M − W*`` and the support gradient in the end-to-end map

    G = Δ Σ̂ − n,    Σ̂ = XᵀX/K,    n = εᵀX/K    (X: K×d rows N(0, Σ); ε: K×o rows N(0, σ²I)),

layer ``l`` moves by ``−α A_lᵀ G B_lᵀ`` (``A_l`` the product of the layers above, ``B_l`` below;
``M = A_l W_l B_l``), so the adapted map is the exact finite expansion

    M' − W* = Δ − α Σ_{l∈S} P_l G R_l + α² Σ_{l₁<l₂ ∈ S} P_{l₂} G N_{l₁l₂} G R_{l₁} − …,
    P_l = A_l A_lᵀ,  R_l = B_lᵀ B_l,  N_{l₁l₂} = B_{l₂}ᵀ (W_{l₂−1} ⋯ W_{l₁+1}) A_{l₁}ᵀ,

with one more power of ``G`` per additional adapted layer.  The expected loss
``½ E tr((M'−W*) Σ (M'−W*)ᵀ) + ½ o σ²`` is a sum of traces of words in ``X`` and ``ε``, each
averaged exactly by Wick's theorem (:mod:`linmeta.theory.wick`).  With two adapted layers the words
hold up to eight Gaussian factors (105 matchings); with three they would hold twelve (10,395 per
word, 729 words), so more than two adapted layers, or more than one step, is left to Monte Carlo
(:mod:`linmeta.montecarlo`).  Special cases: one adapted layer gives the exact left / right
preconditioner forms of :mod:`linmeta.theory.precondition` (ANIL: :mod:`linmeta.theory.anil`);
``K=None`` (population inner loss) replaces ``G`` by ``ΔΣ``.
"""
from __future__ import annotations

from itertools import combinations, product

import numpy as np

from .. import _validate
from ..rule import InnerLoop
from ..models import end_to_end, prefix_products, real_params, suffix_products
from ..tasks import TaskBatch
from .wick import Const, ET, X, XT, expected_trace, transpose_word

MAX_ADAPTED_LAYERS = 2

_G = "G"  # placeholder for the support gradient in a word, expanded by _expand_gradient


def _check(params, tasks, K, rule):
    K = _validate.optional_int("K", K, none="the population inner loss")
    _validate.instance("rule", rule, InnerLoop, "a linmeta.InnerLoop")
    params = real_params(params)
    _validate.instance("tasks", tasks, TaskBatch, "a linmeta.TaskBatch (from family.sample_tasks(n, rng))")
    d, out = params[0].shape[-1], params[-1].shape[-2]
    if tasks.d != d or tasks.out != out:
        raise ValueError(f"tasks have d={tasks.d}, out={tasks.out} but the model maps d={d} to out={out}")
    runs = params[0].shape[:-2]
    if tasks.w_star.shape[:-3] not in ((), runs):
        raise ValueError(f"tasks have run shape {tasks.w_star.shape[:-3]}, but params have {runs}: give tasks (T, ...) "
                         "shared by every run, or one task set per run")
    if rule.steps > 1:
        raise ValueError(f"rule.steps must be 0 or 1 for the exact deep expected loss, got {rule.steps}; "
                         "estimate k > 1 steps with linmeta.sim.montecarlo.expected_meta_loss_mc")
    if rule.inner_loss == "population":
        K = None
    adapted = rule.adapted_layers(len(params))
    if len(adapted) > MAX_ADAPTED_LAYERS:
        raise ValueError(f"rule adapts {len(adapted)} layers {adapted}; the exact expectation handles at most "
                         f"{MAX_ADAPTED_LAYERS} (the Wick sum grows as (4n-1)!! in n adapted layers): "
                         "use linmeta.sim.montecarlo.expected_meta_loss_mc")
    return params, K, adapted


def _error_words(params, adapted, alpha):
    """``M' − W*`` as ``[(coef, word)]`` with the gradient as the placeholder ``_G``, and the constants.

    Constants: index 0 is ``Δ`` (filled in by the caller); identities are left out of the words.
    """
    A, B = suffix_products(params), prefix_products(params)
    consts = [None]

    def const(mat):
        if mat is None:
            return ()
        consts.append(mat)
        return (Const(len(consts) - 1),)

    def gram_left(l):  # P_l = A_l A_lᵀ
        return None if A[l] is None else A[l] @ np.swapaxes(A[l], -1, -2)

    def gram_right(l):  # R_l = B_lᵀ B_l
        return None if B[l] is None else np.swapaxes(B[l], -1, -2) @ B[l]

    words = [(1.0, (Const(0),))]
    for l in adapted:
        words.append((-alpha, const(gram_left(l)) + (_G,) + const(gram_right(l))))
    for l1, l2 in combinations(adapted, 2):
        mid = np.swapaxes(A[l1], -1, -2)  # A_{l1}ᵀ: never None, since l1 is not the top layer
        for W in params[l1 + 1:l2]:
            mid = W @ mid
        if B[l2] is not None:
            mid = np.swapaxes(B[l2], -1, -2) @ mid
        words.append((alpha**2, const(gram_left(l2)) + (_G,) + const(mid) + (_G,) + const(gram_right(l1))))
    return words, consts


def _expand_gradient(words, gradient_terms):
    """Replace every ``_G`` by each of ``gradient_terms`` ``[(coef, word)]`` (multilinear expansion)."""
    out = []
    for coef, word in words:
        slots = [i for i, f in enumerate(word) if f == _G]
        for choice in product(gradient_terms, repeat=len(slots)):
            c, new, k = coef, [], 0
            for f in word:
                if f == _G:
                    gc, gw = choice[k]
                    c, k = c * gc, k + 1
                    new.extend(gw)
                else:
                    new.append(f)
            out.append((c, tuple(new)))
    return out


@_validate.finite_result
def expected_task_loss(params, tasks: TaskBatch, K: int | None, rule: InnerLoop) -> np.ndarray:
    """Exact expected post-adaptation loss of each task after one inner step (over support and query sets).

    Parameters
    ----------
    params : tuple of arrays (n_l, n_{l-1}) or (runs, n_l, n_{l-1}), the deep linear model.
    tasks : :class:`~linmeta.tasks.TaskBatch`, task axis (T,) (or (runs, T)).
    K : support shots, or ``None`` for the population inner loss.
    rule : :class:`~linmeta.InnerLoop` with ``steps`` ≤ 1 adapting at most two layers (any ``layers``
        set; ``first_order`` does not change the loss).

    Returns
    -------
    array (T,) or (runs, T).
    """
    params, K, adapted = _check(params, tasks, K, rule)
    M = end_to_end(params)
    delta = M[..., None, :, :] - tasks.w_star  # (*runs, T, o, d)
    words, consts = _error_words(params, adapted, rule.alpha)
    consts = [delta] + [c[..., None, :, :] for c in consts[1:]]  # add the task axis
    Sigma = tasks.input_cov
    if K is None:
        consts.append(delta @ Sigma)
        gradient = [(1.0, (Const(len(consts) - 1),))]
        K_eff = 1
    else:
        gradient = [(1.0 / K, (Const(0), XT, X)), (-1.0 / K, (ET, X))]
        K_eff = K
    consts.append(Sigma)
    query = Const(len(consts) - 1)
    terms = _expand_gradient(words, gradient)
    # tr(E' Σ E'ᵀ) = Σ_ij c_i c_j tr(w_i Σ w_jᵀ); the (i, j) and (j, i) traces are equal
    pairs = []
    for i, (ci, wi) in enumerate(terms):
        for j in range(i, len(terms)):
            cj, wj = terms[j]
            pairs.append(((1.0 if i == j else 2.0) * ci * cj, wi + (query,) + transpose_word(wj)))
    noise_var = tasks.noise_std**2
    value = expected_trace(pairs, consts, Sigma, K_eff, noise_var, tasks.out)
    return 0.5 * value + 0.5 * tasks.out * noise_var


@_validate.finite_result
def expected_meta_loss(params, tasks: TaskBatch, K: int | None, rule: InnerLoop):
    """Mean of :func:`expected_task_loss` over the tasks: array (*runs,) (a float without a run axis)."""
    return np.mean(expected_task_loss(params, tasks, K, rule), axis=-1)
