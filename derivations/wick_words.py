"""Derivation: expected traces of words in Gaussian data matrices, by brute-force expansion.

``linmeta.theory.wick`` averages ``tr(F_1 ⋯ F_m)`` over ``X`` (K × d, rows ``N(0, Σ)``) and ``E`` (K × o, rows
``N(0, σ² I)``) by enumerating Wick matchings and reading off cycles of bonds.  Here the same averages are
computed with no matching logic at all: write ``X = Z Lᵀ`` (``Σ = L Lᵀ``) and ``E = σ Z'`` with ``Z, Z'``
matrices of independent standard normal symbols, expand the trace as a polynomial in those symbols, and
replace every monomial ``∏ z_i^{p_i}`` by its moment ``∏ (p_i − 1)!!`` (zero if any ``p_i`` is odd).
With rational ``L``, ``σ²`` and constants the result is an exact rational number.

The words cover what the deep one-step loss needs (``derivations/deep_one_step_loss.py``): ``Σ̂ C Σ̂``
chains, transposed constants, the noise term ``n = EᵀX/K`` on both sides of a constant, and mixed words.
"""
from functools import reduce

import numpy as np
import sympy as sp

D, O, K = 2, 1, 2  # O ≠ D, so a misoriented product fails instead of passing by accident


def _gaussian_expectation(expr, symbols):
    """E[expr] for independent standard normal ``symbols`` (expr a polynomial in them)."""
    poly = sp.Poly(sp.expand(expr), *symbols)
    total = sp.Integer(0)
    for powers, coef in poly.terms():
        if any(p % 2 for p in powers):
            continue
        total += coef * reduce(lambda a, p: a * sp.factorial2(p - 1), powers, sp.Integer(1))
    return total


def _random_rational(rng, shape, scale=4):
    return sp.Matrix(*shape, lambda i, j: sp.Rational(int(rng.integers(-scale, scale + 1)), scale))


def brute_force(word, consts, L, noise_var):
    """``E tr(word)`` by expansion: ``word`` a list of "X", "XT", "E", "ET" or constant indices (int, or -int-1 for transposed)."""
    Z = sp.Matrix(K, D, lambda i, j: sp.Symbol(f"z{i}_{j}"))
    Zn = sp.Matrix(K, O, lambda i, j: sp.Symbol(f"u{i}_{j}"))
    Xs, Es = Z * L.T, sp.sqrt(noise_var) * Zn
    mats = {"X": Xs, "XT": Xs.T, "E": Es, "ET": Es.T}
    prod = None
    for f in word:
        if isinstance(f, str):
            m = mats[f]
        else:
            m = consts[f] if f >= 0 else consts[-f - 1].T
        prod = m if prod is None else prod * m
    return _gaussian_expectation(prod.trace(), list(Z) + list(Zn))


def _to_engine(word):
    from linmeta.theory import wick

    table = {"X": wick.X, "XT": wick.XT, "E": wick.E, "ET": wick.ET}
    return tuple(table[f] if isinstance(f, str) else (wick.Const(f) if f >= 0 else wick.Const(-f - 1, True))
                 for f in word)


# constants: 0 is d×d, 1 is o×o, 2 is o×d, 3 is d×o
WORDS = [
    [0, "XT", "X", 0, "XT", "X"],                         # tr(C Σ̂ C Σ̂)·K²
    [0, "XT", "X", -1, "XT", "X"],                        # a transposed constant between the Σ̂'s
    [1, "ET", "X", 0, "XT", "E"],                         # tr(P n C nᵀ)·K²: noise on both sides
    [2, "XT", "X", 3, "ET", "X", -1, "XT", "E", -4, "XT", "X", -3],  # mixed Σ̂ and n, four factors each side
    [1, "ET", "X", 3, "ET", "X", 0, "XT", "E", -4, "XT", "E"],      # four noise factors: tr(P n Nᵀ n C nᵀ N nᵀ)
]


def verify(seed: int = 0) -> None:
    from linmeta.theory import wick

    rng = np.random.default_rng(seed)
    L = _random_rational(rng, (D, D))
    L = L + sp.eye(D) * 2  # keep Σ = L Lᵀ well away from singular
    noise_var = sp.Rational(3, 4)
    consts = [_random_rational(rng, s) for s in ((D, D), (O, O), (O, D), (D, O))]
    Sig = np.array(L * L.T, dtype=float)
    numeric = [np.array(c, dtype=float) for c in consts]
    for word in WORDS:
        exact = brute_force(word, consts, L, noise_var)
        engine = wick.expected_trace([(1.0, _to_engine(word))], numeric, Sig, K, float(noise_var), O)
        assert abs(float(exact) - float(engine)) <= 1e-10 * max(1.0, abs(float(exact))), (word, exact, engine)


if __name__ == "__main__":
    verify()
    print("verified: wick.expected_trace equals brute-force Gaussian expansion on", len(WORDS), "words")
