"""See a run: an interactive globe of the constellation, its links, routes, regions and passes.

:func:`write_view` writes one self-contained ``view.html`` (plotly's offline HTML: plotly.js is
embedded, so the page opens with no server and no network) showing, at each frame's instant:

- the satellites (a deterministic subsample above ``MAX_SATELLITES``, said in the title);
- the ISLs of the moment among the satellites shown (the topology rule of the scenario);
- the participants of the sync round and, with a sensor, their footprints;
- the routed paths of one sync round among the participants (minimum-delay routing of the
  first payload, :func:`edgespacecom.routing.route_participants`), coloured by hop delay; hovering
  a hop's midpoint gives its range, rate and delay;
- the ground stations and the participants in contact (elevation above the station's mask);
- the regions of a many-region run, coloured by their mean slowdown (``regions.csv`` of the run);
- the captures of a mission (``capture_rounds.csv``): the satellites imaging the target.

A time slider and a play button step through the frames. :func:`write_gif` draws the same frames
with matplotlib (equirectangular map) for papers and slides.

Geometry only: this module reads the scenario and the run's tables, never the layer above the
simulator core. Latitudes are geocentric (display only: within 0.2° of geodetic).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Satellites drawn at most; a larger constellation is drawn as an evenly spaced subsample (by index)
#: plus every participant, and the title says so.
MAX_SATELLITES = 2000
#: ISLs drawn at most a frame: beyond, the links nearest the target (by their midpoint), and the title
#: says how many of how many (a dense shell has tens of thousands; the page would pass 20 MB).
MAX_LINKS = 3000
#: Frames at most (evenly spread over the run); the Table A1 scenario's page stays well under 20 MB.
DEFAULT_FRAMES = 36
#: Hop-delay classes of the routed paths [ms]: upper bounds, the last open.
DELAY_CLASSES_MS = (5.0, 10.0, 20.0, np.inf)
DELAY_COLOURS = ("#1a9850", "#91cf60", "#fc8d59", "#d73027")
EARTH_RADIUS_KM = 6371.0


def lat_lon_deg(positions_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geocentric latitude and longitude [deg] of ITRS positions (..., 3) [km]."""
    x, y, z = positions_km[..., 0], positions_km[..., 1], positions_km[..., 2]
    return np.degrees(np.arctan2(z, np.hypot(x, y))), np.degrees(np.arctan2(y, x))


def elevation_deg(station_km: np.ndarray, sat_km: np.ndarray) -> np.ndarray:
    """Elevation [deg] of satellites (N, 3) seen from a ground point (3,), ITRS [km] (local up: the
    ellipsoid normal approximated by the geocentric direction, as for the display)."""
    up = station_km / np.linalg.norm(station_km)
    d = sat_km - station_km
    return np.degrees(np.arcsin(np.clip(d @ up / np.linalg.norm(d, axis=-1), -1.0, 1.0)))


def circle_deg(lat_deg: float, lon_deg: float, radius_km: float, points: int = 36) -> tuple[np.ndarray, np.ndarray]:
    """A small circle of ``radius_km`` on the sphere around a point: (lats, lons) [deg], closed."""
    a = radius_km / EARTH_RADIUS_KM
    lat0, lon0 = np.radians(lat_deg), np.radians(lon_deg)
    b = np.linspace(0.0, 2 * np.pi, points + 1)
    lat = np.arcsin(np.sin(lat0) * np.cos(a) + np.cos(lat0) * np.sin(a) * np.cos(b))
    lon = lon0 + np.arctan2(np.sin(b) * np.sin(a) * np.cos(lat0), np.cos(a) - np.sin(lat0) * np.sin(lat))
    return np.degrees(lat), (np.degrees(lon) + 180.0) % 360.0 - 180.0


def _segments(lat: np.ndarray, lon: np.ndarray, i: np.ndarray, j: np.ndarray) -> tuple[list, list]:
    """Line segments i→j as one trace's coordinates, separated by None (rounded to 0.01°)."""
    if not len(i):
        return [], []
    la = np.stack([lat[i], lat[j], np.full(len(i), np.nan)], axis=1).ravel()
    lo = np.stack([lon[i], lon[j], np.full(len(i), np.nan)], axis=1).ravel()
    return _rounded(la), _rounded(lo)


def _rounded(v: np.ndarray) -> list:
    return [None if not np.isfinite(x) else round(float(x), 2) for x in v]


@dataclass
class Frame:
    """What the view draws at one instant."""

    t_s: float
    label: str
    traces: dict = field(default_factory=dict)  # trace name -> {x, y, text, ...} (plotly geo fields)


@dataclass
class ViewData:
    """Everything :func:`write_view` and :func:`write_gif` draw, from a scenario and (optionally) its run."""

    title: str
    frames: list
    static: dict  # trace name -> fields (stations, target, regions)
    notes: list  # what was subsampled or left out, said in the page


def view_data(scenario, run_dir: Path | None = None, at=None, frames: int = DEFAULT_FRAMES,
              summary: dict | None = None) -> ViewData:
    """The view's frames for a validated network scenario (``sync`` or ``mission``), over its time window
    (``frames`` instants evenly spread), or at one instant ``at`` (a datetime within the window).

    ``run_dir``: the run's folder, for what only the run knows: a mission's slots and captures
    (``summary.json``, or ``summary``; ``capture_rounds.csv``), a many-region run's slowdowns (``regions.csv``)."""
    import datetime as dt

    from .orbits import Ephemeris, _without_failed, constellation_satellites, propagate_itrs, sample_datetimes
    from .orbits import satellite_names
    from .participants import region_point_itrs_km, select_participants
    from .routing import route_participants
    from .links import hop_delay_s, link_rate_bps
    from .topology import IslRule

    tc = scenario.time
    all_times = sample_datetimes(tc)
    K = len(all_times)
    times = np.arange(K) * tc.step_s
    if at is not None:
        start = all_times[0].astype("datetime64[ms]").astype(dt.datetime).replace(tzinfo=dt.timezone.utc)
        offset = (at - start).total_seconds()
        if not 0.0 <= offset <= times[-1] + 1e-6:
            raise ValueError(f"--at: {at.isoformat()} is outside the scenario's window "
                             f"({start.isoformat()} + {times[-1] / 3600:g} h)")
        samples = np.array([int(np.argmin(np.abs(times - offset)))])
    else:
        samples = np.unique(np.linspace(0, K - 1, min(frames, K)).round().astype(int))
    # only the frames' instants (and the first, where fixed slots are chosen) are propagated: a day at 1 s
    # of 10,000 satellites would not fit in memory; a sample's position does not depend on which others
    # are computed with it (edgespacecom.orbits.propagate_itrs)
    wanted = np.union1d([0], samples)
    sats = constellation_satellites(scenario.constellation, tc.start)
    pos_all = propagate_itrs(sats, tc, np.repeat(wanted, 2) if len(wanted) == 1 else wanted)[::2 if len(wanted) == 1 else 1]
    eph = _without_failed(Ephemeris(pos_all, satellite_names(sats), all_times[wanted], False), scenario.constellation)
    row = {int(k): i for i, k in enumerate(wanted)}
    N = eph.positions_km.shape[1]
    notes = []
    run_dir = Path(run_dir) if run_dir is not None else None
    if summary is None:  # a finished run's (a run writing its view passes the summary it is about to write)
        summary = _read_json(run_dir / "summary.json") if run_dir else {}
    rule = IslRule.from_config(scenario.isl, scenario.constellation)
    reg = scenario.region
    payload = _first_payload(scenario)
    fixed = None
    if scenario.kind == "mission" and summary.get("slots"):
        fixed = np.asarray(summary["slots"], dtype=int)  # the slots the mission flew (catalogue indices)
    shown = np.arange(N)
    if N > MAX_SATELLITES:
        shown = np.unique(np.linspace(0, N - 1, MAX_SATELLITES).round().astype(int))
        notes.append(f"{len(shown)} of {N} satellites drawn (every {N / len(shown):.1f}th by index, plus the "
                     "participants); ISLs among those drawn")
    captures = _captures(run_dir, summary) if scenario.kind == "mission" else []
    stations = _stations(scenario)
    sensor = getattr(scenario, "sensor", None)
    out_frames = []
    for k in samples:
        pos = eph.positions_km[row[int(k)]]
        lat, lon = lat_lon_deg(pos)
        now = float(times[k])
        half = (times[samples[1]] - times[samples[0]]) / 2 if len(samples) > 1 else scenario.time.step_s / 2
        active = [c for c in captures if abs(c["t_s"] - now) <= half]
        cap = np.array(sorted({i for c in active for i in c["satellites"] if i < N}), dtype=int)
        if fixed is not None and scenario.participants.selection != "geometric":
            part = fixed[fixed < N]
        elif scenario.participants.selection == "geometric":
            part = cap  # those whose footprints cover the target now
        else:
            sel = "nearest" if scenario.participants.selection == "fixed_slots" else scenario.participants.selection
            src = eph.positions_km[row[0]][None] if scenario.participants.selection == "fixed_slots" else pos[None]
            part = select_participants(src, reg.lat_deg, reg.lon_deg, scenario.participants.count, sel)[0]
        drawn = np.union1d(shown, part)
        links = rule.links(pos)
        keep = np.isin(links.i, drawn) & np.isin(links.j, drawn)
        if keep.sum() > MAX_LINKS:
            target_km = region_point_itrs_km(reg.lat_deg, reg.lon_deg)
            mid = (pos[links.i] + pos[links.j]) / 2
            near = np.linalg.norm(mid - target_km, axis=1)
            near[~keep] = np.inf
            keep = np.zeros_like(keep)
            keep[np.argsort(near, kind="stable")[:MAX_LINKS]] = True
            if not any(n.startswith("ISLs:") for n in notes):
                notes.append(f"ISLs: the {MAX_LINKS} nearest the target of {len(links)} at each instant")
        traces: dict = {}
        names = np.asarray(eph.names)
        alt = np.linalg.norm(pos, axis=1) - EARTH_RADIUS_KM
        traces["satellites"] = {"lat": _rounded(lat[drawn]), "lon": _rounded(lon[drawn]),
                                "text": [f"{names[i]}, {alt[i]:.0f} km" for i in drawn]}
        la, lo = _segments(lat, lon, links.i[keep], links.j[keep])
        traces["ISLs"] = {"lat": la, "lon": lo}
        target = region_point_itrs_km(reg.lat_deg, reg.lon_deg)
        rng_km = np.linalg.norm(pos[part] - target, axis=1)
        traces["participants"] = {"lat": _rounded(lat[part]), "lon": _rounded(lon[part]),
                                  "text": [f"participant {names[i]} (#{i})<br>range to target {r:.0f} km"
                                           for i, r in zip(part, rng_km)]}
        if sensor is not None and len(part):
            fl, fo = [], []
            for i in part:
                cl, co = circle_deg(float(lat[i]), float(lon[i]), sensor_swath_km(sensor, alt[i]) / 2)
                fl += _rounded(cl) + [None]
                fo += _rounded(co) + [None]
            traces["footprints"] = {"lat": fl, "lon": fo}
        # one sync round's routed paths among the participants, coloured by hop delay
        hops = []
        if len(part) > 1:
            paths: list = []
            route_participants(pos, links, part, [payload], scenario.link, scenario.network, paths)
            if paths:  # rows (a, b, hop, u, v) of the first payload's paths: the satellites u→v of each hop
                hops = [(int(u), int(v)) for u, v in np.asarray(paths[0])[:, 3:5]]
        hops = sorted(set(tuple(sorted(h)) for h in hops))
        for c, (bound, colour) in enumerate(zip(DELAY_CLASSES_MS, DELAY_COLOURS)):
            lo_ms = DELAY_CLASSES_MS[c - 1] if c else 0.0
            sel = []
            for a, b in hops:
                d = float(np.linalg.norm(pos[a] - pos[b]))
                ms = 1e3 * float(hop_delay_s(d, payload, scenario.link, scenario.network.speed_of_light_m_s))
                if lo_ms <= ms < bound:
                    sel.append((a, b, d, ms, float(link_rate_bps(d, scenario.link))))
            name = _delay_name(c)
            i = np.array([s[0] for s in sel], dtype=int)
            j = np.array([s[1] for s in sel], dtype=int)
            la, lo = _segments(lat, lon, i, j)
            mid = (pos[i] + pos[j]) / 2 if len(sel) else np.zeros((0, 3))
            mla, mlo = lat_lon_deg(mid)
            traces[name] = {"lat": la, "lon": lo}
            traces[name + " (hover)"] = {
                "lat": _rounded(mla), "lon": _rounded(mlo),
                "text": [f"{names[a]} – {names[b]}<br>range {d:.0f} km<br>rate {r / 1e6:.1f} Mbit/s<br>"
                         f"hop delay {ms:.2f} ms ({payload:g} KiB)" for a, b, d, ms, r in sel]}
        # ground stations and the satellites in contact
        cl, co, ct = [], [], []
        for st in stations:  # the participants (who downlink) in contact: above the station's mask
            el = elevation_deg(st["itrs"], pos[part])
            seen = el >= st["min_elevation_deg"]
            for i, el_i in zip(part[seen], el[seen]):
                cl += [st["lat_deg"], round(float(lat[i]), 2), None]
                co += [st["lon_deg"], round(float(lon[i]), 2), None]
                ct += [f"{st['name']} – {names[i]}: elevation {el_i:.1f}°"] * 2 + [None]
        traces["contacts"] = {"lat": cl, "lon": co, "text": ct}
        # a mission's captures at this instant (within half a frame step)
        traces["capturing"] = {"lat": _rounded(lat[cap]), "lon": _rounded(lon[cap]),
                               "text": [f"{names[i]} images the target" for i in cap]}
        label = str(all_times[k].astype("datetime64[s]")).replace("T", " ") + " UTC"
        out_frames.append(Frame(now, label, traces))
    static = {"coastlines": coastlines(),
              "target": {"lat": [reg.lat_deg], "lon": [reg.lon_deg], "text": ["target region"]}}
    if stations:
        static["ground stations"] = {"lat": [s["lat_deg"] for s in stations], "lon": [s["lon_deg"] for s in stations],
                                     "text": [s["name"] for s in stations]}
    regions = _regions(run_dir)
    if regions is not None:
        static["regions"] = regions
        static.pop("target")
    if sensor is None and scenario.kind == "mission":
        notes.append("no sensor block: footprints are not drawn")
    title = f"{scenario.name} ({scenario.kind}): {N} satellites"
    return ViewData(title, out_frames, static, notes)


def coastlines() -> dict:
    """The coastlines of the package's 0.5° land mask (:func:`edgespacecom.regions.land_mask`) as one
    trace's coordinates: the mask's 0.5 contour (contourpy, matplotlib's contouring). plotly draws
    its own coastlines from topojson it fetches from a CDN, which an offline page cannot, so the page
    draws these instead (islands under about 0.5° are left out)."""
    import contourpy

    from .regions import land_mask

    land, step = land_mask()
    lat = -90.0 + step / 2 + step * np.arange(land.shape[0])
    lon = -180.0 + step / 2 + step * np.arange(land.shape[1])
    la, lo = [], []
    for line in contourpy.contour_generator(lon, lat, land.astype(float)).lines(0.5):
        lo += _rounded(line[:, 0]) + [None]
        la += _rounded(line[:, 1]) + [None]
    return {"lat": la, "lon": lo}


def sensor_swath_km(sensor, altitude_km: float) -> float:
    """The sensor's swath at nadir [km]: given, or from its field of view at this altitude."""
    if getattr(sensor, "swath_km", None):
        return float(sensor.swath_km)
    return 2.0 * altitude_km * float(np.tan(np.radians(sensor.fov_deg) / 2))


def _delay_name(c: int) -> str:
    lo = DELAY_CLASSES_MS[c - 1] if c else 0.0
    hi = DELAY_CLASSES_MS[c]
    return f"route hops {lo:g}–{hi:g} ms" if np.isfinite(hi) else f"route hops ≥ {lo:g} ms"


def _first_payload(scenario) -> float:
    sync = getattr(scenario, "sync", None)
    if sync is not None:
        return float(sync.payloads_kib[0])
    return 8.0 * (scenario.overlap.patch // 16) ** 2 / 1024.0 if hasattr(scenario, "overlap") else 2.0


def _stations(scenario) -> list:
    from .participants import region_point_itrs_km

    ground = getattr(scenario, "ground", None)
    stations = getattr(ground, "stations", None) or [] if ground is not None else []
    return [{"name": s.name, "lat_deg": s.lat_deg, "lon_deg": s.lon_deg, "min_elevation_deg": s.min_elevation_deg,
             "itrs": region_point_itrs_km(s.lat_deg, s.lon_deg)} for s in stations]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _captures(run_dir: Path | None, summary: dict) -> list:
    """A mission's captures: time and the satellites (catalogue indices) that image the target."""
    import pandas as pd

    if run_dir is None or not (run_dir / "capture_rounds.csv").is_file():
        return []
    table = pd.read_csv(run_dir / "capture_rounds.csv")
    out = []
    for t, sats in zip(table["t_s"], table["satellites"].astype(str)):
        ids = [int(v) for v in sats.split() if v.strip().lstrip("-").isdigit()]
        out.append({"t_s": float(t), "satellites": ids})
    return out


def _regions(run_dir: Path | None) -> dict | None:
    """A many-region run's regions, coloured by the first payload's mean slowdown."""
    import pandas as pd

    if run_dir is None or not (run_dir / "regions.csv").is_file():
        return None
    table = pd.read_csv(run_dir / "regions.csv")
    cols = [c for c in table.columns if c.startswith("slowdown_mean_")]
    if not cols:
        return None
    s = table[cols[0]].to_numpy(float)
    return {"lat": table["lat_deg"].round(3).tolist(), "lon": table["lon_deg"].round(3).tolist(),
            "slowdown": [round(float(v), 4) for v in s],
            "text": [f"{n}<br>mean slowdown {v:.3f} ({cols[0].removeprefix('slowdown_mean_')} KiB)"
                     for n, v in zip(table["region"], s)]}


# ---------------------------------------------------------------- HTML (plotly)

_STYLE = {
    "satellites": dict(mode="markers", marker=dict(size=3, color="#4a6fa5"), hoverinfo="text"),
    "ISLs": dict(mode="lines", line=dict(width=0.6, color="rgba(90,110,160,0.35)"), hoverinfo="skip"),
    "footprints": dict(mode="lines", line=dict(width=1.2, color="#ff7f0e"), hoverinfo="skip"),
    "participants": dict(mode="markers", marker=dict(size=8, color="#ff7f0e", line=dict(width=1, color="black")),
                         hoverinfo="text"),
    "contacts": dict(mode="lines", line=dict(width=1.5, color="#9467bd", dash="dot"), hoverinfo="text"),
    "capturing": dict(mode="markers", marker=dict(size=12, color="rgba(0,0,0,0)", line=dict(width=2, color="#e377c2"),
                                                  symbol="circle"), hoverinfo="text"),
}


def _style(name: str) -> dict:
    if name in _STYLE:
        return _STYLE[name]
    for c in range(len(DELAY_CLASSES_MS)):
        base = _delay_name(c)
        if name == base:
            return dict(mode="lines", line=dict(width=2.5, color=DELAY_COLOURS[c]), hoverinfo="skip")
        if name == base + " (hover)":
            return dict(mode="markers", marker=dict(size=5, color=DELAY_COLOURS[c]), hoverinfo="text", showlegend=False)
    raise KeyError(name)


def _scattergeo(**fields) -> dict:
    """One plotly.js ``scattergeo`` trace, with the fields given (None: left out)."""
    return {"type": "scattergeo", **{k: v for k, v in fields.items() if v is not None}}


def figure(data: ViewData):
    """The plotly figure as plain data (a dict plotly.js reads): the first frame's traces, every frame, a
    slider and a play button. Built without plotly's figure classes, whose validation of every frame's
    traces took seconds a page; the keys are plotly.js's own (``tests/core/test_view.py`` opens the page
    in a browser)."""
    names = list(data.frames[0].traces)
    for f in data.frames[1:]:
        names += [n for n in f.traces if n not in names]

    def traces(frame: Frame) -> list:
        out = []
        for n in names:
            t = frame.traces.get(n, {"lat": [], "lon": []})
            out.append(_scattergeo(name=n, lat=t["lat"], lon=t["lon"], text=t.get("text"), **_style(n)))
        return out

    static = []
    for n, t in data.static.items():
        if n == "coastlines":
            static.insert(0, _scattergeo(name=n, lat=t["lat"], lon=t["lon"], mode="lines", hoverinfo="skip",
                                           line=dict(width=0.8, color="#8c8c8c"), showlegend=False))
        elif n == "regions":
            static.append(_scattergeo(name="regions (mean slowdown)", lat=t["lat"], lon=t["lon"], text=t["text"],
                                        mode="markers", hoverinfo="text",
                                        marker=dict(size=9, color=t["slowdown"], colorscale="YlOrRd", showscale=True,
                                                    colorbar=dict(title="slowdown", x=1.02, len=0.6),
                                                    line=dict(width=0.5, color="black"))))
        elif n == "ground stations":
            static.append(_scattergeo(name=n, lat=t["lat"], lon=t["lon"], text=t["text"], mode="markers+text",
                                        textposition="top center", hoverinfo="text",
                                        marker=dict(size=10, symbol="triangle-up", color="#2ca02c")))
        else:
            static.append(_scattergeo(name=n, lat=t["lat"], lon=t["lon"], text=t["text"], mode="markers",
                                        hoverinfo="text", marker=dict(size=12, symbol="star", color="#d62728")))
    first = data.frames[0]
    notes = " — " + "; ".join(data.notes) if data.notes else ""

    def title(f: Frame) -> dict:
        return dict(text=f"{data.title}<br><sup>{f.label}{notes}</sup>", x=0.01)

    dynamic = list(range(len(static), len(static) + len(names)))
    fig = dict(data=static + traces(first), layout={},
               frames=[dict(name=f.label, data=traces(f), traces=dynamic, layout=dict(title=title(f)))
                       for f in data.frames])
    centre = data.static.get("target") or {"lat": [20.0], "lon": [0.0]}
    steps = [dict(method="animate", label=f.label[11:16] if len(data.frames) > 1 else f.label,
                  args=[[f.label], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                        transition=dict(duration=0))]) for f in data.frames]
    fig["layout"].update(
        title=title(first),
        # plotly's own base layers need topojson from its CDN: all off (offline), coastlines drawn as a trace
        geo=dict(projection=dict(type="orthographic", rotation=dict(lat=centre["lat"][0], lon=centre["lon"][0])),
                 showland=False, showocean=False, showcountries=False, showcoastlines=False, showlakes=False,
                 showrivers=False, showsubunits=False, showframe=True, framecolor="#777777", bgcolor="#f3f7fc",
                 domain=dict(y=[0.12, 1.0]),
                 lataxis=dict(showgrid=True, gridcolor="#dddddd"), lonaxis=dict(showgrid=True, gridcolor="#dddddd")),
        height=800, margin=dict(l=0, r=0, t=70, b=0), legend=dict(x=0.0, y=0.98, bgcolor="rgba(255,255,255,0.7)"),
        updatemenus=[dict(type="buttons", direction="left", x=0.05, y=0.02, xanchor="left", yanchor="bottom",
                          showactive=False, buttons=[
                              dict(label="▶ play", method="animate",
                                   args=[None, dict(frame=dict(duration=400, redraw=True), fromcurrent=True,
                                                    transition=dict(duration=0))]),
                              dict(label="❚❚ pause", method="animate",
                                   args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))])])],
        sliders=[dict(active=0, x=0.2, len=0.78, y=0.02, yanchor="bottom", currentvalue=dict(prefix="t = "),
                      steps=steps)] if len(data.frames) > 1 else [],
    )
    return fig


def write_view(data: ViewData, path: Path) -> Path:
    """Write the self-contained page (plotly.js embedded: offline) atomically."""
    import plotly.io as pio

    from .outputs import atomic_write_text

    html = pio.to_html(figure(data), validate=False, include_plotlyjs=True, full_html=True, auto_play=False,
                       config={"displaylogo": False, "responsive": True}, div_id="edgespacecom-view")
    atomic_write_text(Path(path), html)
    return Path(path)


# ---------------------------------------------------------------- GIF (matplotlib)


def write_gif(data: ViewData, path: Path, fps: float = 4.0) -> Path:
    """A short animation of the frames on an equirectangular map (matplotlib, Pillow), for slides."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    from .outputs import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=90)

    def draw(k: int):
        ax.clear()
        f = data.frames[k]
        ax.set_xlim(-180, 180)
        ax.set_ylim(-90, 90)
        ax.set_aspect("equal")
        ax.set_facecolor("#dbe9f6")
        ax.grid(True, lw=0.3)
        for name, t in f.traces.items():
            style = _style(name)
            lat = np.array([np.nan if v is None else v for v in t["lat"]], dtype=float)
            lon = np.array([np.nan if v is None else v for v in t["lon"]], dtype=float)
            if style["mode"] == "lines":
                lon = np.where(np.abs(np.diff(lon, prepend=lon[:1])) > 180, np.nan, lon)  # no line across the seam
                ax.plot(lon, lat, lw=style["line"]["width"] * 0.8, color=_mpl_colour(style["line"]["color"]))
            elif "(hover)" not in name:
                ax.plot(lon, lat, "o", ms=style["marker"]["size"] / 3,
                        color=_mpl_colour(style["marker"]["color"]) if name != "capturing" else "#e377c2",
                        mfc="none" if name == "capturing" else None)
        for name, t in data.static.items():
            lat = np.array([np.nan if v is None else v for v in t["lat"]], dtype=float)
            lon = np.array([np.nan if v is None else v for v in t["lon"]], dtype=float)
            if name == "coastlines":
                ax.plot(lon, lat, lw=0.5, color="#8c8c8c")
            elif name == "regions":
                ax.scatter(lon, lat, c=t["slowdown"], cmap="YlOrRd", s=18, edgecolors="black", linewidths=0.3)
            else:
                ax.plot(lon, lat, "*" if name == "target" else "^", ms=8,
                        color="#d62728" if name != "ground stations" else "#2ca02c")
        ax.set_title(f"{data.title}\n{f.label}", fontsize=9)
        return []

    anim = FuncAnimation(fig, draw, frames=len(data.frames), blit=False)
    tmp = Path(path).with_suffix(".tmp.gif")
    try:
        anim.save(tmp, writer=PillowWriter(fps=fps))
        atomic_write_bytes(Path(path), tmp.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)
        plt.close(fig)
    return Path(path)


def _mpl_colour(c: str):
    if c.startswith("rgba("):
        r, g, b, a = (float(v) for v in c[5:-1].split(","))
        return (r / 255, g / 255, b / 255, a)
    return c
