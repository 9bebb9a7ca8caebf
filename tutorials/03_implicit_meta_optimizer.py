# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. The implicit meta-optimizer: upper layers precondition the lower ones
#
# Why can a deep linear net change its own step?  Write the end-to-end map $M = W_L \cdots W_1$, the
# end-to-end gradient $G = \partial \ell / \partial M$, and for layer $l$ the product **above** it,
# $S_l = W_L \cdots W_{l+1}$, and the product **below** it, $P_l = W_{l-1} \cdots W_1$.  The layer
# gradient is $S_l^\top G P_l^\top$, and one inner step moves the end-to-end map by
#
# * **bottom-only** adaptation: exactly $M^+ = M - \alpha\,(S_1 S_1^\top)\, G$, for every $\alpha$;
# * **top-only** adaptation (ANIL): exactly $M^+ = M - \alpha\, G\,(P_L^\top P_L)$;
# * **all layers** (MAML): $M^+ = M - \alpha \sum_l (S_l S_l^\top)\, G\, (P_l^\top P_l) + O(\alpha^2)$.
#
# The other layers act as a **preconditioner** on the gradient: a Kronecker-factored, positive
# semi-definite one, the same form as the KFO meta-optimizer (Arnold, Iqbal & Sha 2021,
# arXiv:1910.13603, §4).  `lm.theory.precondition` holds these factors.  We first check the identities on
# the engine's own inner loop, then meta-train and compare the preconditioner the network learns with
# the closed-form optimum (`lm.theory.metaopt.optimal_preconditioner`).

# %%
import matplotlib.pyplot as plt
import numpy as np

import linmeta as lm
from linmeta.sim.stats import mean_se
from linmeta.theory import metaopt, precondition

rng = lm.as_generator(0)
d, out = 4, 2
params = lm.init_deep_linear(d, (3, 5), out, rng=rng)  # W1 (3, 4), W2 (5, 3), W3 (2, 5)
X, Y = rng.standard_normal((1, 6, d)), rng.standard_normal((1, 6, out))  # one task, 6 support samples
support = lm.sample_moments(X, Y)  # its squared loss as moments (a QuadraticLoss)
M = lm.end_to_end(params)  # (out, d)
G = support.grad(M[None])[0]  # end-to-end gradient (out, d)


def adapted(alpha, layers):
    """The engine's end-to-end map after one inner step adapting ``layers``."""
    return lm.adapted_map(params, support, lm.InnerLoop(steps=1, alpha=alpha, layers=layers))[0]


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# %% [markdown]
# ## The exact identities
#
# `precondition.bottom_only_factor(params)` is $S_1 S_1^\top$ (out × out) and `top_only_factor` is
# $P_L^\top P_L$ (d × d).  The identities are exact, so the tolerance is round-off, for steps from
# $10^{-3}$ to $10^{2}$.

# %%
F_bottom, F_top = precondition.bottom_only_factor(params), precondition.top_only_factor(params)
alphas = [1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0]
err_bottom = [rel(adapted(a, "first"), M - a * F_bottom @ G) for a in alphas]
err_top = [rel(adapted(a, "last"), M - a * G @ F_top) for a in alphas]
print("bottom-only, max rel. error:", max(err_bottom))
print("top-only,    max rel. error:", max(err_top))
assert max(err_bottom) < 1e-12 and max(err_top) < 1e-12

# %% [markdown]
# For all layers the step is a polynomial in $\alpha$ (each layer moves linearly in $\alpha$, and $M^+$ is
# their product): `metaopt.step_polynomial` gives its coefficients $C_0 = M$, $C_1 = -\sum_l S_lS_l^\top G
# P_l^\top P_l$, $C_2, \dots$.  The engine's step equals it exactly, and the residual of the first-order
# preconditioner, $R(\alpha) = \sum_{k\ge2} \alpha^k C_k$, shrinks fourfold each time $\alpha$ halves.  How
# close to 4 the ratio must be follows from the higher coefficients (`metaopt.residual_ratio_interval`), so
# the check below has no hand-tuned tolerance.

# %%
coeffs = metaopt.step_polynomial(params, G)
print("engine vs exact alpha-polynomial, max rel. error:",
      max(rel(adapted(a, "all"), sum(a**k * C for k, C in enumerate(coeffs))) for a in alphas))
assert max(rel(adapted(a, "all"), sum(a**k * C for k, C in enumerate(coeffs))) for a in alphas) < 1e-12

first = precondition.implicit_update(params, G)  # sum_l S_l S_l^T G P_l^T P_l
assert rel(first, -coeffs[1]) < 1e-12
small_alphas = 0.1 * 0.5 ** np.arange(8)
resid = np.array([np.linalg.norm(adapted(a, "all") - (M - a * first)) for a in small_alphas])
ratios = resid[:-1] / resid[1:]
bounds = [metaopt.residual_ratio_interval(coeffs, a, rounding=2.0**10 * np.finfo(float).eps) for a in small_alphas[:-1]]
for a, r, (lo, hi) in zip(small_alphas, ratios, bounds):
    print(f"alpha={a:.5f}: R(a)/R(a/2) = {r:.5f}  in [{lo:.5f}, {hi:.5f}]")
    assert lo <= r <= hi

# %% [markdown]
# ## What meta-training learns
#
# Now the preconditioner is *learned*.  Scalar-output tasks with an anisotropic input covariance
# $\Sigma$ (eigenvalues $1, \tfrac12, \tfrac14, \tfrac18$ in a random basis), $w^* \sim N(0, I)$, $K = 10$
# shots, one inner step at $\alpha = 0.1$.  Any one-step rule $M^+ = M - G P$ has an exact expected loss,
# a quadratic in $P$ (`metaopt.one_step_loss`) minimised by $P^* = H^{-1}\Sigma R$
# (`metaopt.optimal_preconditioner`).  A two-layer net adapting only its top layer has $P = \alpha
# P_L^\top P_L = \alpha W_1^\top W_1$ *exactly*; we meta-train six seeds by L-BFGS, each on its own fixed set
# of 300 tasks, and compare $v^\top P v$ with $v^\top P^* v$ along each eigenvector $v$ of $\Sigma$.

# %%
d2, K, alpha = 4, 10, 0.1
lam = 0.5 ** np.arange(d2)
V = np.linalg.qr(lm.as_generator(1).standard_normal((d2, d2)))[0]  # random orthonormal basis (columns)
Sigma = (V * lam) @ V.T
family = lm.GaussianRegression(d=d2, input_cov=(Sigma + Sigma.T) / 2)
R = metaopt.error_moment(family.mean, family)  # E[(M - W*)^T (M - W*)] at the optimum M = E[W*]
P_star = metaopt.optimal_preconditioner(family.input_cov, R, K)

init = lm.init_deep_linear(d2, (8,), 1, rng=2, n_runs=6)
rule = lm.InnerLoop(steps=1, alpha=alpha, layers="last")
# one inner step is never iterated, so the many-step stability bound does not apply (check_stability=False)
res = lm.meta_train(init, family, rule, steps=200, optimizer="lbfgs", fixed_tasks=300, K=K, Q=None,
                    eval_tasks=2, seed=3, progress=False, check_stability=False)
P_learned = alpha * precondition.top_only_factor(res.params)  # (runs, d, d)
P_init = alpha * precondition.top_only_factor(init)
proj = np.einsum("ia,rij,ja->ra", V, P_learned, V)  # v_a^T P v_a per run, (runs, d)
proj_star = np.einsum("ia,ij,ja->a", V, P_star, V)
mean, se = mean_se(proj)
for a in range(d2):
    print(f"Sigma eigenvalue {lam[a]:.3f}: learned v^T P v = {mean[a]:.3f} ± {se[a]:.3f}, optimum {proj_star[a]:.3f}")
    assert abs(mean[a] - proj_star[a]) <= 4 * se[a]

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
ax = axes[0]
ax.semilogx(small_alphas[:-1], ratios, "o", label="measured $R(\\alpha)/R(\\alpha/2)$")
ax.fill_between(small_alphas[:-1], [b[0] for b in bounds], [b[1] for b in bounds], alpha=0.3,
                label="rigorous interval")
ax.axhline(4, color="k", ls=":")
ax.set(xlabel="$\\alpha$", ylabel="ratio", title="all layers: first order in $\\alpha$ (ratio $\\to$ 4)")
ax.legend(fontsize=8)
ax = axes[1]
ax.semilogy(lam, proj_star, "k-", label="optimum $v^\\top P^* v$ (closed form)")
ax.errorbar(lam, mean, yerr=2 * se, fmt="o", color="C1", label="learned by ANIL (±2 SE over seeds)")
ax.semilogy(lam, np.einsum("ia,rij,ja->ra", V, P_init, V).mean(axis=0), "x", color="C7", label="at initialisation")
ax.set(xlabel="eigenvalue of $\\Sigma$", ylabel="$v^\\top P v$", title="top-only: the learned preconditioner")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# The learned preconditioner grows in the directions where $\Sigma$ is small: it approaches an inverse of
# the curvature (Newton's step, corrected for the noise of $K$-shot gradients), the best a one-step rule
# can do.  No loss function asked for that: it is what minimising the post-adaptation loss through the
# lower layers amounts to.

# %% [markdown]
# ## Exercises
#
# 1. **The Arora form.** For a *balanced* initialisation (`lm.init_deep_linear(..., scheme="balanced")`)
#    the first-order update is $\sum_j (MM^\top)^{(L-j)/L} G (M^\top M)^{(j-1)/L}$
#    (`precondition.balanced_factors`).  Check it for $L = 3$, and show that it fails for a Gaussian
#    initialisation.
# 2. **The exact optimum cannot be beaten.** Evaluate the exact expected loss
#    (`metaopt.one_step_loss`) of each learned $(M, P)$ and of $P^*$; show that no seed beats $P^*$.
# 3. **Infinitely many shots.** With $K$ = `None` (population gradients) $P^* = \Sigma^{-1}$ when there is no
#    noise.  Check it.

# %% [markdown]
# ### Solution 1

# %% tags=["hide-cell"]
Gr = rng.standard_normal((out, d))
for scheme, expect_equal in (("balanced", True), ("gaussian", False)):
    p = lm.init_deep_linear(d, (3, 3), out, scheme=scheme, rng=5)
    Mp = lm.end_to_end(p)
    form = sum(left @ Gr @ right for left, right in precondition.balanced_factors(Mp, 3))
    err = rel(precondition.implicit_update(p, Gr), form)
    print(f"{scheme}: relative difference {err:.2e}")
    assert (err < 1e-10) if expect_equal else (err > 1e-2)

# %% [markdown]
# ### Solution 2

# %% tags=["hide-cell"]
M_learned = lm.end_to_end(res.params)  # (runs, 1, d)
best = metaopt.one_step_loss(P_star, family.input_cov, R, K)
exact = [metaopt.one_step_loss(P_learned[r], family.input_cov, metaopt.error_moment(M_learned[r], family), K)
         for r in range(len(M_learned))]
print("exact loss of the learned rules:", np.round(exact, 4), " optimum:", round(best, 4))
assert min(exact) >= best * (1 - 1e-12)

# %% [markdown]
# ### Solution 3

# %% tags=["hide-cell"]
P_pop = metaopt.optimal_preconditioner(family.input_cov, R, None)
print("population optimum vs Sigma^-1, rel. error:", rel(P_pop, np.linalg.inv(family.input_cov)))
assert rel(P_pop, np.linalg.inv(family.input_cov)) < 1e-10
