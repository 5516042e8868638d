"""kind: sync — EdgeSpaceCom sync rounds over a time window (paper Appendix A)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import SyncScenario
from .kinds import ScenarioKind, register_kind


def sync_inputs(scenario) -> dict:
    tle = scenario.constellation.tle_file
    if tle is None:
        return {}
    if not tle.is_file():
        raise ValueError(f"constellation.tle_file: {tle} does not exist")
    return {f"tle:{tle.name}": tle}


def payload_label(payload_kib: float) -> str:
    """Payload as a summary key: 2.0 -> '2', 0.5 -> '0.5'."""
    return f"{payload_kib:g}"


def run_sync(scenario: SyncScenario, run) -> dict:  # run: edgespacecom.runner.RunContext
    """kind: sync — propagate, select participants, route, sync rounds, in time chunks (see
    :mod:`edgespacecom.stream`); append tables per chunk, then plots and the summary."""
    import functools

    import pandas as pd  # loaded when the kind runs: registering it stays light

    from . import plots  # matplotlib and the routing stack: only when a sync scenario runs
    from .outputs import write_figure, write_table
    from .progress import stage
    from .stream import TableAppender, sync_chunk

    if scenario.regions is not None:
        return run_regions(scenario, run)
    out_dir, compute = run.out_dir, scenario.compute
    reg, part_cfg = scenario.region, scenario.participants
    plan = _plan(scenario, run, [(reg.lat_deg, reg.lon_deg)])
    payloads = scenario.sync.payloads_kib
    stage(f"sync: {plan.satellites} satellites x {plan.samples} samples in {len(plan.chunks)} chunk(s) of {plan.chunk}, "
          f"{part_cfg.count} participants ({part_cfg.selection}) over ({reg.lat_deg}, {reg.lon_deg}), "
          f"{len(payloads)} payloads, executor {compute.executor}"
          + (f" at {compute.scheduler}" if compute.scheduler else f", {plan.workers} worker(s)"))
    task = functools.partial(sync_chunk, scenario, fixed_participants=None if plan.fixed is None else plan.fixed[0],
                             cache_dir=plan.cache, keep=plan.keep)
    ext = compute.tables
    appenders = {"per_round": TableAppender(out_dir / f"sync_rounds.{ext}"),
                 "per_satellite": TableAppender(out_dir / f"sync_satellites.{ext}"),
                 "flows": TableAppender(out_dir / "flows.parquet")}
    figure_rows = []

    def keep_figure_rows(result) -> None:
        figure_rows.append(result.tables["per_round"][FIGURE_COLUMNS])

    totals = _stream(task, plan, compute, appenders, keep_figure_rows)

    stage("writing the topology table and plots")
    per_round = pd.concat(figure_rows, ignore_index=True)
    topo = per_round[per_round["payload_kib"] == payloads[0]][TOPOLOGY_COLUMNS]
    write_table(out_dir / f"topology.{ext}", topo)
    write_figure(out_dir / "fig10_sync_time.png", plots.sync_time_figure(per_round, title=scenario.name))
    write_figure(out_dir / "link_budget.png", plots.link_budget_figure(scenario.link, scenario.isl.d_max_km))
    write_figure(out_dir / "topology_events.png", plots.topology_figure(topo))

    summary = {
        "kind": "sync",
        "name": scenario.name,
        "satellites": plan.satellites,
        "satellites_dropped": plan.dropped,  # SGP4 could not propagate them over the window
        "samples": plan.samples,
        "chunks": len(plan.chunks),
        "chunk_samples": plan.chunk,
        "executor": compute.executor,
        "participants": part_cfg.count,
        "noise_model": scenario.link.noise_model,
        "isl_pattern": scenario.isl.pattern,
        "routing_objective": scenario.network.routing_objective,
        "exchange": scenario.sync.exchange,
        **({"coding_s": scenario.sync.coding_s} if scenario.sync.exchange == "priority_chain" else {}),
        **_sync_summary(totals, payloads),
        "orbit_cache": "off" if plan.cache is False else "per chunk",
    }
    return run.finish(summary)


def run_regions(scenario: SyncScenario, run) -> dict:
    """kind: sync with ``regions:`` — every region's rounds on ISLs they share (edgespacecom.regions),
    in time chunks; per-region rounds, flows, link load and topology appended per chunk."""
    import functools

    import pandas as pd

    from . import plots
    from .outputs import write_figure, write_table
    from .progress import stage
    from .regions import region_targets, regions_chunk
    from .stream import TableAppender

    out_dir, compute = run.out_dir, scenario.compute
    targets = region_targets(scenario.regions)
    part_cfg = scenario.participants
    plan = _plan(scenario, run, [(t.lat_deg, t.lon_deg) for t in targets])
    samples = plan.samples
    payloads = scenario.sync.payloads_kib
    stage(f"sync: {len(targets)} regions x {part_cfg.count} participants ({part_cfg.selection}) sharing the ISLs of "
          f"{plan.satellites} satellites, {samples} samples in {len(plan.chunks)} chunk(s) of {plan.chunk}, "
          f"executor {compute.executor}")
    task = functools.partial(regions_chunk, scenario, targets=targets, participants_fixed=plan.fixed,
                             cache_dir=plan.cache, keep=plan.keep)
    ext = compute.tables
    appenders = {"region_rounds": TableAppender(out_dir / f"region_rounds.{ext}"),
                 "topology": TableAppender(out_dir / f"topology.{ext}"),
                 "region_flows": TableAppender(out_dir / "region_flows.parquet"),
                 "link_load": TableAppender(out_dir / "link_load.parquet")}
    figure_rows = []
    totals = _stream(task, plan, compute, appenders, lambda result: figure_rows.append(result.tables["topology"]))
    per_region = pd.DataFrame({"region": [t.name for t in targets], "lat_deg": [t.lat_deg for t in targets],
                               "lon_deg": [t.lon_deg for t in targets]})
    for p, payload in enumerate(payloads):
        label = payload_label(payload)
        per_region[f"t_round_mean_s_{label}"] = totals["round"][:, p] / samples
        per_region[f"t_round_alone_mean_s_{label}"] = totals["alone"][:, p] / samples
        per_region[f"t_round_max_s_{label}"] = totals["round_max"][:, p]
        per_region[f"slowdown_mean_{label}"] = totals["round"][:, p] / totals["alone"][:, p]
    write_table(out_dir / "regions.csv", per_region)
    topo = pd.concat(figure_rows, ignore_index=True)
    write_figure(out_dir / "regions_slowdown.png", plots.regions_figure(per_region, payloads))
    write_figure(out_dir / "topology_events.png", plots.topology_figure(topo))
    summary = {
        "kind": "sync", "name": scenario.name, "regions": len(targets),
        "satellites": plan.satellites, "satellites_dropped": plan.dropped, "samples": samples,
        "chunks": len(plan.chunks), "chunk_samples": plan.chunk, "executor": compute.executor,
        "participants": part_cfg.count, "noise_model": scenario.link.noise_model, "isl_pattern": scenario.isl.pattern,
        "sharing": "max-min fair per link direction among regions (edgespacecom.contention)",
        "sync_round_s": {payload_label(q): {"mean": float(totals["round"][:, p].sum() / (samples * len(targets))),
                                            "max": float(totals["round_max"][:, p].max())}
                         for p, q in enumerate(payloads)},
        "sync_round_alone_s": {payload_label(q): {"mean": float(totals["alone"][:, p].sum() / (samples * len(targets)))}
                               for p, q in enumerate(payloads)},
        "slowdown": {payload_label(q): {"mean": float(totals["round"][:, p].sum() / totals["alone"][:, p].sum()),
                                        "max": float(totals["slowdown_max"][p])} for p, q in enumerate(payloads)},
        "flows_on_shared_links_share": totals["flows_shared"] / max(1, totals["flows"]),
        "unreachable_flows": int(totals["unreachable"]),
        "link_directions_shared_share": totals["links_shared"] / max(1, totals["links_used"]),
        "peak_sessions_on_a_link": int(totals["peak_sessions_max"]),
        "omega_topo_s": totals["omega"].summary(),
        "orbit_cache": "off" if plan.cache is False else "per chunk",
    }
    return run.finish(summary)


#: per-round columns the figures and the topology table need (kept in memory; the rest is on disk)
TOPOLOGY_COLUMNS = ["time_utc", "sample", "isl_links", "link_setups", "link_teardowns", "omega_topo_s",
                    "participant_link_setups", "participant_link_teardowns", "omega_topo_participants_s"]
FIGURE_COLUMNS = TOPOLOGY_COLUMNS + ["payload_kib", "t_sync_mean_s", "t_sync_max_s"]


@dataclass(frozen=True)
class _Plan:
    """What a sync run settles before any chunk runs."""

    satellites: int  # propagated over the whole window
    samples: int
    chunk: int
    chunks: list
    cache: object  # the position cache folder, None (the default one) or False (none)
    keep: np.ndarray | None  # satellites kept (None: all)
    dropped: list  # names of those left out
    fixed: list | None  # fixed_slots: each region's participants at the first sample
    workers: int


def _plan(scenario, run, points: list[tuple[float, float]]) -> _Plan:
    """Check the group size, start the run, and settle the chunks, the cache, the satellites SGP4
    propagates, fixed participants (``fixed_slots``: the nearest at the window's first sample, one set
    per region point) and the worker count."""
    from .participants import select_participants
    from .stream import chunk_bounds, chunk_positions, constellation, default_chunk_samples, propagating_satellites, usable_cache

    compute, part_cfg = scenario.compute, scenario.participants
    n_sat = len(constellation(scenario)[0])
    if part_cfg.count > n_sat:
        raise ValueError(f"participants.count: {part_cfg.count} exceeds the {n_sat} satellites of the constellation")
    run.begin()
    samples = scenario.time.samples
    chunk = compute.chunk_samples or default_chunk_samples(n_sat, samples)
    chunks = chunk_bounds(samples, chunk)
    cache = {"always": compute.cache_dir, "never": False}.get(
        compute.cache_positions, compute.cache_dir if n_sat * samples * 3 * 8 <= 2**30 else False)
    cache = usable_cache(cache)
    keep = propagating_satellites(scenario, chunks, cache)
    dropped = _dropped(scenario, keep, n_sat)
    fixed = None
    if part_cfg.selection == "fixed_slots":
        first = chunk_positions(scenario, 0, 1, cache)
        first = first if keep is None else first[:, keep]
        fixed = [select_participants(first, lat, lon, part_cfg.count, "nearest")[0] for lat, lon in points]
    workers = run.workers(compute.workers) if compute.executor == "local" or compute.scheduler is None else 1
    return _Plan(n_sat - len(dropped), samples, chunk, chunks, cache, keep, dropped, fixed, min(workers, len(chunks)))


def _stream(task, plan: _Plan, compute, appenders: dict, collect) -> dict:
    """Run the chunks on the scenario's executor, append their tables in order, hand each result to
    ``collect``, show samples and chunks done with an ETA; return the chunks' merged partial sums."""
    from .progress import progress
    from .stream import merge_sums, run_chunks, write_in_order

    bar = progress(total=plan.samples, desc="sync", unit="sample")
    state = {"done": 0, "totals": None}

    def on_result(result) -> None:
        collect(result)
        state["totals"] = merge_sums(state["totals"], result.sums)
        state["done"] += 1
        bar.set_postfix(chunks=f"{state['done']}/{len(plan.chunks)}")
        bar.update(result.stop - result.start)

    with bar:
        write_in_order(run_chunks(task, plan.chunks, executor=compute.executor, workers=plan.workers,
                                  scheduler=compute.scheduler), appenders, on_result)
    return state["totals"]


def _dropped(scenario, keep, n_sat: int) -> list[str]:
    """Names of the satellites left out (SGP4 fails on them in the window), or the error that refuses
    them (``constellation.on_propagation_error: fail``, or none left)."""
    if keep is None:
        return []
    from .stream import constellation

    names = constellation(scenario)[2]
    bad = [names[i] for i in sorted(set(range(n_sat)) - set(int(i) for i in keep))]
    shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    if scenario.constellation.on_propagation_error == "fail" or not len(keep):
        raise ValueError(f"constellation: SGP4 cannot propagate {len(bad)} of {n_sat} satellite(s) over "
                         f"the window ({shown}: decayed or stale elements)"
                         + ("" if not len(keep) else "; on_propagation_error: drop leaves them out"))
    from .progress import LOG

    LOG.warning(f"orbits: {len(bad)} of {n_sat} satellites cannot be propagated over the window and are left out "
                f"({shown})")
    return bad


def _sync_summary(t: dict, payloads) -> dict:
    """The summary's statistics from the chunks' merged partial sums (see stream.sync_chunk)."""
    return {
        "sync_round_s": {payload_label(p): {"mean": float(t["t_round_sum"][i] / t["samples"]),
                                            "max": float(t["t_round_max"][i])} for i, p in enumerate(payloads)},
        "sync_satellite_s": {payload_label(p): {"mean": float(t["t_sync_sum"][i] / t["t_sync_count"]),
                                                "max": float(t["t_sync_max"][i])} for i, p in enumerate(payloads)},
        "hops_max": int(t["hops_max"]),
        "unreachable_flows": int(t["unreachable"]),
        "isl_links_mean": t["links_sum"] / t["samples"],
        "omega_topo_s": t["omega"].summary(),
        "omega_topo_participants_s": t["omega_local"].summary(),
        "routing_nodes_mean": t["routing_nodes_sum"] / t["samples"],
    }


def format_sync_summary(summary: dict) -> str:
    import pandas as pd

    rows = [
        {
            "payload_KiB": key,
            "T_round mean [ms]": f"{v['mean'] * 1e3:.2f}",
            "T_round max [ms]": f"{v['max'] * 1e3:.2f}",
        }
        for key, v in summary["sync_round_s"].items()
    ]
    regions = summary.get("regions")
    if regions:
        for row, key in zip(rows, summary["sync_round_s"]):
            row["T_round alone mean [ms]"] = f"{summary['sync_round_alone_s'][key]['mean'] * 1e3:.2f}"
            row["slowdown mean"] = f"{summary['slowdown'][key]['mean']:.3f}"
            row["slowdown max"] = f"{summary['slowdown'][key]['max']:.3f}"
    head = (
        f"{summary['name']}: {summary['satellites']} satellites, {summary['samples']} samples, "
        + (f"{regions} regions of " if regions else "")
        + f"{summary['participants']} participants, noise model {summary['noise_model']}"
        + (", priority chain (DLRC predict)" if summary.get("exchange") == "priority_chain" else "")
    )
    omega, local = summary.get("omega_topo_s"), summary.get("omega_topo_participants_s")
    tail = ""
    if regions:
        tail += (f"flows crossing a link another region uses: {summary['flows_on_shared_links_share']:.1%}; "
                 f"at most {summary['peak_sessions_on_a_link']} regions on one link at once; ")
    if omega:
        tail += f"Ω_topo (all ISLs) mean {omega['mean']:.3f} s, max {omega['max']:.3f} s; "
    if local:
        tail += f"Ω_topo (participants' links) mean {local['mean'] * 1e3:.1f} ms, max {local['max'] * 1e3:.1f} ms; "
    tail += f"wall time {summary['wall_s']:.1f} s"
    return "\n".join([head, pd.DataFrame(rows).to_string(index=False), tail])


register_kind(ScenarioKind(
    name="sync", schema=SyncScenario, runner="edgespacecom.sync_kind:run_sync",
    formatter="edgespacecom.sync_kind:format_sync_summary", inputs=sync_inputs,
    sweep_y=("sync_round_s.*.mean",), description="EdgeSpaceCom sync rounds over a time window (Appendix A)"))
