"""The ground segment of a mission: contact windows and delivered volume."""

from __future__ import annotations

import pandas as pd

from edgespacecom.gdown import T_DAY_S


def contact_plan_for(scenario, eph, participants, duration_s: float) -> tuple[dict, dict]:
    from edgespacecom.ground import Station, abstract_plan, contact_plan, contact_statistics
    from edgespacecom.orbits import constellation_satellites

    g = scenario.ground
    if g.downlink is not None:
        plan = {s: abstract_plan(g.downlink.windows_per_day, g.downlink.window_s, duration_s, g.downlink.phase_s)
                for s in range(len(participants))}
    else:
        sats = constellation_satellites(scenario.constellation, scenario.time.start)
        stations = [Station(st.name, st.lat_deg, st.lon_deg, st.min_elevation_deg, st.altitude_m) for st in g.stations]
        mine = [sats[eph.constellation_index(int(i))] for i in participants]  # satellites left out shift indices
        by_name = contact_plan(mine, stations, scenario.time.start, duration_s)
        plan = {s: by_name[sat.name] for s, sat in enumerate(mine)}
    return plan, contact_statistics(plan, duration_s)


def measured_span(duration_s: float) -> tuple[float, float]:
    """(start, length) [s] of the span a mission is measured over: the last simulated day when the
    run covers two or more (steady state), else the whole run."""
    return (duration_s - T_DAY_S, T_DAY_S) if duration_s >= 2 * T_DAY_S else (0.0, duration_s)


def delivered_per_day(deliveries: pd.DataFrame, world: str, duration_s: float) -> tuple[float, str]:
    """Raw-equivalent bits a day delivered by one world, all slots: over the last simulated day
    when the run covers at least two (steady state), else over the whole run, per day."""
    d = deliveries[deliveries["world"] == world] if len(deliveries) else deliveries
    start, length = measured_span(duration_s)
    if start > 0.0:
        last = d[d["t_s"] > start] if len(d) else d
        return (float(last["raw_equivalent_bits"].sum()) if len(last) else 0.0), "last simulated day"
    total = float(d["raw_equivalent_bits"].sum()) if len(d) else 0.0
    return total * T_DAY_S / length, "whole run, scaled to a day"
