"""Collins et al., the 2-D picture: task optima, and where MAML, FO-MAML and NAL put the initialisation.

Hard tasks (small, anisotropic input covariance) have tightly packed optima; easy tasks
(large covariance) are spread out around another centre.  The closed-form optima
(:mod:`linmeta.theory.landscape`) are marked, with the MAML optimum's path as the number
of support shots K grows.  NAL sits near the easy centre; MAML (and FO-MAML) between it and the
hard centre, moving towards the tightly packed hard tasks as K grows (with K = 20 and one step it is
still nearer the easy centre; the figure gives each optimum's position on the segment w_H -> w_E).

Monte Carlo: at each closed-form optimum the engine's exact meta-gradient
(:func:`linmeta.meta_value_and_grad`; second order for MAML, ``first_order`` for FO-MAML,
no adaptation for NAL), averaged over independent batches of sampled tasks and m-shot
support sets, must vanish within its standard error; at the other method's optimum it must
not.  The expected excess risk is also checked against sampled tasks at the optima.
"""
from __future__ import annotations

import numpy as np

from .. import GaussianRegression, InnerLoop, TaskMixture
from .. import as_generator
from ..sim.montecarlo import excess_samples, meta_gradient_batches
from ..theory import landscape
from . import plotting
from .base import Experiment, Param, above, close_se, small

PARAMS = {
    "alpha": Param(float, 1.0, 1.0, low=1e-3, high=5.0, help="inner step size"),
    "K": Param(int, 20, 20, low=1, high=10000, help="support shots K"),
    "p_hard": Param(float, 0.5, 0.5, low=0.01, high=0.99, help="probability of a hard task"),
    "distance": Param(float, 3.0, 3.0, low=0.0, high=1000.0, help="distance between the centres"),
    "radius_hard": Param(float, 0.3, 0.3, low=0.0, high=100.0, help="spread of the hard optima (E|.|^2 = R^2)"),
    "radius_easy": Param(float, 1.5, 1.5, low=0.0, high=1000.0, help="spread of the easy optima"),
    "noise": Param(float, 0.3, 0.3, low=0.0, high=100.0, help="label noise"),
    "steps": Param("ints", (1, 2), (1, 2, 3), low=1, high=3, help="inner steps k (one support set, as the engine)"),
    "chunks": Param(int, 30, 100, low=2, high=10000, help="independent task batches for each meta-gradient"),
    "tasks": Param(int, 300, 1000, low=1, high=100_000, help="tasks per batch"),
    "mc_tasks": Param(int, 20000, 100000, low=100, high=10_000_000, help="tasks for the excess-risk estimates"),
    "scatter": Param(int, 400, 400, low=10, high=100_000, help="task optima drawn in the figure"),
}


def _rot(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def _family(cfg, shared_cov: bool = False) -> TaskMixture:
    """Hard: Σ_H anisotropic and small; easy: Σ_E large.  ``shared_cov`` gives both Σ_E (P2 control)."""
    S_H = _rot(0.5) @ np.diag([0.05, 0.25]) @ _rot(0.5).T
    S_E = _rot(-0.3) @ np.diag([0.95, 0.6]) @ _rot(-0.3).T
    if shared_cov:
        S_H = S_E
    u = _rot(0.35) @ np.array([1.0, 0.0])
    hard = GaussianRegression(d=2, mean=np.zeros((1, 2)), cov=cfg["radius_hard"] ** 2 / 2, input_cov=S_H,
                              noise_std=cfg["noise"])
    easy = GaussianRegression(d=2, mean=cfg["distance"] * u[None, :], cov=cfg["radius_easy"] ** 2 / 2, input_cov=S_E,
                              noise_std=cfg["noise"])
    return TaskMixture((hard, easy), (cfg["p_hard"], 1 - cfg["p_hard"]))


def _optima(cfg, fam):
    a, m = cfg["alpha"], cfg["K"]
    out = {"nal": landscape.nal_optimum(fam)}
    for k in cfg["steps"]:
        out[f"maml_k{k}"] = landscape.maml_optimum(fam, m, a, k)
        out[f"fo_k{k}"] = landscape.fo_maml_optimum(fam, m, a, k)
    out["maml_pop"] = landscape.maml_optimum(fam, None, a, 1)
    return out


def _grad_piece(item):
    cfg, name, shared = item["cfg"], item["rule"], item["shared"]
    fam = _family(cfg, shared)
    W = np.asarray(item["W"], dtype=float)
    if name == "nal":
        rule, m = InnerLoop(steps=0, alpha=cfg["alpha"]), None
    else:
        k = int(name.split("_k")[1])
        rule, m = InnerLoop(steps=k, alpha=cfg["alpha"], first_order=name.startswith("fo")), cfg["K"]
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 23, item["index"]]))
    G = meta_gradient_batches(W, fam, rule, m, cfg["chunks"], cfg["tasks"], rng)[:, 0, :]
    return {"mean": G.mean(0), "se": G.std(0, ddof=1) / np.sqrt(G.shape[0])}


def _excess_piece(item):
    cfg, k = item["cfg"], item["k"]
    fam = _family(cfg)
    opt = _optima(cfg, fam)
    inits = np.stack([opt["nal"], opt[f"maml_k{k}"], opt[f"fo_k{k}"]])
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 29, k]))
    ex = excess_samples(inits, fam, cfg["alpha"], k, cfg["K"], cfg["mc_tasks"], rng)
    theory = landscape.expected_excess_risk(inits, fam, cfg["K"], cfg["alpha"], k)
    diff = ex[0] - ex[1]  # paired: same tasks and support sets
    return {"mc": ex.mean(1), "se": ex.std(1, ddof=1) / np.sqrt(ex.shape[1]), "theory": theory,
            "diff": diff.mean(), "diff_se": diff.std(ddof=1) / np.sqrt(diff.size)}


def run(cfg, ctx):
    fam = _family(cfg)
    opt = _optima(cfg, fam)
    # meta-gradient at each method's own optimum (should vanish) and at another's (should not)
    items = []
    for name in ["nal"] + [f"{p}_k{k}" for k in cfg["steps"] for p in ("maml", "fo")]:
        items.append({"rule": name, "point": name, "W": opt[name]})
    items.append({"rule": "maml_k1", "point": "nal", "W": opt["nal"]})
    items.append({"rule": "nal", "point": "maml_k1", "W": opt["maml_k1"]})
    items.append({"rule": "fo_k1", "point": "maml_k1", "W": opt["maml_k1"]})
    items = [dict(it, cfg=cfg, shared=False, index=i) for i, it in enumerate(items)]
    # identical Σ for every task: MAML's optimum is E[w*] = NAL's (P2)
    fam_s = _family(cfg, True)
    mean_s = fam_s.mean_task()
    items.append({"cfg": cfg, "rule": "maml_k1", "point": "mean (shared Σ)", "W": mean_s, "shared": True,
                  "index": len(items)})
    grads = ctx.map(_grad_piece, items, desc="collins_landscape2d gradients")
    ex = ctx.map(_excess_piece, [{"cfg": cfg, "k": k} for k in cfg["steps"]], desc="collins_landscape2d excess")
    # figure material
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 31]))
    tasks, labels = fam.sample_tasks(cfg["scatter"], rng, return_labels=True)
    ms = np.unique(np.round(np.geomspace(1, 2000, 40)).astype(int))
    path = np.array([landscape.maml_optimum(fam, int(m), cfg["alpha"], 1)[0] for m in ms])
    lo, hi = -2.0, cfg["distance"] + 2.5
    g = np.linspace(lo, hi, 61)
    grid = np.stack(np.meshgrid(g, g), -1)[..., None, :]  # (61, 61, 1, 2)
    return {
        "optima": {k: v[0] for k, v in opt.items()},
        "grad_mean": np.array([p["mean"] for p in grads]), "grad_se": np.array([p["se"] for p in grads]),
        "grad_rule": np.array([it["rule"] for it in items]), "grad_point": np.array([it["point"] for it in items]),
        "excess_mc": np.array([p["mc"] for p in ex]), "excess_se": np.array([p["se"] for p in ex]),
        "excess_theory": np.array([p["theory"] for p in ex]),
        "gain_diff": np.array([p["diff"] for p in ex]), "gain_diff_se": np.array([p["diff_se"] for p in ex]),
        "shared": {"maml": landscape.maml_optimum(fam_s, cfg["K"], cfg["alpha"], 1)[0], "nal": landscape.nal_optimum(fam_s)[0],
                   "fo": landscape.fo_maml_optimum(fam_s, cfg["K"], cfg["alpha"], 2)[0], "mean": mean_s[0]},
        "scatter": tasks.w_star[:, 0, :], "labels": labels, "path_m": ms, "path": path,
        "grid": g, "maml_surface": landscape.expected_excess_risk(grid, fam, cfg["K"], cfg["alpha"], 1),
        "nal_surface": landscape.expected_excess_risk(grid, fam, None, cfg["alpha"], 0),
        "gain": {f"k{k}": landscape.gain(fam, cfg["K"], cfg["alpha"], k) for k in cfg["steps"]},
    }


def _rule_label(name: str) -> str:
    """``maml_k1`` -> MAML$_1$ (the objective, with its number of inner steps)."""
    if name == "nal":
        return "NAL"
    method, k = name.split("_k")
    return f"{'MAML' if method == 'maml' else 'FO-MAML'}$_{k}$"


def _point_label(name: str) -> str:
    """``maml_k1`` -> the point w_MAML^(1) the gradient is taken at."""
    if name.startswith("mean"):
        return "$E[w^*]$ (shared $\\Sigma$)"
    if name == "nal":
        return "$w_\\mathrm{NAL}$"
    method, k = name.split("_k")
    return f"$w_\\mathrm{{{'MAML' if method == 'maml' else 'FO'}}}^{{({k})}}$"


@plotting.styled
def plot(res, cfg):
    # Where each optimum sits on the way from the hard centre w_H (0) to the easy centre w_E (1) is given in
    # the legend: MAML's optimum lies between NAL's and the hard centre, nearer the hard tasks only when
    # its inner step sees many shots (population step) or takes two steps.
    fig, axes = plotting.figure(2, width="text", height=3.9, gridspec_kw={"width_ratios": (1.0, 0.8)})
    C = plotting.COLORS
    hard, easy = (c.mean[0] for c in _family(cfg).components)
    u = easy - hard

    def frac(w):
        return float(np.dot(np.asarray(w) - hard, u) / np.dot(u, u))

    ax = axes[0]
    w, lab = res["scatter"], res["labels"]
    ax.scatter(*w[lab == 0].T, s=4, color=C[1], alpha=0.5, lw=0, label="hard-task optima (small $\\Sigma$)")
    ax.scatter(*w[lab == 1].T, s=4, color=C[5], alpha=0.6, lw=0, label="easy-task optima (large $\\Sigma$)")
    g = res["grid"]
    ax.contour(g, g, np.log(res["maml_surface"]), levels=10, colors=plotting.GREY, linewidths=0.4, alpha=0.6)
    ax.plot(*np.stack([hard, easy]).T, "k+", ms=8, mew=1.2, label="centres $w_H$ (0), $w_E$ (1)")
    ax.plot(*res["path"].T, "-", color="k", lw=0.8, label=f"$w_\\mathrm{{MAML}}(K)$, $K = 1 \\ldots {int(res['path_m'][-1])}$")
    o = res["optima"]
    marks = [("nal", "s", C[4], 6, "$w_\\mathrm{NAL}$"),
             ("maml_k1", "*", C[2], 10, f"$w_\\mathrm{{MAML}}$ ($k=1$, $K={cfg['K']}$)"),
             ("fo_k1", "D", C[3], 5, f"$w_\\mathrm{{FO}}$ ($k=1$, $K={cfg['K']}$)"),
             ("maml_k2", "*", C[0], 8, f"$w_\\mathrm{{MAML}}$ ($k=2$, $K={cfg['K']}$)"),
             ("maml_pop", "P", C[6], 6, "$w_\\mathrm{MAML}$ (population step)")]
    for key, m, c, ms, label in marks:
        if key in o:
            ax.plot(*o[key], m, color=c, ms=ms, mec="k", mew=0.5, ls="", label=f"{label}: {frac(o[key]):.2f}")
    ax.set(xlabel="$w[0]$", ylabel="$w[1]$")
    ax.set_title("task optima and the optimum of each objective\n"
                 "(number: fraction of the way from $w_H$ to $w_E$)", loc="left")
    ax.set_aspect("equal")
    ax = axes[1]
    names = [f"$\\nabla${_rule_label(r)} at {_point_label(p)}" for r, p in zip(res["grad_rule"], res["grad_point"])]
    z = np.linalg.norm(res["grad_mean"] / res["grad_se"], axis=1) / np.sqrt(2)
    own = np.array([r == p or p.startswith("mean") for r, p in zip(res["grad_rule"], res["grad_point"])])
    y = np.arange(len(names))
    ax.barh(y[own], z[own], color=C[2], height=0.6, label="gradient at its own closed-form optimum")
    ax.barh(y[~own], z[~own], color=C[1], height=0.6, label="gradient at another method's optimum")
    ax.axvline(4, color="k", ls="--", lw=0.8, label="4 SE")
    ax.set_yticks(y, names)
    ax.set_xscale("log")
    ax.set_xlabel("RMS $|E[\\nabla]|$ / SE")
    ax.set_title("gradients of the simulated\nobjectives (engine, sampled)", loc="left")
    plotting.label_panels(axes)
    plotting.figlegend(fig, ncol=3)
    return plotting.finish(fig, "Collins et al.: MAML moves the initialisation from NAL's, by the easy tasks, towards the "
                                "tightly packed hard ones")


def checks(res, cfg):
    out = []
    for i, (r, p) in enumerate(zip(res["grad_rule"], res["grad_point"])):
        g, se = res["grad_mean"][i], res["grad_se"][i]
        j = int(np.argmax(np.abs(g) / se))
        if r == p or str(p).startswith("mean"):
            out.append(close_se(f"MC: E[{r} meta-gradient] = 0 at closed-form {p} (worst coord)", 0.0, g[j], se[j],
                                claim="collins-landscape.optima-closed-form"))
        else:
            out.append(above(f"MC contrast: |E[{r} meta-gradient]| > 0 at {p} (largest coord)", 0.0, abs(g[j]), se[j],
                             claim="collins-landscape.optima-closed-form"))
    for i, k in enumerate(cfg["steps"]):
        for j, name in enumerate(("NAL", "MAML", "FO-MAML")):
            out.append(close_se(f"MC: expected excess risk after k={k} steps from w_{name}", res["excess_theory"][i, j],
                                res["excess_mc"][i, j], res["excess_se"][i, j], claim="collins-landscape.optima-closed-form"))
        th = res["excess_theory"][i, 0] - res["excess_theory"][i, 1]
        out.append(close_se(f"MC: E(w_NAL) - E(w_MAML) after k={k} steps (paired)", th, res["gain_diff"][i],
                            res["gain_diff_se"][i], claim="collins-landscape.gain-closed-form"))
        out.append(above(f"MC: gain (k={k}) > 1, i.e. E(w_NAL) - E(w_MAML) > 0 (paired)", 0.0, res["gain_diff"][i],
                         res["gain_diff_se"][i], claim="collins-landscape.maml-near-hard-tasks"))
    sh = res["shared"]
    scale = np.linalg.norm(sh["mean"])
    c = "collins-landscape.no-gain-without-discrepancy"
    out.append(small(f"{c} formula: identical Σ for all tasks: |w_MAML - E[w*]| / |E[w*]|",
                     np.linalg.norm(sh["maml"] - sh["mean"]) / scale, 1e-10, claim=c))
    out.append(small(f"{c} formula: identical Σ: |w_NAL - E[w*]| / |E[w*]|",
                     np.linalg.norm(sh["nal"] - sh["mean"]) / scale, 1e-10, claim=c))
    out.append(small(f"{c} formula: identical Σ: |w_FO-MAML(k=2) - E[w*]| / |E[w*]|",
                     np.linalg.norm(sh["fo"] - sh["mean"]) / scale, 1e-10, claim=c))
    o = res["optima"]  # the hard centre is the origin
    out.append(above("formula: w_MAML (k=1) nearer the hard centre than w_NAL: |w_NAL - w_H| - |w_MAML - w_H|", 0.0,
                     np.linalg.norm(o["nal"]) - np.linalg.norm(o["maml_k1"]), 0.0, claim="collins-landscape.maml-near-hard-tasks"))
    return out


EXPERIMENT = Experiment(
    name="collins_landscape2d",
    paper="Collins, Mokhtari & Shakkottai 2022",
    figure="Fig. 1-style cartoon of the task landscape (reconstruction)",
    claim="NAL's optimum sits near the easy tasks; MAML's lies nearer the tightly packed hard tasks than NAL's, "
          "moving towards them as K grows; the closed-form MAML/FO-MAML/NAL optima are the stationary points of the "
          "simulated objectives.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
)
