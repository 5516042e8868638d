"""Progress and stage messages for long work, through :mod:`logging` (logger ``edgespacecom``).

On a terminal a progress bar is tqdm's; elsewhere (a log file, CI, a pipe) it is a plain
line every few percent, never carriage returns. ``-v`` / ``-q`` on the command line set the
logger's level; a library user configures ``logging`` as usual.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings

LOG = logging.getLogger("edgespacecom")


def stage(message: str) -> None:
    """One line per stage of a run (INFO)."""
    LOG.info(message)


class _CurrentStderr(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is when a record is emitted, so a
    caller that redirects stderr after the first run (a test harness, a notebook) still sees it."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property decides
        pass


def configure_logging(verbosity: int = 0) -> None:
    """Stage lines on stderr: -q (verbosity < 0) warnings only, -v (> 0) debug."""
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    LOG.setLevel(level)
    if not LOG.handlers:
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("[edgespacecom] %(message)s"))
        LOG.addHandler(handler)


def quiet_library_warnings() -> None:
    """Warnings of the libraries underneath that say nothing to a user of this tool (torch.jit's
    deprecation inside CompressAI, rasterio on aerial crops without a geotransform, ...)."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=r".*(geotransform|georeferenced).*")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|torchvision|compressai)(\.|$)")


class _LineProgress:
    """tqdm's small interface (update, close, context manager), printed as a line every ``step`` % (10)."""

    def __init__(self, total: float, desc: str, unit: str, initial: float = 0, step_percent: float = 10.0):
        self.total, self.desc, self.unit = float(total or 0), desc, unit
        self.n = self._initial = float(initial)
        self.step = step_percent
        self._next = (int(self._percent() // step_percent) + 1) * step_percent
        self._started = time.perf_counter()

    def _percent(self) -> float:
        return 100.0 * self.n / self.total if self.total > 0 else 100.0

    def update(self, n: float = 1) -> None:
        self.n += n
        if self._percent() >= self._next or self.n >= self.total:
            elapsed = time.perf_counter() - self._started
            done = self.n - self._initial
            eta = f", ETA {elapsed * (self.total - self.n) / done:.0f} s" if 0 < done and self.n < self.total else ""
            LOG.info(f"{self.desc}: {self._percent():3.0f}% ({self.n:g}/{self.total:g} {self.unit}, {elapsed:.0f} s{eta})")
            self._next = (int(self._percent() // self.step) + 1) * self.step

    def set_postfix(self, **values) -> None:  # tqdm's API: shown with the next line
        self.desc = self.desc.split(" [")[0] + " [" + ", ".join(f"{k} {v}" for k, v in values.items()) + "]"

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Silent(_LineProgress):
    """A progress bar that shows nothing (``disable``, or a quiet logger)."""

    def __init__(self):
        super().__init__(0, "", "")

    def update(self, n: float = 1) -> None:
        self.n += n


def progress(iterable=None, *, total: float | None = None, desc: str = "", unit: str = "it", initial: float = 0,
             disable: bool = False, leave: bool = True):
    """A progress bar: tqdm on a terminal, a log line every 10 % elsewhere; silent if ``disable``
    or the logger is quieter than INFO. Wraps ``iterable`` if given (like tqdm)."""
    if total is None and iterable is not None:
        total = len(iterable)
    shown = not disable and LOG.isEnabledFor(logging.INFO)
    if shown and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit=unit, initial=initial, leave=leave)
    else:
        bar = _LineProgress(total, desc, unit, initial) if shown else _Silent()
    if iterable is None:
        return bar
    return _iterate(iterable, bar)


def _iterate(iterable, bar):
    with bar:
        for item in iterable:
            yield item
            bar.update(1)
