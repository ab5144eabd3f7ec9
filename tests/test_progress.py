"""Progress: a bar on a terminal, plain log lines otherwise."""
import io
import logging

from kws.app.progress import Progress, progress


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_bar_on_a_terminal():
    out = Tty()
    with Progress(4, "work", stream=out) as p:
        for i in range(4):
            p.update(note=f"item {i}")
    text = out.getvalue()
    assert "[########################] work: 4/4 (100%)" in text and "item 3" in text and text.endswith("\n")


def test_log_lines_otherwise(caplog):
    caplog.set_level(logging.INFO, "kws.progress")
    out = io.StringIO()
    with Progress(3, "tasks", every_s=0, stream=out) as p:
        for _ in range(3):
            p.update()
    assert out.getvalue() == ""
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("tasks: 1/3 (33%)") and "left" in lines[0] and lines[-1].startswith("tasks: 3/3 (100%)")
    assert len(lines) == 3


def test_rate_limited_and_stopped_early(caplog):
    caplog.set_level(logging.INFO, "kws.progress")
    with Progress(100, "steps", every_s=3600, stream=io.StringIO()) as p:
        for _ in range(10):
            p.update()
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == [msgs[0], msgs[-1]] and msgs[0].startswith("steps: 1/100") and msgs[-1].startswith("steps: 10/100")


def test_iterator_and_quiet(caplog):
    caplog.set_level(logging.INFO, "kws.progress")
    assert list(progress(iter(range(3)), "gen", every_s=0)) == [0, 1, 2]
    assert caplog.records[-1].getMessage().startswith("gen: 3 done")
    caplog.clear()
    with Progress(5, "other rank", quiet=True, stream=Tty()) as p:
        p.update()
    assert not caplog.records
