"""A small sweep experiment used by the resume/executor tests (not registered: it lives in tests/)."""
import os
import time

import numpy as np

from linmeta.experiments.base import Experiment, Param, close_se


def _piece(item):
    log = item.get("log")
    if log:
        with open(log, "a") as f:
            f.write(f"start {item['i']}\n")
    time.sleep(item["sleep"])
    rng = np.random.default_rng([item["seed"], item["i"]])
    x = rng.standard_normal(item["n"])
    if log:
        with open(log, "a") as f:
            f.write(f"done {item['i']} {os.getpid()}\n")
    return {"mean": x.mean(), "se": x.std(ddof=1) / np.sqrt(x.size)}


def run(cfg, ctx):
    items = [{"i": i, "n": cfg["n"], "seed": cfg["seed"], "sleep": cfg["sleep"], "log": cfg["log"]}
             for i in range(cfg["pieces"])]
    res = ctx.map(_piece, items, desc="fixture")
    return {"mean": np.array([r["mean"] for r in res]), "se": np.array([r["se"] for r in res])}


def plot(res, cfg):
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    ax.errorbar(np.arange(len(res["mean"])), res["mean"], res["se"], fmt="o")
    return fig


def checks(res, cfg):
    m = res["mean"].mean()
    se = res["mean"].std(ddof=1) / np.sqrt(len(res["mean"]))
    return [close_se("mean of standard normals is 0", 0.0, m, se)]


EXPERIMENT = Experiment(
    name="sweep_fixture", paper="tests", figure="-", claim="fixture",
    params={"pieces": Param(int, 8, low=1), "n": Param(int, 1000, low=2), "sleep": Param(float, 0.0, low=0.0),
            "log": Param(str, "")},
    run=run, plot=plot, checks=checks,
)
