"""Feedback on long jobs: a progress bar when stderr is a terminal, plain log lines otherwise.

    for task in progress(tasks, "scoring tasks"):
        ...
    with Progress(total, "training") as bar:
        bar.update(note=f"loss {loss:.3f}")

Standard library only (the local platform uses it). Log lines come at most every `every_s`
seconds and at the end, so a log file stays short; the bar redraws at most ten times a second.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Iterable, Iterator, TextIO, TypeVar

log = logging.getLogger("kws.progress")
T = TypeVar("T")
WIDTH = 24


def _clock(s: float) -> str:
    m, s = divmod(int(s), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class Progress:
    """`done` of `total` (None: unknown); update() from any thread. quiet: show nothing (other ranks)."""

    def __init__(self, total: int | None, label: str, every_s: float = 10.0, stream: TextIO | None = None,
                 initial: int = 0, quiet: bool = False):
        self.total, self.label, self.every_s, self.quiet = total, label, every_s, quiet
        self.stream = stream or sys.stderr
        self.bar = not quiet and bool(getattr(self.stream, "isatty", lambda: False)())
        self.done, self.start, self.t0, self.last, self.note = initial, initial, time.monotonic(), -float("inf"), ""
        self.lock = threading.Lock()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def line(self) -> str:
        elapsed = time.monotonic() - self.t0
        if self.total:
            frac = min(self.done / self.total, 1.0)
            rate = (self.done - self.start) / elapsed if elapsed > 0 else 0.0   # this run's pace (resumed jobs)
            left = (self.total - self.done) / rate if rate > 0 else None
            head = f"{self.done}/{self.total} ({100 * frac:.0f}%), {_clock(elapsed)} elapsed" + \
                   (f", ~{_clock(left)} left" if left is not None and self.done < self.total else "")
        else:
            head = f"{self.done} done, {_clock(elapsed)} elapsed"
        return f"{self.label}: {head}" + (f"; {self.note}" if self.note else "")

    def update(self, n: int = 1, note: str = "") -> None:
        with self.lock:
            self.done += n
            self.note = note or self.note
            if not self.quiet:
                self._show()

    def _show(self) -> None:
        now = time.monotonic()
        if self.bar:
            if now - self.last >= 0.1 or self.done == self.total:
                fill = int(WIDTH * min(self.done / self.total, 1.0)) if self.total else 0
                bar = f"[{'#' * fill}{'.' * (WIDTH - fill)}] " if self.total else ""
                self.stream.write(f"\r\033[K{bar}{self.line()}")
                self.stream.flush()
                self.last = now
        elif now - self.last >= self.every_s or self.done == self.total:
            log.info("%s", self.line())
            self.last = now

    def close(self) -> None:
        if self.quiet:
            return
        if self.bar:
            self.stream.write(f"\r\033[K{self.line()}\n")
            self.stream.flush()
            self.bar = False
        elif self.done != self.total:   # the last line was not at the end: say where it stopped
            log.info("%s", self.line())


def progress(items: Iterable[T], label: str, total: int | None = None, every_s: float = 10.0) -> Iterator[T]:
    """Each item of `items`, counting them off."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, label, every_s) as p:
        for item in items:
            yield item
            p.update()
