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
# # 7. Check your own prediction
#
# This is the workflow linmeta is built for, applied to a claim of your own:
#
# 1. **derive** a closed form and write it as a plain function;
# 2. **simulate** the same quantity with the engine;
# 3. **compare** with a tolerance of $k$ standard errors computed from the samples, never a hand-tuned
#    constant, and make sure the comparison *can fail*;
# 4. **register** it as an experiment, so that `linmeta run` caches it, draws its figure and reports its
#    checks next to every other claim.
#
# **The prediction.** A shallow model $\hat y = w^\top x$ starts at $w = \mathbb E[w^*] = 0$ and takes one
# gradient step of size $\alpha$ on $K$ support samples of a task $x \sim N(0, I_d)$,
# $y = w^{*\top} x + \sigma\varepsilon$, $w^* \sim N(0, s^2 I_d)$.  With the sample covariance
# $\hat\Sigma = X^\top X/K$, the error after the step is $e' = (I - \alpha\hat\Sigma)e + \alpha X^\top\varepsilon\sigma/K$
# with $e = -w^*$, and the Wishart moment $\mathbb E[\hat\Sigma^2] = (1 + (d+1)/K)\, I$ gives the expected
# post-adaptation population loss
#
# $$ L(\alpha, K) = \tfrac12 d s^2 \Big[(1-\alpha)^2 + \alpha^2 \frac{d+1}{K}\Big] + \tfrac12 \alpha^2 \sigma^2
#    \frac{d}{K} + \tfrac12\sigma^2 . $$

# %%
import importlib.util
import sys
import tempfile
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import linmeta as lm
from linmeta.sim.evaluation import post_adaptation_losses, test_set
from linmeta.sim.stats import mean_se
from linmeta.theory import shallow


def my_prediction(d, s, sigma, K, alpha):
    """Expected post-adaptation loss of one K-shot step from w = 0 (my derivation above)."""
    return 0.5 * d * s**2 * ((1 - alpha) ** 2 + alpha**2 * (d + 1) / K) + 0.5 * alpha**2 * sigma**2 * d / K \
        + 0.5 * sigma**2


d, s, sigma, K = 6, 1.0, 0.5, 8
family = lm.GaussianRegression(d=d, cov=s**2, noise_std=sigma)  # w* ~ N(0, s^2 I), label noise sigma

# %% [markdown]
# ## Simulate and compare
#
# `test_set` draws fresh tasks with one $K$-shot support set each and the population query (the exact
# expectation over query points), and `post_adaptation_losses` adapts through the engine.  The loss of
# each task is one independent sample, so the standard error of the mean is `mean_se`.

# %%
batch = test_set(family, K, 20_000, rng=np.random.SeedSequence([7, 1]))
w0 = (np.zeros((1, d)),)  # a shallow model: one layer (out, d)


def simulate(alpha):
    return mean_se(post_adaptation_losses(w0, batch, lm.InnerLoop(steps=1, alpha=alpha)))


alphas = [0.1, 0.3, 0.5, 0.8]
table = []
for a in alphas:
    sim, se = simulate(a)
    pred = my_prediction(d, s, sigma, K, a)
    table.append((a, pred, sim, se))
    print(f"alpha={a}: prediction {pred:.4f}, simulation {sim:.4f} ± {se:.4f}, z = {(sim - pred) / se:+.2f}")
    assert abs(sim - pred) <= 4 * se

# %% [markdown]
# ### Does the check have teeth?
#
# A check that cannot fail proves nothing.  A plausible mistake, forgetting the $(d+1)/K$ term of the
# Wishart moment (i.e. treating $\hat\Sigma$ as if it were $\Sigma$), is rejected by many standard errors,
# except at the smallest step, where the missing term (of order $\alpha^2$) is still below the noise: a
# check is only as sharp as the regime it is run in.

# %%
def wrong_prediction(d, s, sigma, K, alpha):
    return 0.5 * d * s**2 * (1 - alpha) ** 2 + 0.5 * alpha**2 * sigma**2 * d / K + 0.5 * sigma**2


for a, _, sim, se in table:
    z = (sim - wrong_prediction(d, s, sigma, K, a)) / se
    print(f"alpha={a}: the wrong prediction is off by {z:+.1f} SE")
assert all(abs(sim - wrong_prediction(d, s, sigma, K, a)) > 4 * se for a, _, sim, se in table if a >= 0.3)

# %% [markdown]
# It also agrees with linmeta's general closed form for shallow MAML (`lm.theory.shallow.expected_meta_loss`,
# exact for any Gaussian family): two independent derivations, one identity, to round-off.

# %%
for a in alphas:
    general = shallow.expected_meta_loss(np.zeros((1, d)), family, K, a, 1)
    assert abs(general - my_prediction(d, s, sigma, K, a)) <= 1e-12 * general
print("my closed form = lm.theory.shallow.expected_meta_loss to 1e-12")

# %%
grid = np.linspace(0, 1.2, 121)
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.plot(grid, my_prediction(d, s, sigma, K, grid), "k-", label="my prediction")
ax.plot(grid, wrong_prediction(d, s, sigma, K, grid), "C3--", label="without the $(d+1)/K$ term")
ax.errorbar([t[0] for t in table], [t[2] for t in table], yerr=[2 * t[3] for t in table], fmt="o", color="C0",
            label="engine simulation (±2 SE)")
ax.set(xlabel="inner step $\\alpha$", ylabel="expected post-adaptation loss",
       title=f"one {K}-shot step from $w = E[w^*]$, d = {d}")
ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# ## Turn it into a registered experiment
#
# An experiment is a module that defines `EXPERIMENT = Experiment(...)` from
# `linmeta.experiments.base`: parameters with quick and full presets, `run(cfg, ctx)` (heavy independent
# pieces go through `ctx.map`, which caches each piece), `plot(result, cfg)` (never recomputes) and
# `checks(result, cfg)`, which returns `Check`s: `close_se` for theory against simulation, `finding` for a
# qualitative claim.  The module below is self-contained; we write it to a temporary folder.

# %%
MODULE = textwrap.dedent('''
    """My claim: the expected loss after one K-shot step from E[w*] (tutorial 7)."""
    import numpy as np

    import linmeta as lm
    from linmeta.experiments import plotting
    from linmeta.experiments.base import Experiment, Param, close_se
    from linmeta.sim.evaluation import post_adaptation_losses, test_set
    from linmeta.sim.stats import mean_se


    def prediction(d, s, sigma, K, alpha):
        return (0.5 * d * s**2 * ((1 - alpha) ** 2 + alpha**2 * (d + 1) / K)
                + 0.5 * alpha**2 * sigma**2 * d / K + 0.5 * sigma**2)


    PARAMS = {
        "d": Param(int, 6, 20, low=1, high=200, help="input dimension"),
        "K": Param(int, 8, 8, low=1, help="support shots"),
        "noise": Param(float, 0.5, 0.5, low=0.0, help="label noise sigma"),
        "alphas": Param("floats", (0.1, 0.5, 0.8), (0.05, 0.2, 0.4, 0.6, 0.8, 1.0), low=0.0, high=2.0,
                        help="inner steps"),
        "tasks": Param(int, 10000, 100000, low=100, help="test tasks per step size"),
    }


    def _piece(item):
        cfg, i = item["cfg"], item["i"]
        fam = lm.GaussianRegression(d=cfg["d"], noise_std=cfg["noise"])
        batch = test_set(fam, cfg["K"], cfg["tasks"], np.random.SeedSequence([cfg["seed"], i]))
        losses = post_adaptation_losses((np.zeros((1, cfg["d"])),), batch, lm.InnerLoop(1, cfg["alphas"][i]))
        return dict(zip(("mean", "se"), mean_se(losses)))


    def run(cfg, ctx):
        pieces = ctx.map(_piece, [{"cfg": cfg, "i": i} for i in range(len(cfg["alphas"]))], desc="step sizes")
        return {"mean": np.array([p["mean"] for p in pieces]), "se": np.array([p["se"] for p in pieces]),
                "theory": np.array([prediction(cfg["d"], 1.0, cfg["noise"], cfg["K"], a) for a in cfg["alphas"]])}


    def plot(res, cfg):
        fig, (ax,) = plotting.figure()
        grid = np.linspace(0, max(cfg["alphas"]) * 1.1, 100)
        ax.plot(grid, prediction(cfg["d"], 1.0, cfg["noise"], cfg["K"], grid), "k-", label="prediction")
        plotting.errorbars(ax, cfg["alphas"], res["mean"], res["se"], k=2, label="simulation (±2 SE)")
        ax.set(xlabel="alpha", ylabel="expected post-adaptation loss")
        ax.legend(fontsize=8)
        return plotting.finish(fig, "my claim: one K-shot step from E[w*]")


    def checks(res, cfg):
        return [close_se(f"one {cfg['K']}-shot step, alpha={a:g}: simulation = prediction", t, m, se)
                for a, t, m, se in zip(cfg["alphas"], res["theory"], res["mean"], res["se"])]


    EXPERIMENT = Experiment(name="my_kshot_step", paper="my notes", figure="new",
                            claim="One K-shot step from E[w*] has the closed-form loss of tutorial 7.",
                            params=PARAMS, run=run, plot=plot, checks=checks)
''')
workdir = Path(tempfile.mkdtemp(prefix="linmeta-tutorial7-"))
path = workdir / "my_claims.py"
path.write_text(MODULE)

spec = importlib.util.spec_from_file_location("my_claims", path)
my_claims = importlib.util.module_from_spec(spec)
sys.modules["my_claims"] = my_claims  # the runner fingerprints the module's source for its cache key
spec.loader.exec_module(my_claims)

# %% [markdown]
# The runner treats it like any built-in experiment: the result is cached under a key made of its run
# parameters and a fingerprint of its source (edit the module and it recomputes), and the checks run on
# the cached result.

# %%
from linmeta.experiments import runner

result, config, info = runner.run(my_claims.EXPERIMENT, mode="quick", directory=workdir / "cache")
print("computed" if not info["cached"] else "cached", f"in {info['seconds']:.1f} s; config: {config}")
checks = runner.run_checks(my_claims.EXPERIMENT, result=result, config=config)
for c in checks:
    print(f"{'PASS' if c.passed else 'FAIL'}  {c.name}: theory {c.theory:.4f}, simulation {c.simulation:.4f} "
          f"± {c.stderr:.4f} ({c.tolerance})")
assert checks and all(c.passed for c in checks)
again, _, info2 = runner.run(my_claims.EXPERIMENT, mode="quick", directory=workdir / "cache")
assert info2["cached"] and np.array_equal(again["mean"], result["mean"])
paths = runner.write_figure(my_claims.EXPERIMENT, result=result, config=config, outdir=workdir)
print("figure:", [str(p) for p in paths])

# %% [markdown]
# **From the command line.**  The same module runs with every `linmeta` command once it is on the
# experiment path: `--experiments PATH` (a file or a folder of modules), the environment variable
# `LINMETA_EXPERIMENTS`, or an installed package's entry point in the group `linmeta.experiments`:
#
# ```bash
# linmeta run my_kshot_step --experiments my_claims.py           # cache, figure, summary
# linmeta check my_kshot_step --experiments my_claims.py --json  # the checks, machine-readable
# LINMETA_EXPERIMENTS=my_claims.py linmeta reproduce --quick     # alongside every built-in claim
# ```
#
# **Into the catalogue.**  To contribute the claim to linmeta itself, move the module to
# `linmeta/experiments/<name>.py`, its closed form to `linmeta/theory/` with a sympy derivation in
# `derivations/`, give the claim a stable label in `linmeta/claims.py` (`Claim(label, paper, statement,
# setting, experiments, kind)`) and pass `claim="<label>"` to each check that tests it.  The claims table of
# the documentation then lists it with its current verdict.

# %% [markdown]
# ## Exercises
#
# 1. **The optimal step.** Minimise $L(\alpha, K)$ over $\alpha$ by hand (it is a quadratic) and compare
#    with `lm.theory.shallow.optimal_alpha(family, K, 1)`.  Without noise you should get $K/(K+d+1)$.
# 2. **Two steps on the same support set.** Predict the loss after two steps with population gradients
#    ($K$ = `None`), where $\hat\Sigma = \Sigma = I$: $\tfrac12 d s^2 (1-\alpha)^4 + \tfrac12\sigma^2$.  Check it
#    against the engine with a 4-SE tolerance.
# 3. **Add a check to your experiment.** Extend `checks` in the module with a `finding` that the simulated
#    loss is lowest at the step closest to the optimum of exercise 1, and rerun it through the runner.

# %% [markdown]
# ### Solution 1

# %% tags=["hide-cell"]
# dL/dalpha = d s^2 [-(1 - alpha) + alpha (d+1)/K] + alpha sigma^2 d / K = 0
a_mine = s**2 / (s**2 * (1 + (d + 1) / K) + sigma**2 / K)
a_lib, _ = shallow.optimal_alpha(family, K, 1)
print(f"my optimal step {a_mine:.6f}, optimal_alpha {a_lib:.6f}")
assert abs(a_mine - a_lib) < 1e-6
quiet = lm.GaussianRegression(d=d, cov=s**2)
assert abs(shallow.optimal_alpha(quiet, K, 1)[0] - K / (K + d + 1)) < 1e-6

# %% [markdown]
# ### Solution 2

# %% tags=["hide-cell"]
pop_batch = test_set(family, None, 20_000, rng=np.random.SeedSequence([7, 2]))  # population support
for a in (0.2, 0.6):
    m, se = mean_se(post_adaptation_losses(w0, pop_batch, lm.InnerLoop(steps=2, alpha=a)))
    pred = 0.5 * d * s**2 * (1 - a) ** 4 + 0.5 * sigma**2
    print(f"alpha={a}: prediction {pred:.4f}, simulation {m:.4f} ± {se:.4f}")
    assert abs(m - pred) <= 4 * se

# %% [markdown]
# ### Solution 3

# %% tags=["hide-cell"]
extra = textwrap.dedent('''

    from linmeta.experiments.base import finding

    _checks = checks


    def checks(res, cfg):
        a_opt = 1.0 / (1.0 + (cfg["d"] + 1) / cfg["K"] + cfg["noise"] ** 2 / cfg["K"])
        best = int(np.argmin(res["mean"]))
        nearest = int(np.argmin(np.abs(np.array(cfg["alphas"]) - a_opt)))
        return _checks(res, cfg) + [finding(f"lowest simulated loss at the step nearest alpha*={a_opt:.3f}",
                                            best == nearest, cfg["alphas"][best], a_opt, "argmin")]


    EXPERIMENT = Experiment(name="my_kshot_step", paper="my notes", figure="new",
                            claim="One K-shot step from E[w*] has the closed-form loss of tutorial 7.",
                            params=PARAMS, run=run, plot=plot, checks=checks)
''')
path.write_text(MODULE + extra)
spec.loader.exec_module(my_claims)  # reload the edited module
# Only the checks changed, and within one Python process the source fingerprint of a module is computed once
# (memoised), so the cached result is reused here; a new `linmeta run` process fingerprints the edited source
# and recomputes.  Checks always run afresh on the result.
res3, cfg3, info3 = runner.run(my_claims.EXPERIMENT, mode="quick", directory=workdir / "cache")
checks3 = runner.run_checks(my_claims.EXPERIMENT, result=res3, config=cfg3)
print(f"result {'from the cache' if info3['cached'] else 'recomputed'}; {len(checks3)} checks; last: "
      f"{checks3[-1].name} -> {'REPRODUCED' if checks3[-1].passed else 'NOT REPRODUCED'}")
assert checks3[-1].kind == "finding" and checks3[-1].passed
