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
# # 6. ANIL, NIL and feature reuse: what the inner loop changes, measured with CKA
#
# Raghu, Raghu, Bengio & Vinyals ("Rapid Learning or Feature Reuse?", ICLR 2020, arXiv:1909.09157) asked
# whether MAML's inner loop learns new features for each task (*rapid learning*) or mostly reuses the
# features of the body and adapts the head (*feature reuse*).  Their evidence: the representations of the
# body barely change in the inner loop (high CCA/CKA similarity before vs after adaptation), and
# adapting only the head (**ANIL**) or no layer at all, with a label vote on the penultimate features
# (**NIL**), performs as well as MAML.
#
# In a deep linear net each layer's representation is a linear map of the input, $h_l = A_l x$ with
# $A_l = W_l \cdots W_1$, so the similarity measures have closed forms for Gaussian inputs: linear CKA is
# $\|A \Sigma A'^\top\|_F^2 / (\|A\Sigma A^\top\|_F \|A'\Sigma A'^\top\|_F)$
# (`lm.theory.similarity.linear_cka`), mean CCA follows from principal angles
# (`lm.theory.similarity.mean_cca`).  The sample estimates from probe inputs are in
# `lm.sim.representations`.

# %%
import matplotlib.pyplot as plt
import numpy as np

import linmeta as lm
from linmeta.sim.evaluation import post_adaptation_losses, test_set
from linmeta.sim.families import representation_family
from linmeta.sim.representations import layer_maps, linear_cka_samples
from linmeta.sim.stats import mean_se
from linmeta.sim.training import train_two_phase
from linmeta.theory import anil, similarity

d, k, K, alpha = 8, 2, 5, 0.1
family = representation_family("low_rank", d, k, noise=0.2, seed=0)  # w* = B* h: a shared 2-d subspace
widths = (3, 8, 8)  # a bottleneck body of three layers, then the head
maml_rule = lm.InnerLoop(steps=1, alpha=alpha)  # every layer adapts
anil_rule = lm.InnerLoop(steps=1, alpha=alpha, layers="last")  # only the head adapts
nets = {}
for name, rule in (("MAML", maml_rule), ("ANIL", anil_rule)):
    nets[name] = train_two_phase(family, widths, rule, steps=300, lr=0.01, K=K, tasks_per_step=16, seeds=3,
                                 seed=[0, 1], init_seed=[0, 2])  # the same initialisations for both
print("layer shapes:", [W.shape for W in nets["MAML"]])  # (seeds, n_l, n_{l-1})

# %% [markdown]
# ## How much does each layer's representation change?
#
# For 40 test tasks we adapt the MAML-trained nets on a $K$-shot support set (`lm.adapt`), and compare each
# layer's map before and after.  The closed form is checked against the sample CKA of 2000 probe inputs
# per task.

# %%
rng = lm.as_generator(3)
tasks = family.sample_tasks(40, rng)
params = tuple(np.asarray(W) for W in nets["MAML"])
adapted = lm.adapt(params, tasks.moments(K, rng), maml_rule)  # layers (seeds, tasks, n_l, n_{l-1})
pre = [A[:, None] for A in layer_maps(params)]  # (seeds, 1, n_l, d)
post = layer_maps(adapted)  # (seeds, tasks, n_l, d)
X = rng.standard_normal((40, 2000, d))  # probe inputs, x ~ N(0, I)
cka, cka_samples = [], []
for A, A2 in zip(pre, post):
    A = np.broadcast_to(A, A2.shape)
    cka.append(similarity.linear_cka(A, A2))  # (seeds, tasks)
    cka_samples.append(linear_cka_samples(X @ np.swapaxes(A, -1, -2), X @ np.swapaxes(A2, -1, -2)))
for l, (c, cs) in enumerate(zip(cka, cka_samples), start=1):
    diff, se = mean_se((cs - c).ravel())
    print(f"layer {l}: CKA closed form {c.mean():.4f}, samples {cs.mean():.4f} (difference {diff:+.5f} ± {se:.5f})")
    assert abs(diff) <= 4 * se

# %% [markdown]
# ## ANIL against MAML, and ANIL in closed form
#
# Post-adaptation losses on a common test set (same tasks and support sets for both methods).  For ANIL the
# expected one-step loss over the task family is a closed form in the network
# (`lm.theory.anil.anil_expected_loss(params, family, K, alpha)`), checked here against the simulation.

# %%
evalset = test_set(family, K, 3000, rng=np.random.SeedSequence([0, 4]))
losses = {name: post_adaptation_losses(p, evalset, r) for (name, p), r in zip(nets.items(), (maml_rule, anil_rule))}
losses["no adaptation"] = post_adaptation_losses(nets["MAML"], evalset, lm.InnerLoop(steps=0))
for name, v in losses.items():
    print(f"{name}: post-adaptation loss {v.mean():.4f} ± {mean_se(v.mean(axis=0))[1]:.4f}")
closed = anil.anil_expected_loss(tuple(np.asarray(W) for W in nets["ANIL"]), family, K, alpha)  # (seeds,)
for s in range(3):
    m, se = mean_se(losses["ANIL"][s])
    print(f"ANIL seed {s}: simulation {m:.4f} ± {se:.4f}, closed form {closed[s]:.4f}")
    assert abs(m - closed[s]) <= 4 * se

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
ax = axes[0]
x = np.arange(1, len(cka) + 1)
ax.plot(x, [c.mean() for c in cka], "-", color="C0", label="linear CKA, closed form")
ax.errorbar(x, [cs.mean() for cs in cka_samples], yerr=[2 * mean_se(cs.ravel())[1] for cs in cka_samples],
            fmt="o", mfc="none", color="C0", label="linear CKA, 2000 probe samples (±2 SE)")
ax.axhline(0.9, color="gray", ls=":", lw=1)
ax.set_xticks(x, [f"layer {l}" for l in x[:-1]] + ["head"])
ax.set(ylim=(0, 1.05), ylabel="similarity before vs after the inner loop", title="MAML-trained: the body barely moves")
ax.legend(fontsize=8, loc="lower left")
ax = axes[1]
names = list(losses)
ax.bar(names, [losses[n].mean() for n in names], yerr=[2 * mean_se(losses[n].mean(axis=0))[1] for n in names],
       color=["C0", "C1", "C7"])
ax.set(ylabel="post-adaptation query loss", title="ANIL matches MAML; both beat no adaptation")
fig.tight_layout()

# %% [markdown]
# The body's representations stay almost the same after the inner loop while the head's change: feature
# reuse.  Adapting only the head (ANIL) loses nothing here.  The standard error of the ANIL − MAML difference
# pools seeds and test tasks of the paired design.

# %%
body_lowest = min(c.mean() for c in cka[:-1])
print(f"lowest body CKA {body_lowest:.3f}, head CKA {cka[-1].mean():.3f}")
assert cka[-1].mean() < body_lowest
diff = losses["ANIL"] - losses["MAML"]
m, se = mean_se(diff.mean(axis=0))  # paired over the same test tasks; mean over seeds
print(f"ANIL - MAML = {m:+.4f} ± {se:.4f}")
assert m <= 4 * se, "ANIL should not be worse than MAML (Raghu et al.: ANIL ~ MAML)"
assert losses["ANIL"].mean() < losses["no adaptation"].mean()

# %% [markdown]
# ## NIL: no inner loop at all
#
# From a **zero head**, one ANIL step on the squared loss predicts
# $\hat y(x_q) = (\alpha/K) \sum_j y_j \langle \phi(x_q), \phi(x_j) \rangle$: a vote of the support labels
# weighted by dot products of the body's features (`lm.theory.anil.zero_head_vote`).  That is Raghu et al.'s
# NIL with dot products instead of cosines, an exact identity we check on the engine's inner loop.

# %%
body = tuple(np.asarray(W[0]) for W in nets["ANIL"][:-1])  # the first seed's body
zero_net = body + (np.zeros((1, widths[-1])),)  # ... with a zero head
task = family.sample_tasks(1, rng=5)
Xs, Ys = task.sample_data(K, rng=6)  # support inputs (1, K, d) and labels (1, K, 1)
Xq = lm.as_generator(7).standard_normal((1, 50, d))
head_only = lm.adapt(zero_net, lm.sample_moments(Xs, Ys), anil_rule)
pred_engine = Xq @ np.swapaxes(lm.end_to_end(head_only), -1, -2)  # (1, 50, 1)
phi = lambda Z: Z @ np.swapaxes(lm.end_to_end(body), -1, -2)  # penultimate features
pred_vote = anil.zero_head_vote(phi(Xs), Ys, phi(Xq), alpha)
err = np.max(np.abs(pred_engine - pred_vote)) / np.max(np.abs(pred_vote))
print(f"engine's ANIL step from a zero head vs the dot-product vote: max rel. error {err:.1e}")
assert err < 1e-10

# %% [markdown]
# ## Exercises
#
# 1. **The CCA trap.** For square invertible layers the post-adaptation representation is an invertible
#    linear function of the pre-adaptation one, so any statistic invariant to invertible maps, CCA included,
#    reports similarity 1.  Show with `similarity.mean_cca` that a random square two-layer body has CCA 1
#    before and after a random perturbation, while `linear_cka` is below 1.
# 2. **Freezing the body at test time** (Raghu et al.'s Table 1): adapt only the head of the *MAML*-trained
#    nets at test time.  How much of MAML's gain over no adaptation is kept?
# 3. **Cosine vote.** Raghu et al.'s NIL uses cosine similarities (`anil.cosine_vote`).  A cosine vote has no
#    scale; fit one scale by least squares on some tasks and compare its query loss with ANIL's on others.

# %% [markdown]
# ### Solution 1

# %% tags=["hide-cell"]
r1 = lm.as_generator(8)
W1, W2 = r1.standard_normal((d, d)), r1.standard_normal((d, d))
A, A2 = W2 @ W1, (W2 + 0.5 * r1.standard_normal((d, d))) @ (W1 + 0.5 * r1.standard_normal((d, d)))
print("mean CCA", float(similarity.mean_cca(A, A2)), " linear CKA", float(similarity.linear_cka(A, A2)))
assert abs(float(similarity.mean_cca(A, A2)) - 1.0) < 1e-10 and float(similarity.linear_cka(A, A2)) < 0.99

# %% [markdown]
# ### Solution 2

# %% tags=["hide-cell"]
frozen = post_adaptation_losses(nets["MAML"], evalset, anil_rule)  # MAML-trained, only the head adapts
gain = losses["no adaptation"].mean() - losses["MAML"].mean()
kept = (losses["no adaptation"].mean() - frozen.mean()) / gain
print(f"freezing the body keeps {kept:.1%} of MAML's adaptation gain")
# a MAML-trained net with its body frozen at test time is an ANIL step: its closed form applies
closed_frozen = anil.anil_expected_loss(tuple(np.asarray(W) for W in nets["MAML"]), family, K, alpha)
for s_ in range(3):
    m, se = mean_se(frozen[s_])
    assert abs(m - closed_frozen[s_]) <= 4 * se

# %% [markdown]
# ### Solution 3

# %% tags=["hide-cell"]
def votes(net, n_tasks, seed):
    r = lm.as_generator(seed)
    t = family.sample_tasks(n_tasks, r)
    Xs, Ys = t.sample_data(K, r)
    Xq, Yq = t.sample_data(200, r)
    f = lambda Z: Z @ np.swapaxes(lm.end_to_end(net[:-1]), -1, -2)
    return anil.cosine_vote(f(Xs), Ys, f(Xq)), Yq, (Xs, Ys, Xq)


net0 = tuple(np.asarray(W[0]) for W in nets["ANIL"])
v, y, _ = votes(net0, 200, 9)
lam = float(np.sum(v * y) / np.sum(v * v))  # least-squares scale on calibration tasks
v, y, (Xs, Ys, Xq) = votes(net0, 200, 10)
nil_loss = 0.5 * np.mean((lam * v - y) ** 2, axis=(1, 2))  # per test task
anil_pred = Xq @ np.swapaxes(lm.end_to_end(lm.adapt(net0, lm.sample_moments(Xs, Ys), anil_rule)), -1, -2)
anil_loss = 0.5 * np.mean((anil_pred - y) ** 2, axis=(1, 2))
m, se = mean_se(nil_loss - anil_loss)  # paired: the same tasks, support and query sets
print(f"NIL-cos query loss {nil_loss.mean():.4f}, ANIL {anil_loss.mean():.4f}; difference {m:+.4f} ± {se:.4f}")
assert m <= 4 * se, "Raghu et al.'s Table 4: NIL ~ ANIL"
