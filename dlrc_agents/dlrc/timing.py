"""Stage timing shared by the on-board steps and the context-model walk."""

from __future__ import annotations

import time
from contextlib import contextmanager


@contextmanager
def timed(timings: dict, stage: str):
    """Add the wall time of the ``with`` block to ``timings[stage]`` [s]."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - started
