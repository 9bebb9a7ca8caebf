r"""Exact expectations of traces of words in Gaussian data matrices (Isserlis/Wick).

A *word* is a product of factors whose trace we average:

* ``X`` / ``Xᵀ``: the K × d data matrix, rows i.i.d. ``N(0, Σ)``;
* ``E`` / ``Eᵀ``: the K × o noise matrix, rows i.i.d. ``N(0, σ² I_o)``, independent of ``X``;
* constants: arrays of any compatible shape (optionally transposed), with leading batch axes.

Every K-shot quantity of a linear model is such a word: the support covariance is
``Σ̂ = XᵀX/K`` and the noise term of the support gradient is ``n = EᵀX/K``.

Method (``derivations/wick_words.py``).  Wick's theorem writes the expectation as a sum over
perfect matchings of the ``X`` occurrences times matchings of the ``E`` occurrences.  Every index
of the trace sits on a *bond* between two consecutive factors.  A matched pair identifies its two
K-space bonds (``E[X_{sa}X_{tb}] = δ_st Σ_ab``) and joins its two feature bonds through ``Σ`` (or
``σ²I``), so that

.. math:: \mathbb E\,\mathrm{tr}(F_1\cdots F_m) = \sum_\mu K^{c(\mu)} \prod_{\text{cycles } \gamma\ \text{of}\ \mu}
          \mathrm{tr}\Big(\prod_{e \in \gamma} F_e\Big),

with ``c(μ)`` the number of distinct K indices left after the identification.  In the feature
space every bond has exactly two neighbours (a constant, or the partner of a Gaussian factor),
so the matched word falls apart into closed cycles; each cycle is a trace of a product of
constants, their transposes, ``Σ`` and ``σ²I``.  The plan (which cycles, which power of K) depends
only on the word's pattern of factors and is computed once; the numbers are batched matrix
products.  Matchings that give the same plan (up to rotating or reversing a cycle) are merged.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .. import _validate

MAX_GAUSSIAN_FACTORS = 10  # 9!! = 945 matchings of one kind; 12 would give 10,395 per word


@dataclass(frozen=True)
class Const:
    """A constant factor: entry ``index`` of the constants list, transposed or not."""

    index: int
    transposed: bool = False

    @property
    def T(self) -> "Const":
        return Const(self.index, not self.transposed)


@dataclass(frozen=True)
class Gauss:
    """A Gaussian factor: ``kind`` ``"X"`` (K × d) or ``"E"`` (K × o), transposed or not."""

    kind: str
    transposed: bool = False

    @property
    def T(self) -> "Gauss":
        return Gauss(self.kind, not self.transposed)


X, XT, E, ET = Gauss("X"), Gauss("X", True), Gauss("E"), Gauss("E", True)


def transpose_word(word: tuple) -> tuple:
    """The word of ``(F_1 ⋯ F_m)ᵀ = F_mᵀ ⋯ F_1ᵀ``."""
    _check_word("word", word)
    return tuple(f.T for f in reversed(word))


def _check_word(name, word, n_constants=None):
    if not isinstance(word, (tuple, list)):
        raise _validate.ArgumentTypeError(f"{name} must be a tuple of Const and Gauss factors, got {type(word).__name__}")
    for j, f in enumerate(word):
        if not isinstance(f, (Const, Gauss)):
            raise _validate.ArgumentTypeError(f"{name}[{j}] must be a Const or a Gauss factor (a word holds Const "
                                              f"and Gauss factors only), got {type(f).__name__}")
        if isinstance(f, Const) and n_constants is not None:
            index = _validate.integer(f"{name}[{j}].index", f.index)
            if not 0 <= index < n_constants:
                raise ValueError(f"{name}[{j}] refers to constants[{index}], but there are {n_constants} constants")


def perfect_matchings(items):
    """Every perfect matching of ``items`` (an even-length tuple) as a tuple of pairs, each once."""
    if not items:
        yield ()
        return
    first, rest = items[0], items[1:]
    for i, partner in enumerate(rest):
        for m in perfect_matchings(rest[:i] + rest[i + 1:]):
            yield ((first, partner),) + m


def count_components(n: int, edges) -> int:
    """The number of connected components of the graph on ``0..n-1`` with the given ``(a, b)`` edges.

    Wick's theorem identifies the labels a pairing joins; each component is one free index (union-find).
    """
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    return len({find(x) for x in range(n)})


def _canonical_cycle(ops: tuple) -> tuple:
    """The same trace for every rotation, and for the reversed cycle with every constant transposed."""
    rev = tuple((op[0], op[1], not op[2]) if op[0] == "C" else op for op in reversed(ops))
    candidates = [seq[i:] + seq[:i] for seq in (ops, rev) for i in range(len(seq))]
    return min(candidates)


@lru_cache(maxsize=None)
def plan(pattern: tuple) -> tuple:
    """Wick plan of a word pattern: ``((multiplicity, K power, cycles), ...)``.

    ``pattern`` is the word with each constant written as ``("C", index, transposed)`` and each
    Gaussian factor as ``(kind, transposed)``.  A cycle is a tuple of ops ``("C", index,
    transposed)``, ``("S",)`` (Σ) or ``("N",)`` (σ²I in the o-dimensional noise space).
    """
    m = len(pattern)
    gauss = [i for i, f in enumerate(pattern) if f[0] in ("X", "E")]
    by_kind = {k: [i for i in gauss if pattern[i][0] == k] for k in ("X", "E")}
    if any(len(v) % 2 for v in by_kind.values()):
        return ()  # odd moments of centred Gaussians vanish
    if len(gauss) > MAX_GAUSSIAN_FACTORS:
        raise ValueError(f"a word with {len(gauss)} Gaussian factors is too long for exact enumeration "
                         f"(at most {MAX_GAUSSIAN_FACTORS}); use Monte Carlo (linmeta.sim.montecarlo) instead")

    # bond b sits between factor b and factor b+1 (cyclically); factor i spans bonds i-1 (row) and i (col)
    def k_bond(i):  # the K-space bond of Gaussian factor i
        return (i - 1) % m if not pattern[i][1] else i

    def f_end(i):  # the feature-side end of Gaussian factor i, as (bond, side of the bond)
        return (i, "L") if not pattern[i][1] else ((i - 1) % m, "R")

    k_bonds = sorted({k_bond(i) for i in gauss})
    feature_bonds = [b for b in range(m) if b not in k_bonds]
    # every bond has two ends: "L" (the factor on its left) and "R" (the factor on its right).
    # A constant at position i joins end (i-1, "R") (its row side) to end (i, "L") (its column side):
    # walked row -> column it contributes C, walked column -> row it contributes Cᵀ.
    const_edge = {}
    for i, f in enumerate(pattern):
        if f[0] == "C":
            const_edge[((i - 1) % m, "R")] = ((i, "L"), ("C", f[1], f[2]))
            const_edge[(i, "L")] = (((i - 1) % m, "R"), ("C", f[1], not f[2]))
    flip = {"L": "R", "R": "L"}

    plans = Counter()
    for mx in perfect_matchings(by_kind["X"]):
        for me in perfect_matchings(by_kind["E"]):
            parent = {b: b for b in k_bonds}

            def find(b):
                while parent[b] != b:
                    parent[b] = parent[parent[b]]
                    b = parent[b]
                return b

            edge = dict(const_edge)
            for p, q in mx + me:
                parent[find(k_bond(p))] = find(k_bond(q))  # δ_st: the two K indices are one
                op = ("S",) if pattern[p][0] == "X" else ("N",)  # E[x xᵀ] = Σ, E[ε εᵀ] = σ² I
                edge[f_end(p)], edge[f_end(q)] = (f_end(q), op), (f_end(p), op)
            k_power = len({find(b) for b in k_bonds})
            cycles, seen = [], set()
            for start in feature_bonds:
                if start in seen:
                    continue
                ops, here = [], (start, "R")  # at a bond, leaving through one of its ends
                while True:
                    seen.add(here[0])
                    arrive, op = edge[here]
                    ops.append(op)
                    here = (arrive[0], flip[arrive[1]])  # go on through the bond's other end
                    if here == (start, "R"):
                        break
                cycles.append(_canonical_cycle(tuple(ops)))
            plans[(k_power, tuple(sorted(cycles)))] += 1
    return tuple((count, k, cyc) for (k, cyc), count in sorted(plans.items()))


def _pattern(word: tuple) -> tuple:
    out = []
    for f in word:
        if isinstance(f, Const):
            out.append(("C", f.index, f.transposed))
        elif isinstance(f, Gauss):
            if f.kind not in ("X", "E"):
                raise ValueError(f"a Gaussian factor's kind must be 'X' or 'E', got {f.kind!r}")
            out.append((f.kind, f.transposed))
        else:
            raise ValueError(f"a word holds Const and Gauss factors, got {type(f).__name__}")
    return tuple(out)


class _Cycles:
    """Traces of cycles of ops, each computed once (batched over the leading axes)."""

    def __init__(self, constants, Sigma, noise_var, noise_dim):
        self.constants = [np.asarray(c, dtype=float) for c in constants]
        self.Sigma = np.asarray(Sigma, dtype=float)
        self.noise_var = np.asarray(noise_var, dtype=float)
        self.noise_dim = noise_dim
        self.cache = {}

    def trace(self, cycle: tuple):
        hit = self.cache.get(cycle)
        if hit is None:
            scale, mat = 1.0, None
            for op in cycle:
                if op[0] == "N":
                    scale = scale * self.noise_var
                    continue
                nxt = self.Sigma if op[0] == "S" else self.constants[op[1]]
                if op[0] == "C" and op[2]:
                    nxt = np.swapaxes(nxt, -1, -2)
                mat = nxt if mat is None else mat @ nxt
            tr = self.noise_dim if mat is None else np.trace(mat, axis1=-2, axis2=-1)
            hit = self.cache[cycle] = scale * tr
        return hit


@_validate.finite_result
def expected_trace(terms, constants, Sigma, K: int, noise_var=0.0, noise_dim: int = 1):
    r"""``E[Σ_i coef_i tr(word_i)]`` over the Gaussian data, exactly.

    Parameters
    ----------
    terms : iterable of ``(coef, word)``; a word is a tuple of :class:`Const` and :class:`Gauss`
        factors whose product is square (the trace is taken).
    constants : list of arrays (..., r, c) referenced by ``Const.index``.
    Sigma : array (..., d, d), the covariance of each row of ``X``.
    K : number of rows of ``X`` and ``E`` (samples).
    noise_var : float or array (...), the variance σ² of each entry of ``E``.
    noise_dim : o, the number of columns of ``E`` (needed when a cycle holds only ``σ²I``).

    Returns
    -------
    array (...) broadcast over the leading axes of the inputs.
    """
    K = _validate.positive_int("K", K)
    noise_dim = _validate.positive_int("noise_dim", noise_dim)
    Sigma = _validate.psd_matrix("Sigma", Sigma)
    noise = _validate.real_array("noise_var", noise_var)
    if np.any(noise < 0):
        raise ValueError("noise_var must be non-negative (it is a variance)")
    if not isinstance(constants, (tuple, list)):
        raise _validate.ArgumentTypeError(f"constants must be a list of arrays, got {type(constants).__name__}")
    constants = [_validate.real_array(f"constants[{i}]", c) for i, c in enumerate(constants)]
    if isinstance(terms, (str, bytes)) or not hasattr(terms, "__iter__"):
        raise _validate.ArgumentTypeError(f"terms must be an iterable of (coef, word) pairs, got {type(terms).__name__}")
    checked = []
    for j, term in enumerate(terms):
        if not isinstance(term, (tuple, list)) or len(term) != 2:
            raise _validate.ArgumentTypeError(f"terms[{j}] must be a pair (coef, word), got {term!r}")
        coef = _validate.finite_float(f"terms[{j}] coef", term[0])
        _check_word(f"terms[{j}] word", term[1], len(constants))
        n_gauss = sum(isinstance(f, Gauss) for f in term[1])
        if n_gauss > MAX_GAUSSIAN_FACTORS:
            raise ValueError(f"terms[{j}] word has {n_gauss} Gaussian factors, too many for exact enumeration (at most "
                             f"{MAX_GAUSSIAN_FACTORS}); use Monte Carlo (linmeta.sim.montecarlo) instead")
        checked.append((coef, tuple(term[1])))
    cycles = _Cycles(constants, Sigma, noise, noise_dim)
    total = 0.0
    for coef, word in checked:
        if coef == 0:
            continue
        for count, k_power, cycs in plan(_pattern(tuple(word))):
            term = count * coef * float(K) ** k_power
            for cyc in cycs:
                term = term * cycles.trace(cyc)
            total = total + term
    return total
