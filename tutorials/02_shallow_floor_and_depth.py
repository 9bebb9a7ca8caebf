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
# # 2. Why shallow MAML is stuck at a closed-form floor, and how depth escapes it
#
# Arnold, Iqbal & Sha (AISTATS 2021, arXiv:1910.13603) observed that MAML with a small fixed inner step
# barely adapts a shallow linear model, while a deep linear model *of the same capacity* adapts well.
# In the linear setting the first half is a theorem you can compute:
#
# * for a shallow model $\hat y = M x$ and Gaussian tasks, the expected post-adaptation loss over random
#   $K$-shot support sets is an exact **convex quadratic in the initialisation** $M$
#   (`lm.theory.shallow.expected_meta_loss`);
# * its minimum is at $M = \mathbb E[W^*]$, and the value there, the **floor**
#   (`lm.theory.shallow.shallow_floor(family, K, alpha, steps)`), depends on the fixed step $\alpha$;
# * no amount of meta-training moves a shallow model below its floor.  The best floor over $\alpha$ is at
#   `lm.theory.shallow.optimal_alpha(family, K, steps)`: for $x, w^* \sim N(0, I_d)$ without noise,
#   $\alpha^* = K/(K + d + 1)$.
#
# A deep linear net can change its own effective step (tutorial 1), so it can go below the floor, towards
# the floor of the optimally tuned step.  We check all of this against simulation.

# %%
import matplotlib.pyplot as plt
import numpy as np

import linmeta as lm
from linmeta.sim.evaluation import post_adaptation_losses, test_set
from linmeta.sim.stats import crossed_table_mean_se, mean_se
from linmeta.theory import shallow

d, K = 4, 10
family = lm.GaussianRegression(d=d)  # x ~ N(0, I_4), w* ~ N(0, I_4), no label noise
alpha = 0.05
floor = shallow.shallow_floor(family, K, alpha, 1)
alpha_opt, floor_opt = shallow.optimal_alpha(family, K, 1)
print(f"floor at alpha={alpha}: {floor:.4f};  optimal step {alpha_opt:.4f} (K/(K+d+1) = {K / (K + d + 1):.4f}), "
      f"its floor {floor_opt:.4f}")
assert abs(alpha_opt - K / (K + d + 1)) < 1e-6

# %% [markdown]
# ## The floor as a function of the step, against simulation
#
# At $M = \mathbb E[W^*] = 0$ we adapt a shallow model on fresh $K$-shot support sets of many test tasks
# (`lm.sim.evaluation.test_set`: population query, i.e. the exact expectation over query points) and
# average the post-adaptation losses.  The closed form must agree within four standard errors.

# %%
alphas_curve = np.linspace(0.0, 1.2, 121)
curve = [shallow.shallow_floor(family, K, a, 1) for a in alphas_curve]
alphas_sim = [0.05, 0.3, alpha_opt, 1.0]
batch = test_set(family, K, 20_000, rng=np.random.SeedSequence([0, 1]))
M0 = (np.zeros((1, d)),)  # the optimum E[W*], shape (out, d)
sims = []
for a in alphas_sim:
    losses = post_adaptation_losses(M0, batch, lm.InnerLoop(steps=1, alpha=a))  # (20000,)
    m, se = mean_se(losses)
    sims.append((m, se))
    theory = shallow.shallow_floor(family, K, a, 1)
    print(f"alpha={a:.3f}: closed form {theory:.4f}, simulation {m:.4f} ± {se:.4f}")
    assert abs(m - theory) <= 4 * se

# %% [markdown]
# The optimum over $M$ is $\mathbb E[W^*]$ whatever the step: the closed-form minimiser
# (`shallow.maml_optimum`) is exactly the mean task.  (Here the mean is 0; a family with another mean
# shows it better.)

# %%
shifted = lm.GaussianRegression(d=d, mean=[[1.0, -0.5, 0.25, 2.0]])  # mean task, shape (out, d)
for a in (0.05, 0.5):
    M_star = shallow.maml_optimum(shifted, K, a, 1)
    print(f"alpha={a}: closed-form shallow MAML optimum {M_star.ravel()}")
    assert np.allclose(M_star, shifted.mean, rtol=1e-12, atol=1e-12)

# %% [markdown]
# ## Meta-training: shallow and deep at the same small step
#
# `lm.meta_train` runs the outer loop (Adam) on fresh task batches with the engine's exact meta-gradient
# (second order).  Four seeds of each model sit on a leading run axis and train together.  The deep model
# is $\hat y = W_2 W_1 x$ with a hidden width of 8; it computes the same class of functions as the
# shallow one.

# %%
rule = lm.InnerLoop(steps=1, alpha=alpha)
eval_set = test_set(family, K, 4000, rng=np.random.SeedSequence([0, 2]))  # one common test set
trained, curves = {}, {}
for name, widths in (("shallow", ()), ("deep (L=2)", (8,))):
    init = lm.init_deep_linear(d, widths, 1, rng=3, n_runs=4)
    res = lm.meta_train(init, family, rule, steps=800, lr=0.03, tasks_per_step=32, K=K, Q=None, seed=4,
                        eval_every=100, eval_K=K, eval_tasks=4000, progress=False)
    trained[name] = res.params
    curves[name] = (res.history["eval_step"], res.history["test_post"])  # (checkpoints,), (checkpoints, runs)

final = {name: post_adaptation_losses(p, eval_set, rule) for name, p in trained.items()}  # (runs, tasks) each
for name, v in final.items():
    m, se = crossed_table_mean_se(v)  # SE over seeds and test tasks (a crossed design)
    print(f"{name}: final post-adaptation loss {m:.4f} ± {se:.4f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
ax = axes[0]
ax.plot(alphas_curve, curve, "k-", label="shallow floor (closed form)")
ax.errorbar(alphas_sim, [m for m, _ in sims], yerr=[2 * se for _, se in sims], fmt="o", color="C1",
            label="simulation at $M=E[W^*]$ (±2 SE)")
ax.axvline(alpha_opt, color="C2", ls=":", label=f"optimal step $K/(K+d+1)$ = {alpha_opt:.3f}")
ax.set(xlabel="inner step $\\alpha$", ylabel="expected post-adaptation loss", title="the shallow floor")
ax.legend(fontsize=8)
ax = axes[1]
for (name, (step, post)), color in zip(curves.items(), ("C0", "C3")):
    ax.plot(step, post.mean(axis=1), "-o", color=color, ms=3, label=f"{name} (mean of 4 seeds)")
ax.axhline(floor, color="k", ls="--", label=f"shallow floor at $\\alpha$={alpha}")
ax.axhline(floor_opt, color="C2", ls=":", label="floor of the optimally tuned step")
ax.set(xlabel="outer Adam step", ylabel="held-out post-adaptation loss", title="meta-training at a fixed small step")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# The shallow model converges to its floor and stops; the deep model goes far below it, close to the floor
# of the best step a shallow model could have been given.  Both statements are asserted with standard
# errors from the common test set.

# %%
m_s, se_s = crossed_table_mean_se(final["shallow"])
m_d, se_d = crossed_table_mean_se(final["deep (L=2)"])
assert abs(m_s - floor) <= 4 * se_s, "the shallow model should end at its closed-form floor"
assert m_d + 4 * se_d < floor, "the deep model should end clearly below the shallow floor"
print(f"deep - tuned floor = {m_d - floor_opt:+.4f} ± {se_d:.4f}")

# %% [markdown]
# ## Exercises
#
# 1. **More inner steps.** With $k = 2$ inner steps on the same support set the floor is still a closed
#    form (`shallow_floor(family, K, alpha, 2)`).  Check it against simulation at $\alpha = 0.2$.
# 2. **Few shots.** Plot the optimal step $\alpha^*(K)$ for $K = 1, \dots, 40$ and check the formula
#    $K/(K+d+1)$; what does it say about adapting with very few shots?
# 3. **No escape by training longer.** Evaluate the *exact* expected loss
#    (`shallow.expected_meta_loss`) of each trained shallow seed and show that none is below the floor.

# %% [markdown]
# ### Solution 1

# %% tags=["hide-cell"]
rule2 = lm.InnerLoop(steps=2, alpha=0.2)
theory2 = shallow.shallow_floor(family, K, 0.2, 2)
m2, se2 = mean_se(post_adaptation_losses(M0, batch, rule2))
print(f"k=2: closed form {theory2:.4f}, simulation {m2:.4f} ± {se2:.4f}")
assert abs(m2 - theory2) <= 4 * se2

# %% [markdown]
# ### Solution 2

# %% tags=["hide-cell"]
Ks = np.arange(1, 41)
a_star = np.array([shallow.optimal_alpha(family, k, 1)[0] for k in Ks])
fig2, ax2 = plt.subplots(figsize=(5, 3.2))
ax2.plot(Ks, a_star, "o", ms=3, label="optimal_alpha (numerical minimum of the closed form)")
ax2.plot(Ks, Ks / (Ks + d + 1), "-", label="$K/(K+d+1)$")
ax2.set(xlabel="support shots K", ylabel="optimal inner step")
ax2.legend(fontsize=8)
assert np.allclose(a_star, Ks / (Ks + d + 1), atol=1e-6)
# with few shots the gradient is noisy, so the best step is small: one shot, d = 4 -> 1/6

# %% [markdown]
# ### Solution 3

# %% tags=["hide-cell"]
M_seeds = lm.to_numpy(trained["shallow"][0])  # (runs, 1, d)
exact = np.array([shallow.expected_meta_loss(M, family, K, alpha, 1) for M in M_seeds])
print("exact expected loss per seed:", exact, " floor:", floor)
assert np.all(exact >= floor * (1 - 1e-12))
