"""Running a validated scenario of any registered kind (:mod:`edgespacecom.kinds`).

A run is a :class:`RunContext`: its output folder, the input files it reads (checked before
any work), and how many processes it may start. :meth:`RunContext.begin` removes a stale
``summary.json`` and writes the resolved configuration; :meth:`RunContext.finish` writes
``summary.json`` last, with its provenance, so a folder holding one holds a finished run.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ScenarioError, to_yaml
from .kinds import get_kind
from .outputs import atomic_write_text, write_json
from .provenance import provenance


def scenario_inputs(scenario) -> dict[str, Path]:
    """Every file ``scenario`` reads, by portable name; ScenarioError naming the first missing one."""
    kind = get_kind(scenario.kind)
    try:
        return kind.inputs(scenario)
    except ValueError as exc:  # DataError, CodecError, DataMissing
        raise ScenarioError(str(exc)) from None


@dataclass
class RunContext:
    """One run of a scenario: where it writes, what it reads, how many processes it may start."""

    scenario: Any
    out_dir: Path
    inputs: dict[str, Path] = field(default_factory=dict)
    max_workers: int | None = None  # a cap (sweep points run with 1: pools never nest)
    started: float = 0.0
    started_utc: dt.datetime | None = None

    def begin(self) -> float:
        """Create the folder, drop a stale summary.json, write the resolved config; return perf_counter."""
        self.started = time.perf_counter()
        self.started_utc = dt.datetime.now(dt.timezone.utc)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "summary.json").unlink(missing_ok=True)
        atomic_write_text(self.out_dir / "config.resolved.yaml", to_yaml(self.scenario))
        return self.started

    def workers(self, requested: int) -> int:
        """Processes for the run's own pool: ``requested`` (0: one per core), never above the cap."""
        n = requested if requested > 0 else (os.cpu_count() or 1)
        return min(n, self.max_workers) if self.max_workers else n

    def finish(self, summary: dict) -> dict:
        """Add wall time and provenance, write summary.json (last); return the summary."""
        outputs = getattr(self.scenario, "outputs", None)
        if outputs is not None and outputs.view:  # the globe of the run, before summary.json marks it done
            from .progress import stage
            from .view import view_data, write_view

            write_view(view_data(self.scenario, self.out_dir, frames=outputs.view_frames, summary=summary),
                       self.out_dir / "view.html")
            stage(f"view: {self.out_dir / 'view.html'} (opens offline in a browser)")
        summary.setdefault("wall_s", time.perf_counter() - self.started)
        summary["provenance"] = provenance(to_yaml(self.scenario), self.inputs, self.started_utc)
        write_json(self.out_dir / "summary.json", summary)
        return summary


def run_scenario(scenario, out_dir: Path, *, max_workers: int | None = None,
                 inputs: dict[str, Path] | None = None) -> tuple[dict, str]:
    """Run any validated scenario; return (summary, printable table). Inputs are checked first
    (``inputs``: from :func:`scenario_inputs`, when the caller already checked them)."""
    kind = get_kind(scenario.kind)
    inputs = scenario_inputs(scenario) if inputs is None else inputs
    ctx = RunContext(scenario, Path(out_dir), inputs, max_workers)
    summary = kind.load("runner")(scenario, ctx)
    return summary, kind.load("formatter")(summary)
