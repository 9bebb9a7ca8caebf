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
# # 4. Meta-optimizers as learned preconditioners, and their closed-form optima
#
# Tutorial 3 showed that depth gives MAML an *implicit* preconditioner.  Meta-optimizers make it
# explicit: the inner step becomes $U(g;\phi)$, a transform of the gradient with parameters $\phi$ learned
# in the outer loop together with the initialisation.
#
# | rule | inner update | linmeta |
# |---|---|---|
# | MAML | $\alpha\, g$ | `lm.Identity()` (the default) |
# | Meta-SGD (Li et al. 2017) | $\alpha\, \lambda \odot g$ | `lm.MetaSGD()` |
# | KFO (Arnold et al. 2021) | $\alpha\, L^\top L\, g\, R^\top R$ (PSD factors) | `lm.KFO()` |
# | Meta-Curvature (Park & Oliva 2019) | $\alpha\, M_{out}\, g\, M_{in}$ | `lm.MetaCurvature()` |
#
# For a shallow scalar-output model every one of them is a one-step rule $M^+ = M - G P$ with $P = \alpha I$,
# $\alpha\,\mathrm{diag}\,\lambda$ or a full matrix.  The expected loss is a quadratic in $P$
# (`lm.theory.metaopt.one_step_loss`), so the best $P$ of each class, and the loss it reaches (the class's
# **floor**), are closed forms: `lm.theory.metaopt.preconditioner_floors(family, K, alpha)`.  We check that
# each meta-optimizer (a) equals MAML at its identity initialisation and (b) meta-trains down to the floor
# of its class.

# %%
import matplotlib.pyplot as plt
import numpy as np

import linmeta as lm
from linmeta.sim.evaluation import post_adaptation_losses, test_set
from linmeta.sim.stats import crossed_table_mean_se
from linmeta.sim.training import checkpoint_steps, train_with_checkpoints
from linmeta.theory import metaopt

d, K, alpha = 4, 10, 0.1
rng = lm.as_generator(0)
V = np.linalg.qr(rng.standard_normal((d, d)))[0]
Sigma = (V * 0.5 ** np.arange(d)) @ V.T  # eigenvalues 1, 1/2, 1/4, 1/8 in a random basis
mu = rng.standard_normal((1, d))
family = lm.GaussianRegression(d=d, mean=mu / np.linalg.norm(mu), input_cov=(Sigma + Sigma.T) / 2)
rule = lm.InnerLoop(steps=1, alpha=alpha)
floors = metaopt.preconditioner_floors(family, K, alpha)
for cls in ("fixed", "scalar", "diagonal", "full"):
    print(f"{cls:>8}: floor {floors[f'loss_{cls}']:.4f}")
assert floors["loss_full"] <= floors["loss_diagonal"] <= floors["loss_fixed"]

# %% [markdown]
# ## At their identity initialisation they are MAML
#
# `precond.init(params, adapted_layers)` gives each rule's identity parameters.  There the adapted
# parameters and the meta-gradient in the initialisation must equal MAML's, to round-off.

# %%
METHODS = {"MAML": (lm.Identity(), "fixed"), "Meta-SGD": (lm.MetaSGD(), "diagonal"),
           "KFO": (lm.KFO(), "full"), "Meta-Curvature": (lm.MetaCurvature(), "full")}
params = lm.init_deep_linear(d, (5,), 2, rng=1)  # a two-layer, two-output net for the identity check
batch = lm.meta_batch(lm.GaussianRegression(d=d, out=2).sample_tasks(8, rng=2), K=K, Q=20, rng=3)
ref_adapted = lm.adapt(params, batch.support, rule)
ref_grad = lm.meta_value_and_grad(params, batch.support, batch.query, rule).params
for name, (pc, _) in METHODS.items():
    phi = pc.init(params, rule.adapted_layers(len(params)))
    ad = lm.adapt(params, batch.support, rule, pc, phi)
    gr = lm.meta_value_and_grad(params, batch.support, batch.query, rule, pc, phi).params
    err = max(max(np.max(np.abs(a - b)) / np.max(np.abs(b)) for a, b in zip(ad, ref_adapted)),
              max(np.max(np.abs(a - b)) / np.max(np.abs(b)) for a, b in zip(gr, ref_grad)))
    print(f"{name}: max rel. difference from MAML {err:.1e}")
    assert err < 1e-12

# %% [markdown]
# ## Meta-trained, each reaches the floor of its class
#
# A shallow model with each rule, learned jointly with the initialisation (`learn_phi=True`) by Adam on
# fresh task batches, four seeds on the run axis (`linmeta.sim.training.train_with_checkpoints` wraps
# `lm.meta_train` with a learning-rate drop for the last quarter).  Final losses are measured on one common
# test set, so the comparison between rules is paired.

# %%
evalset = test_set(family, K, 4000, rng=np.random.SeedSequence([0, 1]))
curveset = test_set(family, K, 1000, rng=np.random.SeedSequence([0, 2]))
bounds = checkpoint_steps(600, 8)
results = {}
for i, (name, (pc, cls)) in enumerate(METHODS.items()):
    init = lm.init_deep_linear(d, (), 1, rng=np.random.SeedSequence([0, 3]), n_runs=4)
    phi0 = pc.init(init, rule.adapted_layers(1))
    curve = []
    p, phi = train_with_checkpoints(
        init, family, rule, bounds=bounds, lr=0.05, lr_drop=0.1, K=K, tasks_per_step=32, precond=pc, phi=phi0,
        learn_phi=True, seed=[0, 4, i],
        on_checkpoint=lambda step, p, f: curve.append(post_adaptation_losses(p, curveset, rule, pc, f).mean(axis=1)))
    results[name] = {"curve": np.array(curve), "final": post_adaptation_losses(p, evalset, rule, pc, phi),
                     "floor": floors[f"loss_{cls}"]}
    m, se = crossed_table_mean_se(results[name]["final"])
    print(f"{name}: final {m:.4f} ± {se:.4f}   closed-form floor of its class {results[name]['floor']:.4f}")
    assert abs(m - results[name]["floor"]) <= 4 * se

# %%
fig, ax = plt.subplots(figsize=(7, 4.2))
for (name, r), color in zip(results.items(), ("C0", "C1", "C2", "C3")):
    ax.plot(bounds, r["curve"].mean(axis=1), "-o", ms=3, color=color, label=f"{name} (mean of 4 seeds)")
    ax.axhline(r["floor"], color=color, ls=":", lw=1)
ax.set(xlabel="outer Adam step", ylabel="held-out post-adaptation loss", yscale="log",
       title="each meta-optimizer goes to the closed-form floor of its class (dotted)")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# KFO and Meta-Curvature share a floor: the optimal $P^* = H^{-1}\Sigma R$ is symmetric positive definite, so
# a PSD parametrisation loses nothing.  Meta-SGD is restricted to diagonal $P$ in the parameters' basis,
# which here is not the eigenbasis of $\Sigma$, so it stops higher.  The paired differences make the ranking
# significant:

# %%
for better, worse in (("KFO", "Meta-SGD"), ("Meta-SGD", "MAML")):
    m, se = crossed_table_mean_se(results[better]["final"] - results[worse]["final"])
    print(f"{better} - {worse}: {m:+.4f} ± {se:.4f}")
    assert m + 4 * se < 0

# %% [markdown]
# ## Exercises
#
# 1. **A deep net is an implicit KFO.** Meta-train a two-layer net (`widths=(8,)`) with plain MAML in the
#    same setting and check that it also reaches the `full` floor.
# 2. **Isotropic inputs.** With $\Sigma = I$ the best diagonal and the best full preconditioner coincide
#    with the best scalar step.  Check it with `preconditioner_floors`.
# 3. **The optimum is PSD.** Show that `metaopt.optimal_preconditioner` is symmetric with positive eigenvalues
#    for random covariances and $K$ between 1 and 100.

# %% [markdown]
# ### Solution 1

# %% tags=["hide-cell"]
init = lm.init_deep_linear(d, (8,), 1, rng=np.random.SeedSequence([0, 5]), n_runs=4)
p, _ = train_with_checkpoints(init, family, rule, bounds=bounds, lr=0.05, lr_drop=0.1, K=K, tasks_per_step=32,
                              seed=[0, 6])
m, se = crossed_table_mean_se(post_adaptation_losses(p, evalset, rule))
print(f"deep MAML: final {m:.4f} ± {se:.4f}, full floor {floors['loss_full']:.4f}")
assert abs(m - floors["loss_full"]) <= 4 * se

# %% [markdown]
# ### Solution 2

# %% tags=["hide-cell"]
iso = metaopt.preconditioner_floors(lm.GaussianRegression(d=d, mean=family.mean), K, alpha)
print({k: round(v, 6) for k, v in iso.items() if k.startswith("loss")})
assert np.isclose(iso["loss_full"], iso["loss_scalar"], rtol=1e-10)
assert np.isclose(iso["loss_diagonal"], iso["loss_scalar"], rtol=1e-10)

# %% [markdown]
# ### Solution 3

# %% tags=["hide-cell"]
r = lm.as_generator(7)
for _ in range(20):
    A = r.standard_normal((d, d))
    S = A @ A.T / d + 0.1 * np.eye(d)
    fam = lm.GaussianRegression(d=d, mean=r.standard_normal((1, d)), input_cov=S)
    Kr = int(r.integers(1, 101))
    P = metaopt.optimal_preconditioner(fam.input_cov, metaopt.error_moment(fam.mean, fam), Kr)
    assert np.linalg.norm(P - P.T) <= 1e-10 * np.linalg.norm(P)
    assert np.linalg.eigvalsh((P + P.T) / 2).min() > 0
print("20 random instances: P* symmetric positive definite")
