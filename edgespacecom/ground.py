"""Ground segment: stations and the contact windows of satellites over them.

Contact windows come from Skyfield's ``EarthSatellite.find_events`` (rise above,
culmination and set below the station's minimum elevation, found by root finding on
the SGP4 orbit), so N_w and τ_w are those of the real orbits. A satellite has one
downlink: its windows over several stations are merged into one timeline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from skyfield.api import EarthSatellite, wgs84

from .orbits import timescale


@dataclass(frozen=True)
class Station:
    name: str
    lat_deg: float
    lon_deg: float
    min_elevation_deg: float = 10.0
    altitude_m: float = 0.0


@dataclass(frozen=True)
class ContactWindow:
    """One pass of a satellite over a station, in seconds from the simulation start."""

    satellite: str
    station: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def passes(satellite: EarthSatellite, station: Station, start: dt.datetime, duration_s: float) -> list[ContactWindow]:
    """Windows of ``satellite`` above ``station``'s minimum elevation within [start, start + duration]."""
    ts = timescale()
    t0, t1 = ts.from_datetime(start), ts.from_datetime(start + dt.timedelta(seconds=duration_s))
    topos = wgs84.latlon(station.lat_deg, station.lon_deg, elevation_m=station.altitude_m)
    times, events = satellite.find_events(topos, t0, t1, altitude_degrees=station.min_elevation_deg)
    seconds = [(t.utc_datetime() - start).total_seconds() for t in times]
    windows = []
    rise = None
    # a pass under way at t0 starts at 0 when the first event is a culmination or a set
    alt0 = (satellite - topos).at(t0).altaz()[0].degrees
    if alt0 >= station.min_elevation_deg:
        rise = 0.0
    for sec, ev in zip(seconds, events):
        if ev == 0:
            rise = sec
        elif ev == 2 and rise is not None:
            windows.append(ContactWindow(satellite.name, station.name, rise, sec))
            rise = None
    if rise is not None:  # still in view at the end of the window
        windows.append(ContactWindow(satellite.name, station.name, rise, float(duration_s)))
    return windows


def merge_windows(windows: list[ContactWindow]) -> list[tuple[float, float]]:
    """Union of one satellite's windows as sorted, disjoint (start_s, end_s) intervals."""
    merged: list[list[float]] = []
    for w in sorted(windows, key=lambda w: w.start_s):
        if merged and w.start_s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], w.end_s)
        else:
            merged.append([w.start_s, w.end_s])
    return [(a, b) for a, b in merged]


def contact_plan(satellites: list[EarthSatellite], stations: list[Station], start: dt.datetime,
                 duration_s: float) -> dict[str, list[tuple[float, float]]]:
    """{satellite name: merged downlink intervals [s]} over all stations."""
    return {sat.name: merge_windows([w for st in stations for w in passes(sat, st, start, duration_s)])
            for sat in satellites}


def abstract_plan(windows_per_day: float, window_s: float, duration_s: float, phase_s: float = 0.0,
                  day_s: float = 86400.0) -> list[tuple[float, float]]:
    """The paper's abstract downlink: N_w evenly spaced windows a day of τ_w seconds each."""
    if window_s * windows_per_day > day_s:
        raise ValueError("downlink: windows_per_day × window_s exceeds a day")
    if windows_per_day <= 0:
        return []
    spacing = day_s / windows_per_day
    starts = np.arange(phase_s, duration_s, spacing)
    return [(float(s), float(min(s + window_s, duration_s))) for s in starts if s < duration_s]


def contact_statistics(plan: dict[str, list[tuple[float, float]]], duration_s: float, day_s: float = 86400.0) -> dict:
    """Mean N_w (windows a day) and τ_w (mean window length) over the satellites of a plan."""
    counts = [len(v) for v in plan.values()]
    lengths = [b - a for v in plan.values() for a, b in v]
    return {"windows_per_day": float(np.mean(counts)) * day_s / duration_s if counts else 0.0,
            "window_s_mean": float(np.mean(lengths)) if lengths else 0.0,
            "contact_s_per_day": float(np.sum(lengths)) / max(len(counts), 1) * day_s / duration_s}
