"""What an experiment module declares: its config parameters, presets, run, plot and checks.

An experiment is one module in :mod:`linmeta.experiments` that defines a
module-level ``EXPERIMENT = Experiment(...)``; the registry finds it by itself.

``run(config, ctx)`` returns a nested dict of arrays/scalars (the cached result);
heavy, independent pieces go through ``ctx.map(fn, items)`` so that they are
cached one by one (a killed sweep resumes where it stopped) and can run on any
``concurrent.futures.Executor``.  ``plot(result, config)`` returns a matplotlib
figure and never recomputes.  ``checks(result, config)`` returns a list of
:class:`Check` comparing theory with simulation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .. import claims


class ConfigError(ValueError):
    """Bad user input to an experiment (unknown name or key, wrong type, out of range)."""


ROLES = ("run", "check", "plot")


def check_seed(seed) -> int:
    """A seed as given by a user: a non-negative integer (ConfigError otherwise)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


@dataclass(frozen=True)
class Param:
    """One config parameter: its type, quick and full values, and its allowed range.

    ``type`` is one of ``int``, ``float``, ``bool``, ``str``, ``"ints"`` (a tuple of ints,
    written ``32,32`` on the command line; empty for ``()``) or ``"floats"``.

    ``role`` says what the value affects: ``"run"`` (the simulation: part of the result's cache key),
    or ``"check"`` / ``"plot"`` (only the verdicts or the figure: changing it reuses the cached
    result).  ``Experiment.run`` only sees the ``"run"`` parameters.
    """

    type: object
    quick: object
    full: object = None
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    help: str = ""
    role: str = "run"
    min_len: int | None = None

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")

    def full_value(self):
        return self.quick if self.full is None else self.full

    @property
    def type_name(self) -> str:
        """``int``, ``float``, ``bool``, ``str``, ``ints`` or ``floats``."""
        return self.type if isinstance(self.type, str) else self.type.__name__

    @property
    def is_tuple(self) -> bool:
        return self.type in ("ints", "floats")

    def min_items(self) -> int:
        """The fewest items a tuple parameter takes: ``min_len``, or 0 if a preset is empty, else 1."""
        if self.min_len is not None:
            return int(self.min_len)
        return 0 if () in (tuple(self.quick), tuple(self.full_value())) else 1

    def allowed(self) -> str:
        """The allowed values in words: ``one of a, b``, ``>= 1; <= 100``, ``at least 1 item`` ... (or ``any``)."""
        rng = []
        if self.choices is not None:
            rng.append("one of " + ", ".join(map(str, self.choices)))
        num = lambda v: str(v) if isinstance(v, int) or not isinstance(v, float) else f"{v:g}"
        if self.low is not None:
            rng.append(f">= {num(self.low)}")
        if self.high is not None:
            rng.append(f"<= {num(self.high)}")
        if self.is_tuple and self.min_items():
            rng.append("non-empty" if self.min_items() == 1 else f"at least {self.min_items()} items")
        return "; ".join(rng) or "any"

    def describe(self) -> str:
        allowed = self.allowed()
        return self.type_name + ("" if allowed == "any" else f" ({allowed})")

    def parse(self, key: str, text: str):
        """Parse a command-line string; raise ValueError naming the key and the allowed values."""
        try:
            if self.type is bool:
                low = text.strip().lower()
                if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError
                value = low in ("1", "true", "yes", "on")
            elif self.type in ("ints", "floats"):
                conv = int if self.type == "ints" else float
                tokens = [t.strip() for t in text.split(",")] if text.strip() else []
                if any(t == "" for t in tokens):
                    raise ConfigError(f"{key}={text!r} has an empty item; write comma-separated values such as "
                                      f"{key}={self.example()}")
                value = tuple(conv(t) for t in tokens)
            elif self.type is int:
                value = int(text)
            elif self.type is float:
                value = float(text)
            else:
                value = text
        except ConfigError:
            raise
        except ValueError:
            raise ConfigError(f"{key}={text!r} is not a valid {self.describe()}") from None
        return self.validate(key, value)

    def example(self) -> str:
        """The quick value as it is written on the command line (``32,32`` for a tuple)."""
        if self.is_tuple:
            return ",".join(map(str, self.quick)) or "''"
        return str(self.quick)

    def validate(self, key: str, value):
        items = value if isinstance(value, tuple) else (value,)
        if self.is_tuple and len(items) < self.min_items():
            raise ConfigError(f"{key}={','.join(map(str, items))!r} is empty; {key} takes at least "
                              f"{self.min_items()} comma-separated {self.type_name[:-1]}, e.g. {key}={self.example()}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{key}={value!r} is not allowed; choose one of {', '.join(map(str, self.choices))}")
        for v in items:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{key}={value!r} must be finite")
            if self.low is not None and v < self.low:
                raise ConfigError(f"{key}={value!r} is out of range; allowed: {self.describe()}")
            if self.high is not None and v > self.high:
                raise ConfigError(f"{key}={value!r} is out of range; allowed: {self.describe()}")
        return value


@dataclass(frozen=True)
class Check:
    """One theory-vs-simulation comparison.

    Attributes
    ----------
    name : what is checked.
    theory : the predicted value (or bound); ``nan`` if the check is qualitative.
    simulation : the measured value.
    stderr : standard error of ``simulation`` (0 for exact/deterministic quantities).
    tolerance : how pass/fail was decided, in words (e.g. ``"|Δ| ≤ 4 SE"``).
    passed : the verdict.
    kind : ``"check"`` (theory vs simulation: a failure is an error) or ``"finding"`` (the test of a
        paper's qualitative claim in one setting: ``passed`` says whether the claim was reproduced;
        a claim that is not reproduced is reported, not counted as a failed check).
    claim : the label of the claim it tests in the catalogue (:mod:`linmeta.claims`), or None.
    """

    name: str
    theory: float
    simulation: float
    stderr: float
    tolerance: str
    passed: bool
    kind: str = "check"
    claim: str | None = None

    def __post_init__(self):
        if self.claim is not None:
            claims.get(self.claim)  # a ValueError names the unknown label

    def as_dict(self) -> dict:
        f = lambda x: None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
        return {"name": self.name, "theory": f(self.theory), "simulation": f(self.simulation),
                "stderr": f(self.stderr), "tolerance": self.tolerance, "passed": bool(self.passed),
                "kind": self.kind, "claim": self.claim}


def close_se(name, theory, simulation, stderr, k: float = 4.0, *, claim=None) -> Check:
    """Pass if ``|simulation − theory| ≤ k·stderr`` (a statistical tolerance)."""
    theory, simulation, stderr = float(theory), float(simulation), float(stderr)
    return Check(name, theory, simulation, stderr, f"|diff| <= {k:.3g} SE", abs(simulation - theory) <= k * stderr,
                 claim=claim)


def close_rel(name, theory, simulation, rtol: float = 1e-10, stderr: float = 0.0, *, claim=None) -> Check:
    """Pass if ``|simulation − theory| ≤ rtol·max(|theory|, tiny)`` (an exact identity)."""
    theory, simulation = float(theory), float(simulation)
    scale = max(abs(theory), 1e-300)
    return Check(name, theory, simulation, float(stderr), f"rel err <= {rtol:g}",
                 abs(simulation - theory) <= rtol * scale, claim=claim)


def below(name, bound, simulation, stderr=0.0, k: float = 4.0, margin: float = 0.0, *, claim=None) -> Check:
    """Pass if ``simulation + k·stderr < bound − margin`` (clearly below, statistically)."""
    bound, simulation, stderr = float(bound), float(simulation), float(stderr)
    tol = f"sim + {k:g} SE < theory" + (f" - {margin:g}" if margin else "")
    return Check(name, bound, simulation, stderr, tol, simulation + k * stderr < bound - margin, claim=claim)


def above(name, bound, simulation, stderr=0.0, k: float = 4.0, margin: float = 0.0, *, claim=None) -> Check:
    """Pass if ``simulation − k·stderr > bound + margin``."""
    bound, simulation, stderr = float(bound), float(simulation), float(stderr)
    tol = f"sim - {k:g} SE > theory" + (f" + {margin:g}" if margin else "")
    return Check(name, bound, simulation, stderr, tol, simulation - k * stderr > bound + margin, claim=claim)


def small(name, value, tol: float, *, claim=None) -> Check:
    """Pass if a non-negative error ``value`` is at most ``tol`` (theory: 0)."""
    value = float(value)
    return Check(name, 0.0, value, 0.0, f"<= {tol:.3g}", value <= tol, claim=claim)


def finding(name, reproduced: bool, value=float("nan"), reference=float("nan"), tolerance: str = "claim", *,
            claim=None) -> Check:
    """A paper claim tested in one setting; reported as REPRODUCED / NOT REPRODUCED, never as a failure."""
    return Check(name, float(reference), float(value), 0.0, tolerance, bool(reproduced), kind="finding", claim=claim)


def as_finding(check: Check, *, claim=None) -> Check:
    """The same comparison, reported as a paper claim (REPRODUCED / NOT REPRODUCED) rather than a check."""
    return replace(check, kind="finding", claim=claim if claim is not None else check.claim)


def holds(name, condition: bool, value=float("nan"), reference=float("nan"), tolerance: str = "holds", *,
          claim=None) -> Check:
    """A qualitative check (an inequality or a property) with the numbers behind it."""
    return Check(name, float(reference), float(value), 0.0, tolerance, bool(condition), claim=claim)


@dataclass(frozen=True)
class Experiment:
    """An experiment: metadata, config parameters with quick/full presets, and the three functions.

    Parameters
    ----------
    name : command-line name (``linmeta run NAME``).
    paper : short citation, e.g. ``"Arnold et al. 2021"``.
    figure : which figure/table of the paper it reproduces (or "new").
    claim : one line stating the claim the figure tests (shown in the README gallery).
    params : ``{key: Param}``; ``seed`` is added automatically.
    run : ``run(config: dict, ctx) -> dict``.
    plot : ``plot(result: dict, config: dict) -> matplotlib.figure.Figure``.
    checks : ``checks(result: dict, config: dict) -> list[Check]``.
    backends : the array backends ``run`` supports (``ctx.backend``, handed to piece functions that take a
        ``backend`` keyword); numpy only by default.
    """

    name: str
    paper: str
    figure: str
    claim: str
    params: dict
    run: Callable
    plot: Callable
    checks: Callable
    seed: int = 0
    backends: tuple = ("numpy",)

    def config(self, mode: str = "quick", overrides: dict | None = None, seed: int | None = None) -> dict:
        """The config for a preset (``quick``/``full``) with validated overrides."""
        if mode not in ("quick", "full"):
            raise ConfigError(f"mode must be 'quick' or 'full', got {mode!r}")
        cfg = {k: (p.quick if mode == "quick" else p.full_value()) for k, p in self.params.items()}
        for k, v in (overrides or {}).items():
            if k not in self.params:
                raise ConfigError(
                    f"unknown parameter {k!r} for experiment {self.name}; allowed: {', '.join(sorted(self.params))}"
                )
            cfg[k] = self.params[k].validate(k, self._coerce(k, v))
        cfg["seed"] = self.seed if seed is None else check_seed(seed)
        return cfg

    def preset(self, mode: str = "quick") -> dict:
        """The preset config (no overrides, the default seed)."""
        return self.config(mode)

    def changes(self, config: dict, mode: str = "quick") -> dict:
        """``{key: value}`` of ``config`` that differ from the ``mode`` preset (the seed included), in key order."""
        preset = self.config(mode)
        return {k: v for k, v in config.items() if k in preset and preset[k] != v}

    def cost_ratio(self, config: dict) -> tuple:
        """A rough cost of ``config`` relative to the full preset: ``(ratio, [(key, value ratio), ...])``.

        The product, over the integer run parameters (sizes, counts, steps) and the tuple run parameters
        (grids), of how many times larger the value is than in the full preset (a sum of items for a tuple
        of ints, the number of items for a tuple of floats); parameters smaller than in the full preset
        count as 1.  It underestimates parameters whose cost is superlinear (a dimension), so it only
        catches runs that are obviously endless.
        """
        full = self.config("full")
        ratio, parts = 1.0, []
        for key, p in self.params.items():
            if p.role != "run" or p.choices is not None or key not in config:
                continue
            if p.type is int and not isinstance(config[key], bool):
                size, ref = abs(int(config[key])), abs(int(full[key]))
            elif p.type == "ints":
                size, ref = sum(abs(int(v)) for v in config[key]), sum(abs(int(v)) for v in full[key])
            elif p.type == "floats":
                size, ref = len(config[key]), len(full[key])
            else:
                continue
            r = size / max(ref, 1)
            if r > 1:
                ratio *= r
                parts.append((key, r))
        return ratio, parts

    def run_config(self, config: dict) -> dict:
        """The part of ``config`` the simulation depends on: the ``"run"`` parameters and the seed.

        This is what ``run`` receives and what the result's cache key is made of; check and plot
        parameters are left out, so changing them reuses the cached result.
        """
        return {k: v for k, v in config.items() if k not in self.params or self.params[k].role == "run"}

    def _coerce(self, key, value):
        """Accept Python values of the right type (ints for floats, lists for tuples)."""
        p = self.params[key]
        ok = {int: (int, np.integer), float: (int, float, np.integer, np.floating), bool: (bool, np.bool_), str: (str,)}
        if p.type in ("ints", "floats"):
            conv = int if p.type == "ints" else float
            try:
                return tuple(conv(v) for v in value)
            except (TypeError, ValueError):
                raise ConfigError(f"{key}={value!r} must be a sequence of {conv.__name__}s") from None
        if isinstance(value, bool) and p.type is not bool or not isinstance(value, ok[p.type]):
            raise ConfigError(f"{key}={value!r} must be of type {p.describe()}")
        return p.type(value)

    def parse_overrides(self, pairs) -> dict:
        """Parse ``["key=value", ...]`` from the command line."""
        out = {}
        for pair in pairs or ():
            if "=" not in pair:
                raise ConfigError(f"--set takes key=value, got {pair!r}")
            key, text = pair.split("=", 1)
            key = key.strip()
            if key in out:
                raise ConfigError(f"--set {key}= is given twice; give each parameter once")
            if key not in self.params:
                raise ConfigError(
                    f"unknown parameter {key!r} for experiment {self.name}; allowed: {', '.join(sorted(self.params))}"
                )
            out[key] = self.params[key].parse(key, text)
        return out


def seeds_tasks_mean_se(values) -> tuple:
    """Mean and SE of values ``(seeds, tasks)`` measured on one test set shared by every seed.

    With ``v[s, t] = μ + a_s + b_t + c_st``, var(seed means)/S estimates ``σ_a²/S + σ_c²/(ST)`` and
    var(task means)/T estimates ``σ_b²/T + σ_c²/(ST)``; their sum is the variance of the grand mean
    (counting ``σ_c²/(ST)`` twice, i.e. slightly conservative).
    """
    v = np.asarray(values, dtype=float)
    S, T = v.shape
    var = v.mean(axis=1).var(ddof=1) / S + v.mean(axis=0).var(ddof=1) / T
    return float(v.mean()), float(np.sqrt(var))


def mean_and_se(x, axis=0):
    """Mean and standard error along ``axis`` (ddof=1; SE 0 for a single sample)."""
    x = np.asarray(x, dtype=float)
    n = x.shape[axis]
    se = x.std(axis=axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(x.mean(axis=axis))
    return x.mean(axis=axis), se
