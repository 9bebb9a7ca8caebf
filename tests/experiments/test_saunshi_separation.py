"""The convex / non-convex separation experiment (linmeta.experiments.saunshi_separation)."""
import matplotlib.pyplot
import numpy as np
from matplotlib.figure import Figure

from linmeta.experiments import runner
from linmeta.experiments import saunshi_separation as ex

from ..helpers import every_check_passes

TINY = {"d": 6, "d_list": (6,), "width": 3, "steps": 400, "runs": 2, "runs_linear": 8, "tasks_per_step": 8,
        "n_list": (2, 4, 12),
        "eval_tasks": 300, "checkpoints": 5}


def test_direction_and_family():
    cfg = ex.EXPERIMENT.config("quick")
    u = ex.direction(cfg, 5)
    assert np.isclose(np.linalg.norm(u), 1) and np.array_equal(u, ex.direction(cfg, 5))
    fam = ex.family(cfg, 5)
    assert np.allclose(fam.u, u) and fam.c == cfg["c"]


def test_experiment_runs_plots_and_every_check_passes(tmp_path):
    res, cfg, _ = runner.run("saunshi_separation", overrides=TINY, directory=tmp_path)
    assert res["maml_net_head"]["mc_mean"].shape == (3, 2)
    assert res["maml_net"]["align"].shape[1] == 2
    fig = ex.plot(res, cfg)
    assert isinstance(fig, Figure)
    matplotlib.pyplot.close(fig)
    checks = every_check_passes(ex, res, cfg)
    # deterministic: a training recomputed from scratch is bit-identical to the one in the result
    a = ex._train_piece({"cfg": cfg, "d": cfg["d"], "model": "linear"})
    assert np.array_equal(a["0"][:, 0, :], res["linear_w0"])
