"""Core check: the exact expected K-shot meta-loss of shallow MAML against sampled support sets.

For a fixed initialisation ``M`` of the shallow model, the post-adaptation loss
averaged over random K-shot support sets (k inner steps on the same set) is a
closed-form quadratic (:mod:`linmeta.theory.shallow`).  This experiment sweeps
the number of shots K for k = 1, 2, 3, compares the closed form with the mean
over many sampled support sets (per piece of the sweep), and also checks that
shallow MAML's optimum is E[W*] by training it with L-BFGS on the exact objective.
"""
from __future__ import annotations

import numpy as np

from .. import GaussianRegression, InnerLoop, init_deep_linear, meta_value_and_grad
from ..sim.montecarlo import post_adaptation_samples
from .. import as_generator
from ..theory import shallow
from . import plotting
from .base import Experiment, Param, close_se, small

PARAMS = {
    "d": Param(int, 6, 10, low=1, high=200, help="input dimension"),
    "out": Param(int, 2, 2, low=1, high=20, help="output dimension"),
    "alpha": Param(float, 0.1, 0.1, low=-1.0, high=1.0, help="inner step size"),
    "noise": Param(float, 0.5, 0.5, low=0.0, high=100.0, help="label noise"),
    "shots": Param("ints", (4, 8, 16, 32), (2, 4, 8, 16, 32, 64), low=1, high=10000, help="support sizes K"),
    "steps": Param("ints", (1, 2, 3), (1, 2, 3), low=1, high=4, help="inner steps k"),
    "tasks": Param(int, 200, 500, low=1, high=100_000, help="tasks per piece"),
    "draws": Param(int, 100, 400, low=2, high=100_000, help="support sets per task"),
    "grad_chunks": Param(int, 40, 200, low=2, high=100_000, help="independent task chunks for the gradient at E[W*]"),
}


def _family(cfg):
    rng = np.random.default_rng(cfg["seed"])
    d, out = cfg["d"], cfg["out"]
    Lc = rng.standard_normal((d, d)) / np.sqrt(d)
    input_cov = Lc @ Lc.T + 0.5 * np.eye(d)
    input_cov /= np.linalg.eigvalsh(input_cov)[-1]  # λ_max(Σ) = 1 so α < 2 is stable
    return GaussianRegression(d=d, out=out, mean=rng.standard_normal((out, d)), cov=0.5, input_cov=input_cov,
                              noise_std=cfg["noise"])


def _piece(item):
    cfg, K, k = item["cfg"], item["K"], item["k"]
    fam = _family(cfg)
    rng = as_generator(np.random.SeedSequence([cfg["seed"], K, k]))
    M = init_deep_linear(cfg["d"], (), cfg["out"], rng=rng)[0]
    rule = InnerLoop(steps=k, alpha=cfg["alpha"])
    tasks = fam.sample_tasks(cfg["tasks"], rng)
    samples = post_adaptation_samples((M,), tasks, K, rule, draws=cfg["draws"], rng=rng)
    # conditional on the tasks drawn, the exact expectation over support sets:
    exact = shallow.expected_task_loss(M, tasks, K, cfg["alpha"], k).mean()
    # given the tasks, draws are independent per task: Var(mean) = mean_t Var_t / (draws · T)
    se = np.sqrt(samples.var(axis=0, ddof=1).mean() / samples.size)
    return {"mc_mean": samples.mean(), "mc_se": se, "theory": exact,
            "family_theory": shallow.expected_meta_loss(M, fam, K, cfg["alpha"], k)}


def _grad_chunk(item):
    cfg = item["cfg"]
    fam = _family(cfg)
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 7919, item["chunk"]]))
    rule = InnerLoop(steps=cfg["steps"][-1], alpha=cfg["alpha"])
    batch = fam.meta_batch(fam.sample_tasks(cfg["tasks"], rng), cfg["shots"][0], None, rng)
    return {"grad": meta_value_and_grad((fam.mean_task(),), batch.support, batch.query, rule).params[0]}


def run(cfg, ctx):
    items = [{"cfg": cfg, "K": K, "k": k} for k in cfg["steps"] for K in cfg["shots"]]
    pieces = ctx.map(_piece, items, desc="core_expected_loss")
    shape = (len(cfg["steps"]), len(cfg["shots"]))
    res = {key: np.array([p[key] for p in pieces]).reshape(shape) for key in pieces[0]}
    # the expected meta-gradient (engine, exact per batch) vanishes at E[W*]: mean over
    # independent task chunks, with its standard error
    fam = _family(cfg)
    res["optimum_closed_form"] = shallow.maml_optimum(fam, cfg["shots"][0], cfg["alpha"], cfg["steps"][-1])
    res["mean_task"] = fam.mean_task()
    g = ctx.map(_grad_chunk, [{"cfg": cfg, "chunk": i} for i in range(cfg["grad_chunks"])], desc="gradient at E[W*]")
    G = np.stack([p["grad"] for p in g])
    res["grad_mean"], res["grad_se"] = G.mean(0), G.std(0, ddof=1) / np.sqrt(len(G))
    return res


@plotting.styled
def plot(res, cfg):
    # Each (K, k) point is its own piece: its own random initialisation M and its own task sample, so
    # neighbouring K do not lie on one curve.  Closed form and simulation are therefore compared point by
    # point (a tick and a dot), never joined; panel (b) shows the difference in units of its SE.
    fig, (ax, bx) = plotting.figure(1, 2, width="column", height=3.9, sharex=True,
                                    gridspec_kw={"height_ratios": (1.6, 1)})
    shots = np.array(cfg["shots"], dtype=float)
    n = len(cfg["steps"])
    for i, k in enumerate(cfg["steps"]):
        c = plotting.COLORS[i]
        x = shots * 2 ** (0.12 * (i - (n - 1) / 2))  # small offsets on the log axis keep the steps apart
        ax.plot(x, res["theory"][i], "_", color=c, ms=9, mew=1.4)
        plotting.errorbars(ax, x, res["mc_mean"][i], res["mc_se"][i], k=2, color=c, ms=3)
        z = (res["mc_mean"][i] - res["theory"][i]) / res["mc_se"][i]
        bx.plot(x, z, "o", color=c, ms=3.5)
    ax.set_ylabel("post-adaptation loss")
    ax.set_title("each $K$: its own initialisation $M$ and task sample", loc="left")
    bx.axhspan(-4, 4, color=plotting.GREY, alpha=0.15, lw=0)
    bx.axhline(0, color=plotting.THEORY, lw=0.8)
    lim = max(5.0, 1.15 * float(np.max(np.abs((res["mc_mean"] - res["theory"]) / res["mc_se"]))))
    bx.set_ylim(-lim, lim)
    bx.set_xscale("log", base=2)
    bx.set_xticks(shots, [f"{K:g}" for K in shots])
    bx.minorticks_off()
    bx.set_xlabel("support shots $K$")
    bx.set_ylabel("(sim. $-$ theory) / SE")
    fig.align_ylabels((ax, bx))
    handles = [plotting.handle(f"$k={k}$ inner step" + ("s" if k > 1 else ""), color=plotting.COLORS[i], ls="",
                               marker="s") for i, k in enumerate(cfg["steps"])]
    handles += [plotting.handle("closed form", ls="", marker="_", ms=9, mew=1.4),
                plotting.handle("sampled support sets ($\\pm$2 SE bars)", ls="", marker="o"),
                plotting.handle("$\\pm$4 SE (the check)", ls="-", lw=5, alpha=0.3, color=plotting.GREY)]
    plotting.figlegend(fig, handles=handles, labels=[h.get_label() for h in handles], ncol=2)
    return plotting.finish(fig, f"Shallow MAML: exact $K$-shot meta-loss vs simulation ($\\alpha={cfg['alpha']:g}$)")


def checks(res, cfg):
    out = []
    for i, k in enumerate(cfg["steps"]):
        for j, K in enumerate(cfg["shots"]):
            out.append(close_se(f"E[meta-loss] K={K} k={k}", res["theory"][i, j], res["mc_mean"][i, j],
                                res["mc_se"][i, j], k=4, claim="linmeta.shallow-expected-loss"))
    cf, mean = res["optimum_closed_form"], res["mean_task"]
    out.append(small("closed-form shallow MAML optimum = E[W*] (rel. dist.)",
                     np.linalg.norm(cf - mean) / np.linalg.norm(mean), 1e-10, claim="linmeta.shallow-expected-loss"))
    z = np.abs(res["grad_mean"]) / res["grad_se"]
    worst = int(np.argmax(z))
    out.append(close_se(f"E[meta-gradient] at E[W*] = 0 (worst of {z.size} coords)", 0.0,
                        res["grad_mean"].reshape(-1)[worst], res["grad_se"].reshape(-1)[worst], k=4, claim="linmeta.shallow-expected-loss"))
    return out


EXPERIMENT = Experiment(
    name="core_expected_loss",
    paper="linmeta core",
    figure="engine check",
    claim="The closed-form expected K-shot meta-loss of shallow MAML equals the average over sampled support sets; its optimum is E[W*].",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
)
