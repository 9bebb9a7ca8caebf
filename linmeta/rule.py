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

import numbers
from dataclasses import dataclass

import numpy as np

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
        object.__setattr__(self, "steps", _validate.positive_int("steps", self.steps, allow_zero=True))
        object.__setattr__(self, "alpha", _validate.finite_float("alpha", self.alpha))
        if isinstance(self.layers, str):
            _validate.one_of("layers", self.layers, LAYER_SETS)
        else:
            if isinstance(self.layers, (bytes, int, float, complex)) or not hasattr(self.layers, "__iter__"):
                raise _validate.ArgumentTypeError(
                    f"layers must be one of {LAYER_SETS} or a tuple of 0-based layer indices such as (0,) or "
                    f"(0, -1), got {self.layers!r} of type {type(self.layers).__name__}")
            layers = tuple(self.layers)
            for j, i in enumerate(layers):
                if isinstance(i, (bool, np.bool_)) or not isinstance(i, numbers.Integral):
                    raise _validate.ArgumentTypeError(
                        f"layers[{j}] must be an integer layer index (0-based; negative counts from the top), got "
                        f"{i!r} of type {type(i).__name__}; layer indices are never rounded")
            layers = tuple(int(i) for i in layers)
            if len(set(layers)) != len(layers):
                raise ValueError(f"layers lists an index twice: {layers}; give each adapted layer once")
            object.__setattr__(self, "layers", layers)
        _validate.one_of("inner_loss", self.inner_loss, INNER_LOSSES)
        _validate.boolean("first_order", self.first_order)
        if self.first_order and (self.steps == 0 or self.layers == "none" or self.layers == ()):
            raise ValueError(
                "first_order=True needs an inner loop to approximate: set steps >= 1 and layers to "
                "'all', 'last', 'first' or a non-empty tuple (or use first_order=False)"
            )

    def adapted_layers(self, depth: int) -> tuple:
        """0-based indices of the layers that adapt in a model of ``depth`` layers."""
        depth = _validate.positive_int("depth", depth)
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
                raise ValueError(f"layers contains index {i}, but the model has only {depth} layers (0..{depth - 1}, "
                                 f"or -{depth}..-1 from the top)")
            out.append(i % depth)
        if len(set(out)) != len(out):
            raise ValueError(f"layers {self.layers} name the same layer twice in a model of {depth} layers")
        return tuple(sorted(out))
