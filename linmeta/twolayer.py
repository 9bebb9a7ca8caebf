r"""A two-layer network ``f(x) = aᵀσ(Wx)`` meta-trained by MAML or NAL on teacher-network task mixtures.

This is the nonlinear companion of :mod:`linmeta.theory.landscape` (Collins, Mokhtari &
Shakkottai; the network setting is our suggestion, not the paper's).  It is a separate engine with
its own names, which do not shadow the linear engine's.  Everything is hand-written numpy, batched over a task
axis, float64.

Model and losses.  Parameters ``θ = (W, a)`` with ``W`` (h, d) and ``a`` (h,); a task is a
teacher ``θ* = (W*, a*)`` with inputs ``x ~ N(0, ρ I)`` and labels ``y = f_{θ*}(x) + ν ε``.
On samples ``(X, y)`` the loss is ``ℓ(θ) = (1/2n) Σ_j r_j²``, ``r_j = aᵀσ(W x_j) − y_j``, with

    ∇_a ℓ = (1/n) Σ r_j s_j,       ∇_W ℓ = (1/n) Σ r_j (a ⊙ σ'(z_j)) x_jᵀ,     z_j = W x_j, s_j = σ(z_j),

and, for a direction ``(V, v)`` (``dz = V x``, ``ds = σ' ⊙ dz``, ``dr = vᵀs + aᵀds``), the
Hessian-vector product

    (Hθ)_a = (1/n) Σ (dr s + r ds),
    (Hθ)_W = (1/n) Σ [dr (a ⊙ σ') + r (v ⊙ σ' + a ⊙ σ'' ⊙ dz)] xᵀ.

Inner loop: ``θ^{j+1} = θ^j − α M ∇ℓ_s(θ^j)`` (``M`` masks the adapted layers: ``"all"`` or
``"last"`` = ``a`` only).  MAML objective ``F(θ) = mean_t ℓ^q_t(θ^k)``; its exact gradient by
reverse mode, ``θ̄^k = ∇ℓ^q(θ^k)``, ``θ̄^j = θ̄^{j+1} − α H_s(θ^j) M θ̄^{j+1}`` (second-order
terms included unless ``first_order``).  NAL is ``steps = 0``: ``F(θ) = mean_t ℓ^q_t(θ)``.

Hardness is the input scale ρ: for ReLU the loss is exactly ``ρ`` times the loss at ``ρ = 1``
in curvature (positive homogeneity), so a small ρ is a slowly converging (hard) task, as in
the linear setting.  Near a landscape centre the model is linear in ``θ`` with features
``j(x) = ∂f/∂θ``, and the linear theory applies with ``Σ_c = E_c[j jᵀ]``
(:func:`linearised_curvatures`); this is the limit the network's gain approaches when the
landscape shrinks.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validate
from ._random import as_generator

ACTIVATIONS = ("relu", "tanh")
TWO_LAYER_SETS = ("all", "last")


# --------------------------------------------------------------------------- activations


def _act(name, Z):
    """``σ(Z), σ'(Z), σ''(Z)`` (complex inputs pass through for tanh)."""
    if name == "tanh":
        t = np.tanh(Z)
        d1 = 1.0 - t * t
        return t, d1, -2.0 * t * d1
    pos = (np.real(Z) > 0).astype(float)
    return Z * pos, pos, np.zeros_like(pos)


def _check_activation(activation):
    _validate.one_of("activation", activation, ACTIVATIONS)
    return activation


# --------------------------------------------------------------------------- network and task losses


def _check_params(W, a):
    W, a = np.asarray(W), np.asarray(a)
    if W.ndim < 2 or a.ndim < 1 or a.shape[-1] != W.shape[-2]:
        raise ValueError(f"W must have shape (..., h, d) and a shape (..., h) with the same h; got W {W.shape}, a {a.shape}")
    _validate.finite_array("W", W)
    _validate.finite_array("a", a)
    return W, a


def _check_data(X, y, d):
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 2 or X.shape[-1] != d:
        raise ValueError(f"X must have shape (..., n, d) with d = {d}, got {X.shape}")
    if y.shape != X.shape[:-1]:
        raise ValueError(f"y must have shape X.shape[:-1] = {X.shape[:-1]}, got {y.shape}")
    _validate.finite_array("X", X)
    _validate.finite_array("y", y)
    return X, y


def forward(W, a, X, activation: str = "relu"):
    """Network outputs ``aᵀσ(W x)`` for every sample.

    Parameters
    ----------
    W : array (..., h, d). a : array (..., h). X : array (..., n, d) (leading axes broadcast).

    Returns
    -------
    array (..., n).
    """
    W, a = _check_params(W, a)
    _check_activation(activation)
    X = np.asarray(X)
    if X.ndim < 2 or X.shape[-1] != W.shape[-1]:
        raise ValueError(f"X must have shape (..., n, d) with d = {W.shape[-1]}, got {X.shape}")
    return _forward(W, a, X, activation)


def _forward(W, a, X, activation):
    S, _, _ = _act(activation, X @ np.swapaxes(W, -1, -2))
    return (S @ a[..., :, None])[..., 0]


@dataclass(frozen=True)
class SampleLoss:
    """Squared loss ``(1/2n) Σ_j (f(x_j) − y_j)²`` of a batch of tasks on samples.

    Parameters
    ----------
    X : array (T, n, d). y : array (T, n).
    activation : ``"relu"`` or ``"tanh"``.
    """

    X: np.ndarray
    y: np.ndarray
    activation: str = "relu"

    def __post_init__(self):
        X, y = _check_data(self.X, self.y, np.asarray(self.X).shape[-1])
        if X.ndim != 3:
            raise ValueError(f"X must have shape (T, n, d), got {X.shape}")
        _check_activation(self.activation)
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)

    @property
    def n_tasks(self) -> int:
        return self.X.shape[0]

    def _parts(self, W, a):
        Z = self.X @ np.swapaxes(W, -1, -2)  # (T, n, h)
        S, S1, S2 = _act(self.activation, Z)
        r = (S @ a[..., :, None])[..., 0] - self.y  # (T, n)
        return Z, S, S1, S2, r

    def value(self, W, a):
        """Per-task loss, shape (T,). ``W`` (T or 1, h, d), ``a`` (T or 1, h)."""
        r = self._parts(W, a)[-1]
        return 0.5 * np.mean(r * r, axis=-1)

    def grad(self, W, a):
        """Per-task gradients ``(∇_W, ∇_a)``, shapes (T, h, d) and (T, h)."""
        return self._grad(a, self._parts(W, a))[1:]

    def _grad(self, a, parts):
        _, S, S1, _, r = parts
        n = self.X.shape[-2]
        ga = (r[..., None, :] @ S)[..., 0, :] / n
        gW = np.swapaxes(r[..., None] * S1 * a[..., None, :], -1, -2) @ self.X / n
        return 0.5 * np.mean(r * r, axis=-1), gW, ga

    def value_and_grad(self, W, a):
        """Per-task ``(loss, ∇_W, ∇_a)`` from one forward pass."""
        return self._grad(a, self._parts(W, a))

    def hvp(self, W, a, V, v, parts=None):
        """Per-task Hessian-vector products ``(H(V, v))_W, (H(V, v))_a`` (shapes of the gradients).

        ``parts`` : the forward pass at ``(W, a)`` if already computed (internal reuse).
        """
        Z, S, S1, S2, r = self._parts(W, a) if parts is None else parts
        n = self.X.shape[-2]
        dZ = self.X @ np.swapaxes(V, -1, -2)
        dS = S1 * dZ
        dr = (S @ v[..., :, None])[..., 0] + (dS @ a[..., :, None])[..., 0]
        Ha = (dr[..., None, :] @ S + r[..., None, :] @ dS)[..., 0, :] / n
        inner = dr[..., None] * S1 * a[..., None, :] + r[..., None] * (S1 * v[..., None, :] + S2 * a[..., None, :] * dZ)
        HW = np.swapaxes(inner, -1, -2) @ self.X / n
        return HW, Ha


# --------------------------------------------------------------------------- meta-objectives


@dataclass(frozen=True)
class TwoLayerRule:
    """Inner loop of the two-layer network.

    Parameters
    ----------
    steps : inner steps k ≥ 0 (``0`` = NAL).
    alpha : inner step size.
    layers : ``"all"`` (MAML) or ``"last"`` (only ``a`` adapts, ANIL).
    first_order : drop the second-order terms of the meta-gradient (FO-MAML).
    """

    steps: int = 1
    alpha: float = 0.1
    layers: str = "all"
    first_order: bool = False

    def __post_init__(self):
        _validate.positive_int("steps", self.steps, allow_zero=True)
        object.__setattr__(self, "alpha", _validate.finite_float("alpha", self.alpha))
        _validate.one_of("layers", self.layers, TWO_LAYER_SETS)
        if not isinstance(self.first_order, bool):
            raise ValueError(f"first_order must be True or False, got {self.first_order!r}")


TWO_LAYER_NAL = TwoLayerRule(steps=0)


def _inner(W, a, support, rule, keep=False):
    Wt, at = W[None], a[None]
    trace = []
    for _ in range(rule.steps):
        parts = support._parts(Wt, at)
        _, gW, ga = support._grad(at, parts)
        if keep:
            trace.append((Wt, at, parts))
        if rule.layers == "all":
            Wt = Wt - rule.alpha * gW
        else:
            Wt = np.broadcast_to(Wt, gW.shape)
        at = at - rule.alpha * ga
    return Wt, at, trace


def _check_meta(W, a, support, query, rule):
    W, a = _check_params(W, a)
    if W.ndim != 2:
        raise ValueError(f"W must be one initialisation of shape (h, d), got {W.shape}")
    if not isinstance(rule, TwoLayerRule):
        raise ValueError(f"rule must be a linmeta.twolayer.TwoLayerRule, got {type(rule).__name__}")
    for name, loss in (("support", support), ("query", query)):
        if not isinstance(loss, SampleLoss):
            raise ValueError(f"{name} must be a SampleLoss, got {type(loss).__name__}")
        if loss.X.shape[-1] != W.shape[-1]:
            raise ValueError(f"{name} has d = {loss.X.shape[-1]} but W has d = {W.shape[-1]}")
    if support.n_tasks != query.n_tasks:
        raise ValueError(f"support has {support.n_tasks} tasks but query has {query.n_tasks}")
    if support.activation != query.activation:
        raise ValueError("support and query must use the same activation")
    return W, a


def adapt_two_layer(W, a, support: SampleLoss, rule: TwoLayerRule) -> tuple:
    """Adapted parameters of every task: ``W`` (T, h, d), ``a`` (T, h)."""
    W, a = _check_meta(W, a, support, support, rule)
    Wt, at, _ = _inner(W, a, support, rule)
    T = support.n_tasks
    return np.broadcast_to(Wt, (T,) + W.shape).copy(), np.broadcast_to(at, (T,) + a.shape).copy()


def two_layer_meta_loss(W, a, support: SampleLoss, query: SampleLoss, rule: TwoLayerRule) -> float:
    """Mean post-adaptation query loss ``mean_t ℓ^q_t(θ_t^k)`` (NAL: ``rule.steps = 0``)."""
    W, a = _check_meta(W, a, support, query, rule)
    Wt, at, _ = _inner(W, a, support, rule)
    return np.mean(query.value(Wt, at))


def two_layer_meta_value_and_grad(W, a, support: SampleLoss, query: SampleLoss, rule: TwoLayerRule) -> tuple:
    """Meta-loss and its exact gradient ``(value, ∇_W, ∇_a)`` (second-order terms included).

    Parameters
    ----------
    W : array (h, d). a : array (h,).
    support, query : :class:`SampleLoss` with T tasks each.
    rule : :class:`TwoLayerRule` (``TWO_LAYER_NAL`` for non-adaptive learning).

    Returns
    -------
    value : float. gW : array (h, d). ga : array (h,).
    """
    W, a = _check_meta(W, a, support, query, rule)
    return _value_and_grad(W, a, support, query, rule)


def _value_and_grad(W, a, support, query, rule):
    Wt, at, trace = _inner(W, a, support, rule, keep=True)
    per_task, bW, ba = query.value_and_grad(Wt, at)
    T = per_task.shape[-1]
    bW, ba = bW / T, ba / T
    if not rule.first_order:
        for Wj, aj, parts in reversed(trace):
            VW = bW if rule.layers == "all" else np.zeros_like(bW)
            HW, Ha = support.hvp(Wj, aj, VW, ba, parts)
            bW, ba = bW - rule.alpha * HW, ba - rule.alpha * Ha
    return np.mean(per_task), np.sum(bW, axis=0), np.sum(ba, axis=0)


# --------------------------------------------------------------------------- teacher task mixtures


@dataclass(frozen=True)
class TeacherMixture:
    """Easy/hard mixture of teacher networks; the input scale sets the hardness.

    A task is hard with probability ``p_hard``: its teacher is ``θ_H + δ`` with
    ``δ ~ N(0, R_H²/p I)`` in parameter space (``p = h(d+1)``, so ``E‖δ‖² = R_H²``) and its
    inputs are ``x ~ N(0, rho_hard I)``; easy tasks likewise around ``θ_E`` with ``R_E`` and
    ``rho_easy``.  Labels ``y = f_{θ*}(x) + noise ε``.

    Parameters
    ----------
    centre_hard, centre_easy : tuples ``(W, a)`` of arrays (h, d) and (h,).
    radius_hard, radius_easy, rho_hard, rho_easy, p_hard, noise : see above.
    activation : ``"relu"`` or ``"tanh"``.
    """

    centre_hard: tuple
    centre_easy: tuple
    radius_hard: float
    radius_easy: float
    rho_hard: float
    rho_easy: float
    p_hard: float = 0.5
    noise: float = 0.0
    activation: str = "relu"

    def __post_init__(self):
        for name in ("centre_hard", "centre_easy"):
            c = getattr(self, name)
            if not isinstance(c, tuple) or len(c) != 2:
                raise ValueError(f"{name} must be a tuple (W, a) of arrays (h, d) and (h,)")
            W, a = _check_params(*c)
            if W.ndim != 2:
                raise ValueError(f"{name}[0] must have shape (h, d), got {W.shape}")
            object.__setattr__(self, name, (np.asarray(W, dtype=float), np.asarray(a, dtype=float)))
        if self.centre_hard[0].shape != self.centre_easy[0].shape:
            raise ValueError("centre_hard and centre_easy must have the same shapes")
        for name in ("radius_hard", "radius_easy", "noise"):
            _validate.finite_float(name, getattr(self, name), non_negative=True)
        for name in ("rho_hard", "rho_easy"):
            _validate.finite_float(name, getattr(self, name), positive=True)
        p = _validate.finite_float("p_hard", self.p_hard)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p_hard must be in [0, 1], got {p}")
        _check_activation(self.activation)

    @property
    def h(self) -> int:
        return self.centre_hard[0].shape[0]

    @property
    def d(self) -> int:
        return self.centre_hard[0].shape[1]

    @property
    def n_params(self) -> int:
        return self.h * (self.d + 1)

    def sample_tasks(self, n_tasks: int, rng) -> "Teachers":
        """Draw ``n_tasks`` teachers with their hardness labels."""
        n_tasks = _validate.positive_int("n_tasks", n_tasks)
        rng = as_generator(rng)
        hard = rng.random(n_tasks) < self.p_hard
        h, d, p = self.h, self.d, self.n_params
        R = np.where(hard, self.radius_hard, self.radius_easy) / np.sqrt(p)
        W = np.where(hard[:, None, None], self.centre_hard[0], self.centre_easy[0])
        a = np.where(hard[:, None], self.centre_hard[1], self.centre_easy[1])
        W = W + R[:, None, None] * rng.standard_normal((n_tasks, h, d))
        a = a + R[:, None] * rng.standard_normal((n_tasks, h))
        rho = np.where(hard, self.rho_hard, self.rho_easy)
        return Teachers(W, a, rho, hard, self.noise, self.activation)


@dataclass(frozen=True)
class Teachers:
    """Sampled teacher tasks: ``W`` (T, h, d), ``a`` (T, h), input scales ``rho`` (T,), ``hard`` (T,) flags."""

    W: np.ndarray
    a: np.ndarray
    rho: np.ndarray
    hard: np.ndarray
    noise: float
    activation: str

    @property
    def n_tasks(self) -> int:
        return self.W.shape[0]

    def inputs(self, n: int, rng) -> np.ndarray:
        """``n`` inputs per task, ``x ~ N(0, ρ_t I)``: array (T, n, d)."""
        n = _validate.positive_int("n", n)
        rng = as_generator(rng)
        return np.sqrt(self.rho)[:, None, None] * rng.standard_normal((self.n_tasks, n, self.W.shape[-1]))

    def targets(self, X) -> np.ndarray:
        """Noise-free teacher outputs, array (T, n)."""
        return _forward(self.W, self.a, X, self.activation)

    def sample_loss(self, n: int, rng, noise: bool = True) -> SampleLoss:
        """A :class:`SampleLoss` on ``n`` fresh samples per task (noisy labels unless ``noise=False``)."""
        rng = as_generator(rng)
        X = self.inputs(n, rng)
        y = self.targets(X)
        if noise and self.noise > 0:
            y = y + self.noise * rng.standard_normal(y.shape)
        return SampleLoss(X, y, self.activation)


# --------------------------------------------------------------------------- training and evaluation


@dataclass
class TwoLayerTrainResult:
    """``W`` (h, d), ``a`` (h,), and ``history`` (``loss`` per outer step / function evaluation)."""

    W: np.ndarray
    a: np.ndarray
    history: dict


def meta_train_two_layer(W0, a0, mixture: TeacherMixture, rule: TwoLayerRule, *, K: int, Q: int, tasks: int = 256,
               iters: int = 200, optimizer: str = "lbfgs", lr: float = 1e-2, ridge: float = 0.0, seed=0,
               gtol: float = 1e-10) -> TwoLayerTrainResult:
    """Meta-train the two-layer network by MAML (``rule.steps ≥ 1``) or NAL (``rule = TWO_LAYER_NAL``).

    ``optimizer="lbfgs"``: scipy L-BFGS on one fixed set of ``tasks`` tasks with fixed
    support (``K``) and query (``Q``) samples (deterministic; converges to that set's
    optimum).  ``optimizer="adam"``: Adam with ``tasks`` fresh tasks and samples per step.

    Parameters
    ----------
    W0, a0 : initial parameters, arrays (h, d), (h,).
    mixture : the task distribution.
    rule : :class:`TwoLayerRule`.
    K, Q : support and query samples per task.
    tasks : tasks in the (fixed or per-step) batch.
    iters : L-BFGS iterations or Adam steps.
    ridge : weight λ of a proximal term ``½ λ ‖θ − θ_0‖²`` added to the objective.  A tiny λ picks,
        among the minimisers along (near-)flat valleys — e.g. the rescaling ``W_i → cW_i,
        a_i → a_i/c`` that leaves a ReLU network unchanged — the one nearest the start, instead of
        wherever the optimiser drifts.  ``history["loss"]`` excludes it.
    seed : int or Generator.
    """
    W0, a0 = _check_params(W0, a0)
    if W0.shape != mixture.centre_hard[0].shape:
        raise ValueError(f"W0 must have the teachers' shape {mixture.centre_hard[0].shape}, got {W0.shape}")
    if not isinstance(rule, TwoLayerRule):
        raise ValueError(f"rule must be a TwoLayerRule, got {type(rule).__name__}")
    K, Q = _validate.positive_int("K", K), _validate.positive_int("Q", Q)
    tasks, iters = _validate.positive_int("tasks", tasks), _validate.positive_int("iters", iters)
    _validate.one_of("optimizer", optimizer, ("lbfgs", "adam"))
    lr = _validate.finite_float("lr", lr, positive=True)
    ridge = _validate.finite_float("ridge", ridge, non_negative=True)
    rng = as_generator(seed)
    h, d = W0.shape

    def batch():
        teachers = mixture.sample_tasks(tasks, rng)
        return teachers.sample_loss(K, rng), teachers.sample_loss(Q, rng)

    def split(x):
        return x[: h * d].reshape(h, d), x[h * d:]

    x0 = np.concatenate([np.asarray(W0, dtype=float).ravel(), np.asarray(a0, dtype=float).ravel()])
    losses = []
    if optimizer == "lbfgs":
        from scipy.optimize import minimize

        support, query = batch()

        def fun(x):
            v, gW, ga = _value_and_grad(*split(x), support, query, rule)
            losses.append(v)
            dx = x - x0
            return v + 0.5 * ridge * dx @ dx, np.concatenate([gW.ravel(), ga.ravel()]) + ridge * dx

        res = minimize(fun, x0, jac=True, method="L-BFGS-B",
                       options={"maxiter": iters, "ftol": 1e-15, "gtol": gtol, "maxcor": 30})
        x = res.x
    else:
        x, m1, m2 = x0.copy(), np.zeros_like(x0), np.zeros_like(x0)
        for t in range(1, iters + 1):
            support, query = batch()
            v, gW, ga = _value_and_grad(*split(x), support, query, rule)
            if not np.isfinite(v):
                raise RuntimeError(f"meta-training diverged at step {t}; lower lr or alpha")
            losses.append(v)
            g = np.concatenate([gW.ravel(), ga.ravel()]) + ridge * (x - x0)
            m1 = 0.9 * m1 + 0.1 * g
            m2 = 0.999 * m2 + 0.001 * g * g
            x = x - lr * (m1 / (1 - 0.9**t)) / (np.sqrt(m2 / (1 - 0.999**t)) + 1e-12)
    W, a = split(x)
    return TwoLayerTrainResult(W.copy(), a.copy(), {"loss": np.asarray(losses)})


def post_adaptation_excess(inits, teachers: Teachers, rule: TwoLayerRule, *, K: int, Q: int, rng) -> np.ndarray:
    """Excess risk after adaptation of several initialisations on the same tasks and samples.

    Each init adapts on one noisy K-shot support set per task; the excess risk
    ``½ E_x (f_θ'(x) − f_θ*(x))²`` is estimated on ``Q`` fresh noise-free query inputs.

    Parameters
    ----------
    inits : sequence of ``(W, a)``.
    teachers : the test tasks.

    Returns
    -------
    array (len(inits), T), unbiased estimates of each task's excess risk.
    """
    K, Q = _validate.positive_int("K", K), _validate.positive_int("Q", Q)
    rng = as_generator(rng)
    support = teachers.sample_loss(K, rng)
    query = teachers.sample_loss(Q, rng, noise=False)
    out = []
    for W, a in inits:
        W, a = _check_params(W, a)
        Wt, at, _ = _inner(np.asarray(W, dtype=float), np.asarray(a, dtype=float), support, rule)
        out.append(query.value(Wt, at))
    return np.stack(out)


# --------------------------------------------------------------------------- the linearised (small-landscape) limit


def features(W, a, X, activation: str = "relu") -> np.ndarray:
    """Parameter Jacobian ``j(x) = ∂f/∂(W, a)`` of every sample, array (..., n, h·d + h) (W row-major, then a)."""
    W, a = _check_params(W, a)
    Z = np.asarray(X) @ np.swapaxes(W, -1, -2)
    S, S1, _ = _act(_check_activation(activation), Z)
    jW = (S1 * a[..., None, :])[..., :, None] * np.asarray(X)[..., None, :]  # (..., n, h, d)
    return np.concatenate([jW.reshape(jW.shape[:-2] + (-1,)), S], axis=-1)


@dataclass(frozen=True)
class LinearisedCurvature:
    """Linearised task type: ``G = E[j jᵀ]`` (NAL Hessian), ``A`` (one-step MAML curvature), label-noise excess."""

    G: np.ndarray
    A: np.ndarray
    noise: float


def linearised_curvatures(W, a, rho: float, alpha: float, K: int | None, *, noise: float = 0.0,
                          activation: str = "relu", samples: int = 20000, rng=0) -> LinearisedCurvature:
    r"""One-step curvatures of the network linearised at ``θ = (W, a)`` for inputs ``x ~ N(0, ρ I)``.

    With features ``j = j(x)`` (non-Gaussian), ``G = E[j jᵀ]`` and ``F = E[(jᵀ G j) j jᵀ]``
    (Monte Carlo over ``samples`` inputs), one K-shot step gives
    ``A = (I − αG) G (I − αG) + α² (F − G³)/K`` and label-noise excess ``½ α² ν² tr(G²)/K``
    (the non-Gaussian form of ``derivations/landscape_one_step.py``).  ``K=None``: population step.
    """
    rho = _validate.finite_float("rho", rho, positive=True)
    alpha = _validate.finite_float("alpha", alpha)
    samples = _validate.positive_int("samples", samples)
    rng = as_generator(rng)
    X = np.sqrt(rho) * rng.standard_normal((samples, np.asarray(W).shape[-1]))
    J = features(W, a, X, activation)
    G = J.T @ J / samples
    P = np.eye(G.shape[0]) - alpha * G
    A = P @ G @ P
    n = 0.0
    if K is not None:
        K = _validate.positive_int("K", K)
        q = np.einsum("ni,ij,nj->n", J, G, J)
        F = (J * q[:, None]).T @ J / samples
        A = A + alpha**2 * (F - G @ G @ G) / K
        n = 0.5 * alpha**2 * noise**2 * float(np.trace(G @ G)) / K
    return LinearisedCurvature(G, 0.5 * (A + A.T), n)


def flatten_params(W, a) -> np.ndarray:
    """``θ`` as one vector (W row-major, then a), the order of :func:`features`."""
    return np.concatenate([np.asarray(W, dtype=float).ravel(), np.asarray(a, dtype=float).ravel()])
