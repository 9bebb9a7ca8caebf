"""Derivation: the exact expected K-shot meta-loss of shallow MAML, for k = 1 and k = 2 inner steps.

The support set gives ``Σ̂ = XᵀX/K`` (symbolic entries h_ij) and the noise term ``n = εᵀX/K`` with
``E[n] = 0`` and ``E_ε[nᵀn] = out σ² Σ̂ / K``.  With ``E = M − W*`` and ``P = I − αΣ̂``, k steps on the
same support set give ``E_k = E P^k + α n Σ_{i<k} P^i``; the population query loss is
``½ tr(E_k Σ E_kᵀ) + ½ out σ²``.  Expanding in the h_ij, each monomial's expectation is

    E[Π_f h_{i_f j_f}] = K^{-n} Σ_{partitions π of the factors} K(K−1)⋯(K−|π|+1) Π_{B∈π} m(∪_{f∈B}{i_f, j_f}),

where m is a single-vector Gaussian moment, read off the moment generating function exp(½ tᵀΣt).
This is independent of the Wick enumeration in linmeta; the result is compared with
``linmeta.theory.shallow.expected_task_loss`` on random instances (d = 2).
"""

import numpy as np
import sympy as sp

D = 2


def _set_partitions(items):
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1:]
        yield [[first]] + part


class GaussianMoments:
    """Single-vector moments E[x_{i1} ⋯ x_{in}] for x ~ N(0, Σ) (numeric Σ, exact rationals) via the MGF."""

    def __init__(self, Sigma):
        self.t = sp.symbols(f"t0:{D}")
        tv = sp.Matrix(self.t)
        self.mgf = sp.exp((tv.T * Sigma * tv)[0, 0] / 2)
        self.cache = {}

    def __call__(self, idx):
        key = tuple(sorted(idx))
        if key not in self.cache:
            expr = self.mgf
            for i in key:
                expr = sp.diff(expr, self.t[i])
            self.cache[key] = sp.nsimplify(expr.subs({ti: 0 for ti in self.t}))
        return self.cache[key]


def expect_monomial(factors, K, moment):
    """E[Π h_{ij}] for factors [(i, j), ...] of Σ̂ = (1/K) Σ_s x_s x_sᵀ."""
    n = len(factors)
    total = 0
    for part in _set_partitions(list(range(n))):
        falling = 1
        for r in range(len(part)):
            falling *= K - r
        prod = 1
        for block in part:
            prod *= moment([i for f in block for i in factors[f]])
        total += falling * prod
    return total / sp.Integer(K) ** n


def expected_loss_symbolic(Sigma, E, alpha, sigma, K, steps):
    """Exact E[post-adaptation loss] for out = 1 via monomial expectations (sympy, exact rationals)."""
    h = {(i, j): sp.Symbol(f"h{min(i, j)}{max(i, j)}") for i in range(D) for j in range(D)}
    H = sp.Matrix(D, D, lambda i, j: h[(i, j)])
    P = sp.eye(D) - alpha * H
    Pk = P**steps
    S = sum((P**i for i in range(steps)), sp.zeros(D, D))
    signal = sp.expand((E * Pk * Sigma * Pk.T * E.T)[0, 0] / 2)
    noise = sp.expand(alpha**2 * sigma**2 / K * (H * S * Sigma * S.T).trace() / 2)
    moment = GaussianMoments(Sigma)
    symbols = [sp.Symbol("h00"), sp.Symbol("h01"), sp.Symbol("h11")]
    index = {symbols[0]: (0, 0), symbols[1]: (0, 1), symbols[2]: (1, 1)}
    total = sigma**2 / 2
    for expr in (signal, noise):
        poly = sp.Poly(expr, *symbols)
        for powers, coeff in poly.terms():
            factors = [index[s] for s, p in zip(symbols, powers) for _ in range(p)]
            total += coeff * expect_monomial(factors, K, moment)
    return sp.nsimplify(total)


def _rational_matrix(a):
    return sp.Matrix(a.shape[0], a.shape[1], lambda i, j: sp.Rational(a[i, j]).limit_denominator(10**6))


def verify(seed: int = 0) -> None:
    import linmeta as lm
    from linmeta.theory import shallow

    rng = np.random.default_rng(seed)
    L = rng.standard_normal((D, D))
    Sig = _rational_matrix(L @ L.T / 2 + 0.3 * np.eye(D))
    W = _rational_matrix(rng.standard_normal((1, D)))
    M = _rational_matrix(rng.standard_normal((1, D)))
    alpha, sigma = sp.Rational(1, 4), sp.Rational(1, 2)
    tasks = lm.TaskBatch(np.array(W, dtype=float)[None], np.array(Sig, dtype=float)[None], np.array([float(sigma)]))
    for K, steps in ((3, 1), (7, 1), (4, 2)):
        exact = expected_loss_symbolic(Sig, M - W, alpha, sigma, K, steps)
        got = shallow.expected_task_loss(np.array(M, dtype=float), tasks, K, float(alpha), steps)[0]
        assert abs(float(exact) - got) <= 1e-12 * abs(float(exact)), (K, steps, float(exact), got)


if __name__ == "__main__":
    Sig = sp.Matrix([[1, sp.Rational(1, 3)], [sp.Rational(1, 3), sp.Rational(1, 2)]])
    E = sp.Matrix([[1, -1]])
    K, a, s = sp.symbols("K alpha sigma", positive=True)
    print("k = 1 expected loss for Σ =", Sig.tolist(), ", E = M − W* =", E.tolist(), ", K = 5:")
    print(expected_loss_symbolic(Sig, E, sp.Rational(1, 4), sp.Rational(1, 2), 5, 1))
    verify()
    print("verified against linmeta.theory.shallow.expected_task_loss for (K, k) = (3, 1), (7, 1), (4, 2)")
