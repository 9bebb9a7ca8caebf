"""Raghu et al. (2020), Fig. 2 analogue: how much does the inner loop change each layer's representation?

Deep linear networks are meta-trained with MAML on the low-rank task family (a shared
representation exists).  For test tasks, each layer's representation ``h_l = A_l x`` before the
inner loop is compared with the task-adapted one ``h'_l = A'_l x``:

* linear CKA in closed form for Gaussian inputs (:func:`linmeta.theory.similarity.linear_cka`) and
  from ``n`` probe samples (:func:`linmeta.sim.representations.linear_cka_samples`);
* mean canonical correlation (SVCCA-style) in closed form (principal angles,
  :func:`linmeta.theory.similarity.mean_cca`) and from samples
  (:func:`linmeta.sim.representations.mean_cca_samples`).

Two architectures: a **bottleneck** body (first width < d, so every body representation has rank
< its width and CCA is informative) and a **full-width** body of square layers, where population CCA
between pre- and post-adaptation representations is identically 1 (the "CCA trap",
``derivations/linear_cka.py``) while CKA still registers the change.

Raghu et al. report CCA > 0.9 for the body layers and < 0.5 for the head; the checks test both
thresholds (CKA and CCA) in each architecture, and the closed forms against the samples.
"""
from __future__ import annotations

import numpy as np

from .. import InnerLoop, adapt
from .. import to_numpy
from ..sim.representations import layer_maps, linear_cka_samples, mean_cca_samples
from .. import as_generator
from ..theory.similarity import linear_cka, mean_cca
from . import plotting
from ..sim.families import representation_family
from ..sim.stats import mean_se
from ..sim.training import train_two_phase
from .base import Experiment, Param, above, as_finding, below, close_se, small

ARCHS = ("bottleneck", "full")

PARAMS = {
    "d": Param(int, 10, 16, low=2, high=200, help="input dimension"),
    "k": Param(int, 2, 3, low=1, high=50, help="rank of B*"),
    "bottleneck": Param(int, 3, 4, low=1, high=1000, help="width of the first layer in the bottleneck architecture"),
    "depth": Param(int, 4, 4, low=2, high=8, help="number of layers"),
    "K": Param(int, 5, 5, low=1, high=1000, help="support shots"),
    "alpha": Param(float, 0.1, 0.1, low=1e-4, high=2.0, help="inner step size"),
    "noise": Param(float, 0.2, 0.2, low=0.0, high=100.0, help="label noise σ"),
    "steps": Param(int, 500, 4000, low=1, high=1_000_000, help="outer steps (then steps/2 more at lr/10)"),
    "lr": Param(float, 0.01, 0.003, low=1e-6, high=1.0, help="Adam learning rate"),
    "tasks_per_step": Param(int, 16, 32, low=1, high=10000, help="tasks per meta-batch"),
    "seeds": Param(int, 3, 6, low=2, high=64, help="independent trainings (run axis)"),
    "eval_tasks": Param(int, 60, 100, low=2, high=10000, help="test tasks (one support set each)"),
    "probe": Param(int, 1000, 2000, low=20, high=1_000_000, help="probe inputs per task for the sample estimates"),
}


def widths_of(arch, cfg):
    full = (cfg["d"],) * (cfg["depth"] - 1)
    return full if arch == "full" else (cfg["bottleneck"],) + full[1:]


def _piece(item, backend=None):
    cfg, arch = item["cfg"], item["arch"]
    ai = ARCHS.index(arch)
    fam = representation_family("low_rank", cfg["d"], cfg["k"], cfg["noise"], seed=cfg["seed"])
    rule = InnerLoop(1, cfg["alpha"], "all")
    params = train_two_phase(fam, widths_of(arch, cfg), rule, steps=cfg["steps"], lr=cfg["lr"], K=cfg["K"],
                        tasks_per_step=cfg["tasks_per_step"], seeds=cfg["seeds"], seed=[cfg["seed"], 301, ai],
                        init_seed=[cfg["seed"], 302, ai],
                        backend=backend)
    params = tuple(to_numpy(W) for W in params)  # trained on the backend; evaluated on the host
    rng = as_generator(np.random.SeedSequence([cfg["seed"], 303, ai]))
    tasks = fam.sample_tasks(cfg["eval_tasks"], rng)
    adapted = adapt(params, tasks.moments(cfg["K"], rng), rule)  # layers (runs, T, n_l, n_{l-1})
    pre = [A[:, None] for A in layer_maps(params)]  # (runs, 1, n_l, d)
    post = layer_maps(adapted)  # (runs, T, n_l, d)
    X = rng.standard_normal((cfg["eval_tasks"], cfg["probe"], cfg["d"]))  # probe inputs per task, Σ = I
    out = {}
    for l, (A, A2) in enumerate(zip(pre, post)):
        A = np.broadcast_to(A, A2.shape)
        H, H2 = X @ np.swapaxes(A, -1, -2), X @ np.swapaxes(A2, -1, -2)
        out[f"layer{l + 1}"] = {
            "cka": linear_cka(A, A2), "cka_samples": linear_cka_samples(H, H2),
            "cca": mean_cca(A, A2), "cca_samples": mean_cca_samples(H, H2),
            "rank": np.linalg.matrix_rank(A[:, 0]),
        }
    return out


def run(cfg, ctx):
    items = [{"cfg": cfg, "arch": a} for a in ARCHS]
    return dict(zip(ARCHS, ctx.map(_piece, items, desc="raghu_similarity")))


@plotting.styled
def plot(res, cfg):
    L = cfg["depth"]
    fig, axes = plotting.figure(len(ARCHS), width="text", height=2.8, sharey=True)
    x = np.arange(1, L + 1)
    for ax, arch in zip(axes, ARCHS):
        r = res[arch]
        for i, (key, name) in enumerate((("cka", "linear CKA"), ("cca", "mean CCA"))):
            c = plotting.COLORS[i]
            closed = [mean_se(r[f"layer{l}"][key].reshape(-1)) for l in x]
            samp = [mean_se(r[f"layer{l}"][key + "_samples"].reshape(-1)) for l in x]
            ax.plot(x + 0.08 * (i - 0.5), [m for m, _ in closed], "-", color=c, label=f"{name}, closed form")
            plotting.errorbars(ax, x + 0.08 * (i - 0.5), [m for m, _ in samp], [s for _, s in samp], k=2, color=c,
                               fmt="o", mfc="none", label=f"{name}, {cfg['probe']} samples ($\\pm$2 SE)")
        ax.axhline(0.9, color=plotting.GREY, ls=":", lw=1)
        ax.axhline(0.5, color=plotting.GREY, ls=":", lw=1)
        ax.set_xticks(x, [f"layer {l}" if l < L else "head" for l in x])
        ax.set_ylim(-0.02, 1.05)
        ax.set_title(f"{arch} body (widths {widths_of(arch, cfg)}), MAML-trained")
    axes[0].set_ylabel("similarity before vs after the inner loop")
    plotting.label_panels(axes)
    plotting.figlegend(fig, axes[:1])
    return plotting.finish(fig, "Raghu et al. Fig. 2 in deep linear nets: the body barely changes, the head does")


def checks(res, cfg):
    L = cfg["depth"]
    out = []
    for arch in ARCHS:
        r = res[arch]
        for l in range(1, L + 1):
            q = r[f"layer{l}"]
            for key, name in (("cka", "CKA"), ("cca", "mean CCA")):
                if key == "cca" and arch == "full" and l < L:
                    continue  # the trap: checked exactly below
                m, s = mean_se((q[key + "_samples"] - q[key]).reshape(-1))
                out.append(close_se(f"{arch} layer {l}: sample {name} = closed form", float(np.mean(q[key])),
                                    float(np.mean(q[key]) + m), float(s), claim="raghu.similarity-closed-form"))
        if arch == "full":
            worst = max(float(np.max(np.abs(r[f"layer{l}"]["cca"] - 1))) for l in range(1, L))
            worst_s = max(float(np.max(np.abs(r[f"layer{l}"]["cca_samples"] - 1))) for l in range(1, L))
            out.append(small("full: CCA trap, population mean CCA of square body layers = 1 (max |1 - CCA|)",
                             worst, 1e-10, claim="raghu.cca-trap"))
            out.append(small("full: CCA trap, sample mean CCA of square body layers = 1 (max |1 - CCA|)",
                             worst_s, 1e-8, claim="raghu.cca-trap"))
            cka_min = min(float(np.min(r[f"layer{l}"]["cka"])) for l in range(1, L))
            out.append(below("full: ... while population CKA of the body registers the change (min < 1)", 1.0,
                             cka_min, 0.0, margin=1e-6, claim="raghu.cca-trap"))
        keys = (("cka", "CKA"),) if arch == "full" else (("cka", "CKA"), ("cca", "CCA"))
        for key, name in keys:
            body = [mean_se(r[f"layer{l}"][key].reshape(-1)) for l in range(1, L)]
            lo = int(np.argmin([m for m, _ in body]))
            out.append(as_finding(above(f"{arch}: body {name} > 0.9 (Raghu Fig. 2; lowest: layer {lo + 1})", 0.9,
                                        body[lo][0], body[lo][1]), claim="raghu.body-similarity"))
            hm, hs = mean_se(r[f"layer{L}"][key].reshape(-1))
            out.append(as_finding(below(f"{arch}: head {name} < 0.5 (Raghu Fig. 2)", 0.5, float(hm), float(hs)),
                                  claim="raghu.head-similarity"))
    return out


EXPERIMENT = Experiment(
    name="raghu_similarity",
    paper="Raghu et al. 2020",
    figure="Fig. 2",
    claim="The inner loop leaves body representations almost unchanged (CKA/CCA > 0.9) and changes the head's (< 0.5).",
    params=PARAMS,
    run=run,
    plot=plot,
    checks=checks,
    backends=("numpy", "torch"),
)
