"""Saunshi, Zhang, Khodak & Arora (ICML 2020): a sample-complexity separation of non-convex and convex meta-learning.

Tasks: ``y = w*ᵀx + σε`` with ``w* = ±c·u`` (a fair sign), ``x ~ N(0, I_d)``: the regressors lie on one
line through the origin, so their mean is zero (:class:`linmeta.sim.separation.LineTasks`).

* **Convex**: a linear model meta-trained by MAML learns the initialisation ``w₀ ≈ 0`` — the best one
  for any within-task learner, and it carries no information about u.  A new task with n samples is then
  learned by least squares run to convergence (error ``½c²(1 − n/d)`` noiseless: a plateau that ends only
  at n = d) or by the best single gradient step (``½c²(d + 1)/(n + d + 1)``).
* **Non-convex**: two-layer linear networks ``M = W₂W₁`` meta-trained by MAML (one step, both layers)
  and by Reptile (``linmeta.meta_train(outer="reptile")``, two steps) learn a first layer whose Gram
  ``W₁ᵀW₁`` is (close to) a multiple of the projection ``uuᵀ``.  A new task is learned by fitting the head
  from zero with one gradient step of the best size for n (the same budget as the best convex step),
  whose error has the closed form ``E*(n; W₁ᵀW₁)`` (:func:`linmeta.theory.separation.best_head_error`):
  ``½c²·2/(n + 2)`` for the exact projection, independent of d.  The MAML net is also scored with its
  own inner rule, exactly through :mod:`linmeta.theory.deep_one_step`.

Simulation: meta-training with the engine (runs on the run axis), new-task errors by Monte Carlo with the
engine's inner loop (and numpy least squares), the alignment ``|⟨v₁(W₁), u⟩|`` of the first layer's top
right singular vector with u along meta-training, and the ε-sample complexity at several d.
"""
from __future__ import annotations

import numpy as np

import linmeta as lm
from linmeta.experiments import plotting
from linmeta.experiments.base import Experiment, Param, close_se, finding
from linmeta.sim import separation as SEP
from linmeta.theory import deep_one_step as DOS
from linmeta.theory import landscape
from linmeta.theory import separation as T

PARAMS = {
    "d": Param(int, 16, 32, low=2, high=256, help="input dimension of the curves"),
    "d_list": Param("ints", (8, 16), (8, 16, 32, 64), low=2, high=256, help="dimensions of the sample-complexity panel"),
    "width": Param(int, 8, 8, low=1, high=256, help="hidden width of the two-layer net"),
    "c": Param(float, 1.0, 1.0, low=1e-3, help="task scale c", high=100),
    "noise": Param(float, 0.1, 0.1, low=0.0, help="label noise σ", high=10),
    "K": Param(int, 8, 8, low=1, help="support shots during meta-training", high=1000),
    "alpha": Param(float, 0.5, 0.5, low=1e-3, high=2.0, help="MAML inner step (nets)"),
    "alpha_linear": Param(float, 0.3, 0.3, low=1e-3, high=2.0, help="MAML inner step (linear model)"),
    "reptile_steps": Param(int, 2, 2, low=2, high=10, help="Reptile inner steps (k = 1 would be joint training)"),
    "reptile_alpha": Param(float, 0.25, 0.25, low=1e-3, high=2.0, help="Reptile inner step"),
    "steps": Param(int, 600, 1200, low=10, help="meta-training steps at lr, then steps/2 at lr/10", high=1000000),
    "lr": Param(float, 0.5, 0.5, low=1e-5, high=2.0, help="SGD learning rate (plain SGD: Adam's normalised steps "
                                                          "random-walk the flat off-u directions of W₁)"),
    "tasks_per_step": Param(int, 8, 16, low=1, help="tasks per meta-batch", high=10000),
    "runs": Param(int, 4, 8, low=2, high=64, help="independent meta-trainings of each net (run axis)"),
    "runs_linear": Param(int, 16, 16, low=2, high=256, help="independent meta-trainings of the linear model"),
    "init_scale": Param(float, 0.1, 0.1, low=1e-4, high=10.0, help="scale of the random initial layers"),
    "n_list": Param("ints", (1, 2, 4, 8, 32), (1, 2, 4, 6, 8, 12, 16, 24, 48, 96), low=1,
                    help="new-task sample sizes n", high=10000),
    "eval_tasks": Param(int, 1000, 3000, low=10, help="Monte Carlo new tasks per n (×⌈8/n⌉ below n = 8)", high=1000000),
    "eps": Param(float, 0.25, 0.25, low=1e-3, high=0.99, help="relative error ε of the sample-complexity panel"),
    "checkpoints": Param(int, 15, 30, low=2, help="alignment checkpoints along meta-training", high=10000),
}

MODELS = ("maml_net", "reptile_net")


def direction(cfg, d):
    """The task direction u (unit, seeded), array (d,)."""
    rng = lm.as_generator(np.random.SeedSequence([cfg["seed"], 1601, d]))
    u = rng.standard_normal(d)
    return u / np.linalg.norm(u)


def family(cfg, d) -> SEP.LineTasks:
    return SEP.LineTasks(direction(cfg, d), cfg["c"], cfg["noise"])


def _checkpoints(total, n):
    return np.unique(np.round(np.geomspace(1, total, n)).astype(int))


def _train_piece(item):
    """Meta-train one model at one d (all runs at once); record the first layer's alignment along the way."""
    cfg, d, model = item["cfg"], item["d"], item["model"]
    fam = family(cfg, d)
    R = cfg["runs_linear"] if model == "linear" else cfg["runs"]
    index = ["linear", *MODELS].index(model)
    rng = lm.as_generator(np.random.SeedSequence([cfg["seed"], 1603, d, index]))
    total = cfg["steps"] + cfg["steps"] // 2
    sched = lambda s: 1.0 if s <= cfg["steps"] else 0.1
    if model == "linear":
        params = (0.3 * rng.standard_normal((R, 1, d)),)
        rule, outer = lm.InnerLoop(1, cfg["alpha_linear"]), "maml"
    else:
        params = tuple(cfg["init_scale"] * W for W in lm.init_deep_linear(d, (cfg["width"],), 1, rng=rng, n_runs=R))
        if model == "maml_net":
            rule, outer = lm.InnerLoop(1, cfg["alpha"]), "maml"
        else:
            rule, outer = lm.InnerLoop(cfg["reptile_steps"], cfg["reptile_alpha"]), "reptile"
    ck = _checkpoints(total, cfg["checkpoints"])
    align, ratio = [], []

    def callback(step, p, phi, history):
        if model != "linear" and step in ck:
            align.append(SEP.alignment(p[0], fam.u))
            lam = np.linalg.eigvalsh(np.swapaxes(p[0], -1, -2) @ p[0])
            ratio.append(lam[:, -2] / lam[:, -1])

    res = lm.meta_train(params, fam, rule, steps=total, lr=cfg["lr"], optimizer="sgd",
                        tasks_per_step=cfg["tasks_per_step"], K=cfg["K"], Q=None, eval_tasks=1, eval_every=total,
                        seed=np.random.SeedSequence([cfg["seed"], 1605, d, index]),
                        progress=False, lr_schedule=sched, callback=callback, outer=outer)
    out = {str(i): W for i, W in enumerate(res.params)}
    if model != "linear":
        out["align"] = np.array(align)
        out["gram_ratio"] = np.array(ratio)
        out["align_steps"] = ck
        out["align_init"] = SEP.alignment(params[0], fam.u)
    return out


def _params(piece):
    return tuple(piece[str(i)] for i in range(sum(k.isdigit() for k in piece)))


def _head_only(params):
    """``(W₁, 0)``: the learned first layer with a zero head (the new task fits the head)."""
    return (params[0], np.zeros_like(params[1]))


def _gram(params):
    W1 = params[0]
    return np.swapaxes(W1, -1, -2) @ W1


def _eval_piece(item):
    """Monte Carlo new-task errors at the main d for every learner and n, with the closed forms at the learned params."""
    cfg, n = item["cfg"], item["n"]
    d = cfg["d"]
    fam = family(cfg, d)
    u, c, sig = fam.u, cfg["c"], cfg["noise"]
    lin = _params(item["linear"])
    w0 = lin[0][:, 0, :]  # (R, d)
    w2 = np.sum(w0**2, axis=-1)
    rng = lm.as_generator(np.random.SeedSequence([cfg["seed"], 1607, n]))
    # small supports give heavy-tailed errors (polynomials in χ²_n variables): more tasks there
    tasks = cfg["eval_tasks"] * max(1, -(-8 // n))
    out = {}
    # convex, least squares to convergence from each run's w0
    ls = np.stack([SEP.least_squares_errors(w, fam, n, tasks=tasks, rng=rng) for w in w0])
    out["convex_ls"] = {"mc": ls, "theory": np.array([T.convex_gd_error(n, d, c, sig, x) for x in w2])}
    # convex, best single step from w0
    a_star = np.array([T.convex_best_step(n, d, c, sig, x) for x in w2])
    st = np.stack([SEP.adapted_errors((lin[0][r],), fam, n, lm.InnerLoop(1, float(a_star[r])), tasks=tasks,
                                      rng=rng) for r in range(w0.shape[0])])
    out["convex_step"] = {"mc": st, "theory": np.array([T.convex_one_step_error(n, d, c, sig, a, x)
                                                        for a, x in zip(a_star, w2)])}
    for model in MODELS:
        p = _params(item[model])
        G = _gram(p)
        t_star = T.best_head_step(G, u, n, c, sig)  # (R,)
        head = _head_only(p)
        mc = np.stack([SEP.adapted_errors(tuple(W[r] for W in head), fam, n,
                                          lm.InnerLoop(1, float(t_star[r]), layers="last"), tasks=tasks,
                                          rng=rng) for r in range(G.shape[0])])
        out[f"{model}_head"] = {"mc": mc, "theory": T.best_head_error(G, u, n, c, sig), "step": t_star}
    p = _params(item["maml_net"])
    rule = lm.InnerLoop(1, cfg["alpha"])
    # its error is a degree-8 polynomial in the data (kurtosis ~ 200 at n = 2): ten times the tasks
    out["maml_net_own"] = {"mc": SEP.adapted_errors(p, fam, n, rule, tasks=10 * tasks, rng=rng),
                           "theory": DOS.expected_meta_loss(p, fam.both_tasks(), n, rule) - 0.5 * sig**2}
    # per run: the mean over tasks and its SE (the samples themselves are not kept)
    for v in out.values():
        mc = v.pop("mc")
        v["mc_mean"], v["mc_se"] = mc.mean(-1), mc.std(-1, ddof=1) / np.sqrt(mc.shape[-1])
    return out


def run(cfg, ctx):
    ds = sorted(set(cfg["d_list"]) | {cfg["d"]})
    items = [{"cfg": cfg, "d": d, "model": m} for d in ds for m in ("linear", *MODELS)]
    trained = ctx.map(_train_piece, items, desc="saunshi_separation meta-training")
    by = {(it["d"], it["model"]): tr for it, tr in zip(items, trained)}
    main = {m: by[(cfg["d"], m)] for m in ("linear", *MODELS)}
    ev = ctx.map(_eval_piece, [dict(cfg=cfg, n=n, **main) for n in cfg["n_list"]], desc="saunshi_separation new tasks")
    res = {"n": np.array(cfg["n_list"]), "d_list": np.array(ds)}
    for key in ev[0]:
        res[key] = {"mc_mean": np.array([e[key]["mc_mean"] for e in ev]),  # (n, R)
                    "mc_se": np.array([e[key]["mc_se"] for e in ev]), "theory": np.array([e[key]["theory"] for e in ev])}
    u, c, sig = direction(cfg, cfg["d"]), cfg["c"], cfg["noise"]
    nn = np.unique(np.round(np.geomspace(1, max(cfg["n_list"]) * 1.2, 120)).astype(int))
    d = cfg["d"]
    gK = T.projection_best_gamma(cfg["K"], c, sig)
    res["curves"] = {"n": nn,
                     "convex_ls": np.array([T.convex_gd_error(n, d, c, sig) for n in nn]),
                     "convex_step": np.array([T.convex_best_one_step_error(n, d, c, sig) for n in nn]),
                     "projection": np.array([T.projection_best_error(n, c, sig) for n in nn]),
                     "projection_fixed": np.array([T.projection_error(n, c, sig, gK) for n in nn])}
    for model in MODELS:
        G = _gram(_params(main[model]))
        res["curves"][f"{model}_head"] = np.array([T.best_head_error(G, u, n, c, sig).mean() for n in nn])
    pm = _params(main["maml_net"])
    res["curves"]["maml_net_own"] = np.array([
        np.mean(DOS.expected_meta_loss(pm, family(cfg, d).both_tasks(), int(n), lm.InnerLoop(1, cfg["alpha"])))
        - 0.5 * sig**2 for n in nn])
    # what was learned
    res["linear_w0"] = _params(main["linear"])[0][:, 0, :]
    res["linear_w0_theory"] = landscape.maml_optimum(lm.GaussianRegression(d=d, mean=np.zeros((1, d)), cov=c**2 * np.outer(u, u),
                                                                   noise_std=sig), cfg["K"], cfg["alpha_linear"], 1)[0]
    for model in MODELS:
        p = _params(main[model])
        a = cfg["alpha"] if model == "maml_net" else cfg["reptile_steps"] * cfg["reptile_alpha"]
        g = SEP.projection_gain(p, u, a)
        res[model] = {"align": main[model]["align"], "align_steps": main[model]["align_steps"],
                      "gram_ratio": main[model]["gram_ratio"],
                      "align_init": main[model]["align_init"], "gamma": g["gamma"], "leak": g["leak"],
                      "M_norm": g["M_norm"], "gram_spectrum": np.linalg.eigvalsh(_gram(p))[:, ::-1]}
    res["gamma_star"] = gK
    # ε-sample complexity against d (closed forms at the learned parameters)
    eps = cfg["eps"]
    sc = {k: [] for k in ("convex_ls", "convex_step", "maml_net_head", "reptile_net_head", "projection")}
    for dd in ds:
        ud = direction(cfg, dd)
        w2 = np.mean(np.sum(_params(by[(dd, "linear")])[0] ** 2, axis=(-2, -1)))
        sc["convex_ls"].append(T.sample_complexity(lambda n: T.convex_gd_error(n, dd, c, sig, w2), eps, c))
        sc["convex_step"].append(T.sample_complexity(lambda n: T.convex_best_one_step_error(n, dd, c, sig, w2), eps, c))
        for model in MODELS:
            G = _gram(_params(by[(dd, model)]))
            sc[f"{model}_head"].append(T.sample_complexity(lambda n: float(np.mean(T.best_head_error(G, ud, n, c, sig))),
                                                           eps, c))
        sc["projection"].append(T.sample_complexity(lambda n: T.projection_best_error(n, c, sig), eps, c))
    res["sample_complexity"] = {k: np.array(v) for k, v in sc.items()}
    return res


# --------------------------------------------------------------------------- figure

LABELS = {"convex_ls": "convex: least squares from w₀", "convex_step": "convex: best single step from w₀",
          "maml_net_head": "MAML net: head fit, best step", "reptile_net_head": "Reptile net: head fit, best step",
          "maml_net_own": "MAML net: its own inner step (α)"}
FIG_LABELS = {"convex_ls": r"convex: least squares from $w_0$", "convex_step": r"convex: best single step from $w_0$",
              "maml_net_head": "MAML net: head fit, best step", "reptile_net_head": "Reptile net: head fit, best step",
              "maml_net_own": r"MAML net: its own inner step $\alpha$"}
NET_LABELS = {"maml_net": "MAML net", "reptile_net": "Reptile net"}


@plotting.styled
def plot(res, cfg):
    fig, axes = plotting.figure(3, 2, width="text", height=6.0)
    C = plotting.COLORS
    below, h = plotting.legend_below, plotting.handle
    z = 0.5 * cfg["c"] ** 2
    ax = axes[0]
    cv = res["curves"]
    for i, key in enumerate(FIG_LABELS):
        ax.plot(cv["n"], cv[key] / z, "-", color=C[i], lw=1.2, label=FIG_LABELS[key])
        m = res[key]["mc_mean"].mean(1) / z
        se = np.sqrt(np.sum(res[key]["mc_se"] ** 2, axis=1)) / res[key]["mc_se"].shape[1] / z
        ok = np.isfinite(res[key]["theory"]).all(axis=-1) if res[key]["theory"].ndim > 1 else np.isfinite(res[key]["theory"])
        plotting.errorbars(ax, res["n"][ok], m[ok], se[ok], color=C[i], ms=2.5)
    ax.plot(cv["n"], cv["projection"] / z, "k--", lw=1, label=r"exact projection $uu^\top$: $2/(n+2)$")
    ax.axvline(cfg["d"], color="0.6", ls=":", lw=1, label=f"$n = d = {cfg['d']}$")
    ax.set(xscale="log", yscale="log", xlabel="new-task samples $n$", ylabel="new-task error / zero predictor",
           title="convex: a plateau until $n \\approx d$")
    ax.set_ylim(max(1e-3, 0.3 * np.nanmin(cv["projection"] / z)), 2.0)
    below(fig, [ax], extra=[h("closed form"), h("Monte Carlo ± SE", ls="none", marker="o")])
    ax = axes[1]
    for i, model in enumerate(MODELS):
        r = res[model]
        steps = r["align_steps"][: r["align"].shape[0]]
        plotting.band(ax, steps, r["align"], color=C[i + 2], axis=1, label=f"{NET_LABELS[model]} (mean ± SE)")
    ax.axhline(1.0, color="k", ls="--", lw=0.8, label=r"limit: $W_1^\top W_1 \propto uu^\top$")
    ax.axhline(1 / np.sqrt(cfg["d"]), color="0.5", ls=":", lw=0.8, label=r"random direction, $1/\sqrt{d}$")
    ax.set(xscale="log", xlabel="meta-training step", ylabel=r"$|\langle v_1(W_1), u\rangle|$",
           title=r"$W_1$ aligns with $u$")
    below(fig, [ax])
    ax = axes[2]
    sc, ds = res["sample_complexity"], res["d_list"]
    for i, key in enumerate(("convex_ls", "convex_step", "maml_net_head", "reptile_net_head")):
        ax.plot(ds, sc[key], "o-", color=C[i], ms=3, label=FIG_LABELS[key])
    ax.plot(ds, sc["projection"], "k--", label="exact projection (free of $d$)")
    ax.set(xscale="log", yscale="log", xlabel="input dimension $d$",
           ylabel=f"samples to error $\\leq {cfg['eps']:g} \\cdot c^2/2$",
           title=r"samples needed, $\varepsilon$-level")
    plotting.ticks_at(ax.xaxis, ds)
    plotting.plain_log_ticks(ax.yaxis)
    below(fig, [ax])
    ax = axes[3]
    for i, model in enumerate(MODELS):
        spec = res[model]["gram_spectrum"]  # (R, d) descending
        k = np.arange(1, spec.shape[1] + 1)
        ax.plot(k, spec.T / spec[:, :1].T, ".-", color=C[i + 2], alpha=0.6, lw=0.8)
        ax.plot([], [], ".-", color=C[i + 2], label=NET_LABELS[model])
    ax.set(yscale="log", xlabel="eigenvalue index", ylabel=r"eigenvalue of $W_1^\top W_1$ / top",
           title=f"Gram spectra (rank $\\leq {cfg['width']}$)")
    ax.set_ylim(1e-6, 2)
    below(fig, [ax], ncol=2)
    ax = axes[4]
    for i, model in enumerate(MODELS):
        r = res[model]
        steps = r["align_steps"][: r["gram_ratio"].shape[0]]
        plotting.band(ax, steps, r["gram_ratio"], color=C[i + 2], axis=1, label=f"{NET_LABELS[model]} (mean ± SE)")
    ax.set(xscale="log", yscale="log", xlabel="meta-training step", ylabel=r"$\lambda_2/\lambda_1$ of $W_1^\top W_1$",
           title="the Gram approaches rank one")
    below(fig, [ax])
    ax = axes[5]
    x = np.arange(res["maml_net"]["gamma"].size)
    ax.plot(x, res["maml_net"]["gamma"], "o", color=C[2],
            label=r"MAML net: $\alpha\, u^\top(W_1^\top W_1 + \|W_2\|^2 I)u$")
    ax.plot(x, res["reptile_net"]["gamma"], "s", color=C[3], label=r"Reptile net: the same at $k\alpha$")
    ax.axhline(res["gamma_star"], color="k", ls="--",
               label=f"MAML optimum $\\gamma^*(K = {cfg['K']}) = {res['gamma_star']:.3f}$")
    ax.set(xlabel="run", ylabel=r"step along $u$", title="the learned step along $u$")
    ax.set_xticks(x)
    below(fig, [ax])
    plotting.label_panels(axes)
    return plotting.finish(fig, "Saunshi et al.: regressors on one line; a learned initialisation knows nothing of "
                                "$u$, a meta-learned first layer projects onto it")


# --------------------------------------------------------------------------- checks


def _k(n, df, level=1e-3):
    from scipy.stats import t

    return float(max(4.0, t.ppf(1.0 - level / (2 * n), df)))


def checks(res, cfg):
    out = []
    d = cfg["d"]
    near = np.abs(res["n"] - d) <= 3  # least squares with noise: heavy tails near n = d
    # the errors are polynomials in Gaussian data (degree 4 for one linear step, 8 for the two-layer net's own
    # step, whose second-order term is quadratic in the gradient): at small n their kurtosis is in the hundreds
    # (≈ 200 for the own step at n = 2, measured) and the sample SE of a few thousand tasks is not reliable, so
    # the comparison starts at n = 2, and at n = 4 for the own step
    tiny = res["n"] < 2
    for key in LABELS:
        r = res[key]
        # per n: mean over runs of (MC − closed form at that run's parameters); SE from the tasks of every run
        diff = (r["mc_mean"] - r["theory"]).mean(1)
        se = np.sqrt(np.sum(r["mc_se"] ** 2, axis=1)) / r["mc_se"].shape[1]
        ok = np.isfinite(diff) & ~tiny & ~(near if key == "convex_ls" and cfg["noise"] > 0 else np.zeros_like(near))
        if key == "maml_net_own":
            ok &= res["n"] >= 4
        if not np.any(ok):
            continue
        z = np.abs(diff[ok]) / se[ok]
        i = int(np.argmax(z))
        th = r["theory"].mean(1)[ok][i]
        out.append(close_se(f"{LABELS[key]}: Monte Carlo new-task error = closed form at the learned parameters "
                            f"(worst of {int(ok.sum())} n, n = {res['n'][ok][i]})", th, th + diff[ok][i], se[ok][i],
                            k=_k(int(ok.sum()), cfg["eval_tasks"] - 1), claim='saunshi.new-task-error-closed-forms'))
    w0 = res["linear_w0"]
    R = w0.shape[0]
    u = direction(cfg, d)
    proj = w0 @ u
    out.append(close_se(f"convex: MAML's learned initialisation along u = closed-form optimum 0 (‖w₀‖ = "
                        f"{np.linalg.norm(w0, axis=-1).mean():.3g}, from {0.3 * np.sqrt(d):.2g} at the start; "
                        f"{R} runs)", float(res["linear_w0_theory"] @ u), proj.mean(), proj.std(ddof=1) / np.sqrt(R),
                        k=_k(1, R - 1), claim='saunshi.new-task-error-closed-forms'))
    g = res["maml_net"]["gamma"]
    out.append(close_se(f"MAML net: learned step along u, α uᵀ(W₁ᵀW₁ + ‖W₂‖²I)u = γ*(K) = K c²/(c²(K+2)+σ²) "
                        f"({g.size} runs)", res["gamma_star"], g.mean(), g.std(ddof=1) / np.sqrt(g.size),
                        k=_k(1, g.size - 1), claim='saunshi.learns-the-subspace'))
    # findings
    n = res["n"]
    z = 0.5 * cfg["c"] ** 2
    i_small = int(np.argmin(np.abs(n - max(1, d // 4))))
    conv = res["convex_ls"]["mc_mean"][i_small].mean() / z
    best_conv = res["convex_step"]["mc_mean"][i_small].mean() / z
    for model in MODELS:
        net = res[f"{model}_head"]["mc_mean"][i_small].mean() / z
        out.append(finding(f"Saunshi et al.: at n = {n[i_small]} ≈ d/4 (d = {d}) the {model.replace('_', ' ')} "
                           f"(head fit) reaches relative error {net:.3f}, the convex learner only {conv:.3f} "
                           f"(least squares) / {best_conv:.3f} (best step)", net < 0.5 * min(conv, best_conv), net,
                           min(conv, best_conv), "net < half the best convex", claim='saunshi.convex-needs-d-samples'))
    sc, ds = res["sample_complexity"], res["d_list"]
    if ds.size >= 2:
        eps = cfg["eps"]
        for key, coef in (("convex_ls", 1 - eps), ("convex_step", (1 - eps) / eps)):
            per_d = sc[key] / ds
            slope = float(np.polyfit(ds, sc[key], 1)[0])
            out.append(finding(f"Saunshi et al.: the convex ε-sample complexity (ε = {eps:g}, {LABELS[key]}) is Ω(d): "
                               f"{', '.join(f'{x:.0f}' for x in sc[key])} samples for d = {', '.join(map(str, ds))} "
                               f"(n_ε/d ≥ {per_d.min():.2f}, slope {slope:.2f}; noiseless n_ε/d → {coef:.2f})",
                               bool(per_d.min() >= 0.7 * coef), per_d.min(), coef, ">= 0.7 × the noiseless n_ε/d, every d", claim='saunshi.convex-needs-d-samples'))
        for model in MODELS:
            r = sc[f"{model}_head"]
            out.append(finding(f"Saunshi et al.: the {model.replace('_', ' ')}'s ε-sample complexity is O(1): "
                               f"{', '.join(f'{x:.0f}' for x in r)} samples for d = {', '.join(map(str, ds))} "
                               f"(exact projection: {sc['projection'][0]:.0f})", r.max() <= 2 * sc["projection"][0],
                               r.max(), sc["projection"][0], "<= 2 × the projection's, every d", claim='saunshi.nonconvex-needs-o1-samples'))
    for model in MODELS:
        a = res[model]["align"][-1]
        out.append(finding(f"Saunshi et al.: {model.replace('_', ' ')} meta-learns the subspace: |⟨v₁(W₁), u⟩| = "
                           f"{a.mean():.4f} (min over runs {a.min():.4f}) after training, "
                           f"{res[model]['align_init'].mean():.3f} at initialisation", bool(a.min() > 0.99), a.min(),
                           0.99, "> 0.99 every run", claim='saunshi.learns-the-subspace'))
        ratio = res[model]["gram_ratio"]
        out.append(finding(f"{model.replace('_', ' ')}: the learned Gram W₁ᵀW₁ approaches a multiple of uuᵀ (the exact "
                           f"MAML optimum is rank one): second/top eigenvalue {ratio[-1].mean():.3g} at the end (max over "
                           f"runs {ratio[-1].max():.3g}; peak {ratio.mean(1).max():.3g} during training)",
                           bool(ratio[-1].max() < 0.1), ratio[-1].max(), 0.1, "< 0.1 every run", claim='saunshi.learns-the-subspace'))
    out.append(finding(f"MAML net: the head W₂ goes to 0, so the one-step preconditioner is α W₁ᵀW₁ ≈ γ uuᵀ "
                       f"(off-u part ‖P − γuuᵀ‖ = {res['maml_net']['leak'].mean():.3f} vs γ = {g.mean():.3f}; "
                       f"Reptile net: {res['reptile_net']['leak'].mean():.3f})",
                       bool(res["maml_net"]["leak"].mean() < 0.25 * g.mean()), res["maml_net"]["leak"].mean(),
                       0.25 * g.mean(), "< γ/4", claim='saunshi.learns-the-subspace'))
    return out


EXPERIMENT = Experiment(
    name="saunshi_separation",
    paper="Saunshi et al. 2020",
    figure="convex vs non-convex new-task sample complexity on line tasks (linear-model reconstruction)",
    claim="With regressors on one line through 0, a learned linear initialisation is uninformative (error plateaus "
          "until n ≈ d), while two-layer linear nets meta-trained by MAML or Reptile learn the projection uuᵀ and "
          "need O(1) new-task samples.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
)
