"""Sweeps: a scenario's ``sweep.grid`` expanded into runs, executed in parallel, aggregated.

Every combination of the grid's values (in the order the keys are written) is one
*point*: the scenario with those dotted keys set, validated like any scenario. All
points are validated before any runs. Each point runs in ``OUT/points/<id>/`` (the id
is the point's index and a hash of its values); a point whose folder already holds a
``summary.json`` written for the same resolved configuration, with the same weights
files (by content: ``inputs.json`` holds their sha256), is not run again, so an
interrupted sweep resumes without losing finished points, and re-trained weights are
never mixed with points computed on the old ones.

Executors:

- ``local`` (default): worker processes (``concurrent.futures.ProcessPoolExecutor``,
  spawned), ``--workers`` of them;
- ``dask``: a Dask distributed cluster, ``--scheduler ADDRESS`` (for example
  ``tcp://10.0.0.5:8786``), or a local Dask cluster of ``--workers`` processes when no
  address is given. Workers must see the same files (scenes, weights) at the same paths.

Outputs: ``sweep.csv`` (one row per point: the swept keys, then every scalar of the
point's ``summary.json``, flattened with dots; wall times left out so the table depends
on the scenario only), ``sweep.png`` and ``summary.json`` (kind ``sweep``).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from .config import apply_overrides, to_yaml, validate_scenario
from .outputs import write_figure, write_json, write_table

#: summary keys plotted against the sweep's x key, per kind (first found are used)
DEFAULT_Y = {
    "mission": ["g_down_analytic", "g_down_analytic_paper", "g_down_simulated"],
    "sync": ["sync_round_s.2.mean"],
    "rd": ["bpp_reduction"],
    "codec_rd": ["psnr"],
    "dlrc_ablation": ["bpp_reduction"],
}


def point_id(index: int, values: dict) -> str:
    digest = hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{index:03d}-{digest}"


def expand(raw: dict, source: str = "scenario") -> list[dict]:
    """[{'id', 'values', 'raw', 'scenario'}] for every point, all validated (ScenarioError names the point)."""
    grid = raw["sweep"]["grid"]
    base = copy.deepcopy(raw)
    base.pop("sweep")
    keys = list(grid)
    points = []
    for index, combo in enumerate(itertools.product(*(grid[k] for k in keys))):
        values = dict(zip(keys, combo))
        point_raw = apply_overrides(base, [f"{k}={json.dumps(v)}" for k, v in values.items()])
        where = ", ".join(f"{k}={v}" for k, v in values.items())
        scenario = validate_scenario(point_raw, source=f"{source} [sweep point {where}]")
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


def _weights_digests(summary: dict, cache: dict[str, str]) -> dict[str, str]:
    """sha256 of every weights file a point's summary names (``weights``: a path or a list).

    ``cache`` holds the digests already computed in this sweep: the points of a sweep
    usually share one weights file, which is hashed once.
    """
    named = summary.get("weights") or []
    paths = [named] if isinstance(named, str) else list(named)
    for p in paths:
        if p not in cache:
            cache[p] = hashlib.sha256(Path(p).read_bytes()).hexdigest() if Path(p).is_file() else "missing"
    return {p: cache[p] for p in paths}


def _finished_summary(folder: Path, scenario, digests: dict[str, str]) -> dict | None:
    """The point's summary if it was written for this configuration and these weights, else None."""
    summary, config, inputs = folder / "summary.json", folder / "config.resolved.yaml", folder / "inputs.json"
    if not (summary.is_file() and config.is_file() and inputs.is_file() and config.read_text() == to_yaml(scenario)):
        return None
    result = json.loads(summary.read_text())
    return result if json.loads(inputs.read_text()) == _weights_digests(result, digests) else None


def run_point(raw: dict, out_dir: str) -> dict:
    """Run one point (in a worker process or a Dask worker); return its summary."""
    from .runner import run_scenario

    scenario = validate_scenario(raw)
    summary, _ = run_scenario(scenario, Path(out_dir))
    return summary


def _flatten(summary: dict) -> dict:
    flat = pd.json_normalize(summary, sep=".").iloc[0].to_dict()
    return {k: v for k, v in flat.items()
            if not isinstance(v, (list, dict)) and not k.endswith("wall_s")}


def _execute(todo: list[dict], out_dir: Path, workers: int, executor: str, scheduler: str | None) -> dict:
    results = {}
    if not todo:
        return results
    args = [(p["raw"], str(out_dir / "points" / p["id"])) for p in todo]
    bar = tqdm(total=len(todo), desc="sweep points", unit="point")
    if executor == "dask":
        from distributed import Client, LocalCluster, as_completed as dask_completed

        cluster = None
        if scheduler is None:
            cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                   dashboard_address=None)
        client = Client(scheduler or cluster)
        try:
            futures = {client.submit(run_point, raw, folder, pure=False): p["id"] for p, (raw, folder) in
                       zip(todo, args)}
            for future in dask_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    elif workers <= 1:
        for p, (raw, folder) in zip(todo, args):
            results[p["id"]] = run_point(raw, folder)
            bar.update(1)
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_point, raw, folder): p["id"] for p, (raw, folder) in zip(todo, args)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
    bar.close()
    return results


def run_sweep(raw: dict, out_dir: Path, *, points: list[dict] | None = None, workers: int = 1,
              executor: str = "local", scheduler: str | None = None, source: str = "scenario") -> tuple[dict, str]:
    """Run every point of ``raw``'s sweep (``points``: from :func:`expand`, if already done)."""
    from .runner import stage

    started = time.perf_counter()
    points = expand(raw, source) if points is None else points
    out_dir.mkdir(parents=True, exist_ok=True)
    digests: dict[str, str] = {}
    finished = {p["id"]: r for p in points
                if (r := _finished_summary(out_dir / "points" / p["id"], p["scenario"], digests)) is not None}
    todo = [p for p in points if p["id"] not in finished]
    stage(f"sweep: {len(points)} points over {', '.join(raw['sweep']['grid'])}; {len(finished)} already done, "
          f"{len(todo)} to run ({executor}, {workers} worker(s))")
    results = _execute(todo, out_dir, workers, executor, scheduler)
    for p in todo:
        write_json(out_dir / "points" / p["id"] / "inputs.json", _weights_digests(results[p["id"]], digests))
    results.update(finished)
    rows = [{"point": p["id"], **_resolved_values(p), **_flatten(results[p["id"]])} for p in points]
    table = pd.DataFrame(rows)
    write_table(out_dir / "sweep.csv", table)
    kind = points[0]["scenario"].kind
    x = raw["sweep"].get("x") or list(raw["sweep"]["grid"])[0]
    write_figure(out_dir / "sweep.png", sweep_figure(table, x, list(raw["sweep"]["grid"]), DEFAULT_Y.get(kind, [])))
    if kind == "mission" and x == "ground.rate_bps":
        write_figure(out_dir / "fig_a2_gdown.png", gdown_sweep_figure(table, list(raw["sweep"]["grid"]), out_dir))
    summary = {"kind": "sweep", "name": raw.get("name"), "base_kind": kind, "grid": raw["sweep"]["grid"],
               "points": len(points), "resumed": len(finished), "executor": executor,
               "table": "sweep.csv", "wall_s": time.perf_counter() - started}
    write_json(out_dir / "summary.json", summary)
    shown = [c for c in table.columns if c in raw["sweep"]["grid"] or c in DEFAULT_Y.get(kind, [])]
    return summary, f"{raw.get('name')}: sweep of {len(points)} points\n" + table[shown].to_string(index=False)


def sweep_figure(table: pd.DataFrame, x: str, keys: list[str], ys: list[str]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ys = [y for y in ys if y in table.columns] or [c for c in table.columns if c not in keys and c != "point"
                                                   and pd.api.types.is_numeric_dtype(table[c])][:1]
    others = [k for k in keys if k != x]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    groups = table.groupby(others) if others else [((), table)]
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
    ax.set_ylabel(", ".join(ys))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def gdown_sweep_figure(table: pd.DataFrame, keys: list[str], out_dir: Path):
    """Figure A2: G_down over the downlink rate, one curve per other setting: the analytic curve
    (dense, from the points' measured t and bpp) and the simulated points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .gdown import g_down_curve, g_down_per_satellite

    others = [k for k in keys if k != "ground.rate_bps"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    groups = table.groupby(others) if others else [((), table)]
    for i, (label, g) in enumerate(groups):
        g = g.sort_values("ground.rate_bps")
        color = f"C{i}"
        tag = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(others, label if isinstance(label, tuple) else (label,)))
        rates = np.logspace(np.log10(g["ground.rate_bps"].min()), np.log10(g["ground.rate_bps"].max()), 300)
        first = json.loads((out_dir / "points" / g["point"].iloc[0] / "summary.json").read_text())
        common = dict(patch_px=int(g["patch"].iloc[0]), raw_bits_per_pixel=24,
                      windows_per_day=g["downlink.windows_per_day"].iloc[0], window_s=g["downlink.window_s"].iloc[0])
        per_sat = [g_down_per_satellite(rate_bps=float(x), **common, **first["per_satellite"]) for x in rates]
        paper = g_down_curve(rates, t_baseline_s=first["time_per_patch_s"]["baseline"],
                             t_dlrc_s=first["time_per_patch_s"]["dlrc"], bpp_baseline=first["bpp_baseline"],
                             bpp_dlrc=first["bpp_dlrc"], **common)
        ax.plot(rates / 1e6, 100 * np.array(per_sat), "-", color=color, label=f"formula per satellite, {tag}")
        ax.plot(rates / 1e6, 100 * paper, ":", color=color, label=f"paper's formula on means, {tag}")
        ax.plot(g["ground.rate_bps"] / 1e6, 100 * g["g_down_simulated"], "o", color=color, mfc="none",
                label=f"simulated, {tag}")
    ax.set_xscale("log")
    ax.set_xlabel("downlink rate x [Mbit/s]")
    ax.set_ylabel("G_down [%]")
    ax.axhline(0, color="gray", lw=0.8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
