"""The shallow MAML floor and the optimal shallow inner step, in closed form (one inner step).

Setting (Arnold et al.'s shallow-floor argument): ``x ~ N(0, Σ)``, ``W* ~ N(μ, C)`` (each output row has
covariance C), label noise σ, ``out`` outputs, K support shots reused for one inner step of size α,
population query.  Shallow MAML's optimum is ``M = μ`` (P9), where the expected post-adaptation loss is

    floor(α) = out · [ ½ tr(𝔸 C) + ½ α² σ² tr(Σ E[Σ̂]) / K + ½ σ² ],   𝔸 = E[(I − αΣ̂) Σ (I − αΣ̂)].

Steps derived here with sympy:

1. Isserlis' theorem gives ``E[x xᵀ C x xᵀ] = Σ(C + Cᵀ)Σ + tr(CΣ)Σ`` (checked symbolically for
   d = 2, 3 with a symbolic Σ and C), hence for ``Σ̂ = XᵀX/K``
   ``E[Σ̂ C Σ̂] = Σ C Σ + (Σ Cᵀ Σ + tr(CΣ) Σ)/K``.
2. With ``t_j = tr(Σ^j C)`` and ``u = tr(Σ²)``, expanding 𝔸:
   ``floor(α)/out = ½ t₁ − α t₂ + ½ α² [(1 + 1/K) t₃ + (u t₁ + σ² u)/K] + ½ σ²``,
   a quadratic in α, so ``α* = t₂ / [(1 + 1/K) t₃ + u (t₁ + σ²)/K]`` and
   ``floor(α*)/out = ½ t₁ + ½ σ² − ½ t₂ α*``.
3. The population inner loss is the limit K → ∞: ``α* = tr(Σ²C)/tr(Σ³C)``; isotropic
   ``Σ = λI`` gives ``α* = 1/λ`` and a floor of ``½ out σ²`` (for any number of steps k,
   ``floor = ½ out (d c λ (1 − αλ)^{2k} + σ²)`` with ``C = cI``).
4. Isotropic K-shot (``Σ = λI``, ``C = cI``): ``α* = K c / (c λ (K + d + 1) + σ²)``; noiseless and
   λ = 1 this is ``K/(K + d + 1)``.

``verify`` compares these with :func:`linmeta.theory.shallow.shallow_floor`,
:func:`~linmeta.theory.shallow.expected_meta_loss` and
:func:`~linmeta.theory.shallow.optimal_alpha` on random instances.  The floors agree to 1e-10;
``optimal_alpha`` is a bounded Brent search on a floating-point function, which can only locate a
quadratic's minimiser to about √eps relative, so the step sizes are compared to 1e-6.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

alpha, K, sigma, lam, c, d_ = sp.symbols("alpha K sigma lambda c d", positive=True)
t1, t2, t3, u = sp.symbols("t1 t2 t3 u", positive=True)


def isserlis_fourth_moment(d: int):
    """``E[x xᵀ C x xᵀ] − (Σ(C + Cᵀ)Σ + tr(CΣ)Σ)`` for x ~ N(0, Σ), symbolic Σ (symmetric) and C; must be 0."""
    S = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"S{min(i, j)}{max(i, j)}"))
    Cm = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"C{i}{j}"))
    E = sp.zeros(d, d)
    for i in range(d):
        for l in range(d):
            E[i, l] = sum(Cm[j, k] * (S[i, j] * S[k, l] + S[i, k] * S[j, l] + S[i, l] * S[j, k])
                          for j in range(d) for k in range(d))
    return sp.expand(E - (S * (Cm + Cm.T) * S + (Cm * S).trace() * S))


@lru_cache(maxsize=None)
def derive():
    """floor(α)/out, α*, floor(α*)/out in the trace variables, and their isotropic/population forms."""
    # 𝔸 = Σ − 2αΣ² + α² E[Σ̂ΣΣ̂], with E[Σ̂ΣΣ̂] = Σ³ + (Σ³ + tr(Σ²)Σ)/K (step 1, C = Σ); then tr(𝔸C)
    trAC = t1 - 2 * alpha * t2 + alpha**2 * (t3 + (t3 + u * t1) / K)
    # noise: E[Σ̂] = Σ, so tr(Σ E[Σ̂]) = u
    floor = sp.Rational(1, 2) * trAC + sp.Rational(1, 2) * alpha**2 * sigma**2 * u / K + sp.Rational(1, 2) * sigma**2
    a_star = sp.solve(sp.diff(floor, alpha), alpha)[0]
    floor_star = sp.simplify(floor.subs(alpha, a_star))
    population = {"alpha": sp.limit(a_star, K, sp.oo), "floor": sp.limit(floor_star, K, sp.oo)}
    iso = {t1: d_ * c * lam, t2: d_ * c * lam**2, t3: d_ * c * lam**3, u: d_ * lam**2}
    isotropic = {"alpha": sp.simplify(a_star.subs(iso)), "floor": sp.simplify(floor_star.subs(iso))}
    return floor, a_star, floor_star, population, isotropic


def isotropic_population_k_steps(k: int):
    """Population inner loss, Σ = λI, C = cI, k steps: floor(α)/out and its minimiser."""
    f = sp.Rational(1, 2) * (d_ * c * lam * (1 - alpha * lam) ** (2 * k) + sigma**2)
    crit = [r for r in sp.solve(sp.diff(f, alpha), alpha) if r.is_real is not False]
    return f, crit


def _instance(rng, d, out, iso):
    from linmeta import GaussianRegression

    if iso:
        S, C = rng.uniform(0.5, 2) * np.eye(d), rng.uniform(0.3, 2) * np.eye(d)
    else:
        A = rng.standard_normal((d, d))
        S = A @ A.T / d + 0.3 * np.eye(d)
        B = rng.standard_normal((d, d))
        C = B @ B.T / d + 0.2 * np.eye(d)
    fam = GaussianRegression(d=d, out=out, mean=rng.standard_normal((out, d)), cov=C, input_cov=S,
                             noise_std=rng.uniform(0, 1))
    return fam, S, C


def verify(seed: int = 0) -> None:
    from linmeta.theory import shallow

    rng = np.random.default_rng(seed)
    for d in (2, 3):
        assert isserlis_fourth_moment(d) == sp.zeros(d, d)
    floor, a_star, floor_star, population, isotropic = derive()
    args = (alpha, K, sigma, t1, t2, t3, u)
    f_floor = sp.lambdify(args, floor, "numpy")
    f_astar = sp.lambdify(args[1:], a_star, "numpy")
    f_fstar = sp.lambdify(args[1:], floor_star, "numpy")
    f_pop_a = sp.lambdify((t2, t3), population["alpha"], "numpy")
    f_pop_f = sp.lambdify((sigma, t1, t2, t3), population["floor"], "numpy")
    for trial in range(6):
        d, out, iso = int(rng.integers(2, 6)), int(rng.integers(1, 3)), trial % 3 == 0
        fam, S, C = _instance(rng, d, out, iso)
        sig = fam.noise_std
        tr = (np.trace(S @ C), np.trace(S @ S @ C), np.trace(S @ S @ S @ C), np.trace(S @ S))
        lam_max = np.linalg.eigvalsh(S)[-1]
        for Kv in (int(rng.integers(2, 30)), None):
            a = rng.uniform(0, 1.5 / lam_max)
            if Kv is None:
                ref = out * f_floor(a, 1e300, sig, *tr)  # K → ∞ of the K-shot formula
                a_ref, f_ref = f_pop_a(tr[1], tr[2]), out * f_pop_f(sig, *tr[:3])
            else:
                ref = out * f_floor(a, Kv, sig, *tr)
                a_ref, f_ref = f_astar(Kv, sig, *tr), out * f_fstar(Kv, sig, *tr)
            got = shallow.shallow_floor(fam, Kv, a, 1)
            assert abs(got - ref) <= 1e-10 * abs(ref), (got, ref)
            direct = shallow.expected_meta_loss(fam.mean_task(), fam, Kv, a, 1)
            assert abs(direct - ref) <= 1e-10 * abs(ref)
            if a_ref < 2.0 / lam_max:  # optimal_alpha searches [0, 2/λ_max]
                a_num, f_num = shallow.optimal_alpha(fam, Kv, 1)
                assert abs(a_num - a_ref) <= 1e-6 * a_ref, (a_num, a_ref)
                assert abs(f_num - f_ref) <= 1e-10 * abs(f_ref), (f_num, f_ref)
    # isotropic population, k steps: α* = 1/λ, floor ½ out σ²
    for k in (1, 2, 3):
        f, crit = isotropic_population_k_steps(k)
        assert crit == [1 / lam], crit
        lv, cv, sv, dv = rng.uniform(0.5, 2), rng.uniform(0.3, 2), rng.uniform(0, 1), int(rng.integers(1, 5))
        from linmeta import GaussianRegression

        fam = GaussianRegression(d=dv, out=1, cov=cv, input_cov=lv * np.eye(dv), noise_std=sv)
        a = rng.uniform(0, 1.5 / lv)
        ref = float(f.subs({alpha: a, lam: lv, c: cv, sigma: sv, d_: dv}))
        assert abs(shallow.shallow_floor(fam, None, a, k) - ref) <= 1e-10 * ref
        a_num, f_num = shallow.optimal_alpha(fam, None, k)
        # the minimum is of order 2k (f − f* ∝ (α − α*)^{2k}), so a search on floating-point values can
        # only locate it to about eps^{1/(2k)} relative; the floor value itself is exact
        assert abs(a_num * lv - 1) <= 10 * np.finfo(float).eps ** (1 / (2 * k)), (k, a_num, 1 / lv)
        assert abs(f_num - sv**2 / 2) <= 1e-10 * max(sv**2 / 2, 1e-2)


if __name__ == "__main__":
    floor, a_star, floor_star, population, isotropic = derive()
    print("floor(alpha)/out =", sp.latex(sp.collect(sp.expand(floor), alpha)))
    print("alpha* =", sp.latex(a_star))
    print("floor(alpha*)/out =", sp.latex(floor_star))
    print("population (K -> oo): alpha* =", sp.latex(population["alpha"]), "; floor =", sp.latex(population["floor"]))
    print("isotropic (Sigma = lambda I, C = c I): alpha* =", sp.latex(isotropic["alpha"]),
          "; floor =", sp.latex(isotropic["floor"]))
    verify()
    print("verified against linmeta.theory.shallow")
