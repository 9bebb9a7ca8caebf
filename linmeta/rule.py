"""The inner-loop rule: a small frozen value saying how each task adapts.

Layer sets (``layers``):

* ``"all"``   every layer adapts (MAML);
* ``"last"``  only the head adapts (ANIL);
* ``"first"`` only the bottom layer adapts;
* ``"none"``  nothing adapts (NAL: non-adaptive learning, the pre-adaptation loss);
* a tuple of 0-based layer indices (negative indices count from the top).

The rule is a description only: :mod:`linmeta.inner_loop` runs it and :mod:`linmeta.reverse`
differentiates through it.  Theory modules take it as an argument too.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import _validate

LAYER_SETS = ("all", "last", "first", "none")
INNER_LOSSES = ("support", "population")


@dataclass(frozen=True)
class InnerLoop:
    """An inner-loop rule.

    Parameters
    ----------
    steps : number of inner gradient steps k ≥ 0.
    alpha : inner step size α (any finite real; negative values are allowed).
    layers : which layers adapt, see the module docstring.
    first_order : drop the second-order terms of the meta-gradient (FO-MAML).  The
        adapted parameters and the meta-loss are unchanged; only the gradient differs.
    inner_loss : ``"support"`` (K-shot support set) or ``"population"`` (exact expected
        task loss) – used by the samplers and trainers to build the inner loss.
    """

    steps: int = 1
    alpha: float = 0.01
    layers: object = "all"
    first_order: bool = False
    inner_loss: str = "support"

    def __post_init__(self):
        _validate.positive_int("steps", self.steps, allow_zero=True)
        object.__setattr__(self, "alpha", _validate.finite_float("alpha", self.alpha))
        if isinstance(self.layers, str):
            _validate.one_of("layers", self.layers, LAYER_SETS)
        else:
            try:
                layers = tuple(int(i) for i in self.layers)
            except TypeError:
                raise ValueError(f"layers must be one of {LAYER_SETS} or a tuple of layer indices, got {self.layers!r}")
            object.__setattr__(self, "layers", layers)
        _validate.one_of("inner_loss", self.inner_loss, INNER_LOSSES)
        if not isinstance(self.first_order, bool):
            raise ValueError(f"first_order must be True or False, got {self.first_order!r}")
        if self.first_order and (self.steps == 0 or self.layers == "none" or self.layers == ()):
            raise ValueError(
                "first_order=True needs an inner loop to approximate: set steps >= 1 and layers to "
                "'all', 'last', 'first' or a non-empty tuple (or use first_order=False)"
            )

    def adapted_layers(self, depth: int) -> tuple:
        """0-based indices of the layers that adapt in a model of ``depth`` layers."""
        if self.steps == 0 or self.layers == "none":
            return ()
        if self.layers == "all":
            return tuple(range(depth))
        if self.layers == "last":
            return (depth - 1,)
        if self.layers == "first":
            return (0,)
        out = []
        for i in self.layers:
            if not -depth <= i < depth:
                raise ValueError(f"layers contains index {i}, but the model has only {depth} layers (0..{depth - 1})")
            out.append(i % depth)
        return tuple(sorted(set(out)))
