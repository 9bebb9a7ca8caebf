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


def _c(label, paper, statement, setting, experiments, kind="claim"):
    return Claim(label, paper, statement, setting, tuple(experiments), kind)


_A, _R, _CL, _CR, _LM = "arnold2021", "raghu2020", "collins2022landscape", "collins2022representations", "linmeta"

_CLAIMS = (
    # --- Arnold, Iqbal & Sha (2021): depth, the implicit meta-optimizer, explicit meta-optimizers ---------------
    _c("arnold.shallow-floor", _A,
       "With a small fixed inner step, MAML on a shallow linear model converges to a closed-form floor: its meta-loss "
       "is a convex quadratic in the initialisation, minimised at E[w*], and the post-adaptation loss there is k steps "
       "of gradient descent with the fixed step from the mean task.  Formerly P9 (Arnold).",
       "Gaussian linear regression (x ~ N(0, I), w* ~ N(0, I)), K-shot support sets, population query, "
       "second-order MAML at a fixed alpha; exact expected K-shot loss (theory.shallow.shallow_floor)",
       ("arnold_depth", "arnold_surface"), "prediction"),
    _c("arnold.deep-escapes-floor", _A,
       "Deep linear models of the same capacity as the shallow one go clearly below the shallow floor under MAML "
       "at the same small fixed inner step: depth lets the model adapt fast.",
       "the same regression tasks; deep linear nets (L = 2, 3, 4, or the scalar y = w2 w1 x) meta-trained by Adam or SGD "
       "on the engine's exact meta-gradient",
       ("arnold_depth", "arnold_surface", "arnold_metaopt")),
    _c("arnold.deep-reaches-tuned-floor", _A,
       "A meta-trained deep linear model reaches the floor of a shallow model whose inner step is tuned optimally "
       "(theory.shallow.optimal_alpha), and its final loss is nearly invariant to the fixed inner step.  Formerly P10 (Arnold).",
       "d = 4, K = 10 support shots, population query, noiseless tasks; final losses on a common test set, 4 SE "
       "(invariance: range over alpha below 1/5 of the shallow floor's range)",
       ("arnold_depth",), "prediction"),
    _c("arnold.scalar-surface", _A,
       "For y = w2 w1 x the expected one-step meta-loss is a closed-form quartic in (w1, w2) whose minimum 0 is "
       "attained where w1 w2 = 0 and alpha rho (w1^2 + w2^2) = 1; the shallow y = w x is stuck at "
       "rho (1 - alpha rho)^2 s^2 / 2.",
       "x ~ N(0, rho), w* ~ N(0, s^2), one population inner step; the engine's meta-loss averaged over w* by "
       "Gauss-Hermite quadrature (exact for this polynomial)",
       ("arnold_surface",), "identity"),
    _c("arnold.scalar-adapts-in-one-step", _A,
       "MAML meta-training of y = w2 w1 x reaches the exact minimum 0: the learned effective step is 1/rho and one "
       "inner step lands on every task's solution, while the shallow model stays at E[w*] and moves only alpha rho of "
       "the way to each task.",
       "plain SGD on the engine's exact meta-gradient from several initialisations, fresh task batches",
       ("arnold_surface",)),
    _c("arnold.effective-step-grows", _A,
       "During MAML meta-training from a small fixed inner step, the effective step of a deep linear net (the mean "
       "eigenvalue of its implicit preconditioner alpha P) grows to the step that minimises the shallow one-step "
       "meta-loss.  Formerly P11 (Arnold).",
       "the arnold_depth task family (d = 4, K = 10), L = 2, 3; effective step from theory.precondition.implicit_matrix "
       "at checkpoints, 4 SE over seeds",
       ("arnold_step_size",), "prediction"),
    _c("arnold.upper-norms-grow", _A,
       "The upper-layer norm ||W_L ... W_2||^2 (the bottom layer's implicit step) grows during meta-training.  "
       "Formerly the second half of P11 (Arnold).",
       "as arnold.effective-step-grows; log ratio of final to initial norm, 4 SE over seeds",
       ("arnold_step_size",), "prediction"),
    _c("arnold.bottom-only-step", _A,
       "Adapting only the bottom layer of a deep linear net moves the end-to-end map exactly by "
       "-alpha (S1 S1^T) G, with S1 = W_L ... W_2: the upper layers precondition the gradient, for every alpha.  "
       "Formerly P2 (Arnold).",
       "random deep linear nets (L = 2, 3, 4) on K-shot support losses, alpha from 1e-3 to 100; the engine's inner loop "
       "against theory.precondition.bottom_only_factor, relative error 1e-12",
       ("arnold_implicit",), "identity"),
    _c("arnold.top-only-step", _A,
       "Adapting only the top layer (ANIL) moves the end-to-end map exactly by -alpha G (P_L^T P_L), with "
       "P_L = W_{L-1} ... W_1, for every alpha.  Formerly P3 (Arnold).",
       "as arnold.bottom-only-step (theory.precondition.top_only_factor)",
       ("arnold_implicit",), "identity"),
    _c("arnold.all-layer-step", _A,
       "Adapting every layer moves the end-to-end map by -alpha sum_l S_l S_l^T G P_l^T P_l plus an exact polynomial "
       "remainder of order alpha^2, so halving alpha divides the remainder by about 4.  Formerly P4 (Arnold).",
       "random deep linear nets; the remainder ratio R(a)/R(a/2) inside the rigorous interval from the O(a^3) "
       "coefficients (theory.metaopt.residual_ratio_interval) at six halvings",
       ("arnold_implicit",), "identity"),
    _c("arnold.balanced-implicit-update", _A,
       "Under balanced initialisation the first-order implicit update equals "
       "sum_j (M M^T)^((L-j)/L) G (M^T M)^((j-1)/L) (the Arora et al. form); under a Gaussian initialisation it does "
       "not.",
       "balanced factors of a random end-to-end map (theory.precondition.balanced_factors), L = 2, 3, 4; negative "
       "control on Gaussian initialisations",
       ("arnold_implicit",), "identity"),
    _c("arnold.learned-preconditioner-optimal", _A,
       "Meta-training a deep linear net learns the optimal one-step preconditioner P* = H^-1 Sigma R (symmetric "
       "positive definite), for top-only, all-layer and bottom-only (scalar step) adaptation, and never beats its "
       "closed-form optimum.",
       "scalar-output regression with an anisotropic input covariance, K-shot support sets, L-BFGS on fixed task sets; "
       "v^T P v along each eigenvector of Sigma within 4 SE over seeds (theory.metaopt.optimal_preconditioner)",
       ("arnold_implicit",), "prediction"),
    _c("arnold.metaopt-identity-reduction", _A,
       "Meta-SGD, KFO (with and without PSD factors) and Meta-Curvature at their identity initialisation give "
       "exactly MAML's adapted parameters and meta-gradient.  Formerly P6 (Arnold).",
       "random deep linear nets and K-shot regression batches; relative difference 1e-12",
       ("arnold_metaopt",), "identity"),
    _c("arnold.shallow-kfo-equals-deep", _A,
       "A shallow model with a KFO preconditioner whose factors are L^T L = S S^T (S = W_L ... W_2) and R = I "
       "reproduces a deep linear net's bottom-only adaptation exactly: the same adapted map, meta-loss and (through "
       "S^T) meta-gradient.  Formerly P7 (Arnold).",
       "a random 3-layer 2-output net and a meta-trained deep net, 3 inner steps; relative error 1e-12 (gradients "
       "1e-10)",
       ("arnold_metaopt",), "identity"),
    _c("arnold.metaopt-reach-floors", _A,
       "Learned jointly with the initialisation, each meta-optimizer reaches the closed-form floor of its class "
       "(MAML: the fixed-step floor; Meta-SGD: the best diagonal P; KFO and Meta-Curvature: the best P, which a deep "
       "linear net also reaches), so KFO < Meta-SGD < MAML.",
       "scalar-output regression with an anisotropic input covariance, one inner step, Adam on fresh tasks; floors "
       "from theory.metaopt.preconditioner_floors, 4 SE over seeds and test tasks; on isotropic tasks the optimal-step "
       "floor (theory.shallow.optimal_alpha)",
       ("arnold_metaopt", "arnold_headline"), "prediction"),
    _c("arnold.logr-one-step-limit", _A,
       "For logistic regression one MAML step from w0 = 0 reaches the class-mean direction, with a closed-form "
       "expected accuracy and loss; on centred tasks every model's pre-adaptation accuracy is exactly 1/2 by "
       "symmetry, LogR cannot beat its w0 = 0 optimum, and LogR with extra linear layers or KFO goes below it.",
       "binary tasks y = 1[w*^T x > 0], x ~ N(0, I), w* ~ N(mu, I), logistic loss, one inner step at a small fixed "
       "alpha; Monte Carlo limits from linmeta.sim.montecarlo.logr_zero_init_limits",
       ("arnold_logistic",), "prediction"),
    _c("arnold.logr-stuck", _A,
       "With MAML at a small fixed inner step, logistic regression (LogR) barely adapts: its post-adaptation accuracy "
       "stays near its pre-adaptation level.  Formerly P12 (Arnold), first part.",
       "centred (mu = 0) and shifted (|mu| = shift) binary tasks; LogR's accuracy gain below 1/4 of LogR+LinNet(1)'s "
       "(4 SE)",
       ("arnold_logistic",)),
    _c("arnold.linnet-adapts", _A,
       "LogR with extra linear layers (LogR+LinNet, the same capacity) does adapt: its accuracy rises with the inner "
       "step.  Formerly P12 (Arnold), second part.",
       "as arnold.logr-stuck, one or two extra linear layers on the output side",
       ("arnold_logistic",)),
    _c("arnold.kfo-matches-linnet", _A,
       "LogR with a KFO meta-optimizer matches or beats LogR+LinNet at equal inner step.  Formerly P12 (Arnold), third part.",
       "as arnold.logr-stuck; paired accuracy difference, 4 SE",
       ("arnold_logistic",)),
    _c("arnold.extra-layers-help", _A,
       "Adding linear layers to the output side (no change in capacity) improves both shallow and deep models under "
       "MAML.",
       "linear-regression analogue of the paper's comparison: isotropic and rotated ill-conditioned inputs, one inner "
       "step at a small fixed alpha, Adam on fresh tasks, paired final losses, 4 SE",
       ("arnold_headline",)),
    _c("arnold.kfo-best", _A,
       "KFO performs best among MAML, +extra linear layers, +Meta-SGD and +KFO, on shallow and deep models.",
       "as arnold.extra-layers-help; KFO against the least favourable other variant, 4 SE",
       ("arnold_headline",)),
    _c("arnold.metaopt-help-shallow-most", _A,
       "Meta-optimizers (Meta-SGD, KFO) help shallow models more than deep ones.",
       "as arnold.extra-layers-help; paired difference of the gains over MAML, 4 SE",
       ("arnold_headline",)),

    # --- Raghu, Raghu, Bengio & Vinyals (2020): rapid learning or feature reuse -----------------------------------
    _c("raghu.anil-matches-maml", _R,
       "ANIL (only the head adapts in the inner loop) matches MAML's post-adaptation performance, and both beat "
       "non-adaptive learning.",
       "deep linear nets meta-trained by Adam on isotropic and low-rank Gaussian regression families; paired "
       "post-adaptation losses on common test tasks and support sets, 4 SE",
       ("raghu_anil", "raghu_nil")),
    _c("raghu.anil-closed-form", _R,
       "The expected post-adaptation loss of one ANIL step (and of no adaptation) is a closed form in the network "
       "(theory.anil.anil_expected_loss, nal_expected_loss), bounded below by the exact ANIL oracle.",
       "Monte Carlo over the same test tasks and K-shot support sets as the closed form, 4 SE",
       ("raghu_anil", "raghu_freezing", "raghu_nil"), "identity"),
    _c("raghu.freezing-barely-hurts", _R,
       "Skipping the inner-loop update of the body (all layers but the head) at test time barely changes a "
       "MAML-trained network's performance (Table 1: most of the adaptation gain is kept).",
       "depth-4 linear nets meta-trained with MAML; the share of the adaptation gain kept when layers 1..3 are frozen, "
       "against the share kept in Raghu et al.'s Table 1, 4 SE",
       ("raghu_freezing",)),
    _c("raghu.nil-is-zero-head-anil", _R,
       "One ANIL step from a zero head is exactly a support-label vote weighted by dot products of penultimate "
       "features (NIL with dot products instead of cosines).",
       "random features and support sets; relative error 1e-10 (theory.anil.zero_head_vote)",
       ("raghu_nil",), "identity"),
    _c("raghu.nil-matches-anil", _R,
       "Removing the head at test time and voting with cosine similarities of penultimate features (NIL) performs "
       "as well as ANIL (Table 4).",
       "ANIL-trained deep linear nets on the low-rank family; NIL-cos (one calibrated scale) and NIL-dot against ANIL, "
       "query loss and sign accuracy, 4 SE",
       ("raghu_nil",)),
    _c("raghu.similarity-closed-form", _R,
       "For Gaussian inputs, linear CKA and mean CCA between a layer's representation before and after the inner loop "
       "are closed forms in the layer maps (theory.similarity.linear_cka, mean_cca).",
       "MAML-trained deep linear nets (bottleneck and full-width); sample CKA/CCA from probe inputs "
       "(linmeta.sim.representations) against the closed forms, 4 SE",
       ("raghu_similarity",), "identity"),
    _c("raghu.cca-trap", _R,
       "CCA cannot see inner-loop change in square invertible layers: their population and sample mean CCA is exactly "
       "1, however much the weights moved, while CKA registers the change.",
       "full-width deep linear nets; |1 - CCA| at round-off, minimum body CKA below 1",
       ("raghu_similarity",), "prediction"),
    _c("raghu.body-similarity", _R,
       "The inner loop leaves the body's representations almost unchanged: CKA and CCA between pre- and "
       "post-adaptation body representations exceed 0.9 (Fig. 2).",
       "MAML-trained deep linear nets on the low-rank family; the lowest body layer, 4 SE above 0.9",
       ("raghu_similarity",)),
    _c("raghu.head-similarity", _R,
       "The inner loop changes the head's representation: its CKA/CCA similarity before and after adaptation is below "
       "0.5 (Fig. 2).",
       "as raghu.body-similarity; the head layer, 4 SE below 0.5",
       ("raghu_similarity",)),
    _c("raghu.head-body-split", _R,
       "For a two-layer linear net the expected loss reductions of one MAML step due to the head's and to the body's "
       "update are closed forms (theory.anil.two_layer_split_expectation).",
       "two-layer nets meta-trained with MAML on the isotropic and low-rank families; Monte Carlo over tasks, 4 SE",
       ("raghu_head_body",), "identity"),
    _c("raghu.feature-reuse-share", _R,
       "After meta-training, most of MAML's one-step loss reduction comes from the head's update (feature reuse) "
       "rather than the body's.",
       "as raghu.head-body-split; the head's share of the reduction 4 SE above 1/2 at the end of training",
       ("raghu_head_body",), "prediction"),

    # --- Collins, Mokhtari, Oh & Shakkottai (2022): MAML and ANIL provably learn representations -------------------
    _c("collins-repr.population-rate", _CR,
       "In multi-task linear representation learning with population losses, ANIL and FO-ANIL recover the shared "
       "representation geometrically, dist(B_t, B*) contracting by 1 - beta alpha mu_min^2 per step; MAML follows "
       "the same trajectory from a zero head, which stays zero.",
       "y = <B* a_t, x>, x ~ N(0, I), heads of covariance diag(mu^2), a well-conditioned start alpha B0^T B0 = I, "
       "exact population dynamics over the 2k tasks +-sqrt(k) mu_i e_i",
       ("raghu_representation",)),
    _c("collins-repr.nal-stalls", _CR,
       "Non-adaptive learning (training on the averaged loss, no inner loop) does not recover the representation: "
       "dist(B_t, B*) does not move.",
       "as collins-repr.population-rate, exactly and with fresh tasks",
       ("raghu_representation",)),
    _c("collins-repr.fresh-tasks", _CR,
       "With finitely many fresh tasks per step MAML and ANIL still recover the representation geometrically.",
       "10 fresh tasks per outer step, alpha = 1; every run trains without failing and its fitted decay factor is "
       "4 SE below 1",
       ("raghu_representation",)),

    # --- Collins, Mokhtari & Shakkottai (2022): how the task landscape affects MAML -------------------------------
    _c("collins-landscape.gain-needs-hardness-and-packing", _CL,
       "MAML beats non-adaptive learning (NAL) only when the tasks differ in hardness and the hard tasks' optima "
       "are tightly packed relative to their distance from the easy ones.",
       "isotropic easy/hard two-cluster mixtures of linear-regression tasks, a shallow model, one inner step with "
       "population gradients; MAML and NAL trained on a grid of (D/R_H, rho_H/rho_E)",
       ("collins_phase_diagram", "collins_gain")),
    _c("collins-landscape.gain-closed-form", _CL,
       "MAML's gain over NAL, E_NAL/E_MAML (expected post-adaptation excess risks of their optimal initialisations), "
       "is a closed form in the landscape (theory.landscape.two_cluster, gain).",
       "isotropic two-cluster mixtures; Monte Carlo adaptation through the engine from the closed-form initialisations "
       "on shared support sets, delta-method SE, 4 SE; panels over D/R_H, rho_H/rho_E, K, R_E and k",
       ("collins_gain", "collins_landscape2d"), "identity"),
    _c("collins-landscape.no-gain-without-discrepancy", _CL,
       "Without a hardness discrepancy (rho_H = rho_E) or at D = 0 the gain is exactly 1, and identical "
       "(non-isotropic) input covariances give w_MAML = w_NAL = E[w*].  Formerly P2 (Collins).",
       "formula on a grid of D, K, k, rho; the MAML meta-gradient at w_NAL by Monte Carlo (4 SE), with a contrast "
       "when rho_H < rho_E",
       ("collins_gain", "collins_landscape2d"), "prediction"),
    _c("collins-landscape.gain-bound", _CL,
       "The gain is at most 1 + s_E^2 D^2 / R_H^2 whenever rho_H <= rho_E <= 1/alpha (population gradients).  "
       "Formerly P3 (Collins).",
       "3000 random instances of the formula; no Monte Carlo gain significantly (z > 4) above its bound",
       ("collins_gain",), "prediction"),
    _c("collins-landscape.bound-attained", _CL,
       "When alpha rho_E = 1 (easy tasks solved in one step) the bound is attained exactly.  Formerly P4 (Collins).",
       "formula over hardness ratios (relative 1e-12) and Monte Carlo (4 SE)",
       ("collins_gain",), "prediction"),
    _c("collins-landscape.gain-monotone", _CL,
       "The gain increases and saturates in D, decreases in R_H, and decreases as rho_H/rho_E approaches 1 from its "
       "peak.  Formerly P5 (Collins).",
       "formula on dense grids; Monte Carlo differences between panel ends, 4 SE",
       ("collins_gain",), "prediction"),
    _c("collins-landscape.gain-peaks-in-hardness", _CL,
       "The gain is not monotone in rho_H/rho_E: it rises from very hard tasks (whose vanishing curvature contributes "
       "little excess risk) to a peak, then falls.  A correction of P5 (Collins) found by the closed form.",
       "formula on [0.02, r*]; Monte Carlo gain(r*) - gain(0.02), 4 SE",
       ("collins_gain",), "prediction"),
    _c("collins-landscape.gain-collapses-few-shots", _CL,
       "With K-shot support sets the gain collapses unless K >> d.  Formerly P6 (Collins).",
       "gain at K = d below halfway to the population gain (formula and Monte Carlo); gain increasing in K above K*",
       ("collins_gain",), "prediction"),
    _c("collins-landscape.gain-nonmonotone-in-shots", _CL,
       "Below the coincidence point K* (where w_MAML = w_NAL and the gain is exactly 1; "
       "theory.landscape.coincidence_shots) the gain decreases in K: the inner step overshoots at tiny K.  "
       "A correction of P6 (Collins).",
       "formula below K*; Monte Carlo gain(K=2) - gain(K=d), 4 SE",
       ("collins_gain",), "prediction"),
    _c("collins-landscape.gain-grows-with-steps", _CL,
       "With k-step adaptation (population gradients) the gain grows with k towards the bound "
       "1 + s_E^2 D^2 / R_H^2.  Formerly P7 (Collins).",
       "formula up to k = 200; Monte Carlo gain(k=8) - gain(k=1), 4 SE",
       ("collins_gain",), "prediction"),
    _c("collins-landscape.gain-peaks-in-steps", _CL,
       "With a fresh K-sample gradient per inner step the gradient noise accumulates and the gain peaks at a finite "
       "k.  A correction of P7 (Collins).",
       "K = 20 fresh samples per step; formula and Monte Carlo difference between the peak and the largest k, 4 SE",
       ("collins_gain",), "prediction"),
    _c("collins-landscape.easy-spread", _CL,
       "The spread R_E of the easy tasks has no effect on the gain when alpha rho_E = 1 and lowers it otherwise.  "
       "Formerly P8 (Collins).",
       "formula (relative 1e-12) and Monte Carlo differences over R_E, 4 SE",
       ("collins_gain",), "prediction"),
    _c("collins-landscape.conditioning", _CL,
       "The conditioning of the MAML objective can be worse or better than NAL's for non-isotropic input covariances, "
       "and SGD needs correspondingly more or fewer iterations.  Formerly P9 (Collins).",
       "a single Sigma = diag(0.1, 0.99) or diag(0.2, 0.5) for all tasks, alpha = 1; engine Hessians against the "
       "formula (population and K-shot), SGD mean paths and iteration counts",
       ("collins_training",), "prediction"),
    _c("collins-landscape.sgd-follows-mean-path", _CL,
       "SGD-trained MAML and NAL follow the exact mean path E[w_t] - w* = (I - lr H)^t (w_0 - w*) to the closed-form "
       "optima, and the learned initialisations achieve the closed-form gain (> 1).",
       "two-cluster landscape, one inner step on K-shot support sets, many SGD runs on the run axis; "
       "family-wise k-SE tolerances over coordinates and checkpoints",
       ("collins_training",), "identity"),
    _c("collins-landscape.maml-harder-to-optimize", _CL,
       "The MAML objective is more difficult to optimise than NAL's: at the same learning rate it needs more outer "
       "iterations to reach a tolerance.",
       "two-cluster landscape; predicted (from the Hessians) and measured iteration counts",
       ("collins_training",)),
    _c("collins-landscape.optima-closed-form", _CL,
       "The closed-form MAML, FO-MAML and NAL initialisations (theory.landscape.maml_optimum, fo_maml_optimum, "
       "nal_optimum) are the stationary points of the simulated objectives, and their expected excess risks are "
       "closed forms.",
       "a 2-D easy/hard landscape with anisotropic covariances; the engine's exact meta-gradient averaged over sampled "
       "tasks and K-shot support sets vanishes within 4 SE at each optimum and not at the others",
       ("collins_landscape2d",), "identity"),
    _c("collins-landscape.maml-near-hard-tasks", _CL,
       "MAML's initialisation sits near the tightly packed hard tasks and NAL's near the easy ones, and MAML's "
       "post-adaptation excess risk is lower than NAL's.",
       "the 2-D landscape of collins-landscape.optima-closed-form; distances to the hard centre, paired Monte Carlo "
       "excess risks, 4 SE",
       ("collins_landscape2d",)),
    _c("collins-landscape.finite-task-gain", _CL,
       "Trained full-batch on T sampled tasks, every initialisation is exactly the gradient-descent iterate on its own "
       "tasks, and the expected excess risks and gain of the trained initialisations are closed forms for T tasks "
       "(theory.landscape.two_cluster_fixed_tasks).",
       "10^3 (quick) to 10^4 (full) shallow models on the run axis over a (D/R_H, rho_H/rho_E) grid; exact identity "
       "to a dtype-derived tolerance; family-wise Student-t tolerances over the cells",
       ("collins_phase_diagram",), "identity"),
    _c("collins-landscape.two-layer-trends", _CL,
       "For two-layer networks the gain of MAML over NAL grows with D/R_H and with the hardness discrepancy, as in the "
       "linear case.",
       "two-layer ReLU and tanh networks on easy/hard mixtures of teacher networks, MAML and NAL by L-BFGS on fixed "
       "task sets, gains over replicates, 4 SE",
       ("collins_twolayer",)),
    _c("collins-landscape.two-layer-no-gain-without-discrepancy", _CL,
       "For two-layer networks, without a hardness discrepancy or at D = 0 the gain is 1, as in the linear case.",
       "as collins-landscape.two-layer-trends; against NAL at its own inner step and at its best one, 4 SE",
       ("collins_twolayer",)),
    _c("collins-landscape.two-layer-linearised-gain", _CL,
       "Against NAL at its best inner step, a two-layer network's gain equals the linear theory applied to the "
       "network linearised at the landscape centre (theory.landscape.quadratic_gain).",
       "as collins-landscape.two-layer-trends, at the largest D/R_H; an approximation, reported as a finding",
       ("collins_twolayer",), "prediction"),

    # --- Bernacchia (2021): meta-learning with negative learning rates ----------------------------------------------
    _c("bernacchia.test-loss-closed-form", "bernacchia2021",
       "MAML's test loss in mixed linear regression is a closed form in the adaptation and training rates, given the "
       "error of the learned initialisation (from a corrected large-p, many-task approximation).",
       "x ~ N(0, I_p), w ~ N(w0, nu^2/p I), p = 60, n_t = 30, n_v = 2, n_r = 20, m = 3 (overparameterised) or 60 "
       "(underparameterised) tasks; MAML trained exactly (min-norm least squares), 4 SE over runs",
       ("bernacchia_negative_lr",), "prediction"),
    _c("bernacchia.exact-maml-solution", "bernacchia2021",
       "The simulated least-squares solution is MAML's optimum: the engine's exact meta-gradient vanishes there (and "
       "it interpolates in the overparameterised regime), while the first-order gradient does not.",
       "as bernacchia.test-loss-closed-form; relative gradient norms 1e-10",
       ("bernacchia_negative_lr",), "identity"),
    _c("bernacchia.negative-training-rate", "bernacchia2021",
       "The optimal learning rate of MAML's inner step during training is negative.",
       "both regimes and several variants of (sigma, nu, m, n_v); closed-form optimum and the simulated test loss "
       "L(alpha_t*) - L(0), 4 SE",
       ("bernacchia_negative_lr",)),
    _c("bernacchia.positive-adaptation-rate", "bernacchia2021",
       "The optimal learning rate of the adaptation step at test time is positive.",
       "as bernacchia.negative-training-rate; simulated L(alpha_r*) - L(0), 4 SE",
       ("bernacchia_negative_lr",)),
    _c("bernacchia.optimal-training-rate", "bernacchia2021",
       "The optimal training rate alpha_t* is a closed form (the minimiser of the estimator error B), matching the "
       "simulated minimiser.",
       "variants of the setting in both regimes; simulated minimiser of B with a jackknife SE, 4 SE",
       ("bernacchia_negative_lr",), "prediction"),
    _c("bernacchia.training-rate-dependence", "bernacchia2021",
       "In the overparameterised regime alpha_t* does not depend on the noise, the task spread, the number of tasks or "
       "of query points; in the underparameterised regime it does.",
       "closed form over the variants; simulated minimisers against their weighted mean, 4 SE",
       ("bernacchia_negative_lr",), "prediction"),

    # --- Gao & Sener (2020): modelling and optimisation trade-off ---------------------------------------------------
    _c("gao.expected-loss-closed-form", "gao2020",
       "The expected losses of the DRS (pooled least squares) and MAML estimators before and after one test-time SGD "
       "step are exact closed forms (exact Gaussian and uniform/Haar moments).",
       "Gao & Sener's linear regression: Theta ~ U(0, beta)^p, Q = U diag(Theta) U^T, noise variance ~ U(0, beta); "
       "direct simulation of the test step and their 1000-task Monte Carlo estimates, family-wise SE multiples",
       ("gao_sener_tradeoff",), "identity"),
    _c("gao.heatmaps-reproduced", "gao2020",
       "The heatmaps of the probability that MAML beats DRS over (N, M, alpha) are reproduced: exact-moment and Monte "
       "Carlo versions agree within binomial and bootstrap errors, and the exact heatmap on independent trials; "
       "the finding reports how much their Monte Carlo moments alone move it.",
       "p = 1, beta = 2, a grid of N, M and alpha; binomial SEs over trials, bootstrap over their sampled tasks",
       ("gao_sener_tradeoff",), "prediction"),
    _c("gao.drs-wins-before-step", "gao2020",
       "Before the test-time step, DRS beats MAML (MAML's modelling error: it does not minimise the pre-update loss).",
       "exact-moment heatmaps; P(MAML < DRS) below 1/2 by 4 binomial SE in more than half the cells",
       ("gao_sener_tradeoff",)),
    _c("gao.maml-wins-after-step", "gao2020",
       "After the test-time step MAML beats DRS in more cells than before, and it wins with many tasks and points but "
       "not with few (the optimisation error of MAML's estimator).",
       "exact-moment heatmaps; cells where P > 1/2 by 4 binomial SE, and the corners of the (M, N) grid",
       ("gao_sener_tradeoff",)),

    # --- Ji, Yang & Liang (2022): multi-step MAML stability ---------------------------------------------------------
    _c("ji.stability-region", "ji2022",
       "Outer gradient descent on the N-step MAML meta-objective of quadratic tasks converges iff the spectrum of "
       "H_meta = sum_i p_i (I - alpha H_i)^N H_i (I - alpha H_i)^N lies in (0, 2/beta): an exact stability region in "
       "(alpha, N).",
       "quadratic tasks with given curvature spectra (convex, with negative curvature, non-commuting); the engine's "
       "outer loop with alpha on the run axis, divergence boundaries bracketed by bisection",
       ("ji_multistep_stability",), "identity"),
    _c("ji.inner-step-shrinks-like-1-over-n", "ji2022",
       "The inner step size must shrink like 1/N for N-step MAML to converge.",
       "tasks with negative curvature: the simulated boundary alpha_c(N) on a log-log scale, and its constant "
       "alpha N (lambda_+ - lambda_-) -> (1/2) ln R",
       ("ji_multistep_stability",)),
    _c("ji.convex-limit", "ji2022",
       "A research-note prediction: alpha N lambda_max is about constant at the boundary also for convex tasks "
       "(derived here: for convex tasks the boundary tends to 2/lambda_max instead, independently of N).",
       "convex quadratic tasks; simulated boundaries over N",
       ("ji_multistep_stability",), "prediction"),

    # --- Fallah, Mokhtari & Ozdaglar (2020): FO-MAML's bias ---------------------------------------------------------
    _c("fallah.fo-maml-bias", "fallah2020",
       "FO-MAML cannot reach a stationary point of the MAML objective: its fixed point carries a bias, while MAML "
       "(second order) reaches the stationary point.",
       "Gaussian regression mixtures with spread Hessians and optima; closed-form fixed points (theory.fo_bias) and "
       "SGD-trained MAML and FO-MAML late-iterate averages, family-wise t multiples of the SE",
       ("fallah_fo_bias",)),
    _c("fallah.bias-vanishes", "fallah2020",
       "The FO-MAML bias vanishes exactly for a shared Hessian or for identical task optima.",
       "closed forms and engine full-batch fixed points, to round-off",
       ("fallah_fo_bias",), "identity"),
    _c("fallah.bias-order-alpha", "fallah2020",
       "The FO-MAML bias is of order alpha: bias/alpha tends to the first-order coefficient as alpha -> 0.",
       "two isotropic task types; SGD bias at small alpha against the first-order closed form",
       ("fallah_fo_bias",), "prediction"),

    # --- Saunshi, Zhang, Khodak & Arora (2020): the convex/non-convex separation -----------------------------------
    _c("saunshi.new-task-error-closed-forms", "saunshi2020",
       "The new-task errors of the convex learners and of a two-layer linear net with a given first layer are closed "
       "forms in the number of new-task samples n (theory.separation).",
       "tasks whose regressors lie on one line +-c u with zero mean, d = 8..64; Monte Carlo over new tasks at the "
       "learned parameters, 4 SE",
       ("saunshi_separation",), "identity"),
    _c("saunshi.convex-needs-d-samples", "saunshi2020",
       "Any initialisation-based (convex) learner needs Omega(d) new-task samples: its error plateaus until n ~ d.",
       "as saunshi.new-task-error-closed-forms; the epsilon-sample complexity of least squares and of the best convex "
       "step across d",
       ("saunshi_separation",)),
    _c("saunshi.nonconvex-needs-o1-samples", "saunshi2020",
       "A two-layer linear network meta-trained with Reptile or MAML needs O(1) new-task samples.",
       "as saunshi.new-task-error-closed-forms; the nets' epsilon-sample complexity across d",
       ("saunshi_separation",)),
    _c("saunshi.learns-the-subspace", "saunshi2020",
       "Meta-training the two-layer net learns the projection u u^T: the first layer's top singular vector aligns "
       "with u (and MAML's learned step along u is the closed-form optimum).",
       "as saunshi.new-task-error-closed-forms; alignment |<v_1(W_1), u>| and the learned step gamma*(K)",
       ("saunshi_separation",)),

    # --- linmeta's own closed forms --------------------------------------------------------------------------------
    _c("linmeta.shallow-expected-loss", _LM,
       "The expected post-adaptation loss of shallow MAML over random K-shot support sets (k <= 4 steps on one support "
       "set) is an exact closed form (theory.shallow), minimised at E[W*].",
       "Gaussian regression with a random input covariance, K = 4..32, k = 1, 2, 3; Monte Carlo over sampled support "
       "sets, 4 SE; the meta-gradient at E[W*] vanishes within 4 SE",
       ("core_expected_loss",), "identity"),
    _c("linmeta.deep-one-step-expected-loss", _LM,
       "The expected K-shot loss of a deep linear model after one inner step that adapts at most two layers is an "
       "exact closed form (theory.deep_one_step, by Wick's theorem), approaching the population loss as O(1/K).",
       "depth-2 MAML, depth-3 ANIL and depth 3 adapting bottom and top, K = 2..16 and a sweep over alpha; Monte Carlo "
       "over sampled support sets, 4 SE; the K -> inf gap ratio 10 from K = 1e5 to 1e6",
       ("core_deep_one_step",), "identity"),
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
