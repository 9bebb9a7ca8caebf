"""Progress bars (linmeta.progress)."""
import io

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
