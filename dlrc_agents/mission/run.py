"""Running a mission scenario: orbits, participants, ground plan, agents, tables and summary."""

from __future__ import annotations


import numpy as np
import pandas as pd
import torch

from edgespacecom.outputs import write_figure, write_table

from dlrc_agents.codecs.registry import load_codecs
from dlrc_agents.common.data import read_rgb, scene_names
from ..dlrc.auth import mission_key
from .agents import FlowOracle, Mission
from .decodable import decodability
from .ground import contact_plan_for, measured_span
from .onboard import OnboardWork
from .summary import backlog_figure, gdown_figure, participants_summary, summarise_mission, sync_figure

# ---------------------------------------------------------------- runner


def _participants_at_start(eph, scenario) -> np.ndarray:
    from edgespacecom.participants import select_participants

    reg, part = scenario.region, scenario.participants
    return select_participants(eph.positions_km[:1], reg.lat_deg, reg.lon_deg, part.count, part.selection)[0]


def geometric_captures(eph, scenario, duration_s: float) -> tuple[np.ndarray, list[dict]]:
    """(slots: the satellites that ever take part, ascending; one dict per capture opportunity, with
    its participating ``slots``) from the sensor's footprints over the target (see
    :func:`edgespacecom.participants.geometric_rounds`)."""
    from edgespacecom.participants import geometric_rounds

    times = (eph.times_utc - eph.times_utc[0]) / np.timedelta64(1, "s")
    reg = scenario.region
    rows = [c for c in geometric_rounds(eph.positions_km, times.astype(float), reg.lat_deg, reg.lon_deg,
                                        scenario.sensor, scenario.participants.count) if c["t_s"] < duration_s]
    pool = np.array(sorted({i for c in rows for i in c["participants"]}), dtype=int)
    slot_of = {int(i): s for s, i in enumerate(pool)}
    for c in rows:
        c["slots"] = tuple(slot_of[i] for i in c["participants"])
    return pool, rows


def capture_table(captures: list[dict] | None, table: pd.DataFrame, participants: np.ndarray, scenario) -> pd.DataFrame:
    """One row per capture round: when, which satellites, N and o_exp (from the geometry, or the
    scenario's fixed group and overlap), and the real round it replays."""
    cols = ["round", "t_s", "N", "o_exp", "satellites", "coverage", "off_nadir_deg", "gsd_m", "trace_round"]
    dl = table[table["world"] == "dlrc"]
    trace = dl.groupby("round")["trace_round"].first() if len(dl) else pd.Series(dtype=int)
    if captures is None:
        first = dl.groupby("round")["captured_s"].min() if len(dl) else pd.Series(dtype=float)
        sats = " ".join(str(int(i)) for i in participants)
        rows = [{"round": int(r), "t_s": float(t), "N": len(participants), "o_exp": scenario.overlap.o_exp[0],
                 "satellites": sats, "coverage": "", "off_nadir_deg": np.nan, "gsd_m": np.nan,
                 "trace_round": int(trace[r])} for r, t in first.items()]
    else:
        rows = [{"round": r, "t_s": c["t_s"], "N": c["N"], "o_exp": c["o_exp"],
                 "satellites": " ".join(str(i) for i in c["participants"]),
                 "coverage": " ".join(f"{f:.3f}" for f in c["coverage"]), "off_nadir_deg": c["off_nadir_deg"],
                 "gsd_m": c["gsd_m"], "trace_round": int(trace[r]) if r in trace.index else -1}
                for r, c in enumerate(captures)]
    return pd.DataFrame(rows, columns=cols)


def rounds_in_flight(scenario, codec) -> tuple[int, float]:
    """(rounds a pipelined satellite may hold at once, on-board memory of one [MB]): the capture
    (float32, 3·P²) and its latents y (M·(P/16)²) and z (N·(P/64)²); ``in_flight`` lowered to
    what ``in_flight_memory_mb`` holds (at least one)."""
    p = scenario.overlap.patch
    round_mb = 4 * (3 * p * p + codec.M * (p // 16) ** 2 + codec.N * (p // 64) ** 2) / 1e6
    mc = scenario.mission
    k = mc.in_flight
    if mc.in_flight_memory_mb is not None:
        k = max(1, min(k, int(mc.in_flight_memory_mb // round_mb)))
    return k, round_mb


def production_periods(table: pd.DataFrame, scenario) -> pd.DataFrame:
    """Each row's capture → stored time per patch as ``latency_per_patch_s``; ``time_per_patch_s`` is
    the production period: the same when serial, the time to the next capture when pipelined."""
    table = table.copy()
    table["latency_per_patch_s"] = (table["stored_s"] - table["captured_s"]) / table["rounds"]
    if scenario.mission.schedule == "pipelined" and scenario.mission.capture == "continuous":
        for _, g in table[table["world"] == "dlrc"].groupby("slot"):
            g = g.sort_values("captured_s")
            nxt = g["captured_s"].shift(-1)
            period = ((nxt - g["captured_s"]) / g["rounds"]).fillna(g["latency_per_patch_s"])
            table.loc[g.index, "time_per_patch_s"] = period
    return table


def run_mission(scenario, run) -> dict:
    """Run a validated scenario in ``run`` (:class:`edgespacecom.runner.RunContext`); return its summary."""
    from edgespacecom.orbits import load_ephemeris
    from edgespacecom.progress import stage

    out_dir = run.out_dir

    c = scenario.codec
    (codec,) = load_codecs(c)  # before any output is written
    key = mission_key()  # from the environment, never the scenario: a bad key fails here, before any work
    run.begin()
    torch.set_num_threads(scenario.mission.threads)
    scenes = {name: read_rgb(path) for name, path in scene_names(scenario.data.scenes).items()}
    eph = load_ephemeris(scenario.constellation, scenario.time, scenario.compute.cache_dir)
    tc = scenario.time
    duration_s = (tc.end - tc.start).total_seconds() if tc.end is not None else tc.duration_h * 3600.0
    captures = None
    if scenario.participants.selection == "geometric":
        participants, captures = geometric_captures(eph, scenario, duration_s)
        if not captures:
            raise ValueError(f"sensor: no satellite images the target at ({scenario.region.lat_deg}, "
                             f"{scenario.region.lon_deg}) in {duration_s / 3600:.1f} h; widen max_off_nadir_deg or "
                             "the swath, or lengthen the run")
        shared = sum(c["N"] > 1 for c in captures)
        stage(f"mission: {eph.satellites} satellites; {len(captures)} captures of the target from the sensor's "
              f"geometry ({shared} shared by 2 to {max(c['N'] for c in captures)}), {len(participants)} satellites "
              f"take part, {duration_s / 3600:.1f} h, {c.architecture}")
    else:
        participants = _participants_at_start(eph, scenario)
        stage(f"mission: {eph.satellites} satellites, slots {participants.tolist()} over "
              f"({scenario.region.lat_deg}, {scenario.region.lon_deg}), {duration_s / 3600:.1f} h, "
              f"{c.architecture}, {scenario.mission.capture} capture")
    # 64-bit signature per latent position, or in predict mode on the shared grid the tile's origin (two
    # u16); + the sender's queued bits (u64) under the backlog policy. Predict mode's streams are flows
    # of their own size (agents.Mission._predict_round)
    grid_predict = scenario.dlrc.modes() == ["predict"] and scenario.captures.geo_grid
    header = 4 if grid_predict else 8 * (scenario.overlap.patch // 16) ** 2
    payload_kib = (header + 8 * (scenario.dlrc.priority == "backlog")) / 1024.0
    flows = FlowOracle(eph.positions_km, participants, payload_kib, scenario, scenario.time.step_s)
    plan, contact_stats = contact_plan_for(scenario, eph, participants, duration_s)
    stage(f"ground: {'abstract downlink' if scenario.ground.downlink else 'stations'}, "
          f"{contact_stats['windows_per_day']:.1f} windows a day of {contact_stats['window_s_mean']:.0f} s mean")
    work = OnboardWork(codec, scenes, scenario, key)
    in_flight, round_mb = rounds_in_flight(scenario, codec)
    mission = Mission(scenario, codec, work, flows, plan, duration_s, in_flight, captures)
    mission.run()
    stage(f"routing: {'header' if grid_predict else 'signature'} flows ({payload_kib:g} KiB)"
          f"{' and predictive streams' if scenario.dlrc.modes() == ['predict'] else ''} routed at "
          f"{len(flows.cache)} instants")
    table = production_periods(pd.DataFrame(mission.rows), scenario)
    deliveries = pd.DataFrame(mission.deliveries,
                              columns=["world", "slot", "first_round", "t_s", "bits", "raw_equivalent_bits"])
    ground = pd.DataFrame(mission.ground_rounds)
    backlog = pd.DataFrame([{"world": w, "slot": s, "t_s": t, "bits": b}
                            for (w, s), st in mission.storage.items() for t, b in st.history])
    sync = mission.sync_rounds()
    span_start, _ = measured_span(duration_s)
    stored = pd.DataFrame(mission.stored)
    stored["lost_s"] = [mission.lost_at.get((w, s_, r), np.nan)
                        for w, s_, r in zip(stored["world"], stored["slot"], stored["first_round"])]
    decodable = decodability(stored, deliveries, scenario.ground.rate_bps, span_start)
    summary = summarise_mission(scenario, table, deliveries, ground, sync, contact_stats, mission, work, duration_s,
                                decodable)
    summary["slots"] = [int(p) for p in participants]
    summary["satellites_dropped"] = list(eph.dropped)  # SGP4 could not propagate them over the window
    rounds_table = capture_table(captures, table, participants, scenario)
    summary["participants"] = participants_summary(rounds_table, scenario)
    summary["in_flight"] = {"rounds": mission.in_flight, "memory_mb": mission.in_flight * round_mb,
                            "memory_mb_per_round": round_mb}
    summary["weights"] = codec.source
    # both worlds' containers carry an HMAC-SHA256 (32 bytes each, counted) when a mission key is set
    summary["authentication"] = "hmac-sha256" if key else "none"
    bl = scenario.mission.baseline
    rates = [b["jpeg2000_bpp"] for rr in work.by_index.values() for b in rr.baseline.values() if "jpeg2000_bpp" in b]
    summary["baseline_codec"] = {"codec": bl.codec if bl.codec == "jpeg2000" else scenario.codec.architecture,
                                 **({"jpeg2000_rate": "fixed" if bl.jpeg2000_bpp else "equal PSNR to the learned codec",
                                     "jpeg2000_bpp_mean": float(np.mean(rates)) if rates else None,
                                     "jpeg2000_mct": bl.jpeg2000_mct} if bl.codec == "jpeg2000" else {})}
    write_table(out_dir / "mission_rounds.csv", table)
    write_table(out_dir / "capture_rounds.csv", rounds_table)
    write_table(out_dir / "ground_rounds.csv", ground if len(ground) else pd.DataFrame(columns=["world", "round"]))
    write_table(out_dir / "decodable_items.csv", decodable[0])
    write_table(out_dir / "backlog.csv", backlog)
    write_figure(out_dir / "backlog.png", backlog_figure(backlog))
    write_table(out_dir / "sync_rounds.csv", sync)
    write_figure(out_dir / "sync_rounds.png", sync_figure(sync))
    write_figure(out_dir / "gdown.png", gdown_figure(summary))
    return run.finish(summary)
