"""Core check: the exact expected K-shot loss of *deep* linear models after one inner step.

The shallow closed form (``core_expected_loss``) extends to any depth when one step adapts at most
two layers (:mod:`linmeta.theory.deep_one_step`, Wick's theorem over the support set).  For a
fixed random initialisation of each model this experiment

* sweeps the number of shots K and compares the closed form with the average over sampled support
  sets, for depth-2 MAML (both layers adapt), depth-3 ANIL (head only) and depth 3 adapting the
  bottom and top layers (the two-layer term with a frozen layer between them);
* sweeps the inner step α at a fixed K for the shallow model and depth-2 MAML of the same
  end-to-end map, where the closed form is a quartic in α (the shallow one a quadratic);
* checks the K → ∞ limit: the closed form approaches the population-gradient loss as O(1/K).
"""
from __future__ import annotations

import numpy as np

from .. import GaussianRegression, InnerLoop, init_deep_linear
from ..sim.montecarlo import post_adaptation_samples
from .. import as_generator
from ..theory import deep_one_step
from . import plotting
from .base import Experiment, Param, close_rel, close_se

PARAMS = {
    "d": Param(int, 5, 8, low=1, high=100, help="input dimension"),
    "out": Param(int, 2, 2, low=1, high=10, help="output dimension"),
    "width": Param(int, 6, 8, low=1, high=100, help="hidden width of the deep models"),
    "alpha": Param(float, 0.15, 0.15, low=-1.0, high=1.0, help="inner step size of the K sweep"),
    "alphas": Param("floats", (-0.2, 0.0, 0.2, 0.4), (-0.3, -0.15, 0.0, 0.15, 0.3, 0.45, 0.6), low=-1.0, high=1.0,
                    help="inner step sizes of the α sweep (sampled points)"),
    "alpha_shots": Param(int, 4, 4, low=1, high=1000, help="support shots K of the α sweep"),
    "noise": Param(float, 0.5, 0.5, low=0.0, high=100.0, help="label noise"),
    "shots": Param("ints", (2, 4, 8, 16), (1, 2, 4, 8, 16, 32, 64), low=1, high=10000, help="support sizes K"),
    "tasks": Param(int, 40, 100, low=1, high=10000, help="tasks per piece"),
    "draws": Param(int, 400, 2000, low=2, high=1_000_000, help="support sets per task"),
}

MODELS = {  # name: (number of hidden layers, adapted layers)
    "depth 2, MAML": (1, "all"),
    "depth 3, ANIL": (2, "last"),
    "depth 3, bottom + top": (2, (0, 2)),
}


def _limit_key(name: str) -> str:
    """The result key of a model's K → ∞ limit values."""
    return "limit_" + name.replace(" ", "_").replace(",", "").replace("+", "plus")


def _family(cfg):
    rng = np.random.default_rng(cfg["seed"])
    d, out = cfg["d"], cfg["out"]
    L = rng.standard_normal((d, d)) / np.sqrt(d)
    input_cov = L @ L.T + 0.5 * np.eye(d)
    input_cov /= np.linalg.eigvalsh(input_cov)[-1]  # λ_max(Σ) = 1
    return GaussianRegression(d=d, out=out, mean=rng.standard_normal((out, d)), cov=0.3, input_cov=input_cov,
                              noise_std=cfg["noise"])


def _model(cfg, hidden: int):
    """A fixed initialisation (the same for every piece), scaled so the inner step is stable."""
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 31, hidden]))
    widths = (cfg["width"],) * hidden
    return init_deep_linear(cfg["d"], widths, cfg["out"], rng=rng)


def _tasks(cfg, tag: int):
    """The tasks of one sweep (the same for every K or α of that sweep, so its curve is smooth)."""
    return _family(cfg).sample_tasks(cfg["tasks"], as_generator(np.random.SeedSequence([cfg["seed"], 500, tag])))


def _compare(cfg, params, rule, K, tag, point):
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 501, tag, point]))
    tasks = _tasks(cfg, tag)
    samples = post_adaptation_samples(params, tasks, K, rule, draws=cfg["draws"], rng=rng)
    # conditional on the tasks: Var(mean) = mean_t Var_t / (draws · T)
    se = np.sqrt(samples.var(axis=0, ddof=1).mean() / samples.size)
    return {"theory": float(deep_one_step.expected_meta_loss(params, tasks, K, rule)),
            "mc_mean": float(samples.mean()), "mc_se": float(se)}


def _shots_piece(item):
    cfg, name, K = item["cfg"], item["model"], item["K"]
    hidden, layers = MODELS[name]
    return _compare(cfg, _model(cfg, hidden), InnerLoop(1, cfg["alpha"], layers), K, 1 + list(MODELS).index(name),
                    K)


ALPHA_SWEEP = 100  # tag of the α sweep's tasks: shared by both models, paired support draws at each α


def _alpha_params(cfg, hidden: int):
    deep = _model(cfg, 1)
    # the shallow model starts at the deep model's end-to-end map, so both curves meet at α = 0
    return deep if hidden else (deep[1] @ deep[0],)


def _alpha_piece(item):
    cfg, hidden, alpha = item["cfg"], item["hidden"], item["alpha"]
    return _compare(cfg, _alpha_params(cfg, hidden), InnerLoop(1, alpha, "all"), cfg["alpha_shots"], ALPHA_SWEEP,
                    list(cfg["alphas"]).index(alpha))


def _curve(cfg, hidden, alphas):
    """The closed form on a fine α grid, for the α sweep's tasks."""
    tasks, params = _tasks(cfg, ALPHA_SWEEP), _alpha_params(cfg, hidden)
    return np.array([deep_one_step.expected_meta_loss(params, tasks, cfg["alpha_shots"], InnerLoop(1, a, "all"))
                     for a in alphas])


def run(cfg, ctx):
    res = {}
    items = [{"cfg": cfg, "model": name, "K": K} for name in MODELS for K in cfg["shots"]]
    pieces = ctx.map(_shots_piece, items, desc="core_deep_one_step: K sweep")
    shape = (len(MODELS), len(cfg["shots"]))
    for key in pieces[0]:
        res[f"shots_{key}"] = np.array([p[key] for p in pieces]).reshape(shape)
    items = [{"cfg": cfg, "hidden": h, "alpha": a} for h in (0, 1) for a in cfg["alphas"]]
    pieces = ctx.map(_alpha_piece, items, desc="core_deep_one_step: α sweep")
    for key in pieces[0]:
        res[f"alpha_{key}"] = np.array([p[key] for p in pieces]).reshape(2, len(cfg["alphas"]))
    lo, hi = min(cfg["alphas"]), max(cfg["alphas"])
    res["alpha_grid"] = np.linspace(lo, hi, 61)
    res["alpha_curve"] = np.stack([_curve(cfg, h, res["alpha_grid"]) for h in (0, 1)])
    # K → ∞: the support gradient tends to the population one, with an O(1/K) correction
    tasks = _tasks(cfg, 0)
    for name, (hidden, layers) in MODELS.items():
        params, rule = _model(cfg, hidden), InnerLoop(1, cfg["alpha"], layers)
        res[_limit_key(name)] = np.array([deep_one_step.expected_meta_loss(params, tasks, K, rule)
                                        for K in (None, 10**5, 10**6)])
    return res


@plotting.styled
def plot(res, cfg):
    fig, (ax1, ax2) = plotting.figure(2, width="text", height=3.2)
    shots = np.array(cfg["shots"])
    for i, name in enumerate(MODELS):
        c = plotting.COLORS[i]
        ax1.plot(shots, res["shots_theory"][i], "-", color=c, label=f"{name}")
        plotting.errorbars(ax1, shots, res["shots_mc_mean"][i], res["shots_mc_se"][i], k=2, color=c)
    ax1.set_xscale("log", base=2)
    ax1.set_xticks(shots, [f"{K:g}" for K in shots])
    ax1.minorticks_off()
    ax1.set_xlabel("support shots $K$")
    ax1.set_ylabel("expected post-adaptation loss")
    ax1.set_title(f"one inner step, $\\alpha={cfg['alpha']:g}$")
    alphas = np.array(cfg["alphas"])
    for h, label in ((0, "shallow (same end-to-end map)"), (1, "depth 2, MAML")):
        c = plotting.COLORS[3 + h]
        ax2.plot(res["alpha_grid"], res["alpha_curve"][h], "-", color=c, label=label)
        plotting.errorbars(ax2, alphas, res["alpha_mc_mean"][h], res["alpha_mc_se"][h], k=2, color=c)
    ax2.set_xlabel("inner step size $\\alpha$")
    ax2.set_ylabel("expected post-adaptation loss")
    ax2.set_title(f"$K={cfg['alpha_shots']}$ shots")
    plotting.label_panels((ax1, ax2))
    key = [plotting.handle("closed form (lines)"), plotting.handle("sampled support sets ($\\pm$2 SE)", ls="",
                                                                  marker="o", color=plotting.GREY)]
    plotting.legend_below(fig, (ax1, ax2), ncol=2, extra=key)  # models by colour, then what lines and points are
    return plotting.finish(fig, "Deep linear models: exact one-step $K$-shot meta-loss vs simulation")


def checks(res, cfg):
    out = []
    for i, name in enumerate(MODELS):
        for j, K in enumerate(cfg["shots"]):
            out.append(close_se(f"{name}: E[loss] K={K}", res["shots_theory"][i, j], res["shots_mc_mean"][i, j],
                                res["shots_mc_se"][i, j], k=4, claim="linmeta.deep-one-step-expected-loss"))
    for h, label in ((0, "shallow"), (1, "depth 2 MAML")):
        for j, a in enumerate(cfg["alphas"]):
            name = f"{label}: E[loss] α={a:g} K={cfg['alpha_shots']}"
            th, mc, se = res["alpha_theory"][h, j], res["alpha_mc_mean"][h, j], res["alpha_mc_se"][h, j]
            # at α = 0 nothing is random (no adaptation): an exact identity instead of a statistical test
            out.append(close_rel(name, th, mc, rtol=1e-12, claim="linmeta.deep-one-step-expected-loss") if a == 0
                       else close_se(name, th, mc, se, k=4, claim="linmeta.deep-one-step-expected-loss"))
    for name in MODELS:
        pop, k5, k6 = res[_limit_key(name)]
        # L(K) = L(∞) + c/K + O(1/K²): the gap shrinks tenfold from K = 10⁵ to 10⁶
        out.append(close_rel(f"{name}: K→∞ gap ratio (L(1e5) − L(∞)) / (L(1e6) − L(∞)) = 10",
                             10.0, float((k5 - pop) / (k6 - pop)), rtol=1e-3, claim="linmeta.deep-one-step-expected-loss"))
    return out


EXPERIMENT = Experiment(
    name="core_deep_one_step",
    paper="linmeta core",
    figure="engine check (depth)",
    claim="The exact one-step expected K-shot loss of deep linear models (≤ 2 adapted layers) equals the average over sampled support sets.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
)
