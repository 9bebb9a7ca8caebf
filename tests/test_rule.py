"""The inner-loop rule value (linmeta.rule.InnerLoop)."""
import pytest

from linmeta.rule import InnerLoop


@pytest.mark.parametrize(
    "layers, expected",
    [("all", (0, 1, 2)), ("last", (2,)), ("first", (0,)), ("none", ()), ((2, 0), (0, 2)), ((-1,), (2,))],
)
def test_adapted_layers(layers, expected):
    assert InnerLoop(1, 0.1, layers).adapted_layers(3) == expected


def test_zero_steps_adapt_nothing():
    assert InnerLoop(0, 0.1).adapted_layers(3) == ()


def test_negative_alpha_is_allowed():
    InnerLoop(2, -0.3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=-1), "steps must be a non-negative"),
        (dict(alpha=float("nan")), "alpha must be finite"),
        (dict(alpha="0.1"), "alpha must be a real"),
        (dict(layers="head"), "layers must be one of"),
        (dict(first_order=True, layers="none"), "first_order=True needs an inner loop"),
        (dict(first_order=True, steps=0), "first_order=True needs an inner loop"),
        (dict(first_order=1), "first_order must be True or False"),
        (dict(inner_loss="query"), "inner_loss must be one of"),
    ],
)
def test_bad_rules(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InnerLoop(**kwargs)


def test_layer_index_out_of_range():
    with pytest.raises(ValueError, match="only 2 layers"):
        InnerLoop(1, 0.1, (3,)).adapted_layers(2)
