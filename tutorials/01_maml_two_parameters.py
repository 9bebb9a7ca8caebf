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
# # 1. MAML on a two-parameter model
#
# The smallest model on which MAML's behaviour is interesting has two parameters:
# $\hat y = w_2 w_1 x$.  It has the same capacity as the one-parameter model $\hat y = w x$ (both compute
# a scalar times $x$), but MAML treats the two very differently.  This notebook
#
# 1. writes the inner step in closed form and checks it against the engine,
# 2. draws the exact **meta-loss surface** and checks it against a simulation with a
#    standard-error tolerance,
# 3. meta-trains with the engine's exact meta-gradient, second-order and first-order (FO-MAML).
#
# **Setting.** Tasks are scalar linear regressions: $x \sim N(0, \rho)$, $y = w^* x$ with
# $w^* \sim N(0, s^2)$.  The population loss of a task at end-to-end weight $m$ is
# $\ell(m) = \tfrac12 \rho (m - w^*)^2$.  The inner loop is one gradient step of size $\alpha$ on that
# loss; the meta-loss is the expected post-adaptation loss over tasks.
#
# Everything below uses only the public API: `import linmeta as lm`, the closed forms in
# `lm.theory.depth`, and the statistics helpers in `lm.sim.stats`.

# %%
import matplotlib.pyplot as plt
import numpy as np

import linmeta as lm
from linmeta.sim.stats import mean_se
from linmeta.theory import depth

alpha, rho, s = 0.25, 1.0, 1.0
family = lm.GaussianRegression(d=1, mean=[[0.0]], cov=s**2, input_cov=[[rho]])  # w* ~ N(0, s^2), x ~ N(0, rho)
rule = lm.InnerLoop(steps=1, alpha=alpha, inner_loss="population")  # one step on each task's population loss

# %% [markdown]
# ## The inner step in closed form
#
# For $m = w_1 w_2$ the gradient of $\ell$ in each layer is the end-to-end gradient $g = \rho(m - w^*)$
# times the *other* layer, so one step gives
#
# $$w_1' = w_1 - \alpha w_2 g, \qquad w_2' = w_2 - \alpha w_1 g .$$
#
# To first order the end-to-end weight moves by $-\alpha (w_1^2 + w_2^2)\, g$: the deep model's
# **effective step** is $\alpha(w_1^2 + w_2^2)$, which the initialisation controls.  The shallow model's
# step is $\alpha$, whatever $w$ is.  `lm.theory.depth.scalar_adapted` is this formula; `lm.adapt` is
# the engine's inner loop.  They must agree to round-off.

# %%
tasks = family.sample_tasks(5, rng=0)  # five tasks; w_star has shape (5, 1, 1)
w1, w2 = 0.7, -0.4
params = (np.full((1, 1), w1), np.full((1, 1), w2))  # layer shapes (width x d) = (1, 1) and (1, 1)
engine = lm.adapt(params, tasks.population(), rule)  # adapted layers, one per task
closed = depth.scalar_adapted(w1, w2, tasks.w_star.ravel(), alpha, rho)
for W_engine, W_closed in zip(engine, closed):
    print(np.ravel(W_engine), W_closed)
    assert np.allclose(np.ravel(W_engine), W_closed, rtol=1e-12, atol=1e-14)

# %% [markdown]
# ## The meta-loss surface, exactly and by simulation
#
# After the step the error $e = m - w^*$ becomes $e' = (1 - \alpha\rho r)\,e + \alpha^2\rho^2 m\, e^2$ with
# $r = w_1^2 + w_2^2$, so the meta-loss $\tfrac12\rho\,\mathbb E[e'^2]$ needs only Gaussian moments of $e$ up to
# order four.  `depth.scalar_deep_meta_loss(w1, w2, alpha, rho, mu, s)` is the result: a quartic in
# $(w_1, w_2)$ whose minimum 0 sits where $m = 0$ and $\alpha\rho r = 1$.
#
# A closed form is only as good as the simulation that checks it.  At a few points we draw many tasks,
# adapt each through the engine, average the post-adaptation losses, and require
# $|\text{simulation} - \text{theory}| \le 4\,\text{SE}$, with the standard error computed from the same
# samples.

# %%
def simulated_meta_loss(w1, w2, n_tasks, seed):
    """Mean and SE of the engine's post-adaptation population loss over sampled tasks."""
    tasks = family.sample_tasks(n_tasks, rng=seed)
    pop = tasks.population()
    params = (np.full((1, 1), w1), np.full((1, 1), w2))
    losses = np.asarray(pop.value(lm.adapted_map(params, pop, rule)))  # (n_tasks,)
    return mean_se(losses)


points = [(0.7, -0.4), (1.5, 1.0), (0.2, 2.0), (-1.0, 0.5)]
for i, (a, b) in enumerate(points):
    theory = float(depth.scalar_deep_meta_loss(a, b, alpha, rho, 0.0, s))
    sim, se = simulated_meta_loss(a, b, 20_000, seed=10 + i)
    print(f"(w1, w2) = ({a:+.1f}, {b:+.1f}): theory {theory:.4f}, simulation {sim:.4f} ± {se:.4f}")
    assert abs(sim - theory) <= 4 * se

# %% [markdown]
# ## MAML meta-training: second order and first order
#
# Plain SGD on the engine's exact meta-gradient (`lm.meta_value_and_grad`), from several
# initialisations at once: the leading axis of every parameter array is a *run* axis, and each run
# sees its own fresh tasks.  `lm.InnerLoop(first_order=True)` is FO-MAML, which drops the
# second-order terms (the derivative of the adapted parameters with respect to the initialisation).

# %%
def sgd(first_order, starts, steps=400, lr=0.5, seed=1):
    r = lm.InnerLoop(steps=1, alpha=alpha, inner_loss="population", first_order=first_order)
    rng = lm.as_generator(seed)
    runs = len(starts)
    params = (starts[:, :1, None].copy(), starts[:, 1:, None].copy())  # (runs, 1, 1) each
    path = [starts.copy()]
    for _ in range(steps):
        batch = family.meta_batch(family.sample_tasks(32, rng, n_runs=runs), None, None, rng)
        g = lm.meta_value_and_grad(params, batch.support, batch.query, r).params
        params = tuple(W - lr * gW for W, gW in zip(params, g))
        path.append(np.concatenate([W.reshape(runs, 1) for W in params], axis=1))
    return np.array(path)  # (steps + 1, runs, 2)


starts = np.array([[0.5, 0.3], [1.5, 0.4], [-0.4, 1.0], [0.3, -1.8], [-1.5, -0.8]])
paths = {"MAML (second order)": sgd(False, starts), "FO-MAML": sgd(True, starts)}

R = 1.6 / np.sqrt(alpha * rho)
grid = np.linspace(-R, R, 201)
W1, W2 = np.meshgrid(grid, grid, indexing="ij")
surface = depth.scalar_deep_meta_loss(W1, W2, alpha, rho, 0.0, s)
minima = depth.scalar_deep_minima(alpha, rho)

fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
ax = axes[0]
cs = ax.contourf(W1, W2, np.log10(surface + 1e-3), levels=30, cmap="viridis")
fig.colorbar(cs, ax=ax, label="log10(meta-loss + 1e-3)")
for (label, p), style in zip(paths.items(), ("-", "--")):
    for r in range(p.shape[1]):
        ax.plot(p[:, r, 0], p[:, r, 1], style, color="w", lw=1.2, label=label if r == 0 else None)
ax.plot(minima[:, 0], minima[:, 1], "r*", ms=12, label="closed-form minima")
ax.set(xlabel="$w_1$", ylabel="$w_2$", title="deep $\\hat y = w_2 w_1 x$: exact meta-loss surface")
ax.legend(loc="lower left", fontsize=8)
ax = axes[1]
for (label, p), style in zip(paths.items(), ("-", "--")):
    loss = depth.scalar_deep_meta_loss(p[..., 0], p[..., 1], alpha, rho, 0.0, s)
    ax.semilogy(loss.mean(axis=1), style, label=f"{label} (mean of runs)")
floor = float(depth.scalar_shallow_meta_loss(0.0, alpha, rho, 0.0, s))
ax.axhline(floor, color="k", ls=":", label="shallow $\\hat y = wx$: best possible")
ax.set(xlabel="outer SGD step", ylabel="exact meta-loss", title="meta-training", ylim=(1e-14, 2.0))
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# Both versions go to a closed-form minimiser, where the effective step is exactly $1/\rho$: one inner
# step then solves *every* task.  The first-order gradient is wrong away from the minima (that is why the
# paths differ), but at these minimisers every task's loss is zero, so its gradient vanishes too.  The
# shallow model cannot get below the dotted line: its step is always $\alpha$.

# %%
for label, p in paths.items():
    end = p[-1]
    dist = np.min(np.linalg.norm(end[:, None, :] - minima[None], axis=2), axis=1)
    eff = depth.scalar_effective_step(end[:, 0], end[:, 1], alpha) * rho
    print(f"{label}: max distance to a minimiser {dist.max():.2e}, effective step x rho {eff}")
    assert np.all(dist * np.sqrt(alpha * rho) < 1e-3) and np.allclose(eff, 1.0, atol=1e-3)
    assert depth.scalar_deep_meta_loss(end[:, 0], end[:, 1], alpha, rho, 0.0, s).max() < 1e-6 * floor

# %% [markdown]
# ### What the first-order approximation drops
#
# For one task the post-adaptation loss is a polynomial in $(w_1, w_2)$, so its exact gradient can be
# checked by central finite differences of the closed-form step.  The second-order engine gradient matches
# it; FO-MAML's gradient (the loss gradient evaluated at the adapted parameters) does not.

# %%
task = family.sample_tasks(1, rng=7)
w_star = float(task.w_star.ravel()[0])


def one_task_loss(a, b):
    a2, b2 = depth.scalar_adapted(a, b, w_star, alpha, rho)
    return 0.5 * rho * (a2 * b2 - w_star) ** 2


h, (a, b) = 1e-5, (0.9, 0.6)
fd = np.array([(one_task_loss(a + h, b) - one_task_loss(a - h, b)) / (2 * h),
               (one_task_loss(a, b + h) - one_task_loss(a, b - h)) / (2 * h)])
pop = task.population()
grads = {}
for fo in (False, True):
    g = lm.meta_value_and_grad((np.full((1, 1), a), np.full((1, 1), b)), pop, pop,
                               lm.InnerLoop(steps=1, alpha=alpha, inner_loss="population", first_order=fo)).params
    grads[fo] = np.array([float(np.ravel(x)[0]) for x in g])
print("finite differences:", fd, "\nsecond order:      ", grads[False], "\nfirst order:       ", grads[True])
assert np.allclose(grads[False], fd, rtol=1e-7, atol=1e-9)
assert np.linalg.norm(grads[True] - fd) > 1e-2 * np.linalg.norm(fd)  # the dropped terms are not small here

# %% [markdown]
# ## Exercises
#
# 1. **The shallow floor.** For $\hat y = w x$ the meta-loss is
#    $\tfrac12\rho(1-\alpha\rho)^2\big((w-\mu)^2 + s^2\big)$ (`depth.scalar_shallow_meta_loss`).  Check it
#    against a simulation at $w = 0.5$ with a 4-SE tolerance, using a one-layer `params = (W,)`.
# 2. **Where the minima are.** Change $\alpha$ to 0.1.  Find the minimiser of the closed-form surface on a
#    grid and check that it lies at distance $1/\sqrt{\alpha\rho}$ from the origin on an axis
#    (`depth.scalar_deep_minima`).
# 3. **Measure the effective step.** At $(w_1, w_2) = (0.9, 0.6)$, adapt with the engine to tasks whose
#    $w^*$ is a distance $\delta$ from the current $m$, and compute the step actually taken on $m$ per unit
#    gradient, $(m' - m)/(-g)$.  Check that it approaches $\alpha(w_1^2 + w_2^2)$ with an error of order
#    $\delta$ (shrinking tenfold when $\delta$ does).

# %% [markdown]
# ### Solution 1

# %% tags=["hide-cell"]
w = 0.5
theory = float(depth.scalar_shallow_meta_loss(w, alpha, rho, 0.0, s))
tasks = family.sample_tasks(20_000, rng=21)
pop = tasks.population()
losses = np.asarray(pop.value(lm.adapted_map((np.full((1, 1), w),), pop, rule)))
sim, se = mean_se(losses)
print(f"shallow at w = {w}: theory {theory:.4f}, simulation {sim:.4f} ± {se:.4f}")
assert abs(sim - theory) <= 4 * se

# %% [markdown]
# ### Solution 2

# %% tags=["hide-cell"]
a_small = 0.1
R2 = 1.6 / np.sqrt(a_small * rho)
g2 = np.linspace(-R2, R2, 801)
V1, V2 = np.meshgrid(g2, g2, indexing="ij")
F = depth.scalar_deep_meta_loss(V1, V2, a_small, rho, 0.0, s)
i, j = np.unravel_index(np.argmin(F), F.shape)
best = np.array([g2[i], g2[j]])
print("grid minimiser:", best, " predicted radius:", 1 / np.sqrt(a_small * rho))
spacing = g2[1] - g2[0]
assert np.min(np.linalg.norm(depth.scalar_deep_minima(a_small, rho) - best, axis=1)) <= 2 * spacing

# %% [markdown]
# ### Solution 3

# %% tags=["hide-cell"]
a, b = 0.9, 0.6
m = a * b
deltas = np.array([1e-1, 1e-2, 1e-3, 1e-4])
tasks = lm.TaskBatch(w_star=(m - deltas).reshape(-1, 1, 1), input_cov=np.full((4, 1, 1), rho),
                     noise_std=np.zeros(4))
a2, b2 = lm.adapt((np.full((1, 1), a), np.full((1, 1), b)), tasks.population(), rule)
step = (np.ravel(a2 * b2) - m) / (-rho * deltas)  # step per unit end-to-end gradient g = rho * delta
err = np.abs(step - depth.scalar_effective_step(a, b, alpha))
print("measured step:", step, " predicted:", depth.scalar_effective_step(a, b, alpha), "\nerror:", err)
assert np.allclose(err[:-1] / err[1:], 10.0, rtol=0.05)  # O(delta): the alpha^2 term of the step
