"""Raghu et al. (2020), Table 2 analogue: ANIL against MAML in deep linear networks.

Deep linear networks are meta-trained (Adam, fresh task batches, several seeds on the run axis)
with MAML (every layer adapts, in training and at test) and with ANIL (only the head adapts), on
two Gaussian regression families:

* ``isotropic``: ``w* ~ N(μ, (k/d) I)`` with ``‖μ‖ = mean_norm``: no shared low-dimensional structure;
* ``low_rank``: ``y = ⟨B* a_t, x⟩ + noise`` with ``B*`` (d x k, orthonormal), ``a_t ~ N(0, I_k)``;
  i.e. ``GaussianRegression(cov = B* B*ᵀ)``, a degenerate Gaussian (Collins et al. 2022).

The post-adaptation loss (K-shot support, population query) is reported per seed:

* ANIL exactly, by the closed form of :func:`linmeta.theory.anil.anil_expected_loss`, and by Monte
  Carlo over tasks and support sets (a theory-vs-simulation check);
* MAML by Monte Carlo (no closed form for a deep network adapting every layer);
* references: the best loss without adaptation (``½ tr Cov W* + ½σ²``), and the ANIL oracle, the
  exact lower bound on one-step ANIL over every deep linear network
  (:func:`linmeta.theory.anil.anil_oracle`).

Why MAML can lose at a fixed α (our derivation; ``derivations/head_body_split.py``).  One MAML step of a two-layer net moves
``M`` by ``−α(G ΦᵀΦ + hhᵀ G) + O(α²)``, so along the direction ``v = Mᵀ/‖M‖`` its effective step is
``α(‖Φv‖² + ‖h‖²) ≥ 2α‖hΦv‖ = 2α‖M‖``: a network whose initialisation carries a non-zero mean task
cannot take small inner steps along it, while ANIL's step ``α‖Φv‖²`` is free.  With a non-zero mean
and a large α, MAML must shrink ``M`` below the mean task.  ``norm_M`` records ‖M‖ per seed, and
``min_body_step`` the smallest eigenvalue of ``αΦᵀΦ``: on the isotropic family every direction needs a
step, so 0 flags a collapsed body direction (a saddle of deep linear training that some ANIL seeds
reach); on the low-rank family only k directions are needed and the others shrink to 0 by design.

The cost of one meta-gradient (ANIL vs MAML) is measured in ``benchmarks/bench_anil_vs_maml.py``.
"""
from __future__ import annotations

import numpy as np

from .. import InnerLoop, end_to_end
from .. import to_numpy
from ..sim.evaluation import post_adaptation_losses, test_set
from ..sim.families import REPRESENTATION_FAMILIES as FAMILIES
from ..sim.families import representation_family
from ..sim.stats import crossed_difference_se, mean_se
from ..sim.training import train_two_phase
from ..theory import anil
from . import plotting
from .base import Check, Experiment, Param, below, close_se, holds

METHODS = {"MAML": "all", "ANIL": "last"}

PARAMS = {
    "d": Param(int, 10, 16, low=2, high=200, help="input dimension"),
    "k": Param(int, 2, 3, low=1, high=50, help="rank of B* (low-rank family) / total task variance"),
    "widths": Param("ints", (10, 10), (16, 16), low=1, high=10000, help="hidden widths (depth = len + 1)"),
    "K": Param(int, 5, 5, low=1, high=1000, help="support shots (training and test)"),
    "alphas": Param("floats", (0.1, 0.3), (0.1, 0.3), low=1e-4, high=2.0, help="inner step sizes"),
    "noise": Param(float, 0.2, 0.2, low=0.0, high=100.0, help="label noise σ"),
    "mean_norm": Param(float, 1.0, 1.0, low=0.0, high=100.0, help="‖E[w*]‖ of the isotropic family"),
    "steps": Param(int, 600, 4000, low=1, high=1_000_000, help="outer steps (then steps/2 more at lr/10)"),
    "lr": Param(float, 0.01, 0.003, low=1e-6, high=1.0, help="Adam learning rate"),
    "tasks_per_step": Param(int, 16, 32, low=1, high=10000, help="tasks per meta-batch"),
    "seeds": Param(int, 4, 8, low=2, high=64, help="independent trainings (run axis)"),
    "eval_tasks": Param(int, 2000, 5000, low=10, high=1_000_000, help="test tasks for the Monte Carlo evaluation"),
}


# ---------------------------------------------------------------------------------------------
# the experiment
# ---------------------------------------------------------------------------------------------


def _piece(item, backend=None):
    cfg, fam_name, method, alpha = item["cfg"], item["family"], item["method"], item["alpha"]
    fi, ai = FAMILIES.index(fam_name), list(cfg["alphas"]).index(alpha)
    fam = representation_family(fam_name, cfg["d"], cfg["k"], cfg["noise"], cfg["mean_norm"], cfg["seed"])
    rule = InnerLoop(1, alpha, METHODS[method])
    params = train_two_phase(fam, cfg["widths"], rule, steps=cfg["steps"], lr=cfg["lr"], K=cfg["K"],
                        tasks_per_step=cfg["tasks_per_step"], seeds=cfg["seeds"],
                        seed=[cfg["seed"], fi, ai, list(METHODS).index(method)], init_seed=[cfg["seed"], fi, ai],
                        backend=backend)
    params = tuple(to_numpy(W) for W in params)  # trained on the backend; evaluated on the host
    batch, tasks = test_set(fam, cfg["K"], cfg["eval_tasks"], np.random.SeedSequence([cfg["seed"], 53, fi, ai]),
                            return_tasks=True)
    vals = post_adaptation_losses(params, batch, rule)
    out = {"mc": vals.mean(-1), "mc_se": vals.std(-1, ddof=1) / np.sqrt(vals.shape[-1]),
           "mc_task_mean": vals.mean(0)}  # per task, averaged over seeds (tasks are shared by the methods)
    if method == "ANIL":
        out["closed"] = anil.anil_expected_loss(params, fam, cfg["K"], alpha)
        # conditional on the tasks drawn, MC minus the per-task closed form has mean zero; the runs share
        # the tasks and support sets, so the pooled difference is averaged over runs before its SE
        closed_tasks = anil.anil_expected_task_loss(params, tasks, cfg["K"], alpha)
        diff = (vals - closed_tasks).mean(0)
        out["cond_closed"] = closed_tasks.mean()  # the closed form averaged over the drawn tasks
        out["cond_diff"], out["cond_diff_se"] = diff.mean(), diff.std(ddof=1) / np.sqrt(diff.size)
    out["norm_M"] = np.linalg.norm(end_to_end(params)[:, 0, :], axis=-1)
    # smallest eigenvalue of α ΦᵀΦ (isotropic family: 0 flags a collapsed body direction, see the docstring)
    out["min_body_step"] = alpha * np.linalg.eigvalsh(anil.top_only_factor(params))[:, 0]
    out["params"] = {str(i): W for i, W in enumerate(params)}
    return out


def run(cfg, ctx):
    items = [{"cfg": cfg, "family": f, "alpha": a, "method": m} for f in FAMILIES for a in cfg["alphas"]
             for m in METHODS]
    pieces = ctx.map(_piece, items, desc="raghu_anil")
    res = {}
    for item, p in zip(items, pieces):
        key = f"a{list(cfg['alphas']).index(item['alpha'])}"
        res.setdefault(item["family"], {}).setdefault(key, {})[item["method"]] = p
    for f in FAMILIES:
        fam = representation_family(f, cfg["d"], cfg["k"], cfg["noise"], cfg["mean_norm"], cfg["seed"])
        res[f]["no_adaptation"] = 0.5 * np.trace(fam.cov) + 0.5 * fam.noise_std**2
        res[f]["mean_norm"] = float(np.linalg.norm(fam.mean))
        for i, a in enumerate(cfg["alphas"]):
            res[f][f"a{i}"]["anil_oracle"] = anil.anil_oracle(fam, cfg["K"], a).loss
    return res


@plotting.styled
def plot(res, cfg):
    fig, axes = plotting.figure(len(FAMILIES), width="text", height=2.9, sharey=False)
    for ax, f in zip(axes, FAMILIES):
        for i, a in enumerate(cfg["alphas"]):
            r = res[f][f"a{i}"]
            for j, m in enumerate(METHODS):
                y = r[m]["closed"] if m == "ANIL" else r[m]["mc"]
                x0 = 3 * i + j
                x = x0 + np.linspace(-0.15, 0.15, y.size)
                ax.plot(x, y, "o", color=plotting.COLORS[j], ms=2.5, alpha=0.5, mew=0,
                        label=(f"{m} ({'closed form' if m == 'ANIL' else 'Monte Carlo'}), one per seed" if i == 0 else None))
                mean, se = mean_se(y)
                plotting.errorbars(ax, [x0 + 0.3], [mean], [se], k=2, color=plotting.COLORS[j], fmt="s",
                                   label=f"{m}: mean over seeds ($\\pm$2 SE)" if i == 0 else None)
            ax.plot([3 * i - 0.4, 3 * i + 1.6], [r["anil_oracle"]] * 2, "k--", lw=1,
                    label="ANIL oracle (exact lower bound)" if i == 0 else None)
        ax.axhline(res[f]["no_adaptation"], color=plotting.GREY, ls=":", lw=1, label="best loss without adaptation")
        ticks = [3 * i + j for i in range(len(cfg["alphas"])) for j in range(len(METHODS))]
        labels = [f"{m}\n$\\alpha={a:g}$" for a in cfg["alphas"] for m in METHODS]
        ax.set_xticks(ticks, labels)
        ax.set_ylabel(f"post-adaptation loss ($K={cfg['K']}$)")
        ax.set_title(f"{f.replace('_', '-')} tasks, depth {len(cfg['widths']) + 1}")
    plotting.label_panels(axes)
    plotting.figlegend(fig, axes[:1])
    return plotting.finish(fig, "Raghu et al. Table 2 in deep linear nets: ANIL vs MAML (mean $\\pm$2 SE over seeds)")


def checks(res, cfg):
    out = []
    for f in FAMILIES:
        for i, alpha in enumerate(cfg["alphas"]):
            r = res[f][f"a{i}"]
            a, m = r["ANIL"], r["MAML"]
            tag = f"{f}, α={alpha:g}"
            cc = float(a["cond_closed"])
            out.append(close_se(f"{tag}: ANIL Monte Carlo = closed form on the same test tasks (seeds pooled)", cc,
                                cc + float(a["cond_diff"]), float(a["cond_diff_se"]), claim="raghu.anil-closed-form"))
            gap = float(np.min(a["closed"] - r["anil_oracle"]))
            out.append(holds(f"{tag}: ANIL >= exact ANIL oracle (min gap over seeds)",
                             gap >= -1e-10 * r["anil_oracle"], gap, 0.0, "gap >= 0", claim="raghu.anil-closed-form"))
            md, sd = crossed_difference_se(a, m)
            out.append(Check(f"{tag}: ANIL − MAML <= 4 SE (same tasks and support sets; Raghu: ANIL ~ MAML)", 0.0,
                             md, sd, "diff <= 4 SE", bool(md <= 4 * sd), claim="raghu.anil-matches-maml"))
            mean, s = mean_se(a["closed"])
            out.append(below(f"{tag}: ANIL (closed form) beats the best non-adaptive loss", res[f]["no_adaptation"],
                             float(mean), float(s), claim="raghu.anil-matches-maml"))
            mean, s = crossed_difference_se(m)
            out.append(below(f"{tag}: MAML (Monte Carlo) beats the best non-adaptive loss", res[f]["no_adaptation"],
                             mean, s, claim="raghu.anil-matches-maml"))
    return out


EXPERIMENT = Experiment(
    name="raghu_anil",
    paper="Raghu et al. 2020",
    figure="Table 2",
    claim="ANIL (head-only inner loop) matches MAML's post-adaptation loss in deep linear networks.",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
    backends=("numpy", "torch"),
)
