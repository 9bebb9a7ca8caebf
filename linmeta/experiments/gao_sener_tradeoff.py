"""Gao & Sener 2020: where MAML beats pooled least squares (DRS), before and after the test-time step.

Their linear-regression study (isl-org/MetaLearningTradeoffs, ``linear_regression``): tasks with
``Θ ~ U(0, β)^p``, ``Q = U diag(Θ) Uᵀ``, noise variance ``σ ~ U(0, β)``; each trial fits DRS (pooled
least squares) and the closed-form MAML estimator (support/query split of N points each, inner step
α) on M tasks, scores both by their expected loss on a fresh task before and after one test-time SGD
step with N points (step α), and records whether MAML's is lower.  The heatmaps show the fraction of
``trials`` in which it is, over the (N, M) grid, for a few α (their example: p = 1, β = 2).

Two versions side by side:

* **exact**: the expected losses are the closed forms of :mod:`linmeta.theory.tradeoff` (exact
  Gaussian and uniform/Haar moments);
* **Monte Carlo** (theirs): the same coefficients estimated from 1000 sampled tasks (and 1000 inputs
  per task for ``E[xxᵀQxxᵀ]``), one set for the pre-update and one for the post-update loss, on an
  independent set of trials.

The probability over trials is Monte Carlo in both (the estimators are ratios of random matrices);
trials are batched, tasks drawn through their exact sufficient statistics (:mod:`linmeta.sim.tradeoff`).
Checks (each the worst of many comparisons, at max(4, Bonferroni) SE): the closed-form expected loss
equals a direct simulation of the test step (fresh tasks, N points, one SGD step) at every grid N and
plotted α, for the population optima of both methods; their Monte Carlo loss estimates equal the
closed form within their SEs; in every cell the two heatmaps agree within the binomial SEs of both
plus the spread that the Monte Carlo error of their moments causes (bootstrap over their sampled
tasks, re-scoring the same trials); and the exact heatmap is reproduced on the Monte Carlo version's
independent trials.  A finding reports how far their moments alone move P (the same trials scored
with their and with the exact losses): where MAML's and DRS's losses nearly tie, a 1-2 % error in the
estimated coefficients flips comparisons.
"""
from __future__ import annotations

import numpy as np

from .. import as_generator
from ..sim import tradeoff as S
from ..theory import tradeoff as T
from . import plotting
from .base import Experiment, Param, close_se, finding

FULL_GRID = (2, 5, 10, 25, 50, 100, 150, 200, 250, 300, 350, 400)        # their M and N lists

PARAMS = {
    "p": Param(int, 1, 1, low=1, high=20, help="dimension"),
    "beta": Param(float, 2.0, 2.0, low=1e-3, help="Theta ~ U(0, beta)^p, noise variance ~ U(0, beta)", high=1000),
    "Ms": Param("ints", (2, 10, 50, 200), FULL_GRID, low=1, help="numbers of training tasks M", high=100000),
    "Ns": Param("ints", (1, 5, 25, 100), (1,) + FULL_GRID[1:], low=1, help="points per half N (test step uses N)", high=10000),
    "alphas": Param("floats", (0.25, 0.5, 1.0), tuple(np.round(np.arange(0.0, 1.0001, 0.05), 2)), low=0.0, high=2.0,
                    help="inner = test step sizes alpha"),
    "plot_alphas": Param("floats", (0.25, 0.5, 1.0), (0.25, 0.5, 1.0), low=0.0, high=2.0,
                         help="alphas drawn as heatmaps (must be in alphas)"),
    "trials": Param(int, 300, 1000, low=2, help="trials per grid cell (their 1000)", high=100000),
    "mc_tasks": Param(int, 1000, 1000, low=10, help="tasks in their Monte Carlo moments", high=100000),
    "mc_inputs": Param(int, 1000, 1000, low=10, help="inputs per task for E[x x^T Q x x^T]", high=100000),
    "check_tasks": Param(int, 4000, 40000, low=10, help="fresh tasks for the direct test-step simulation", high=10000000),
    "bootstrap": Param(int, 50, 200, low=2, help="bootstrap replicas of their Monte Carlo moments", high=100000),
}


def _tasks(cfg) -> T.TradeoffTasks:
    return T.TradeoffTasks(cfg["p"], cfg["beta"])


def _moments(cfg):
    """Their two independent Monte Carlo moment sets (pre-, post-update): per-task samples."""
    tk = _tasks(cfg)
    out = {}
    for k, name in enumerate(("pre", "post")):
        rng = as_generator(np.random.SeedSequence([cfg["seed"], 31, k]))
        out[name] = S.mc_moments(tk, rng, cfg["mc_tasks"], cfg["mc_inputs"])
    return out


def _cell_piece(item):
    """One (M, N) cell: win counts of MAML over DRS for every α.

    ``exact``: exact expected losses on one set of trials.  ``mc``: their Monte Carlo losses on an
    independent set, also scored with the exact losses (paired: the effect of their moments) and with
    bootstrap replicas of their moments (the spread this Monte Carlo error causes).
    """
    cfg, M, N = item["cfg"], item["M"], item["N"]
    tk = _tasks(cfg)
    alphas = np.asarray(cfg["alphas"])
    mc = {w: {n: np.asarray(v) for n, v in d.items()} for w, d in item["mc"].items()}
    boot = {w: {n: np.asarray(v) for n, v in d.items()} for w, d in item["boot"].items()}
    out = {}
    for version, stream in (("exact", 0), ("mc", 1)):
        rng = as_generator(np.random.SeedSequence([cfg["seed"], 37, stream, M, N]))
        est = S.trial_estimates(tk, M, N, cfg["trials"], alphas, rng)
        r = {key: np.zeros(alphas.size) for key in ("pre", "post", "pre_exact", "post_exact")}
        r["pre_boot"] = np.zeros((len(boot["pre"]["EQ1"]), alphas.size))
        r["post_boot"] = np.zeros((len(boot["post"]["EQ1"]), alphas.size))
        lpre, lpost = np.zeros((2, alphas.size)), np.zeros((2, alphas.size))
        for j, a in enumerate(alphas):
            m_j, d = est["maml"][j], est["drs"]
            e_pre, e_post = T.expected_loss(tk, m_j) - T.expected_loss(tk, d), \
                T.expected_loss(tk, m_j, N, a) - T.expected_loss(tk, d, N, a)
            r["pre_exact"][j], r["post_exact"][j] = np.sum(e_pre < 0), np.sum(e_post < 0)
            if version == "exact":
                r["pre"][j], r["post"][j] = r["pre_exact"][j], r["post_exact"][j]
                lpre[:, j] = T.expected_loss(tk, d).mean(), T.expected_loss(tk, m_j).mean()
                lpost[:, j] = T.expected_loss(tk, d, N, a).mean(), T.expected_loss(tk, m_j, N, a).mean()
            else:
                d0, m0 = S.mc_loss(mc["pre"], d), S.mc_loss(mc["pre"], m_j)
                d1, m1 = S.mc_loss(mc["post"], d, N, a), S.mc_loss(mc["post"], m_j, N, a)
                r["pre"][j], r["post"][j] = np.sum(m0 < d0), np.sum(m1 < d1)
                lpre[:, j], lpost[:, j] = (d0.mean(), m0.mean()), (d1.mean(), m1.mean())
                r["pre_boot"][:, j] = np.sum(S.mc_loss_difference(boot["pre"], m_j, d) < 0, -1)
                r["post_boot"][:, j] = np.sum(S.mc_loss_difference(boot["post"], m_j, d, N, a) < 0, -1)
        r["loss_pre"], r["loss_post"] = lpre, lpost
        out[version] = r
    return out


def _check_piece(item):
    """Closed-form expected loss vs a direct simulation of the test step, at the two population optima."""
    cfg, N = item["cfg"], item["N"]
    tk = _tasks(cfg)
    out = {"theory": [], "mean": [], "se": [], "label": []}
    thetas = {"DRS limit": T.population_drs(tk)}
    for j, a in enumerate(cfg["plot_alphas"]):
        cf = T.loss_coefficients(tk, N, a)
        if cf.a > 0:
            thetas[f"MAML limit a={a:g}"] = cf.minimiser(tk.p)
    for k, (name, th) in enumerate(thetas.items()):
        for j, a in enumerate((0.0,) + tuple(cfg["plot_alphas"])):
            rng = as_generator(np.random.SeedSequence([cfg["seed"], 41, N, k, j]))
            Nn = None if a == 0 else N
            x = S.updated_loss_samples(tk, th, Nn, a, cfg["check_tasks"], rng)
            out["theory"].append(float(T.expected_loss(tk, th, Nn, a)))
            out["mean"].append(float(x.mean()))
            out["se"].append(float(x.std(ddof=1) / np.sqrt(x.size)))
            out["label"].append(f"{name}, N={N}, step a={a:g}")
    return out


def run(cfg, ctx):
    tk = _tasks(cfg)
    missing = [a for a in cfg["plot_alphas"] if not np.any(np.isclose(cfg["alphas"], a))]
    if missing:
        raise ValueError(f"plot_alphas {missing} are not in alphas {cfg['alphas']}")
    samples = _moments(cfg)
    mc = {k: {n: v.tolist() for n, v in S.mc_estimates(s).items()} for k, s in samples.items()}
    boot = {k: {n: v.tolist() for n, v in S.bootstrap_estimates(
        s, cfg["bootstrap"], as_generator(np.random.SeedSequence([cfg["seed"], 43, i]))).items()}
        for i, (k, s) in enumerate(samples.items())}
    cells = ctx.map(_cell_piece, [{"cfg": cfg, "M": M, "N": N, "mc": mc, "boot": boot}
                                  for M in cfg["Ms"] for N in cfg["Ns"]], desc="gao_sener cells")
    nM, nN, k = len(cfg["Ms"]), len(cfg["Ns"]), len(cfg["alphas"])
    res = {"alphas": np.asarray(cfg["alphas"]), "Ms": np.asarray(cfg["Ms"]), "Ns": np.asarray(cfg["Ns"])}
    for version in ("exact", "mc"):
        r = {}
        for key in ("pre", "post", "pre_exact", "post_exact"):
            r[key] = np.array([c[version][key] for c in cells]).reshape(nM, nN, k) / cfg["trials"]
        for key in ("pre", "post"):
            r[f"loss_{key}"] = np.array([c[version][f"loss_{key}"] for c in cells]).reshape(nM, nN, 2, k)
            if version == "mc":
                b = np.array([c[version][f"{key}_boot"] for c in cells]) / cfg["trials"]     # (cells, B, k)
                r[f"{key}_boot_se"] = b.std(1, ddof=1).reshape(nM, nN, k)
        res[version] = r
    # Monte Carlo loss estimates vs the closed form at the population optima (with their own SEs)
    mcchk = {"theory": [], "mean": [], "se": [], "label": []}
    for N in cfg["Ns"]:
        for a in cfg["plot_alphas"]:
            cf = T.loss_coefficients(tk, N, a)
            for name, th in (("DRS limit", T.population_drs(tk)),) + ((("MAML limit", cf.minimiser(tk.p)),) if cf.a > 0 else ()):
                for which, NN, aa in (("pre", None, 0.0), ("post", N, a)):
                    x = S.mc_loss_samples(samples[which], th, NN, aa)
                    mcchk["theory"].append(float(T.expected_loss(tk, th, NN, aa)))
                    mcchk["mean"].append(float(x.mean()))
                    mcchk["se"].append(float(x.std(ddof=1) / np.sqrt(x.size)))
                    mcchk["label"].append(f"{name} (N={N}, a={a:g}), {which}")
    res["mc_check"] = mcchk
    direct = ctx.map(_check_piece, [{"cfg": cfg, "N": N} for N in cfg["Ns"]], desc="gao_sener direct check")
    res["direct"] = {key: sum((d[key] for d in direct), []) for key in ("theory", "mean", "se", "label")}
    res["limits"] = {"drs": float(T.population_drs(tk)[0]),
                     "maml": np.array([[T.population_maml(tk, N, a)[0] if T.loss_coefficients(tk, N, a).a > 0 else np.nan
                                        for a in cfg["alphas"]] for N in cfg["Ns"]])}
    return res


def _alpha_index(res, a):
    return int(np.argmin(np.abs(np.asarray(res["alphas"]) - a)))


@plotting.styled
def plot(res, cfg):
    pa = list(cfg["plot_alphas"])
    fig, axes = plotting.figure(4, len(pa), width="text", height=1.0 + 1.45 * len(pa), sharex=True, sharey=True)
    Ms, Ns = np.asarray(res["Ms"]), np.asarray(res["Ns"])
    im = None
    columns = (("exact", "pre", "before the step: exact"), ("mc", "pre", "before the step: Monte Carlo"),
               ("exact", "post", "after the step: exact"), ("mc", "post", "after the step: Monte Carlo"))
    for row, a in enumerate(pa):
        j = _alpha_index(res, a)
        for col, (version, key, title) in enumerate(columns):
            ax = axes[row * 4 + col]
            P = np.asarray(res[version][key])[:, :, j]
            im = ax.imshow(P, origin="lower", cmap="RdBu_r", vmin=0, vmax=1, aspect="auto")
            if P.shape[0] > 1 and P.shape[1] > 1:
                ax.contour(P, levels=[0.5], colors="k", linewidths=0.8)
            ax.set_xticks(range(len(Ns)), [str(n) for n in Ns])
            ax.set_yticks(range(len(Ms)), [str(m) for m in Ms])
            if row == 0:
                ax.set_title(title)
            if col == 0:
                ax.set_ylabel(f"$\\alpha = {a:g}$\ntasks $M$")
            if row == len(pa) - 1:
                ax.set_xlabel("points per task $N$")
    plotting.colorbar(fig, im, list(axes), label="P(MAML loss < DRS loss)", shrink=0.8)
    return plotting.finish(fig, f"Gao & Sener 2020 ($p = {cfg['p']}$, $\\beta = {cfg['beta']:g}$, {cfg['trials']} "
                                "trials per cell): where MAML beats DRS, exact expected losses beside their Monte "
                                "Carlo estimates (black line: P = 0.5)")


def family_k(n: int, level: float = 1e-3) -> float:
    """SE multiple for the worst of ``n`` independent comparisons: 4, or the Bonferroni normal quantile
    at family-wise level ``level`` if larger (so a worst-of-many check is not a near-certain false alarm)."""
    from scipy.stats import norm

    return float(max(4.0, norm.ppf(1.0 - level / (2 * n))))


def _worst(name, theory, mean, se, labels):
    theory, mean, se = (np.asarray(v, dtype=float) for v in (theory, mean, se))
    z = np.abs(mean - theory) / se
    j = int(np.argmax(z))
    return close_se(f"{name} (worst of {z.size}: {labels[j]})", theory[j], mean[j], se[j], k=family_k(z.size))


def _heatmap_z(Pa, Pb, n, extra_se=0.0):
    """|P_a − P_b| in units of the binomial SEs of two independent sets of n trials (and ``extra_se``)."""
    Pa, Pb = np.asarray(Pa, dtype=float), np.asarray(Pb, dtype=float)
    pbar = (Pa + Pb) / 2
    # a cell with P̄ ∈ {0, 1} has binomial SE 0; 1/(2n) is the resolution there
    se = np.sqrt(np.maximum(pbar * (1 - pbar), 0.25 / n) * 2 / n + np.asarray(extra_se) ** 2)
    return np.abs(Pa - Pb) / se, se


def _binomial(name, Pa, Pb, n, extra_se=0.0):
    """The worst cell of :func:`_heatmap_z`, as a check at max(4, Bonferroni) SE."""
    z, se = _heatmap_z(Pa, Pb, n, extra_se)
    z, se, Pa, Pb = z.ravel(), np.broadcast_to(se, z.shape).ravel(), np.ravel(Pa), np.ravel(Pb)
    j = int(np.argmax(z))
    return close_se(f"{name} (worst of {z.size} cells)", Pa[j], Pb[j], se[j], k=family_k(z.size))


def checks(res, cfg):
    from dataclasses import replace

    out = []
    d = res["direct"]
    out.append(_worst("closed-form expected loss = direct simulation of the test step (fresh tasks, N points)",
                      d["theory"], d["mean"], d["se"], d["label"]))
    out[-1] = replace(out[-1], claim="gao.expected-loss-closed-form")
    m = res["mc_check"]
    out.append(_worst("their Monte Carlo expected loss = closed form", m["theory"], m["mean"], m["se"], m["label"]))
    out[-1] = replace(out[-1], claim="gao.expected-loss-closed-form")
    T_ = cfg["trials"]
    for key, when in (("pre", "before"), ("post", "after")):
        e, m = res["exact"], res["mc"]
        out.append(_binomial(f"heatmaps {when} the test step: exact-moment P = Monte Carlo P (binomial SEs of both "
                             f"and the bootstrap SE of their moments)", e[key], m[key], T_, m[f"{key}_boot_se"]))
        out[-1] = replace(out[-1], claim="gao.heatmaps-reproduced")
        out.append(_binomial(f"heatmaps {when} the test step: exact P on two independent sets of trials",
                             e[key], m[f"{key}_exact"], T_))
        out[-1] = replace(out[-1], claim="gao.heatmaps-reproduced")
        # the effect of their Monte Carlo moments alone: the same trials scored both ways
        d = np.abs(np.asarray(m[key]) - np.asarray(m[f"{key}_exact"]))
        z, _ = _heatmap_z(m[key], m[f"{key}_exact"], T_)
        kk = family_k(z.size)
        i = np.unravel_index(int(np.argmax(d)), d.shape)
        out.append(finding(f"{when} the step, their 1000-task Monte Carlo moments (vs exact, same trials) change P by up "
                           f"to {d.max():.3f} (M={res['Ms'][i[0]]}, N={res['Ns'][i[1]]}, alpha={res['alphas'][i[2]]:g}); "
                           f"in {int(np.sum(z > kk))} of {z.size} cells by more than {kk:.2f} binomial SEs",
                           bool(np.sum(z > kk) == 0), float(d.max()), 0.0,
                           "their heatmap is reproduced within binomial noise in every cell", claim="gao.heatmaps-reproduced"))
    # findings: where MAML beats DRS, before vs after the test step (exact version)
    for a in cfg["plot_alphas"]:
        j = _alpha_index(res, a)
        pre, post = np.asarray(res["exact"]["pre"])[:, :, j], np.asarray(res["exact"]["post"])[:, :, j]
        se = lambda P: np.sqrt(np.maximum(P * (1 - P), 0.25 / T_) / T_)  # noqa: E731
        drs_pre = int(np.sum(pre + 4 * se(pre) < 0.5))
        maml_post = int(np.sum(post - 4 * se(post) > 0.5))
        n = pre.size
        out.append(finding(f"alpha={a:g}: before the test step DRS beats MAML (P < 0.5 by 4 SE) in {drs_pre}/{n} cells",
                           drs_pre > n / 2, drs_pre, n / 2, "in more than half the cells", claim="gao.drs-wins-before-step"))
        out.append(finding(f"alpha={a:g}: after the test step MAML beats DRS (P > 0.5 by 4 SE) in {maml_post}/{n} cells "
                           f"(before: {int(np.sum(pre - 4 * se(pre) > 0.5))})",
                           maml_post > int(np.sum(pre - 4 * se(pre) > 0.5)), maml_post, float(np.sum(pre > 0.5)),
                           "more cells after than before", claim="gao.maml-wins-after-step"))
        big, small = post[-1, -1], post[0, 0]
        out.append(finding(f"alpha={a:g}: after the step MAML wins with many tasks and points, not with few: "
                           f"P(M={res['Ms'][-1]}, N={res['Ns'][-1]}) = {big:.3f}, P(M={res['Ms'][0]}, N={res['Ns'][0]}) = {small:.3f}",
                           big - 4 * se(big) > 0.5 > small + 4 * se(small), big, small, "P_large > 0.5 > P_small (4 SE)", claim="gao.maml-wins-after-step"))
    return out


EXPERIMENT = Experiment(
    name="gao_sener_tradeoff",
    paper="Gao & Sener 2020",
    figure="linear-regression heatmaps (code: isl-org/MetaLearningTradeoffs)",
    claim="MAML trades modelling error for optimisation error: before the test-time step pooled least squares (DRS) "
          "wins; after it MAML wins once there are enough tasks and points; exact expected losses reproduce the "
          "Monte Carlo heatmaps.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
)
