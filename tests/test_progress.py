"""Progress bars (linmeta.progress)."""
import io

import pytest

from linmeta.progress import Progress, set_quiet


class _TTY(io.StringIO):
    def isatty(self):
        return True


def test_draws_on_a_terminal_with_time_left():
    s = _TTY()
    with Progress(4, "work", stream=s) as bar:
        for _ in range(4):
            bar.update(postfix="x")
    out = s.getvalue()
    assert "work" in out and "4/4" in out and "<" in out and out.endswith("\n")


def test_silent_when_not_a_terminal_or_quiet():
    s = io.StringIO()
    with Progress(3, "work", stream=s) as bar:
        bar.update(3)
    assert s.getvalue() == ""
    t = _TTY()
    set_quiet(True)
    try:
        with Progress(3, "work", stream=t) as bar:
            bar.update(3)
    finally:
        set_quiet(False)
    assert t.getvalue() == ""


def test_eta():
    bar = Progress(10, stream=io.StringIO())
    assert bar.eta() == float("inf")
    bar.update(5)
    assert bar.eta() >= 0


def test_time_left_counts_only_the_units_still_to_compute():
    """Pieces loaded from a cache are done but say nothing about the speed of the others."""
    import time

    bar = Progress(10, stream=io.StringIO(), initial=8)
    assert bar.done == 8 and bar.eta() == float("inf")  # nothing computed yet: unknown, not ~0
    time.sleep(0.05)
    bar.update(1)
    elapsed = time.perf_counter() - bar._t0
    assert bar.eta() == pytest.approx(elapsed, rel=0.5)  # one piece took ~elapsed, one is left
    bar.update(1)
    assert bar.eta() == 0.0


def test_bars_are_labelled_with_what_they_belong_to():
    from linmeta.progress import label

    with label("arnold_depth"):
        assert Progress(3, "meta-train (adam)", stream=io.StringIO()).desc == "arnold_depth: meta-train (adam)"
        with label("inner"):
            assert Progress(3, "x", stream=io.StringIO()).desc == "inner: x"
    assert Progress(3, "x", stream=io.StringIO()).desc == "x"


def test_status_line_only_on_a_terminal():
    from linmeta.progress import status

    s, t = io.StringIO(), _TTY()
    status("experiment 1 of 2", stream=s)
    status("experiment 1 of 2", stream=t)
    assert s.getvalue() == "" and "experiment 1 of 2" in t.getvalue() and t.getvalue().endswith("\n")
