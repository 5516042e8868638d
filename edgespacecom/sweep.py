"""Sweeps: a scenario's ``sweep.grid`` expanded into runs, executed in parallel, aggregated.

Every combination of the grid's values (in the order the keys are written) is one
*point*: the scenario with those dotted keys set, validated like any scenario. All
points are validated, and their input files checked, before any runs. Each point runs in
``OUT/points/<id>/`` (the id is the point's index and a hash of its values); a point whose
folder already holds a ``summary.json`` written for the same resolved configuration and
the same input files (by content: the sha256 its provenance records against the files'
sha256 now) is not run again, so an interrupted sweep resumes without losing finished
points, and re-trained weights or re-fetched data are never mixed with points computed
on the old ones. A point's run removes its old ``summary.json`` before it writes anything,
so a point interrupted half-way is never taken as done.

Executors (every kind runs on both; a point's own process pool is capped at one process,
so pools never nest):

- ``local`` (default): worker processes (``concurrent.futures.ProcessPoolExecutor``,
  spawned), ``--workers`` of them;
- ``dask``: a Dask distributed cluster, ``--scheduler ADDRESS`` (for example
  ``tcp://10.0.0.5:8786``), or a local Dask cluster of ``--workers`` processes when no
  address is given; the dashboard's address is printed. Workers must see the same files
  (data cache, weights) at the same paths.

Outputs: ``sweep.csv`` (one row per point: the swept keys, then every scalar of the
point's ``summary.json``, flattened with dots; wall times left out so the table depends
on the scenario only), ``sweep.png`` and ``summary.json`` (kind ``sweep``).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .config import MAX_SWEEP_POINTS, ScenarioError, apply_overrides, to_yaml, validate_scenario
from .kinds import get_kind
from .outputs import write_figure, write_json, write_table
from .progress import progress, quiet_library_warnings, stage
from .provenance import input_digests, provenance

if TYPE_CHECKING:
    import pandas as pd


def point_id(index: int, values: dict) -> str:
    digest = hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{index:03d}-{digest}"


def _json_value(value):
    """JSON for grid values YAML gives as objects (dates: ISO 8601, which the schemas parse back)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"sweep.grid: a value of type {type(value).__name__} cannot be swept")


def grid_points(grid: dict) -> int:
    """How many points a grid expands to: the product of its axes' lengths, computed before any expansion."""
    return math.prod(len(v) for v in grid.values())


def _with_value(raw: dict, key: str, value) -> dict:
    """``raw`` with the dotted ``key`` set: the mappings along its path copied, every other part shared
    (a point's scenario differs from the base only there, so expanding a grid copies little)."""
    out = dict(raw)
    node, parts = out, key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = {}
        elif not isinstance(child, dict):
            raise ScenarioError(f"sweep.grid.{key}: {'.'.join(parts[:depth + 1])} is not a mapping")
        else:
            child = dict(child)
        node[part] = child
        node = child
    node[parts[-1]] = value
    return out


def _without_point_views(raw: dict) -> dict:
    """A sweep point writes no view.html unless the scenario asks for one (``outputs.view: true``): a
    view is about 10 MB, and a sweep's points are compared in its table and figure, not one by one."""
    outputs = raw.get("outputs")
    if isinstance(outputs, dict) and "view" in outputs:
        return raw
    try:
        schema = get_kind(str(raw.get("kind"))).schema
    except Exception:  # an unknown kind: validation names it
        return raw
    if "outputs" not in getattr(schema, "model_fields", {}):
        return raw
    return _with_value(raw, "outputs.view", False)


def expand(raw: dict, source: str = "scenario", base_dir: str | Path | None = None) -> list[dict]:
    """[{'id', 'values', 'raw', 'scenario'}] for every point, all validated (ScenarioError names the point).

    A grid of more than :data:`MAX_SWEEP_POINTS` points is refused before it is expanded."""
    grid = raw["sweep"]["grid"]
    total = grid_points(grid)
    if total > MAX_SWEEP_POINTS:
        raise ScenarioError(f"{source}: sweep.grid has {total} points ({' × '.join(str(len(v)) for v in grid.values())}), "
                            f"more than the {MAX_SWEEP_POINTS} a sweep may have")
    base = copy.deepcopy(raw)
    base.pop("sweep")
    base = _without_point_views(base)
    keys = list(grid)
    points = []
    for index, combo in enumerate(itertools.product(*(grid[k] for k in keys))):
        values = dict(zip(keys, combo))
        point_raw = base
        for k, v in values.items():  # plain JSON values, as --set would give them (dates as ISO 8601 text)
            point_raw = _with_value(point_raw, k, json.loads(json.dumps(v, default=_json_value)))
        where = ", ".join(f"{k}={v}" for k, v in values.items())
        scenario = validate_scenario(point_raw, source=f"{source} [sweep point {where}]", base_dir=base_dir)
        points.append({"id": point_id(index, values), "values": values, "raw": point_raw, "scenario": scenario})
    return points


def _resolved_values(point: dict) -> dict:
    """The swept keys' values as validated (e.g. YAML's string '1.0e6' becomes the float 1e6)."""
    resolved = point["scenario"].model_dump(mode="json")
    out = {}
    for key in point["values"]:
        node = resolved
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        out[key] = node
    return out


def _finished_summary(folder: Path, scenario, inputs: dict[str, str]) -> dict | None:
    """The point's summary if it was written for this configuration, these input files and this
    package version, else None (the point runs again). A point's ``summary.json`` is written last,
    when it finishes, and records the sha256 of its full resolved configuration and of its inputs."""
    from . import __version__

    summary, config = folder / "summary.json", folder / "config.resolved.yaml"
    text = to_yaml(scenario)
    if not (summary.is_file() and config.is_file() and config.read_text() == text):
        return None
    try:
        result = json.loads(summary.read_text())
    except ValueError:
        return None
    recorded = result.get("provenance") if isinstance(result, dict) else None
    if not isinstance(recorded, dict):
        return None
    same = (recorded.get("inputs_sha256") == inputs and recorded.get("version") == __version__
            and recorded.get("config_sha256") == hashlib.sha256(text.encode()).hexdigest())
    return result if same else None


def run_point(raw: dict, out_dir: str, base_dir: str | None = None) -> dict:
    """Run one point (in a worker process or a Dask worker, one process: pools never nest)."""
    from .runner import run_scenario

    quiet_library_warnings()
    scenario = validate_scenario(raw, base_dir=base_dir)
    summary, _ = run_scenario(scenario, Path(out_dir), max_workers=1)
    return summary


#: A kind's ``results`` list is flattened row by row (``results.<i>.<key>``) up to this many rows.
MAX_RESULT_ROWS = 64


def _flatten(summary: dict) -> dict:
    import pandas as pd  # loaded where a table is made: validating a sweep never needs it

    body = {k: v for k, v in summary.items() if k != "provenance"}
    rows = body.get("results")
    if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows) and len(rows) <= MAX_RESULT_ROWS:
        body["results"] = {str(i): r for i, r in enumerate(rows)}
    flat = pd.json_normalize(body, sep=".").iloc[0].to_dict()
    # wall times and the orbit cache's state depend on the machine, not the scenario
    return {k: v for k, v in flat.items()
            if not isinstance(v, (list, dict)) and not k.endswith(("wall_s", "orbit_cache_hit"))}


def _y_columns(table: pd.DataFrame, ys: list) -> list:
    """The columns of the kind's main quantities: top-level, or each row of its results list; a name
    with ``*`` is a shell-style pattern (``sync_round_s.*.mean``: one column per payload)."""
    import fnmatch

    pattern = re.compile(r"results\.\d+\.(%s)$" % "|".join(map(re.escape, ys))) if ys else None
    return [c for c in table.columns if c in ys or (pattern is not None and pattern.fullmatch(c))
            or any("*" in y and fnmatch.fnmatchcase(c, y) for y in ys)]


def _execute(todo: list[dict], out_dir: Path, workers: int, executor: str, scheduler: str | None,
             base_dir: str | None) -> dict:
    results = {}
    if not todo:
        return results
    args = [(p["raw"], str(out_dir / "points" / p["id"]), base_dir) for p in todo]
    bar = progress(total=len(todo), desc="sweep points", unit="point")
    if executor == "dask":
        from distributed import Client, LocalCluster, as_completed as dask_completed

        cluster = None
        if scheduler is None:
            cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                   dashboard_address="127.0.0.1:0")
        client = Client(scheduler or cluster)
        stage(f"dask: scheduler {client.scheduler.address}, dashboard {client.dashboard_link}")
        try:
            futures = {client.submit(run_point, *a, pure=False): p["id"] for p, a in zip(todo, args)}
            for future in dask_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    elif workers <= 1:
        for p, a in zip(todo, args):
            results[p["id"]] = run_point(*a)
            bar.update(1)
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_point, *a): p["id"] for p, a in zip(todo, args)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
    bar.close()
    return results


def run_sweep(raw: dict, out_dir: Path, *, points: list[dict] | None = None, workers: int = 1,
              executor: str = "local", scheduler: str | None = None, source: str = "scenario",
              base_dir: str | Path | None = None) -> tuple[dict, str]:
    """Run every point of ``raw``'s sweep (``points``: from :func:`expand`, if already done)."""
    import pandas as pd
    from .runner import scenario_inputs

    started, started_utc = time.perf_counter(), dt.datetime.now(dt.timezone.utc)
    base_dir = str(base_dir) if base_dir is not None else None
    points = expand(raw, source, base_dir) if points is None else points
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").unlink(missing_ok=True)
    # checked before any run (the CLI may have found them already)
    inputs = {p["id"]: input_digests(p["inputs"] if "inputs" in p else scenario_inputs(p["scenario"]))
              for p in points}
    finished = {p["id"]: r for p in points
                if (r := _finished_summary(out_dir / "points" / p["id"], p["scenario"], inputs[p["id"]])) is not None}
    todo = [p for p in points if p["id"] not in finished]
    stage(f"sweep: {len(points)} points over {', '.join(raw['sweep']['grid'])}; {len(finished)} already done, "
          f"{len(todo)} to run ({executor}, {workers} worker(s))")
    results = _execute(todo, out_dir, workers, executor, scheduler, base_dir)
    results.update(finished)
    rows = [{"point": p["id"], **_resolved_values(p), **_flatten(results[p["id"]])} for p in points]
    table = pd.DataFrame(rows)
    write_table(out_dir / "sweep.csv", table)
    kind_name = points[0]["scenario"].kind
    kind = get_kind(kind_name)
    keys = list(raw["sweep"]["grid"])
    x = raw["sweep"].get("x") or keys[0]
    write_figure(out_dir / "sweep.png", sweep_figure(table, x, keys, list(kind.sweep_y)))
    if kind.sweep_figures:
        for name, fig in kind.load("sweep_figures")(table, keys, x, out_dir).items():
            write_figure(out_dir / name, fig)
    summary = {"kind": "sweep", "name": raw.get("name"), "base_kind": kind_name, "grid": raw["sweep"]["grid"],
               "points": len(points), "resumed": len(finished), "executor": executor,
               "table": "sweep.csv", "wall_s": time.perf_counter() - started}
    summary["provenance"] = provenance(yaml.safe_dump(raw, sort_keys=False), {}, started_utc)
    summary["provenance"]["inputs_sha256"] = {k: v for d in inputs.values() for k, v in sorted(d.items())}
    write_json(out_dir / "summary.json", summary)
    shown = [c for c in table.columns if c in keys] + _y_columns(table, list(kind.sweep_y))
    return summary, f"{raw.get('name')}: sweep of {len(points)} points\n" + table[shown].to_string(index=False)


def sweep_figure(table: pd.DataFrame, x: str, keys: list[str], ys: list[str]):
    import matplotlib
    import pandas as pd

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ys = _y_columns(table, ys) or [c for c in table.columns if c not in keys and c != "point"
                                   and pd.api.types.is_numeric_dtype(table[c])][:1]
    others = [k for k in keys if k != x]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    groups = table.groupby(others, dropna=False) if others else [((), table)]
    for label, g in groups:
        g = g.sort_values(x)
        tag = ", ".join(f"{k}={v}" for k, v in zip(others, label if isinstance(label, tuple) else (label,)))
        for y in ys:
            style = "--" if y.endswith("simulated") else "-"
            ax.plot(g[x], g[y], style, marker="o", ms=3, label=f"{y} {tag}".strip())
    values = pd.to_numeric(table[x], errors="coerce")
    if values.notna().all() and values.min() > 0 and values.max() / values.min() > 50:
        ax.set_xscale("log")
    ax.set_xlabel(x)
    # several quantities: the legend names each, the axis their common part
    ax.set_ylabel(ys[0] if len(ys) == 1 else (os.path.commonprefix(ys).rstrip("._") or "value") + " (legend)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
