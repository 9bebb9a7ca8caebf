"""Collins et al.: meta-training MAML and NAL by SGD agrees with the closed forms; optimisation difficulty.

Part 1 (two-cluster landscape).  MAML (one inner step on an m-shot support set, population
query) and NAL are trained by plain SGD with the engine (:func:`linmeta.train.meta_train`) on
fresh sampled tasks, many independent runs on the run axis.  Both objectives are quadratic
and the engine's stochastic meta-gradient is unbiased, so the *mean* iterate follows
``E[w_t] − w* = (I − lr H)^t (w_0 − w*)`` exactly (:func:`landscape.mean_gd_path`), with
``H = ∇²F_MAML = E A^(m)`` or ``∇²F_NAL = EΣ``.  The run-averaged trajectory is compared
with that path, the final (polished) initialisations with the closed-form optima, and the
gain achieved by the learned initialisations (Monte Carlo on fresh tasks) with the formula.
The outer iterations each objective needs to reach a tolerance follow.

Part 2 (conditioning; claim collins-landscape.conditioning).  A single non-isotropic Σ for all tasks (so both optima are
E[w*]): with Σ = diag(0.1, 0.99), α = 1 the MAML Hessian is far worse conditioned than NAL's
(κ 818 vs 9.9); with Σ = diag(0.2, 0.5) it is better (1.02 vs 2.5).  The engine's Hessians
match the formulas, and SGD at step 1/λ_max(H) needs correspondingly many iterations.
"""
from __future__ import annotations

import numpy as np

from .. import GaussianRegression, InnerLoop, meta_value_and_grad
from .. import as_generator
from ..sim.montecarlo import excess_samples
from ..theory import landscape
from ..train import meta_train
from . import plotting
from .base import Experiment, Param, above, close_se, holds, small

PARAMS = {
    "d": Param(int, 5, 5, low=1, high=50, help="dimension"),
    "p_hard": Param(float, 0.5, 0.5, low=0.01, high=0.99, help="probability of a hard task"),
    "rho_hard": Param(float, 0.2, 0.2, low=1e-3, high=100.0, help="hard curvature"),
    "rho_easy": Param(float, 0.9, 0.9, low=1e-3, high=100.0, help="easy curvature"),
    "alpha": Param(float, 1.0, 1.0, low=1e-3, high=5.0, help="inner step size"),
    "distance": Param(float, 3.0, 3.0, low=0.0, high=1000.0, help="D"),
    "radius_hard": Param(float, 0.5, 0.5, low=0.0, high=100.0, help="R_H"),
    "radius_easy": Param(float, 1.0, 1.0, low=0.0, high=100.0, help="R_E"),
    "noise": Param(float, 0.3, 0.3, low=0.0, high=100.0, help="label noise"),
    "K": Param(int, 50, 50, low=1, high=10000, help="support shots K of the inner step"),
    "runs": Param(int, 24, 64, low=2, high=10000, help="independent SGD runs (run axis)"),
    "tasks_per_step": Param(int, 32, 32, low=1, high=10000, help="tasks per outer step"),
    "lr": Param(float, 1.0, 1.0, low=1e-4, high=100.0, help="outer SGD step (both objectives) in phase 1"),
    "steps": Param(int, 60, 100, low=1, high=10000, help="phase-1 outer steps"),
    "polish_lr": Param(float, 0.1, 0.05, low=1e-5, high=100.0, help="outer SGD step in phase 2 (polishing)"),
    "polish_steps": Param(int, 150, 600, low=1, high=100_000, help="phase-2 outer steps"),
    "tol": Param(float, 0.01, 0.01, low=1e-6, high=0.9, help="tolerance |E w_t - w*| <= tol |w_0 - w*|"),
    "eval_tasks": Param(int, 1500, 4000, low=10, high=1_000_000,
                        help="Monte Carlo tasks per run for the achieved gain"),
    "cond_runs": Param(int, 16, 32, low=2, high=10000, help="runs in part 2"),
    "cond_tasks": Param(int, 8, 16, low=1, high=10000, help="tasks per step in part 2"),
    "cond_steps": Param(int, 2500, 5000, low=10, high=1_000_000, help="maximum outer steps in part 2"),
    "cond_tol": Param(float, 0.1, 0.05, low=1e-6, high=0.9, help="tolerance in part 2"),
    "hess_K": Param(int, 10, 10, low=1, high=1000, help="K for the sampled Hessian check"),
    "hess_chunks": Param(int, 40, 100, low=2, high=10000, help="batches for the sampled Hessian"),
    "hess_tasks": Param(int, 200, 500, low=1, high=100_000, help="tasks per batch for the sampled Hessian"),
}

EXAMPLES = {"ill": (0.1, 0.99), "well": (0.2, 0.5)}  # Σ = diag(·): an ill- and a well-conditioned example


def _tc(cfg) -> landscape.TwoCluster:
    return landscape.TwoCluster(cfg["p_hard"], cfg["rho_hard"], cfg["rho_easy"], cfg["alpha"], cfg["distance"],
                        cfg["radius_hard"], cfg["radius_easy"], cfg["d"], cfg["K"], cfg["noise"])


def _w0(cfg):
    """The common starting point: a fixed point at distance 2D from the hard centre, off the centre axis."""
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 41]))
    u = rng.standard_normal(cfg["d"])
    return (2 * cfg["distance"] * u / np.linalg.norm(u))[None, :]


def _checkpoints(total, n=30):
    return np.unique(np.round(np.geomspace(1, total, n)).astype(int))


def _train_path(W0, fam, rule, K, lrs, checkpoints, tasks_per_step, seed_parts):
    """SGD (engine ``meta_train``) from ``W0`` (R, 1, d), recording params at the checkpoints.

    ``lrs[t]`` is the step size of step t+1; training proceeds in segments between checkpoints.
    """
    W, out, done = W0, [], 0
    for j, t in enumerate(checkpoints):
        lr_seg = lrs[done:t]
        # constant step within a segment (checkpoints are placed where the schedule changes)
        res = meta_train((W,), fam, rule, steps=int(t - done), lr=float(lr_seg[0]), optimizer="sgd",
                         tasks_per_step=tasks_per_step, K=K, Q=None, eval_tasks=1, eval_every=int(t - done),
                         seed=np.random.SeedSequence(list(seed_parts) + [j]), progress=False,
                         # an m-shot Σ̂ may exceed 2/α at times (Marchenko–Pastur edge): that overshoot is part of
                         # the model whose expected loss the closed form gives, so do not refuse it
                         check_stability=False)
        W, done = res.params[0], t
        out.append(W[:, 0, :])
    return np.stack(out)  # (n_ck, R, d)


def _twocluster_piece(item):
    cfg, obj = item["cfg"], item["objective"]
    tc = _tc(cfg)
    fam = tc.family()
    R = cfg["runs"]
    W0 = np.broadcast_to(_w0(cfg), (R, 1, cfg["d"])).copy()
    total = cfg["steps"] + cfg["polish_steps"]
    lrs = np.r_[np.full(cfg["steps"], cfg["lr"]), np.full(cfg["polish_steps"], cfg["polish_lr"])]
    ck = np.unique(np.r_[_checkpoints(cfg["steps"], 25), cfg["steps"] + _checkpoints(cfg["polish_steps"], 6)])
    if obj == "maml":
        rule, K = InnerLoop(steps=1, alpha=cfg["alpha"]), cfg["K"]
    else:
        rule, K = InnerLoop(steps=0, alpha=cfg["alpha"]), None
    path = _train_path(W0, fam, rule, K, lrs, ck, cfg["tasks_per_step"], [cfg["seed"], 43, item["index"]])
    assert ck[-1] == total
    return {"checkpoints": ck, "path": path, "lrs": lrs}


def _gain_piece(item):
    """Achieved gain of one run's learned initialisations, by Monte Carlo on fresh tasks."""
    cfg = item["cfg"]
    tc = _tc(cfg)
    inits = np.array([item["nal"], item["maml"]])[:, None, :]
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 47, item["run"]]))
    ex = excess_samples(inits, tc.family(), cfg["alpha"], 1, cfg["K"], cfg["eval_tasks"], rng)
    return {"e_nal": ex[0].mean(), "e_maml": ex[1].mean()}


def _cond_family(example):
    return GaussianRegression(d=2, mean=np.array([[1.0, -1.0]]), cov=0.25, input_cov=np.diag(EXAMPLES[example]))


def _cond_piece(item):
    cfg, ex, obj = item["cfg"], item["example"], item["objective"]
    fam = _cond_family(ex)
    h = landscape.hessians(fam, None, cfg["alpha"], 1)
    H = h.maml if obj == "maml" else h.nal
    lr = 1.0 / np.linalg.eigvalsh(H)[-1]
    R = cfg["cond_runs"]
    W0 = np.broadcast_to(np.array([[[-1.0, 1.5]]]), (R, 1, 2)).copy()
    rule = InnerLoop(steps=1 if obj == "maml" else 0, alpha=cfg["alpha"], inner_loss="population")
    # run 1.5 times the predicted iteration count (at least 50 steps, at most cond_steps)
    w0, wopt = W0[0, 0], fam.mean_task()[0]
    pred = landscape.mean_gd_path(H, w0, wopt, lr, cfg["cond_steps"]) / np.linalg.norm(w0 - wopt)
    hit = np.flatnonzero(pred <= cfg["cond_tol"])
    total = int(min(cfg["cond_steps"], max(50, np.ceil(1.5 * hit[0])))) if hit.size else cfg["cond_steps"]
    ck = _checkpoints(total, 30)
    path = _train_path(W0, fam, rule, None, np.full(total, lr), ck, cfg["cond_tasks"],
                       [cfg["seed"], 53, item["index"]])
    return {"checkpoints": ck, "path": path, "lr": lr}


def _engine_hessian(W0, fam, rule, m, rng, tasks):
    """Hessian of the engine's batch meta-loss (affine gradient in W: exact from d+1 gradients)."""
    batch = fam.meta_batch(fam.sample_tasks(tasks, rng), m, None, rng)
    g0 = meta_value_and_grad((W0,), batch.support, batch.query, rule).params[0][0]
    cols = []
    for j in range(W0.shape[-1]):
        W = W0.copy()
        W[0, j] += 1.0
        cols.append(meta_value_and_grad((W,), batch.support, batch.query, rule).params[0][0] - g0)
    return np.stack(cols, axis=-1)


def _hess_piece(item):
    cfg, ex = item["cfg"], item["example"]
    fam = _cond_family(ex)
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 59, item["index"]]))
    W0 = np.array([[0.3, -0.2]])
    exact = _engine_hessian(W0, fam, InnerLoop(1, cfg["alpha"], inner_loss="population"), None, rng, 3)
    Hs = np.stack([_engine_hessian(W0, fam, InnerLoop(1, cfg["alpha"]), cfg["hess_K"], rng, cfg["hess_tasks"])
                   for _ in range(cfg["hess_chunks"])])
    return {"population": exact, "sampled_mean": Hs.mean(0), "sampled_se": Hs.std(0, ddof=1) / np.sqrt(len(Hs))}


def _predicted(H, w0, w_opt, lrs, checkpoints):
    """The exact mean iterate ``E[w_t]`` at the checkpoints, for the step-size schedule ``lrs``."""
    out, e, done = [], np.asarray(w0, dtype=float) - w_opt, 0
    for t in checkpoints:
        for s in range(done, t):
            e = e - lrs[s] * e @ H.T
        done = t
        out.append(w_opt + e)
    return np.array(out)


def _first_below(dist, tol, checkpoints):
    idx = np.flatnonzero(dist <= tol)
    return float(checkpoints[idx[0]]) if idx.size else float("inf")


def run(cfg, ctx):
    tc = _tc(cfg)
    fam = tc.family()
    opt = {"maml": landscape.maml_optimum(fam, cfg["K"], cfg["alpha"], 1)[0], "nal": landscape.nal_optimum(fam)[0]}
    hs = landscape.hessians(fam, cfg["K"], cfg["alpha"], 1)
    H = {"maml": hs.maml, "nal": hs.nal}
    pieces = ctx.map(_twocluster_piece, [{"cfg": cfg, "objective": o, "index": i} for i, o in enumerate(("maml", "nal"))],
                     desc="collins_training SGD")
    res = {"optimum": opt, "kappa": {"maml": hs.kappa_maml, "nal": hs.kappa_nal},
           "lambda": {"maml": hs.eig_maml, "nal": hs.eig_nal}}
    w0 = _w0(cfg)[0]
    tol = cfg["tol"]
    for o, p in zip(("maml", "nal"), pieces):
        ck, path = p["checkpoints"], p["path"]
        pred = _predicted(H[o], w0, opt[o], p["lrs"], ck)
        mean, se = path.mean(1), path.std(1, ddof=1) / np.sqrt(path.shape[1])
        ph1 = ck <= cfg["steps"]
        e0 = np.linalg.norm(w0 - opt[o])
        pred_full = landscape.mean_gd_path(H[o], w0, opt[o], cfg["lr"], cfg["steps"])
        res[o] = {"checkpoints": ck, "mean": mean, "se": se, "pred": pred, "final": path[-1],
                  "dist_mean": np.linalg.norm(mean - opt[o], axis=1) / e0,
                  "dist_pred_full": pred_full / e0,
                  "iters_measured": _first_below(np.linalg.norm(mean[ph1] - opt[o], axis=1) / e0, tol, ck[ph1]),
                  "iters_predicted": float(np.argmax(pred_full / e0 <= tol)) if np.any(pred_full / e0 <= tol) else float("inf"),
                  "iters_worst_case": landscape.gd_iterations(H[o], tol, cfg["lr"])}
    fm, fn = res["maml"]["final"], res["nal"]["final"]
    g = ctx.map(_gain_piece, [{"cfg": cfg, "run": r, "nal": fn[r].tolist(), "maml": fm[r].tolist()}
                              for r in range(cfg["runs"])], desc="collins_training achieved gain")
    e_nal, e_maml = np.array([x["e_nal"] for x in g]), np.array([x["e_maml"] for x in g])
    res["achieved"] = {"gain_runs": e_nal / e_maml, "e_nal": e_nal, "e_maml": e_maml,
                       "gain_closed_form_at_learned": landscape.expected_excess_risk(fn[:, None, :], fam, cfg["K"], cfg["alpha"], 1)
                       / landscape.expected_excess_risk(fm[:, None, :], fam, cfg["K"], cfg["alpha"], 1),
                       "gain_formula": landscape.two_cluster(tc).gain}
    # part 2: conditioning
    items = [{"cfg": cfg, "example": e, "objective": o, "index": i}
             for i, (e, o) in enumerate((e, o) for e in EXAMPLES for o in ("maml", "nal"))]
    cp = ctx.map(_cond_piece, items, desc="collins_training conditioning")
    hp = ctx.map(_hess_piece, [{"cfg": cfg, "example": e, "index": i} for i, e in enumerate(EXAMPLES)],
                 desc="collins_training Hessians")
    cond = {}
    for it, p in zip(items, cp):
        fam_c = _cond_family(it["example"])
        h = landscape.hessians(fam_c, None, cfg["alpha"], 1)
        Hc = h.maml if it["objective"] == "maml" else h.nal
        wopt = fam_c.mean_task()[0]
        w0c = np.array([-1.0, 1.5])
        ck, path = p["checkpoints"], p["path"]
        pred = _predicted(Hc, w0c, wopt, np.full(int(ck[-1]), p["lr"]), ck)
        mean = path.mean(1)
        e0 = np.linalg.norm(w0c - wopt)
        full = landscape.mean_gd_path(Hc, w0c, wopt, p["lr"], cfg["cond_steps"]) / e0
        cond[f"{it['example']}_{it['objective']}"] = {
            "checkpoints": ck, "mean": mean, "se": path.std(1, ddof=1) / np.sqrt(path.shape[1]), "pred": pred,
            "dist_mean": np.linalg.norm(mean - wopt, axis=1) / e0, "dist_pred_full": full,
            "iters_measured": _first_below(np.linalg.norm(mean - wopt, axis=1) / e0, cfg["cond_tol"], ck),
            "iters_predicted": float(np.argmax(full <= cfg["cond_tol"])) if np.any(full <= cfg["cond_tol"]) else float("inf"),
            "kappa": h.kappa_maml if it["objective"] == "maml" else h.kappa_nal, "lr": p["lr"]}
    for e, p in zip(EXAMPLES, hp):
        fam_c = _cond_family(e)
        cond[f"{e}_hessian"] = dict(p, formula_population=landscape.hessians(fam_c, None, cfg["alpha"], 1).maml,
                                    formula_sampled=landscape.hessians(fam_c, cfg["hess_K"], cfg["alpha"], 1).maml)
    res["cond"] = cond
    return res


@plotting.styled
def plot(res, cfg):
    fig, axes = plotting.figure(2, 2, width="text", height=6.6)
    C = plotting.COLORS
    dist = "$\\|E\\,w_t-w^*\\|\\,/\\,\\|w_0-w^*\\|$"
    ax = axes[0]
    for i, o in enumerate(("maml", "nal")):
        r = res[o]
        ax.plot(np.arange(r["dist_pred_full"].size), r["dist_pred_full"], color=C[i], label=f"{o.upper()}: exact mean path")
        ph1 = r["checkpoints"] <= cfg["steps"]
        ax.plot(r["checkpoints"][ph1], r["dist_mean"][ph1], "o", ms=3, color=C[i],
                label=f"{o.upper()}: SGD, mean of {cfg['runs']} runs")
    ax.axhline(cfg["tol"], color="k", ls=":", lw=1, label="tolerance")
    ax.set(yscale="log", xlabel=f"outer SGD step (lr $={cfg['lr']:g}$)", ylabel=dist,
           title="two-cluster: outer iterations to converge")
    ax.set_ylim(1e-4, 2)
    ax = axes[1]
    for i, key in enumerate(("ill_maml", "ill_nal", "well_maml", "well_nal")):
        r = res["cond"][key]
        ex, o = key.split("_")
        diag = ", ".join(f"{v:g}" for v in EXAMPLES[ex])
        lab = f"$\\Sigma=\\mathrm{{diag}}({diag})$ {o.upper()} ($\\kappa={r['kappa']:.3g}$)"
        ax.plot(np.arange(1, r["dist_pred_full"].size), r["dist_pred_full"][1:], color=C[i], label=lab)
        ax.plot(r["checkpoints"], r["dist_mean"], "o", ms=3, color=C[i])
    ax.axhline(cfg["cond_tol"], color="k", ls=":", lw=1, label="tolerance")
    ax.plot([], [], "o", ms=3, color=plotting.GREY, label="SGD, mean over runs (points)")
    ax.set(xscale="log", yscale="log", xlabel="outer SGD step (lr $=1/\\lambda_\\max(H)$)", ylabel=dist,
           title="conditioning can go either way")
    ax.set_ylim(1e-4, 2)
    ax = axes[2]
    for i, o in enumerate(("maml", "nal")):
        f = res[o]["final"]
        ax.plot(f[:, 0], f[:, 1], ".", color=C[i], alpha=0.6, ms=3, label=f"learned {o.upper()} inits ({cfg['runs']} runs)")
        ax.plot(*res["optimum"][o][:2], "*", color=C[i], ms=10, mec="k", mew=0.5,
                label=f"closed-form $w_\\mathrm{{{o.upper()}}}$")
    ax.plot([0, cfg["distance"]], [0, 0], "k^", ms=5, label="centres $w_H$, $w_E$")
    ax.set(xlabel="$w[0]$ (centre axis)", ylabel="$w[1]$", title="learned initialisations vs closed form")
    ax = axes[3]
    a = res["achieved"]
    g = a["gain_runs"]
    ax.plot(np.arange(g.size), g, "o", ms=3, color=C[0], label="achieved gain per run (Monte Carlo)")
    ax.axhline(a["gain_formula"], color="k", ls="--", label=f"closed form {a['gain_formula']:.3f}")
    m, s = g.mean(), g.std(ddof=1) / np.sqrt(g.size)
    ax.axhspan(m - 2 * s, m + 2 * s, color=C[0], alpha=0.2, lw=0,
               label=f"mean $\\pm$2 SE $= {m:.3f} \\pm {2 * s:.3f}$")
    ax.set(xlabel="run", ylabel="$E_\\mathrm{NAL}/E_\\mathrm{MAML}$", title="gain achieved by SGD-trained inits")
    plotting.label_panels(axes)
    plotting.legend_below(fig, axes, ncol=2)
    return plotting.finish(fig, "Collins et al.: SGD-trained MAML and NAL reach the closed-form optima and gain; "
                                "MAML's landscape is flatter, and its conditioning can be worse or better")


def family_k(n: int, df: int, alpha: float = 1e-3) -> float:
    """SE multiple for the worst of ``n`` comparisons, each a mean of ``df + 1`` runs: at least 4.

    Bonferroni at family-wise level ``alpha`` with Student-t quantiles (the SE comes from the runs),
    so that a worst-of-many check is not a near-certain false alarm.
    """
    from scipy.stats import t

    return float(max(4.0, t.ppf(1.0 - alpha / (2 * n), df)))


def _traj_check(name, r, runs):
    z = np.abs(r["mean"] - r["pred"]) / r["se"]
    i, j = np.unravel_index(int(np.argmax(z)), z.shape)
    return close_se(f"{name}: SGD mean iterate = exact mean path (worst of {z.size} coords x checkpoints)",
                    r["pred"][i, j], r["mean"][i, j], r["se"][i, j], k=family_k(z.size, runs - 1))


def checks(res, cfg):
    from dataclasses import replace

    out = []
    for o in ("maml", "nal"):
        out.append(replace(_traj_check(f"two-cluster {o.upper()}", res[o], cfg["runs"]), claim="collins-landscape.sgd-follows-mean-path"))
        r = res[o]
        z = np.abs(r["mean"][-1] - res["optimum"][o]) / r["se"][-1]
        j = int(np.argmax(z))
        out.append(close_se(f"two-cluster {o.upper()}: learned init (mean of runs) = closed-form optimum (worst coord)",
                            res["optimum"][o][j], r["mean"][-1][j], r["se"][-1][j], k=family_k(z.size, cfg["runs"] - 1), claim="collins-landscape.sgd-follows-mean-path"))
    a = res["achieved"]
    g = a["gain_runs"]
    out.append(close_se("achieved gain of the learned inits (MC, mean over runs) = closed-form gain", a["gain_formula"],
                        g.mean(), g.std(ddof=1) / np.sqrt(g.size), claim="collins-landscape.sgd-follows-mean-path"))
    out.append(above("achieved gain > 1 (MC)", 1.0, g.mean(), g.std(ddof=1) / np.sqrt(g.size), claim="collins-landscape.sgd-follows-mean-path"))
    im, inl = res["maml"], res["nal"]
    out.append(holds(f"outer iterations to tol={cfg['tol']:g}, same lr: MAML needs more than NAL (predicted "
                     f"{im['iters_predicted']:.0f} vs {inl['iters_predicted']:.0f})",
                     im["iters_predicted"] > inl["iters_predicted"], im["iters_predicted"], inl["iters_predicted"],
                     "MAML > NAL", claim="collins-landscape.maml-harder-to-optimize"))
    out.append(holds(f"outer iterations to tol={cfg['tol']:g}, same lr: MAML needs more than NAL (measured "
                     f"{im['iters_measured']:.0f} vs {inl['iters_measured']:.0f})",
                     im["iters_measured"] > inl["iters_measured"], im["iters_measured"], inl["iters_measured"],
                     "MAML > NAL", claim="collins-landscape.maml-harder-to-optimize"))
    c = res["cond"]
    for ex in EXAMPLES:
        h = c[f"{ex}_hessian"]
        out.append(small(f"collins-landscape.conditioning Σ=diag{EXAMPLES[ex]}: engine MAML Hessian (population step) = formula (max rel. entry error)",
                         np.max(np.abs(h["population"] - h["formula_population"])) / np.max(np.abs(h["formula_population"])),
                         1e-10, claim="collins-landscape.conditioning"))
        z = np.abs(h["sampled_mean"] - h["formula_sampled"]) / h["sampled_se"]
        i = np.unravel_index(int(np.argmax(z)), z.shape)
        out.append(close_se(f"collins-landscape.conditioning Σ=diag{EXAMPLES[ex]}: sampled engine MAML Hessian (K={cfg['hess_K']}) = E[A^(K)] (worst entry)",
                            h["formula_sampled"][i], h["sampled_mean"][i], h["sampled_se"][i],
                            k=family_k(z.size, cfg["hess_chunks"] - 1), claim="collins-landscape.conditioning"))
        for o in ("maml", "nal"):
            out.append(replace(_traj_check(f"collins-landscape.conditioning Σ=diag{EXAMPLES[ex]} {o.upper()}", c[f"{ex}_{o}"], cfg["cond_runs"]),
                               claim="collins-landscape.conditioning"))
    ill_m, ill_n, well_m, well_n = (c[k] for k in ("ill_maml", "ill_nal", "well_maml", "well_nal"))
    out.append(holds(f"collins-landscape.conditioning formula: Σ=diag{EXAMPLES['ill']}: kappa_MAML = {ill_m['kappa']:.4g} > kappa_NAL = {ill_n['kappa']:.4g}",
                     ill_m["kappa"] > ill_n["kappa"], ill_m["kappa"], ill_n["kappa"], "MAML > NAL", claim="collins-landscape.conditioning"))
    out.append(holds(f"collins-landscape.conditioning formula: Σ=diag{EXAMPLES['well']}: kappa_MAML = {well_m['kappa']:.4g} < kappa_NAL = {well_n['kappa']:.4g}",
                     well_m["kappa"] < well_n["kappa"], well_m["kappa"], well_n["kappa"], "MAML < NAL", claim="collins-landscape.conditioning"))
    out.append(holds(f"collins-landscape.conditioning SGD: Σ=diag{EXAMPLES['ill']}: iterations to tol={cfg['cond_tol']:g}: MAML {ill_m['iters_measured']:.0f} "
                     f"> NAL {ill_n['iters_measured']:.0f} (predicted {ill_m['iters_predicted']:.0f}, {ill_n['iters_predicted']:.0f})",
                     ill_m["iters_measured"] > ill_n["iters_measured"], ill_m["iters_measured"], ill_n["iters_measured"],
                     "MAML > NAL", claim="collins-landscape.conditioning"))
    out.append(holds(f"collins-landscape.conditioning SGD: Σ=diag{EXAMPLES['well']}: iterations to tol={cfg['cond_tol']:g}: MAML {well_m['iters_measured']:.0f} "
                     f"< NAL {well_n['iters_measured']:.0f} (predicted {well_m['iters_predicted']:.0f}, {well_n['iters_predicted']:.0f})",
                     well_m["iters_measured"] < well_n["iters_measured"], well_m["iters_measured"], well_n["iters_measured"],
                     "MAML < NAL", claim="collins-landscape.conditioning"))
    return out


EXPERIMENT = Experiment(
    name="collins_training",
    paper="Collins, Mokhtari & Shakkottai 2022",
    figure="MAML vs NAL training (reconstruction; paper body unavailable)",
    claim="SGD-trained MAML and NAL follow the exact mean path to the closed-form optima and achieve the closed-form "
          "gain; MAML's objective is flatter, and its conditioning can be worse or better than NAL's.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
)
