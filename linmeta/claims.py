"""The catalogue of claims: every claim and prediction a check or finding tests, with a stable label.

This module is the one place a label is defined.  Each :class:`Claim` names its paper (with its arXiv
ID), states the claim, describes the setting linmeta tests it in, and lists the experiments that test
it.  A :class:`~linmeta.experiments.base.Check` refers to a claim by its label (``Check.claim``);
``figures/CHECKS.md`` and the documentation link each label to its entry (:func:`anchor`), and the
documentation's table of claims with their current verdicts is generated from this catalogue and
``linmeta check --json``.

Kinds: ``"claim"`` (a statement of the paper), ``"prediction"`` (a quantitative consequence we derived
for the linear setting, not stated in the paper), ``"identity"`` (an exact mathematical identity that
a closed form rests on).
"""
from __future__ import annotations

from dataclasses import dataclass

KINDS = ("claim", "prediction", "identity")


@dataclass(frozen=True)
class Paper:
    """A paper whose claims linmeta tests."""

    key: str
    authors: str
    title: str
    venue: str
    year: int
    arxiv: str | None = None

    @property
    def url(self) -> str | None:
        return None if self.arxiv is None else f"https://arxiv.org/abs/{self.arxiv}"

    def cite(self) -> str:
        """``Authors (venue year), "Title", arXiv:ID``."""
        tail = f", arXiv:{self.arxiv}" if self.arxiv else ""
        return f'{self.authors} ({self.venue} {self.year}), "{self.title}"{tail}'


PAPERS = {p.key: p for p in (
    Paper("arnold2021", "Arnold, Iqbal & Sha", "When MAML Can Adapt Fast and How to Assist When It Cannot",
          "AISTATS", 2021, "1910.13603"),
    Paper("raghu2020", "Raghu, Raghu, Bengio & Vinyals",
          "Rapid Learning or Feature Reuse? Towards Understanding the Effectiveness of MAML", "ICLR", 2020,
          "1909.09157"),
    Paper("collins2022landscape", "Collins, Mokhtari & Shakkottai",
          "How Does the Task Landscape Affect MAML Performance?", "CoLLAs", 2022, "2010.14672"),
    Paper("collins2022representations", "Collins, Mokhtari, Oh & Shakkottai",
          "MAML and ANIL Provably Learn Representations", "ICML", 2022, "2202.03483"),
    Paper("bernacchia2021", "Bernacchia", "Meta-learning with negative learning rates", "ICLR", 2021, "2102.00940"),
    Paper("ji2022", "Ji, Yang & Liang", "Theoretical Convergence of Multi-Step Model-Agnostic Meta-Learning", "JMLR",
          2022, "2002.07836"),
    Paper("saunshi2020", "Saunshi, Zhang, Khodak & Arora",
          "A Sample Complexity Separation between Non-Convex and Convex Meta-Learning", "ICML", 2020, "2002.11172"),
    Paper("fallah2020", "Fallah, Mokhtari & Ozdaglar",
          "On the Convergence Theory of Gradient-Based Model-Agnostic Meta-Learning Algorithms", "AISTATS", 2020,
          "1908.10400"),
    Paper("gao2020", "Gao & Sener", "Modeling and Optimization Trade-off in Meta-learning", "NeurIPS", 2020,
          "2010.12916"),
    Paper("linmeta", "linmeta", "engine and closed-form checks of this package", "linmeta", 2026, None),
)}


@dataclass(frozen=True)
class Claim:
    """One claim or prediction, under a stable label.

    Attributes
    ----------
    label : stable identifier, ``<paper-short>.<slug>`` (e.g. ``arnold.shallow-floor``); never reused.
    paper : key into :data:`PAPERS`.
    statement : the claim, in one or two sentences.
    setting : the linear-model setting linmeta tests it in.
    experiments : the experiments whose checks or findings test it.
    kind : one of :data:`KINDS`.
    """

    label: str
    paper: str
    statement: str
    setting: str
    experiments: tuple
    kind: str = "claim"

    def __post_init__(self):
        if self.paper not in PAPERS:
            raise ValueError(f"claim {self.label!r}: unknown paper {self.paper!r}")
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.label!r}: kind must be one of {KINDS}, got {self.kind!r}")


_CLAIMS = (
    Claim("collins-landscape.gain-needs-hardness-and-packing", "collins2022landscape",
          "MAML beats non-adaptive learning (NAL) only when the tasks differ in hardness and the hard tasks' optima "
          "are tightly packed relative to their distance from the easy ones.",
          "isotropic easy/hard two-cluster mixtures of linear-regression tasks, a shallow model, one inner step with "
          "population gradients; MAML and NAL trained on a grid of (D/R_H, rho_H/rho_E)",
          ("collins_phase_diagram", "collins_gain")),
)

CLAIMS = {c.label: c for c in _CLAIMS}


def get(label: str) -> Claim:
    """The claim under ``label``; a ValueError lists the known labels otherwise."""
    if label not in CLAIMS:
        raise ValueError(f"unknown claim label {label!r}; known: {', '.join(sorted(CLAIMS))}")
    return CLAIMS[label]


def anchor(label: str) -> str:
    """The HTML anchor of a claim's entry in the generated catalogue (``docs/claims.md``)."""
    get(label)
    return label.replace(".", "-")
