"""CPU seconds spent in each processing stage, for `kws bench`.

A process-wide counter, like logging: always on, and it costs two clock reads per stage call.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

CPU_SECONDS: defaultdict[str, float] = defaultdict(float)


@contextmanager
def stage(name: str) -> Iterator[None]:
    t = time.process_time()   # all threads of this process: BLAS threads count as CPU spent
    try:
        yield
    finally:
        CPU_SECONDS[name] += time.process_time() - t


def reset() -> None:
    CPU_SECONDS.clear()
