"""The exception linmeta raises when a computation diverges (shared by the engine and the trainer)."""
from __future__ import annotations

import numpy as np


class DivergenceError(RuntimeError):
    """A computation diverged: a non-finite or exploding value came out of finite inputs.

    Attributes
    ----------
    step : the outer step of meta-training at which it happened, or ``None`` for a single engine call
        (then the inner loop diverged).
    last_finite_loss : the last finite meta-train loss (array over runs), or ``None``.
    inner_step_bound : ``2 / λ_max`` of the inner step's curvature, worst task, per run: positive inner
        steps ``alpha`` above it make two or more inner steps diverge.
    alpha : the inner step used.
    """

    def __init__(self, step, last_finite_loss, bound, alpha, detail=""):
        self.step, self.last_finite_loss, self.inner_step_bound, self.alpha = step, last_finite_loss, bound, alpha
        self._detail = detail
        bound_text = np.array2string(np.asarray(bound), precision=4)
        if step is None:
            msg = (f"the inner loop diverged{detail}; inner-step stability bound 2/lambda_max = {bound_text} "
                   f"(alpha = {alpha}). Use a smaller alpha or fewer inner steps.")
        else:
            last = ("none (the first loss was already bad)" if last_finite_loss is None
                    else np.array2string(np.asarray(last_finite_loss), precision=4))
            msg = (f"meta-training diverged at outer step {step}{detail}: last finite meta-train loss {last}; "
                   f"inner-step stability bound 2/lambda_max = {bound_text} (alpha = {alpha}). "
                   "Lower the outer learning rate or the inner step alpha.")
        super().__init__(msg)

    def __reduce__(self):
        # pickles with its constructor arguments, so it travels intact from worker processes
        return type(self), (self.step, self.last_finite_loss, self.inner_step_bound, self.alpha, self._detail)
