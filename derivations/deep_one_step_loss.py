"""Derivation: the expected K-shot loss of a deep linear model after one inner step, from scratch.

``linmeta.theory.deep_one_step`` expands the adapted map ``M' − W*`` as a polynomial in the support
gradient ``G = ΔΣ̂ − n`` and averages the resulting trace words by Wick's theorem.  This script
rebuilds the same number with none of that structure:

1. write the support loss ``½‖Y − X W₁ᵀ W₂ᵀ‖²/K`` with ``X = Z Lᵀ`` and ``Y = X W*ᵀ + σ U`` in symbols
   ``Z`` (K × d) and ``U`` (K × o) of independent standard normals;
2. differentiate it with sympy with respect to the adapted layers' entries and take one step of size α;
3. form the population query loss ``½ tr((M' − W*) Σ (M' − W*)ᵀ) + ½ o σ²`` of the adapted layers;
4. average over ``Z, U`` by replacing every monomial with its Gaussian moment.

With rational layers, task, ``L``, ``σ²`` and ``α`` the result is exact; it must equal the numeric closed
form to round-off.  Cases: depth 2 with both layers adapting (MAML), and depth 3 adapting the bottom and
the top layers (the two-adapted-layer term with a layer between them).
"""
import sys
from pathlib import Path

import numpy as np
import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the Gaussian-expansion helpers of wick_words.py
from wick_words import _gaussian_expectation, _random_rational  # noqa: E402

D, O, K = 2, 1, 2


def exact_loss(layers, adapted, w_star, L, noise_var, alpha):
    """The expected post-adaptation loss, exactly (layers: list of rational sympy matrices, bottom first)."""
    Z = sp.Matrix(K, D, lambda i, j: sp.Symbol(f"z{i}_{j}"))
    U = sp.Matrix(K, O, lambda i, j: sp.Symbol(f"u{i}_{j}"))
    X = Z * L.T
    Y = X * w_star.T + sp.sqrt(noise_var) * U
    syms = [sp.Matrix(*W.shape, lambda i, j, l=l: sp.Symbol(f"w{l}_{i}_{j}")) for l, W in enumerate(layers)]
    M = syms[0]
    for W in syms[1:]:
        M = W * M
    R = Y - X * M.T
    support = (R.T * R).trace() / (2 * K)
    values = {s: v for S, W in zip(syms, layers) for s, v in zip(S, W)}
    adapted_layers = []
    for l, (S, W) in enumerate(zip(syms, layers)):
        if l in adapted:
            grad = S.applyfunc(lambda s: sp.diff(support, s)).subs(values)
            adapted_layers.append(W - alpha * grad)
        else:
            adapted_layers.append(W)
    Madapted = adapted_layers[0]
    for W in adapted_layers[1:]:
        Madapted = W * Madapted
    err = Madapted - w_star
    query = (err * (L * L.T) * err.T).trace() / 2 + O * noise_var / 2
    return _gaussian_expectation(query, list(Z) + list(U))


def verify(seed: int = 0) -> None:
    import linmeta as lm
    from linmeta.theory.deep_one_step import expected_task_loss

    rng = np.random.default_rng(seed)
    L = _random_rational(rng, (D, D)) + sp.eye(D)
    w_star = _random_rational(rng, (O, D))
    noise_var, alpha = sp.Rational(1, 2), sp.Rational(1, 5)
    tasks = lm.TaskBatch(np.array(w_star, dtype=float)[None], np.array(L * L.T, dtype=float)[None],
                         np.array([float(sp.sqrt(noise_var))]))
    for widths, layers_rule, adapted in (((2,), "all", (0, 1)), ((2, 2), (0, 2), (0, 2))):
        sizes = (D,) + widths + (O,)
        layers = [_random_rational(rng, (b, a)) for a, b in zip(sizes[:-1], sizes[1:])]
        exact = exact_loss(layers, adapted, w_star, L, noise_var, alpha)
        rule = lm.InnerLoop(1, float(alpha), layers_rule)
        closed = expected_task_loss(tuple(np.array(W, dtype=float) for W in layers), tasks, K, rule)[0]
        assert abs(float(exact) - closed) <= 1e-10 * abs(float(exact)), (widths, float(exact), closed)


if __name__ == "__main__":
    verify()
    print("verified: deep_one_step.expected_task_loss equals the from-scratch sympy expectation")
