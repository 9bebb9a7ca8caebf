"""Derivation: stability of N-step MAML meta-training on quadratic tasks (``linmeta.theory.multistep_stability``).

1. Meta-Hessian.  Task i: f_i(w) = ½ (w − a_i)ᵀ H_i (w − a_i), H_i symmetric (indefinite allowed).  The
   inner loop w_{k+1} = w_k − α H_i (w_k − a_i) gives w_N − a_i = (I − αH_i)^N (w − a_i), so the N-step
   meta-objective F(w) = Σ p_i f_i(w_N) is a quadratic with Hessian

       H_meta = Σ_i p_i P_i H_i P_i,   P_i = (I − αH_i)^N,

   derived below by unrolling the inner loop symbolically (d = 2, two tasks, N = 1, 2) and taking the
   Hessian of F.  Its gradient is H_meta (w − w*), so outer GD gives e_{t+1} = (I − βH_meta) e_t:
   convergence iff every eigenvalue of H_meta lies in (0, 2/β).
2. Co-diagonal direction with curvatures λ₊ > 0 > λ₋ (weights p, 1 − p):
   μ(α) = p λ₊ (1 − αλ₊)^{2N} + (1 − p) λ₋ (1 − αλ₋)^{2N}.  At α_c = (ρ − 1)/(ρλ₊ − λ₋):
   1 − α_c λ₊ = (λ₊ − λ₋)/(ρλ₊ − λ₋) and 1 − α_c λ₋ = ρ (λ₊ − λ₋)/(ρλ₊ − λ₋), so
   μ(α_c) = ((λ₊ − λ₋)/(ρλ₊ − λ₋))^{2N} (p λ₊ + (1 − p) λ₋ ρ^{2N}), which vanishes for
   ρ^{2N} = R = p λ₊ / ((1 − p)|λ₋|).  (Verified with N symbolic.)
3. N → ∞:  N α_c(N) → ln R / (2 (λ₊ − λ₋)) (sympy limit), and (1 − sλ/N)^{2N} → e^{−2sλ}, which makes
   H_meta(s/N, N) → Σ p_i e^{−sH_i} H_i e^{−sH_i}.
4. Convex bound: for λ > 0 and 0 ≤ α ≤ 2/λ, (1 − αλ)² ≤ 1, so λ(1 − αλ)^{2N} ≤ λ; for λ < 0 and α ≥ 0,
   (1 − αλ)^{2N} ≥ 1, so again λ(1 − αλ)^{2N} ≤ λ: H_meta ⪯ Σ p_i H_i whenever α ≤ 2/max λ_max(H_i).
"""
from functools import lru_cache

import numpy as np
import sympy as sp

D = 2


def _sym(name):
    a, b, c = sp.symbols(f"{name}11 {name}12 {name}22", real=True)
    return sp.Matrix([[a, b], [b, c]])


@lru_cache(maxsize=None)
def derive_meta_hessian(N: int):
    """Hessian of the unrolled N-step meta-objective (d = 2, two tasks), checked against Σ p P H P.

    Returns a lambdified ``f(p, alpha, h1_11, h1_12, h1_22, h2_11, h2_12, h2_22) -> (2, 2)``.
    """
    p, alpha = sp.symbols("p alpha", real=True)
    H1, H2 = _sym("g"), _sym("h")
    a1, a2 = sp.Matrix(sp.symbols("a1_0:2", real=True)), sp.Matrix(sp.symbols("a2_0:2", real=True))
    w = sp.Matrix(sp.symbols("w0:2", real=True))
    F = 0
    for weight, H, a in ((p, H1, a1), (1 - p, H2, a2)):
        v = w
        for _ in range(N):
            v = v - alpha * H * (v - a)  # one inner gradient step on f(v) = ½ (v − a)ᵀ H (v − a)
        F += weight * ((v - a).T * H * (v - a))[0, 0] / 2
    grad = sp.Matrix([sp.diff(F, wi) for wi in w])
    hess = grad.jacobian(w)
    # grad F is linear in w (its Jacobian has no w left), so grad F = H_meta (w − w*) and outer GD
    # contracts the error by I − β H_meta
    assert all(sp.diff(sp.expand(h), wi) == 0 for h in hess for wi in w)
    I = sp.eye(D)
    P1, P2 = (I - alpha * H1) ** N, (I - alpha * H2) ** N
    formula = p * P1 * H1 * P1 + (1 - p) * P2 * H2 * P2
    assert (hess - formula).applyfunc(sp.expand) == sp.zeros(D, D), "meta-Hessian"
    args = [p, alpha, H1[0, 0], H1[0, 1], H1[1, 1], H2[0, 0], H2[0, 1], H2[1, 1]]
    return sp.lambdify(args, formula, "numpy")


@lru_cache(maxsize=None)
def derive_two_point():
    """The closed-form zero crossing and its N → ∞ limit; returns lambdified (alpha_c, limit)."""
    lp, lneg_abs, p, N, s, lam = sp.symbols("lambda_p nu p N s lambda", positive=True)
    ln = -lneg_abs
    R = p * lp / ((1 - p) * lneg_abs)
    rho = sp.Symbol("rho", positive=True)
    ac = (rho - 1) / (rho * lp - ln)
    one_p, one_n = sp.simplify(1 - ac * lp), sp.simplify(1 - ac * ln)
    assert sp.simplify(one_n / one_p - rho) == 0
    assert sp.simplify(one_p - (lp - ln) / (rho * lp - ln)) == 0
    # with X = 1 − α_c λ₊ > 0 and 1 − α_c λ₋ = ρ X (just shown):
    # μ(α_c) / X^{2N} = p λ₊ + (1 − p) λ₋ ρ^{2N}, zero at ρ^{2N} = R
    X = sp.Symbol("X", positive=True)
    mu_X = p * lp * X ** (2 * N) + (1 - p) * ln * (rho * X) ** (2 * N)
    reduced = sp.expand(sp.expand_power_base(mu_X, force=True) / X ** (2 * N))
    target = p * lp + (1 - p) * ln * rho ** (2 * N)
    assert sp.simplify(reduced - target) == 0
    assert sp.simplify(sp.powdenest(target.subs(rho, R ** (1 / (2 * N))), force=True)) == 0
    ac_N = ac.subs(rho, R ** (1 / (2 * N)))
    lim = sp.limit(N * ac_N, N, sp.oo)
    assert sp.simplify(lim - sp.log(R) / (2 * (lp - ln))) == 0
    assert sp.simplify(sp.limit((1 - s * lam / N) ** (2 * N), N, sp.oo) - sp.exp(-2 * s * lam)) == 0
    # convex bound: (1 − αλ)² ≤ 1 on [0, 2/λ]
    a = sp.Symbol("a", nonnegative=True)
    assert sp.simplify((1 - a * lam) ** 2 - 1 - a * lam * (a * lam - 2)) == 0
    alpha = sp.Symbol("alpha", real=True)
    mu_alpha = p * lp * (1 - alpha * lp) ** (2 * N) + (1 - p) * ln * (1 - alpha * ln) ** (2 * N)
    return (sp.lambdify([lp, lneg_abs, p, N], ac_N, "mpmath"), sp.lambdify([lp, lneg_abs, p], lim, "numpy"),
            sp.lambdify([lp, lneg_abs, p, N, alpha], mu_alpha, "mpmath"))

def _random_sym(rng, lo, hi):
    Q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    return Q @ np.diag(rng.uniform(lo, hi, D)) @ Q.T


def verify(seed: int = 0) -> None:
    import mpmath

    from linmeta.theory import multistep_stability as MS

    rng = np.random.default_rng(seed)
    # 1. the meta-Hessian, indefinite tasks
    for N in (1, 2):
        f = derive_meta_hessian(N)
        for _ in range(3):
            H1, H2 = _random_sym(rng, -0.5, 1.0), _random_sym(rng, -0.5, 1.0)
            p, alpha = float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.05, 1.5))
            expect = np.array(f(p, alpha, H1[0, 0], H1[0, 1], H1[1, 1], H2[0, 0], H2[0, 1], H2[1, 1]), dtype=float)
            got = MS.meta_hessian(np.stack([H1, H2]), alpha, N, [p, 1 - p])
            assert np.max(np.abs(got - expect)) <= 1e-12 * max(1.0, np.max(np.abs(expect))), (N, got, expect)
    # 2-3. the two-curvature boundary and its limit
    ac_sym, lim_sym, mu_sym = derive_two_point()
    for _ in range(4):
        lp, nu = float(rng.uniform(0.5, 2.0)), float(rng.uniform(0.05, 0.4))
        p = float(rng.uniform(0.4, 0.8))
        if p * lp <= (1 - p) * nu:
            continue
        for N in (1, 3, 17, 64):
            got = MS.two_point_boundary(lp, -nu, p, N)
            expect = float(ac_sym(mpmath.mpf(lp), mpmath.mpf(nu), mpmath.mpf(p), N))
            assert abs(got - expect) <= 1e-12 * expect, (got, expect)
            # μ(α_c) = 0 in 50-digit arithmetic, relative to the size of its two terms
            with mpmath.workdps(50):
                m = mu_sym(mpmath.mpf(lp), mpmath.mpf(nu), mpmath.mpf(p), N, mpmath.mpf(got))
                scale = mpmath.mpf(p) * lp * (1 - mpmath.mpf(got) * lp) ** (2 * N)
            assert abs(float(m / scale)) < 1e-12, float(m / scale)
            # the general root finder finds the same boundary on a co-diagonal instance
            H = np.array([np.diag([lp, 1.0]), np.diag([-nu, 0.7])])
            if N <= 17:
                crit = MS.critical_alpha(H, N, 0.5, 4.0, [p, 1 - p])
                assert abs(crit - got) <= 1e-10 * got, (crit, got)
        assert abs(MS.two_point_limit(lp, -nu, p) - float(lim_sym(lp, nu, p))) <= 1e-12 * float(lim_sym(lp, nu, p))
        H = np.array([np.diag([lp, 1.0]), np.diag([-nu, 0.7])])
        s_star = MS.scaling_limit(H, [p, 1 - p])
        assert abs(s_star - MS.two_point_limit(lp, -nu, p)) <= 1e-10 * s_star, (s_star,)
    # the N → ∞ limit of the meta-Hessian: K(s) = Σ p e^{−sH} H e^{−sH} (sympy matrix exponential)
    H1, H2 = _random_sym(rng, -0.3, 1.0), _random_sym(rng, -0.3, 1.0)
    s, p = 0.7, 0.4
    expect = np.zeros((D, D))
    for weight, H in ((p, H1), (1 - p, H2)):
        E = np.array((sp.Matrix(-s * H)).exp().evalf(30), dtype=float)
        expect += weight * E @ H @ E
    got = MS.limit_meta_hessian(np.stack([H1, H2]), s, [p, 1 - p])
    assert np.max(np.abs(got - expect)) <= 1e-12 * np.max(np.abs(expect))
    big = MS.meta_hessian(np.stack([H1, H2]), s / 4096, 4096, [p, 1 - p])
    assert np.max(np.abs(big - expect)) <= 1e-3 * np.max(np.abs(expect))  # O(1/N) convergence


if __name__ == "__main__":
    for N in (1, 2):
        derive_meta_hessian(N)
        print(f"N = {N}: Hessian of the unrolled meta-objective = p P1 H1 P1 + (1-p) P2 H2 P2, P = (I - alpha H)^N")
    derive_two_point()
    print("alpha_c = (rho - 1)/(rho lambda_+ - lambda_-), rho = R^(1/2N): mu(alpha_c) = 0 (N symbolic)")
    print("N alpha_c -> ln R / (2 (lambda_+ - lambda_-));  (1 - s lambda/N)^(2N) -> exp(-2 s lambda)")
    verify()
    print("verified against linmeta.theory.multistep_stability")
