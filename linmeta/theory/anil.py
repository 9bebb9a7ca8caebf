r"""ANIL in deep linear networks: the zero-head label vote, the exact one-step expected loss, and
the head/body split of MAML's one-step loss reduction.

Notation: a network ``M = W_L ⋯ W_1`` is a *body* ``Φ = P_L = W_{L−1} ⋯ W_1`` (p x d, the identity
if L = 1) and a *head* ``h = W_L`` (out x p); features are ``φ(x) = Φ x``.  ANIL adapts only the
head (Raghu et al. 2020).  Its inner step is exactly right-preconditioned gradient descent on the
end-to-end map, ``M⁺ = M − α G R`` with ``R = ΦᵀΦ = P_LᵀP_L``
(:func:`linmeta.theory.precondition.top_only_factor`).

**Zero-head vote** (``derivations/anil_vote.py``).  On the squared loss
``(1/2n) Σ_j ‖y_j − h φ(x_j)‖²`` one ANIL step from ``h`` predicts

    ŷ(x_q) = h φ_q + (α/n) Σ_j (y_j − h φ_j) ⟨φ_q, φ_j⟩,

so from a zero head it is the dot-product-weighted support-label vote ``(α/n) Σ_j y_j ⟨φ_q, φ_j⟩``:
NIL (Raghu et al.'s cosine-weighted vote) with dot products instead of cosines.  On the logistic
loss the zero-head logit is ``(α/n) Σ_j (y_j − ½) ⟨φ_q, φ_j⟩`` (centred labels).

**Expected one-step loss** (``derivations/anil_vote.py``).  For a task ``x ~ N(0, Σ)``,
``y = W* x + σ ε``, a K-shot support set (sample covariance ``Σ̂``, noise cross moment ``n = εᵀX/K``)
and the population query loss, with ``E = M − W*``, one right-preconditioned step gives
``E⁺ = E (I − α Σ̂ R) + α n R`` and, using ``E[Σ̂ C Σ̂] = ΣCΣ + (ΣCΣ + tr(CΣ) Σ)/K`` (C symmetric),

    ℒ = ½ tr(E 𝔸 Eᵀ) + ½ α² out σ² tr(RΣRΣ)/K + ½ out σ²,
    𝔸 = Σ − 2α ΣRΣ + α² [(1 + 1/K) ΣRΣRΣ + tr(RΣRΣ) Σ / K].

``R = I`` recovers one step of shallow MAML (:mod:`linmeta.theory.shallow`).  With the population
inner loss (``K = None``), ``𝔸 = (I − αΣR) Σ (I − αRΣ)`` and the noise term vanishes.

**Head/body split** (``derivations/head_body_split.py``).  One MAML step changes every layer; the
query-loss reduction ``Δ_total = ℓ_q(θ) − ℓ_q(θ⁺)`` is compared with the reductions of the head
alone (ANIL, ``Δ_head``) and of the body alone (``Δ_body``); ``Δ_total = Δ_head + Δ_body + Δ_int``.
To first order in α the split is the preconditioner split (``derivations/implicit_preconditioner.py``):
``α ⟨G_q, G_s R⟩`` (head) and ``α Σ_{l<L} ⟨G_q, S_lS_lᵀ G_s P_lᵀP_l⟩`` (body).  For two layers
``M⁺ = M − α G R − α (hhᵀ) G + α² G Φᵀ hᵀ G`` exactly, so head and body reductions are quadratics
in ``E`` whose expectation over Gaussian tasks is closed form (:func:`two_layer_split_expectation`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate
from ..models import end_to_end, real_params
from ..tasks import GaussianRegression, TaskBatch, mixture_components
from .precondition import top_only_factor
from .shallow import ShallowQuadratic

# ---------------------------------------------------------------------------------------------
# votes
# ---------------------------------------------------------------------------------------------


@_validate.finite_result
def body_features(params, X) -> np.ndarray:
    """Penultimate features ``φ = X Φᵀ`` with ``Φ = W_{L−1} ⋯ W_1`` (``X`` itself if L = 1).

    Parameters
    ----------
    params : tuple of arrays (*lead, n_l, n_{l-1}) (the head is ignored).
    X : array (*lead, n, d).

    Returns
    -------
    array (*lead, n, p).
    """
    params = real_params(params, any_lead=True)
    X = _validate.real_array("X", X)
    if X.ndim < 2 or X.shape[-1] != params[0].shape[-1]:
        raise ValueError(f"X must have shape (..., n, d) with d = {params[0].shape[-1]}, got {X.shape}")
    F = X
    for W in params[:-1]:
        F = F @ np.swapaxes(W, -1, -2)
    return F


def _vote_inputs(phi_support, Y_support, phi_query):
    Fs = _validate.real_array("phi_support", phi_support)
    Y = _validate.real_array("Y_support", Y_support)
    Fq = _validate.real_array("phi_query", phi_query)
    for name, A in (("phi_support", Fs), ("Y_support", Y), ("phi_query", Fq)):
        if A.ndim < 2 or 0 in A.shape[-2:]:
            raise ValueError(f"{name} must have shape (..., n, features) with n >= 1 and features >= 1, got {A.shape}")
    if Fs.shape[-2] != Y.shape[-2]:
        raise ValueError(f"phi_support and Y_support must have the same n (axis -2); got {Fs.shape[-2]} and {Y.shape[-2]}")
    if Fs.shape[-1] != Fq.shape[-1]:
        raise ValueError(f"phi_support and phi_query must have the same feature size; got {Fs.shape[-1]} and {Fq.shape[-1]}")
    return Fs, Y, Fq


@_validate.finite_result
def one_step_prediction(phi_support, Y_support, phi_query, alpha: float, head=None) -> np.ndarray:
    """Prediction after one ANIL step (squared loss) from ``head``: ``Φq hᵀ + (α/n) Φq Φsᵀ (Y − Φs hᵀ)``.

    Parameters
    ----------
    phi_support : array (..., n, p), support features φ(x_j).
    Y_support : array (..., n, out), support labels.
    phi_query : array (..., m, p), query features.
    alpha : inner step size.
    head : array (..., out, p) or None (zero head).

    Returns
    -------
    array (..., m, out).
    """
    Fs, Y, Fq = _vote_inputs(phi_support, Y_support, phi_query)
    alpha = _validate.finite_float("alpha", alpha)
    n = Fs.shape[-2]
    if head is None:
        return alpha / n * (Fq @ (np.swapaxes(Fs, -1, -2) @ Y))
    h = _validate.real_array("head", head)
    if h.ndim < 2 or h.shape[-1] != Fs.shape[-1] or h.shape[-2] != Y.shape[-1]:
        raise ValueError(f"head must have shape (..., out, p) = (..., {Y.shape[-1]}, {Fs.shape[-1]}), got {h.shape}")
    ht = np.swapaxes(h, -1, -2)
    resid = Y - Fs @ ht
    return Fq @ ht + alpha / n * (Fq @ (np.swapaxes(Fs, -1, -2) @ resid))


@_validate.finite_result
def zero_head_vote(phi_support, Y_support, phi_query, alpha: float) -> np.ndarray:
    """The dot-product label vote ``ŷ(x_q) = (α/n) Σ_j y_j ⟨φ_q, φ_j⟩``: one ANIL step from a zero head.

    Shapes as in :func:`one_step_prediction`; returns (..., m, out).
    """
    return one_step_prediction(phi_support, Y_support, phi_query, alpha, head=None)


@_validate.finite_result
def logistic_zero_head_vote(phi_support, y_support, phi_query, alpha: float) -> np.ndarray:
    """Logits after one ANIL step from a zero head on the logistic loss: ``(α/n) Σ_j (y_j − ½) ⟨φ_q, φ_j⟩``.

    Parameters
    ----------
    phi_support : array (..., n, p); y_support : array (..., n) of labels in [0, 1];
    phi_query : array (..., m, p).

    Returns
    -------
    array (..., m).
    """
    y = _validate.real_array("y_support", y_support, allow_bool=True)
    if np.any((y < 0) | (y > 1)):
        raise ValueError("y_support must hold labels in [0, 1]; map labels {-1, +1} to {0, 1} with (y + 1) / 2")
    if y.ndim < 1:
        raise ValueError(f"y_support must have shape (..., n), got {y.shape}")
    return zero_head_vote(phi_support, (y - 0.5)[..., None], phi_query, alpha)[..., 0]


@_validate.finite_result
def cosine_vote(phi_support, Y_support, phi_query) -> np.ndarray:
    """NIL's vote (Raghu et al. 2020): ``(1/n) Σ_j y_j cos(φ_q, φ_j)`` (no scale; argmax/sign-invariant).

    Shapes as in :func:`one_step_prediction`; returns (..., m, out).  Zero feature vectors are not allowed.
    """
    Fs, Y, Fq = _vote_inputs(phi_support, Y_support, phi_query)
    ns = np.linalg.norm(Fs, axis=-1, keepdims=True)
    nq = np.linalg.norm(Fq, axis=-1, keepdims=True)
    if np.any(ns == 0) or np.any(nq == 0):
        raise ValueError("cosine_vote needs non-zero feature vectors (a zero feature has no direction)")
    return (Fq / nq) @ (np.swapaxes(Fs / ns, -1, -2) @ Y) / Fs.shape[-2]


# ---------------------------------------------------------------------------------------------
# the expected one-step ANIL loss
# ---------------------------------------------------------------------------------------------


@_validate.finite_result
def one_step_quadratic(R, input_cov, noise_std, out: int, K: int | None, alpha: float) -> ShallowQuadratic:
    """Coefficients of the expected loss after one right-preconditioned inner step ``M⁺ = M − α G R``.

    ``ℒ(M) = ½ tr((M − W*) 𝔸 (M − W*)ᵀ) + const`` (module docstring).

    Parameters
    ----------
    R : array (..., d, d), symmetric PSD right preconditioner (ANIL: ``ΦᵀΦ``).
    input_cov : array (..., d, d), Σ.
    noise_std : float or array (...), σ.
    out : output dimension.
    K : support shots, or None for the population inner loss.
    alpha : inner step size.

    Returns
    -------
    :class:`~linmeta.theory.shallow.ShallowQuadratic` with ``A`` (..., d, d) and ``const`` (...).
    """
    R = _validate.psd_matrix("R", R, tol=1e-8)
    S = _validate.psd_matrix("input_cov", input_cov)
    if R.shape[-1] != S.shape[-1]:
        raise ValueError(f"R and input_cov must both be (d, d); got {R.shape} and {S.shape}")
    out = _validate.positive_int("out", out)
    alpha = _validate.finite_float("alpha", alpha)
    if K is not None:
        K = _validate.positive_int("K", K)
    noise = _validate.real_array("noise_std", noise_std)
    if np.any(noise < 0):
        raise ValueError("noise_std must be non-negative")
    sigma2 = noise**2
    try:
        np.broadcast_shapes(R.shape[:-2], S.shape[:-2], sigma2.shape)
    except ValueError:
        raise ValueError(f"the leading shapes of R {R.shape}, input_cov {S.shape} and noise_std {sigma2.shape} "
                         "must broadcast") from None
    SR = S @ R
    SRS = SR @ S
    SRSRS = SR @ SRS
    lead = np.broadcast_shapes(R.shape[:-2], S.shape[:-2], np.shape(sigma2))
    if K is None:
        A = S - 2 * alpha * SRS + alpha**2 * SRSRS
        const = 0.5 * out * sigma2 * np.ones(lead)
        return ShallowQuadratic(np.broadcast_to(A, lead + A.shape[-2:]).copy(), const)
    t = np.trace(SR @ SR, axis1=-2, axis2=-1)  # tr(RΣRΣ)
    A = S - 2 * alpha * SRS + alpha**2 * ((1 + 1 / K) * SRSRS + t[..., None, None] * S / K)
    const = 0.5 * alpha**2 * out * sigma2 * t / K + 0.5 * out * sigma2
    return ShallowQuadratic(np.broadcast_to(A, lead + A.shape[-2:]).copy(), np.broadcast_to(const, lead).copy())


def _split_params(params):
    params = real_params(params)
    return params, end_to_end(params), top_only_factor(params)


@_validate.finite_result
def anil_expected_task_loss(params, tasks: TaskBatch, K: int | None, alpha: float) -> np.ndarray:
    """Exact expected post-adaptation loss of each task after one ANIL step (over support and query sets).

    Parameters
    ----------
    params : tuple of arrays (n_l, n_{l-1}) or (runs, n_l, n_{l-1}).
    tasks : :class:`~linmeta.tasks.TaskBatch` with task axis (T,) or (runs, T).
    K : support shots (None: population inner loss).

    Returns
    -------
    array (T,) or (runs, T).
    """
    K = _validate.optional_int("K", K, none="the population inner loss")
    alpha = _validate.finite_float("alpha", alpha)
    params, M, R = _split_params(params)
    _validate.instance("tasks", tasks, TaskBatch, "a linmeta.TaskBatch (from family.sample_tasks(n, rng))")
    if tasks.d != M.shape[-1] or tasks.out != M.shape[-2]:
        raise ValueError(f"tasks have d={tasks.d}, out={tasks.out} but the model maps d={M.shape[-1]} to out={M.shape[-2]}")
    q = one_step_quadratic(R[..., None, :, :], tasks.input_cov, tasks.noise_std, tasks.out, K, alpha)
    E = M[..., None, :, :] - tasks.w_star
    return 0.5 * np.einsum("...od,...de,...oe->...", E, q.A, E) + q.const


@_validate.finite_result
def gaussian_trace_mean(F, Q, M, mean, cov) -> np.ndarray:
    """``E tr(F E Q Eᵀ)`` for ``E = M − W*``, ``vec_row(W*) ~ N(vec_row(mean), cov)``.

    Parameters
    ----------
    F : array (..., out, out) symmetric; Q : array (..., d, d) symmetric.
    M : array (..., out, d); mean : array (out, d); cov : array (out*d, out*d) (row-major vec).

    Returns
    -------
    array (...): ``tr(F D Q Dᵀ) + Σ (F ⊗ Q) ∘ cov`` with ``D = M − mean``.
    """
    M = _validate.real_array("M", M, min_ndim=2)
    out, d = M.shape[-2:]
    mean = _validate.real_array("mean", mean)
    _validate.shape("mean", mean, (out, d), describe=f"(out, d) = ({out}, {d})")
    F = _validate.real_array("F", F, min_ndim=2)
    _validate.shape("F", F, (..., out, out), describe=f"(..., out, out) = (..., {out}, {out})")
    Q = _validate.real_array("Q", Q, min_ndim=2)
    _validate.shape("Q", Q, (..., d, d), describe=f"(..., d, d) = (..., {d}, {d})")
    cov = _validate.real_array("cov", cov)
    _validate.shape("cov", cov, (out * d, out * d), describe=f"(out*d, out*d) = ({out * d}, {out * d})")
    try:
        np.broadcast_shapes(F.shape[:-2], M.shape[:-2], Q.shape[:-2])
    except ValueError:
        raise ValueError(f"the leading shapes of F {F.shape}, M {M.shape} and Q {Q.shape} must broadcast") from None
    D = M - mean
    first = np.einsum("...ab,...bd,...de,...ae->...", F, D, Q, D)
    # (F ⊗ Q)[(o,i),(o',j)] = F[o,o'] Q[i,j], matching the row-major index o*d + i of cov
    C4 = cov.reshape(out, d, out, d)
    second = np.einsum("...ab,...ij,aibj->...", F, Q, C4)
    return first + second


@_validate.finite_result
def anil_expected_loss(params, family, K: int | None, alpha: float) -> np.ndarray:
    """Exact expected post-adaptation loss of one ANIL step over a Gaussian task family.

    Parameters
    ----------
    params : tuple of arrays (n_l, n_{l-1}) or (runs, n_l, n_{l-1}).
    family : :class:`~linmeta.tasks.GaussianRegression` or a :class:`~linmeta.tasks.TaskMixture` of them.
    K : support shots (None: population inner loss).  alpha : inner step size.

    Returns
    -------
    array () or (runs,).
    """
    K = _validate.optional_int("K", K, none="the population inner loss")
    alpha = _validate.finite_float("alpha", alpha)
    params, M, R = _split_params(params)
    total = 0.0
    for p, c in mixture_components(family):
        if c.d != M.shape[-1] or c.out != M.shape[-2]:
            raise ValueError(f"family has d={c.d}, out={c.out} but the model maps d={M.shape[-1]} to out={M.shape[-2]}")
        q = one_step_quadratic(R, c.input_cov, c.noise_std, c.out, K, alpha)
        eye = np.broadcast_to(np.eye(c.out), M.shape[:-2] + (c.out, c.out))
        total = total + p * (0.5 * gaussian_trace_mean(eye, q.A, M, c.mean, c.cov) + q.const)
    return np.asarray(total)


@_validate.finite_result
def nal_expected_loss(params, family) -> np.ndarray:
    """Expected loss without adaptation (NAL / frozen network): ``½ E tr((M−W*)Σ(M−W*)ᵀ) + ½ out σ²``.

    Returns array () or (runs,).
    """
    params = real_params(params)
    M = end_to_end(params)
    comps = mixture_components(family)
    if comps[0][1].d != M.shape[-1] or comps[0][1].out != M.shape[-2]:
        raise ValueError(f"family has d={comps[0][1].d}, out={comps[0][1].out} but the model maps d={M.shape[-1]} "
                         f"to out={M.shape[-2]}")
    total = 0.0
    for p, c in comps:
        eye = np.broadcast_to(np.eye(c.out), M.shape[:-2] + (c.out, c.out))
        total = total + p * (0.5 * gaussian_trace_mean(eye, c.input_cov, M, c.mean, c.cov) + 0.5 * c.out * c.noise_std**2)
    return np.asarray(total)


@dataclass(frozen=True)
class AnilOracle:
    """The best one-step ANIL expected loss over all deep linear networks, and where it is reached.

    Attributes
    ----------
    loss : the minimal expected post-adaptation loss.
    step : the optimal effective step ``u* = α r*``; the optimum is ``R = (u*/α) Π``, ``M = E[W*]``,
        with ``Π`` the projector onto the span of the task covariance.
    rank : ``m = rank(Cov W*)``.
    """

    loss: float
    step: float
    rank: int


@_validate.finite_result
def anil_oracle(family: GaussianRegression, K: int | None, alpha: float) -> AnilOracle:
    """Minimum over every body and head of the one-step ANIL expected loss, for isotropic-on-span families.

    Valid for ``out = 1``, ``Σ = I`` and ``Cov W* = λ Π`` (equal non-zero eigenvalues, e.g. the low-rank
    family ``B* diag(μ²) B*ᵀ`` with equal μ, or ``s² I``), with ``E[W*]`` in the span of ``Π``.  Then
    (convexity in R and rotation symmetry on the span; ``derivations/anil_vote.py``) the optimum is
    ``R = r Π``, ``M = E[W*]``, and with ``c = tr Cov W*``, ``m = rank``, ``u = α r``:

        ℒ(u) = ½ c [1 − 2u + u² (1 + (1 + m)/K)] + ½ σ² u² m / K + ½ σ²,
        u* = c / (c (1 + (1 + m)/K) + σ² m / K)

    (``u* = 1`` and ``ℒ = ½σ²`` for the population inner loss).  It lower-bounds the expected
    one-step ANIL loss of any deep linear network on this family.
    """
    _validate.instance("family", family, GaussianRegression, "a linmeta.GaussianRegression")
    if family.out != 1:
        raise ValueError(f"anil_oracle needs out = 1, got out = {family.out}")
    if not np.allclose(family.input_cov, np.eye(family.d), atol=1e-12):
        raise ValueError("anil_oracle needs input_cov = I (whiten the inputs first)")
    alpha = _validate.finite_float("alpha", alpha)
    if alpha == 0:
        raise ValueError("alpha must be non-zero (with alpha = 0 nothing adapts)")
    if K is not None:
        K = _validate.positive_int("K", K)
    lam, U = np.linalg.eigh(family.cov)
    tol = 1e-10 * max(lam[-1], 1e-300)
    nz = lam > tol
    m = int(nz.sum())
    if m == 0:
        raise ValueError("the task covariance is zero: every task is the mean task and ANIL has nothing to adapt")
    if np.ptp(lam[nz]) > 1e-8 * lam[-1]:
        raise ValueError("anil_oracle needs a task covariance with equal non-zero eigenvalues (isotropic on its span)")
    mu = family.mean.reshape(-1)
    Pi = U[:, nz] @ U[:, nz].T
    if np.linalg.norm(mu - Pi @ mu) > 1e-10 * max(1.0, np.linalg.norm(mu)):
        raise ValueError("anil_oracle needs E[W*] in the span of the task covariance")
    c, s2 = float(lam[nz].sum()), family.noise_std**2
    if K is None:
        return AnilOracle(loss=0.5 * s2, step=1.0, rank=m)
    u = c / (c * (1 + (1 + m) / K) + s2 * m / K)
    loss = 0.5 * c * (1 - 2 * u + u**2 * (1 + (1 + m) / K)) + 0.5 * s2 * u**2 * m / K + 0.5 * s2
    return AnilOracle(loss=float(loss), step=float(u), rank=m)


# ---------------------------------------------------------------------------------------------
# the head/body split of MAML's one-step loss reduction, in expectation
# (the engine-evaluated split per task is linmeta.sim.head_body)
# ---------------------------------------------------------------------------------------------


@_validate.finite_result
def two_layer_split_expectation(params, family, alpha: float) -> dict:
    """Expected head and body reductions of one step of a two-layer network, over Gaussian tasks, exactly.

    Support and query are the task's population loss.  With ``G = EΣ``, ``R = W_1ᵀW_1`` and
    ``F = W_2W_2ᵀ``:

    * head: ``α tr(GRGᵀ) − ½α² tr(GRΣRGᵀ) = tr(E Q_h Eᵀ)``, ``Q_h = αΣRΣ − ½α²ΣRΣRΣ``;
    * body: ``α tr(F GGᵀ) − ½α² tr(F² GΣGᵀ) = α tr(F EΣ²Eᵀ) − ½α² tr(F² EΣ³Eᵀ)``;
    * their first-order parts ``α tr(EΣRΣEᵀ)`` and ``α tr(F EΣ²Eᵀ)``.

    Parameters
    ----------
    params : (W_1, W_2) with shapes (*runs, p, d), (*runs, out, p).
    family : GaussianRegression or TaskMixture of them.

    Returns
    -------
    dict of arrays () or (runs,): ``head``, ``body``, ``head_linear``, ``body_linear``.
    """
    alpha = _validate.finite_float("alpha", alpha)
    params = real_params(params)
    if len(params) != 2:
        raise ValueError(f"two_layer_split_expectation needs exactly 2 layers, got {len(params)}")
    alpha = _validate.finite_float("alpha", alpha)
    W1, W2 = params
    M = W2 @ W1
    R = np.swapaxes(W1, -1, -2) @ W1
    F = W2 @ np.swapaxes(W2, -1, -2)
    eye = np.broadcast_to(np.eye(M.shape[-2]), F.shape)
    res = {"head": 0.0, "body": 0.0, "head_linear": 0.0, "body_linear": 0.0}
    for p, c in mixture_components(family):
        if c.d != M.shape[-1] or c.out != M.shape[-2]:
            raise ValueError(f"family has d={c.d}, out={c.out} but the model maps d={M.shape[-1]} to out={M.shape[-2]}")
        S = c.input_cov
        SRS = S @ R @ S
        lin_h = alpha * gaussian_trace_mean(eye, SRS, M, c.mean, c.cov)
        quad_h = 0.5 * alpha**2 * gaussian_trace_mean(eye, SRS @ R @ S, M, c.mean, c.cov)
        lin_b = alpha * gaussian_trace_mean(F, S @ S, M, c.mean, c.cov)
        quad_b = 0.5 * alpha**2 * gaussian_trace_mean(F @ F, S @ S @ S, M, c.mean, c.cov)
        res["head"] = res["head"] + p * (lin_h - quad_h)
        res["body"] = res["body"] + p * (lin_b - quad_b)
        res["head_linear"] = res["head_linear"] + p * lin_h
        res["body_linear"] = res["body_linear"] + p * lin_b
    return {k: np.asarray(v) for k, v in res.items()}
