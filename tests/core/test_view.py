"""The view of a run: an offline page with the globe, checked in a real headless Chromium, and its GIF."""

import io
import json
import re

import numpy as np
import pytest
import yaml

from edgespacecom.cli import main

from tests.browser import Browser, find_browser


def _sync_scenario(tmp_path, **over):
    sc = {
        "name": "v", "kind": "sync", "seed": 0,
        "constellation": {"walker": {"inclination_deg": 53.0, "total": 60, "planes": 6, "phasing": 1,
                                     "altitude_km": 550.0}},
        "time": {"start": "2026-01-01T00:00:00Z", "duration_h": 1, "step_s": 120},
        "participants": {"count": 4},
        "isl": {"d_max_km": 6000},
        "sync": {"payloads_kib": [8.0]},
        "outputs": {"view_frames": 8},
    }
    sc.update(over)
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(sc))
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("view")
    out = tmp / "run"
    assert main(["run", str(_sync_scenario(tmp)), "--out", str(out)]) == 0
    return out


def _figure_json(html: str) -> dict:
    """The figure's data and frames as plotly.js receives them (the first Plotly.newPlot call)."""
    m = re.search(r"Plotly\.newPlot\(\s*\"edgespacecom-view\",\s*(\[.*?\]),\s*(\{.*?\}),\s*\{", html, re.S)
    assert m, "no Plotly.newPlot call in the page"
    return json.loads(m.group(1))


def test_every_geometric_run_writes_an_offline_view(run_dir):
    html = (run_dir / "view.html").read_text()
    assert "https://cdn" not in html.split("<script type=\"text/javascript\">", 2)[-1][:2000]
    # no network: plotly.js is in the page, and no base layer asks for topojson from its CDN
    assert "window.PlotlyConfig" in html and len(html) > 3_000_000
    data = _figure_json(html)
    names = {t.get("name") for t in data}
    assert {"satellites", "ISLs", "participants", "coastlines", "target"} <= names
    sats = next(t for t in data if t["name"] == "satellites")
    assert len(sats["lat"]) == 60  # every satellite of a small constellation
    assert json.loads((run_dir / "summary.json").read_text())["kind"] == "sync"


def test_the_view_positions_are_the_ephemeris(run_dir):
    """The first frame's satellites are the run's ephemeris at t = 0, recomputed here with Skyfield
    (geocentric latitude and longitude)."""
    from skyfield.api import load
    from skyfield.framelib import itrs

    from edgespacecom.config import load_raw, validate_scenario
    from edgespacecom.orbits import constellation_satellites

    sc = validate_scenario(load_raw(run_dir / "config.resolved.yaml"), source="x", base_dir=run_dir)
    sats = constellation_satellites(sc.constellation, sc.time.start)
    t = load.timescale().from_datetime(sc.time.start)
    xyz = np.array([s.at(t).frame_xyz(itrs).km for s in sats])
    lat = np.degrees(np.arctan2(xyz[:, 2], np.hypot(xyz[:, 0], xyz[:, 1])))
    data = _figure_json((run_dir / "view.html").read_text())
    shown = next(t for t in data if t["name"] == "satellites")
    assert np.allclose(shown["lat"], lat, atol=0.02)


def test_a_scenario_at_one_instant_and_a_gif(tmp_path):
    path = _sync_scenario(tmp_path)
    out = tmp_path / "at.html"
    gif = tmp_path / "v.gif"
    assert main(["view", str(path), "--at", "2026-01-01T00:30:00Z", "--out", str(out), "--gif", str(gif)]) == 0
    assert "2026-01-01 00:30:00 UTC" in out.read_text()
    from PIL import Image

    im = Image.open(io.BytesIO(gif.read_bytes()))
    assert im.format == "GIF" and im.n_frames == 1


@pytest.mark.parametrize("args, message", [
    (["--at", "2027-01-01T00:00:00Z"], "outside the scenario's window"),
    (["--at", "yesterday"], "--at"),
    (["--frames", "0"], "--frames"),
])
def test_view_errors_name_the_option(tmp_path, capsys, args, message):
    assert main(["view", str(_sync_scenario(tmp_path)), *args, "--out", str(tmp_path / "x.html")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_outputs_view_false_writes_none(tmp_path):
    out = tmp_path / "run"
    assert main(["run", str(_sync_scenario(tmp_path, outputs={"view": False})), "--out", str(out)]) == 0
    assert (out / "summary.json").exists() and not (out / "view.html").exists()


def test_the_view_in_a_real_browser(run_dir):
    """Headless Chromium opens the page from disk with no server: the globe is drawn (the screenshot is
    not blank, the trace names are in the DOM), and dragging the time slider changes the picture and
    the time shown."""
    exe = find_browser()
    if exe is None:
        pytest.skip("no Chromium: `make test` installs Debian's chromium when it can (apt, as root); "
                    "this machine has none and could not install it")
    from PIL import Image

    with Browser(exe) as b:
        b.open((run_dir / "view.html").as_uri(),
               "document.querySelectorAll('.scattergeo').length > 0 && document.querySelector('.slider-grip-rect')")
        time_label = "document.querySelector('.slider-group .slider-label').textContent"  # 't = HH:MM'
        before_label = b.evaluate(time_label)
        legend = b.evaluate("Array.from(document.querySelectorAll('.legendtext')).map(e => e.textContent)")
        before = np.asarray(Image.open(io.BytesIO(b.screenshot())).convert("RGB"), dtype=np.int16)
        assert {"satellites", "ISLs", "participants"} <= set(legend)
        assert before.std() > 10 and len(np.unique(before.reshape(-1, 3), axis=0)) > 50  # not blank
        grip = b.evaluate("(r => [r.x + r.width / 2, r.y + r.height / 2])"
                          "(document.querySelector('.slider-grip-rect').getBoundingClientRect())")
        rail = b.evaluate("(r => [r.x, r.width])(document.querySelector('.slider-rail-rect').getBoundingClientRect())")
        b.drag(grip[0], grip[1], rail[0] + 0.7 * rail[1], grip[1])
        b.evaluate("new Promise(r => setTimeout(r, 800))")
        after_label = b.evaluate(time_label)
        after = np.asarray(Image.open(io.BytesIO(b.screenshot())).convert("RGB"), dtype=np.int16)
    assert after_label != before_label
    geo = before[100:700, 250:950]  # the globe's part of the page
    assert np.abs(after[100:700, 250:950] - geo).sum(axis=2).astype(bool).mean() > 0.002


def test_a_many_region_run_colours_its_regions_by_slowdown(tmp_path):
    out = tmp_path / "regions"
    path = _sync_scenario(tmp_path, regions=[{"name": "a", "lat_deg": 30.0, "lon_deg": 114.0},
                                             {"name": "b", "lat_deg": 0.0, "lon_deg": 20.0},
                                             {"name": "c", "lat_deg": -20.0, "lon_deg": -60.0}])
    assert main(["run", str(path), "--out", str(out)]) == 0
    import pandas as pd

    table = pd.read_csv(out / "regions.csv")
    data = _figure_json((out / "view.html").read_text())
    regions = next(t for t in data if t["name"] == "regions (mean slowdown)")
    assert regions["marker"]["color"] == pytest.approx(table["slowdown_mean_8"].tolist(), abs=1e-4)
    assert regions["marker"]["showscale"] is True
    assert all(n in " ".join(regions["text"]) for n in ("a", "b", "c"))


def test_a_geometric_mission_view_shows_its_captures_and_stations(tmp_path):
    """A mission whose participants come from the sensor's footprints: the frames' capturing satellites
    and participants are those of capture_rounds.csv at that instant; stations and contacts drawn."""
    import pandas as pd

    from tests.mission.test_mission import _scenario

    path = _scenario(tmp_path, None, **{"participants": {"count": 3, "selection": "geometric"},
                                        "sensor": {"swath_km": 400, "max_off_nadir_deg": 45, "target_km": 5},
                                        "constellation": {"walker": {"inclination_deg": 53.0, "total": 200,
                                                                     "planes": 10, "phasing": 1, "altitude_km": 550.0}},
                                        "time.duration_h": 1, "time.step_s": 60,
                                        "ground": {"stations": [{"name": "Miyun", "lat_deg": 40.45,
                                                                 "lon_deg": 116.85}], "rate_bps": 1e6},
                                        "codec": {"architecture": "bmshj2018-hyperprior", "lambdas": [0.0067]},
                                        "outputs": {"view_frames": 61}})
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out)]) == 0
    html = (out / "view.html").read_text()
    data = _figure_json(html)
    assert "ground stations" in {t.get("name") for t in data}
    caps = pd.read_csv(out / "capture_rounds.csv")
    assert len(caps)
    frames = json.loads(re.search(r"Plotly\.addFrames\('edgespacecom-view',\s*(\[.*\])\);\s*\}\)", html, re.S).group(1))
    names = [t["name"] for t in data]
    capturing = names.index("capturing") - names.index("satellites")  # within a frame's traces
    seen = sum(len(f["data"][capturing]["lat"]) > 0 for f in frames)
    assert seen == caps["t_s"].round(-1).nunique()  # one frame a minute: each capture's frame shows it


def test_a_day_of_ten_thousand_satellites_at_one_instant(tmp_path):
    """The 10,000-satellite day at 1 s (86,400 samples): only the instant shown is propagated, and the page
    says which satellites it draws."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "10k.html"
    assert main(["view", str(root / "scenarios" / "scale_10k_day.yaml"), "--at", "2026-01-01T12:00:00Z",
                 "--out", str(out)]) == 0
    html = out.read_text()
    assert "2000 of 10000 satellites drawn" in html and len(html.encode()) < 20e6
    sats = next(t for t in _figure_json(html) if t["name"] == "satellites")
    assert len(sats["lat"]) >= 2000
