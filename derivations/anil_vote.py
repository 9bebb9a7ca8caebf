r"""ANIL's one inner step in a deep linear network: the label vote, its expected loss, and the oracle.

Network ``M = h Φ`` with body ``Φ`` (p x d, features ``φ(x) = Φx``) and head ``h`` (out x p); only
the head adapts (ANIL), one step of size α on the support loss.

1. **Vote** (squared loss ``(1/2n) Σ_j ‖y_j − hφ_j‖²``).  The head gradient is
   ``−(1/n) Σ_j (y_j − hφ_j) φ_jᵀ``, so ``h⁺ = h + (α/n) Σ_j (y_j − hφ_j) φ_jᵀ`` and

       ŷ(x_q) = h⁺ φ_q = h φ_q + (α/n) Σ_j (y_j − h φ_j) ⟨φ_j, φ_q⟩;

   from a zero head, ``ŷ(x_q) = (α/n) Σ_j y_j ⟨φ_q, φ_j⟩`` (a dot-product label vote: NIL with dot
   products instead of cosines).  Logistic loss ``mean_j softplus(z_j) − y_j z_j``: at ``h = 0`` the
   logit gradient is ``σ(0) − y_j = ½ − y_j``, so the zero-head logit is ``(α/n) Σ_j (y_j − ½)⟨φ_q, φ_j⟩``.

2. **Expected loss.**  With ``E = M − W*``, ``G = E Σ̂ − n`` (``n = εᵀX/K``) and ``R = ΦᵀΦ``, the new map
   is ``M − α G R`` (the head step moves M by ``−α G ΦᵀΦ``), so ``E⁺ = E(I − αΣ̂R) + α n R``.  The
   population query loss is ``½ tr(E⁺ΣE⁺ᵀ) + ½ out σ²``; taking expectations (``E[Σ̂] = Σ``,
   ``E[Σ̂CΣ̂] = ΣCΣ + (ΣCΣ + tr(CΣ)Σ)/K`` for symmetric C, ``E[n C nᵀ] = σ² tr(CΣ)/K · I_out``, cross
   terms zero since ``E[ε | X] = 0``):

       𝔸 = Σ − 2αΣRΣ + α²[(1 + 1/K)ΣRΣRΣ + tr(RΣRΣ)Σ/K],   const = ½α² out σ² tr(RΣRΣ)/K + ½ out σ².

   ``verify`` evaluates the expectation exactly by Wick's theorem (Gaussian moments of the
   underlying standard normals) on a concrete instance, as a polynomial in α.

3. **Oracle.**  For ``out = 1``, ``Σ = I``, ``Cov W* = λΠ`` (rank m, c = tr) and ``E[W*] ∈ span Π``, the
   loss is convex in R and ≥ its value at ``M = E[W*]``; the off-span blocks of R only add
   ``tr(R²)``/``tr(R²C)`` terms and rotation symmetry on the span gives ``R = rΠ``.  With ``u = αr``:

       ℒ(u) = ½c[1 − 2u + u²(1 + (1 + m)/K)] + ½σ²u²m/K + ½σ²,   u* = c / (c(1 + (1+m)/K) + σ²m/K).
"""
from __future__ import annotations

import numpy as np
import sympy as sp


def _sym(name, rows, cols):
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}{i}{j}", real=True))


def derive_vote():
    """Symbolic one-step ANIL prediction vs the vote formula (n = 3, p = 2, d = 2, out = 1)."""
    n, p, d = 3, 2, 2
    alpha = sp.Symbol("alpha", real=True)
    h, Phi, X, xq = _sym("h", 1, p), _sym("f", p, d), _sym("x", n, d), _sym("q", d, 1)
    y = _sym("y", n, 1)
    F = X * Phi.T  # support features, rows φ_j
    loss = sum((y[j] - (h * F[j, :].T)[0]) ** 2 for j in range(n)) / (2 * n)
    grad = sp.Matrix(1, p, lambda _, k: sp.diff(loss, h[k]))
    h_new = h - alpha * grad
    phi_q = Phi * xq
    pred = (h_new * phi_q)[0]
    vote = (h * phi_q)[0] + alpha / n * sum((y[j] - (h * F[j, :].T)[0]) * (F[j, :] * phi_q)[0] for j in range(n))
    assert sp.expand(pred - vote) == 0
    zero = {h[k]: 0 for k in range(p)}
    zero_vote = alpha / n * sum(y[j] * (F[j, :] * phi_q)[0] for j in range(n))
    assert sp.expand(pred.subs(zero) - zero_vote) == 0
    # logistic loss: d/dz [softplus(z) − y z] at z = 0 is ½ − y
    z, yy = sp.symbols("z yy", real=True)
    assert sp.simplify(sp.diff(sp.log(1 + sp.exp(z)) - yy * z, z).subs(z, 0) - (sp.Rational(1, 2) - yy)) == 0
    return zero_vote


def _wick_mean(expr, normals):
    """E[expr] for a polynomial in independent standard normals (E z^k = (k−1)!! for even k, else 0)."""
    poly = sp.Poly(sp.expand(expr), *normals)
    total = 0
    for powers, coeff in poly.terms():
        moment = 1
        for k in powers:
            if k % 2:
                moment = 0
                break
            moment *= sp.factorial2(k - 1) if k else 1
        total += coeff * moment
    return sp.expand(total)


def derive_expected_loss(seed: int = 0, d: int = 2, K: int = 2, out: int = 1):
    """Exact E[post-adaptation loss] of one ANIL step on a concrete rational instance, as a polynomial in α.

    Returns ``(expected_loss(α), instance)`` with the instance's numeric arrays.
    """
    rng = np.random.default_rng(seed)
    rat = lambda a: sp.Matrix(a.shape[0], a.shape[1], lambda i, j: sp.Rational(int(a[i, j]), 4))
    Lm = np.tril(rng.integers(-4, 5, (d, d)))
    Lm[np.diag_indices(d)] = rng.integers(2, 5, d)
    Phi = rng.integers(-4, 5, (d + 1, d))
    E = rng.integers(-4, 5, (out, d))
    sig = sp.Rational(int(rng.integers(1, 5)), 4)
    L_, Phi_s, E_s = rat(Lm), rat(Phi), rat(E)
    alpha = sp.Symbol("alpha", real=True)
    Z = sp.Matrix(K, d, lambda i, j: sp.Symbol(f"z{i}{j}", real=True))
    eps = sp.Matrix(K, out, lambda i, j: sp.Symbol(f"e{i}{j}", real=True))
    X = Z * L_.T  # rows x_s = L z_s ~ N(0, LLᵀ)
    Sigma = L_ * L_.T
    R = Phi_s.T * Phi_s
    Shat = X.T * X / K
    noise = sig * eps.T * X / K  # n = σ εᵀX / K  (out x d)
    E_new = E_s * (sp.eye(d) - alpha * Shat * R) + alpha * noise * R
    loss = (E_new * Sigma * E_new.T).trace() / 2 + out * sig**2 / 2
    mean = _wick_mean(loss, list(Z) + list(eps))
    inst = {"Sigma": np.array(Sigma, dtype=float), "R": np.array(R, dtype=float), "E": np.array(E_s, dtype=float),
            "sigma": float(sig), "K": K, "out": out}
    return sp.Poly(mean, alpha), inst


def derive_oracle():
    """Symbolic minimiser of the one-parameter oracle loss ℒ(u)."""
    u, c, m, K, s2 = sp.symbols("u c m K s2", positive=True)
    f = c / 2 * (1 - 2 * u + u**2 * (1 + (1 + m) / K)) + s2 * u**2 * m / (2 * K) + s2 / 2
    (u_star,) = sp.solve(sp.diff(f, u), u)
    assert sp.simplify(u_star - c / (c * (1 + (1 + m) / K) + s2 * m / K)) == 0
    assert sp.simplify(sp.diff(f, u, 2)).is_positive
    return f, u_star, (u, c, m, K, s2)


def verify(seed: int = 0) -> None:
    from linmeta import GaussianRegression, InnerLoop, LogisticLoss, adapted_map, init_deep_linear, sample_moments
    from linmeta.theory import anil

    derive_vote()
    rng = np.random.default_rng(seed)

    # 1. the vote identity against the engine's ANIL step (a 3-layer body, multi-output, batched tasks)
    d, out, T, n, m = 5, 2, 4, 6, 7
    params = init_deep_linear(d, (4, 3), out, rng=rng)
    X, Y = rng.standard_normal((T, n, d)), rng.standard_normal((T, n, out))
    Xq = rng.standard_normal((T, m, d))
    alpha = 0.37
    rule = InnerLoop(1, alpha, "last")
    for head in (params[-1], np.zeros_like(params[-1])):
        p = params[:-1] + (head,)
        M_new = adapted_map(p, sample_moments(X, Y), rule)  # (T, out, d)
        engine = Xq @ np.swapaxes(M_new, -1, -2)
        Fs, Fq = anil.body_features(p, X), anil.body_features(p, Xq)
        pred = anil.one_step_prediction(Fs, Y, Fq, alpha, head=head)
        assert np.max(np.abs(engine - pred)) <= 1e-10 * np.max(np.abs(engine))
    zero = params[:-1] + (np.zeros_like(params[-1]),)
    engine = Xq @ np.swapaxes(adapted_map(zero, sample_moments(X, Y), rule), -1, -2)
    vote = anil.zero_head_vote(anil.body_features(zero, X), Y, anil.body_features(zero, Xq), alpha)
    assert np.max(np.abs(engine - vote)) <= 1e-10 * np.max(np.abs(engine))
    # logistic: the engine's zero-head ANIL logits are the centred-label vote
    z1 = tuple(W for W in init_deep_linear(d, (4,), 1, rng=rng)[:-1]) + (np.zeros((1, 4)),)
    ylab = (rng.random((T, n)) < 0.5).astype(float)
    logits = (Xq @ np.swapaxes(adapted_map(z1, LogisticLoss(X, ylab), rule), -1, -2))[..., 0]
    lv = anil.logistic_zero_head_vote(anil.body_features(z1, X), ylab, anil.body_features(z1, Xq), alpha)
    assert np.max(np.abs(logits - lv)) <= 1e-10 * np.max(np.abs(logits))

    # 2. the expected loss: exact Wick expectation vs linmeta's closed form, coefficient by coefficient in α
    poly, inst = derive_expected_loss(seed)
    a_s = sp.Symbol("alpha", real=True)
    for a in (0.0, 0.3, -0.7, 1.1):
        exact = float(poly.as_expr().subs(a_s, a))
        q = anil.one_step_quadratic(inst["R"], inst["Sigma"], inst["sigma"], inst["out"], inst["K"], a)
        E = inst["E"]
        closed = 0.5 * np.trace(E @ q.A @ E.T) + float(q.const)
        assert abs(exact - closed) <= 1e-10 * abs(exact), (a, exact, closed)

    # 3. the oracle: formula vs linmeta, and ℒ(u*) equals the closed-form loss at R = (u*/α)Π, M = E[W*]
    f, u_star, (u, c, m_s, K_s, s2) = derive_oracle()
    d, k, K, alpha, noise = 7, 2, 4, 0.6, 0.3
    B = np.linalg.qr(rng.standard_normal((d, k)))[0]
    lam = 0.8
    fam = GaussianRegression(d=d, out=1, cov=lam * B @ B.T, noise_std=noise)
    orc = anil.anil_oracle(fam, K, alpha)
    vals = {c: lam * k, m_s: k, K_s: K, s2: noise**2}
    assert abs(float(u_star.subs(vals)) - orc.step) <= 1e-12
    assert abs(float(f.subs(vals).subs(u, u_star.subs(vals))) - orc.loss) <= 1e-10 * orc.loss
    body = np.sqrt(orc.step / alpha) * B.T  # Φ with ΦᵀΦ = (u*/α) Π
    at_opt = anil.anil_expected_loss((body, np.zeros((1, k))), fam, K, alpha)
    assert abs(float(at_opt) - orc.loss) <= 1e-10 * orc.loss


if __name__ == "__main__":
    v = derive_vote()
    print("zero-head one-step ANIL prediction:", v)
    f, u_star, _ = derive_oracle()
    print("oracle effective step u* =", u_star)
    verify()
    print("verified")
