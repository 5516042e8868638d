"""kind: multiview — DLRC on real simultaneous multi-view captures, put on the shared grid from their RPCs.

Each satellite of a set holds one view in raw sensor geometry with its rational polynomial camera
model (RPC: in the TIFF tags, or an OSSIM ``.geom`` keyword list beside the file). On board:

1. **Orthorectification onto the shared grid.** The grid is geographic, ``grid.gsd_m`` metres a
   pixel at the set's reference latitude, anchored on a global lattice so that every satellite of
   the target computes the same one; a satellite's tile is the largest block of whole latent cells
   (origin on a multiple of the latent stride, sides multiples of 64 px) inside its footprint. Each
   tile pixel's ground point (lon, lat, h) is projected through the view's RPC (GDAL's RPC
   transformer, through rasterio) and the view is sampled there with cubic B-splines. h is a
   constant (the RPC's height offset, or ``grid.height_m``), or the DEM's height where the set
   names one (SRTM, bilinear).
2. **Relative correction of the RPC bias.** RPCs of one pass are biased by several pixels with
   respect to each other. Each satellite corrects against the higher-priority peer it shares the
   most ground with (the representative for a pair; in a triplet the third view may share more
   with the second): that peer sends a thumbnail of its corrected tile
   (``correction.thumbnail_factor``× smaller, 8 bits, deflated: its bytes are counted in the
   exchange); the satellite phase-correlates its own thumbnail with it (scikit-image, sub-pixel)
   and re-samples its tile with that shift. What a global shift leaves (parallax of relief and
   buildings) predict mode's ``calibration: registered`` takes up block by block.
3. **Coding** with a 1-band model of this project (trained on the panchromatic training rows),
   every satellite its own tile, DLRC in each mode of ``dlrc.mode`` against the codec alone, all
   decoded from bytes (:func:`dlrc_agents.studies.rd.evaluate_images`). In predict mode a view is
   predicted first from the peer it corrected against where that peer holds the ground
   (``correction.predict_from``), the other earlier views filling the rest in priority order.

The residual misregistration is measured after the correction at full resolution, against the peer
corrected against (phase correlation of the tiles' common ground, sub-pixel). Written by hand: no library projects a view
onto a grid whose tile origins must sit on a codec's latent stride; each step is one function.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from edgespacecom.outputs import write_figure, write_table

#: Metres a degree of latitude (mean; the grid's scale, not a geodesic computation).
M_PER_DEG = 111_320.0
LATTICE_PX = 16  # tile origins on multiples of the latent stride
SIDE_PX = 64  # tile sides on multiples of the hyper-latent stride


class MultiviewError(ValueError):
    """A view that cannot be put on the grid: no RPC, no overlap, a DEM that does not cover it."""


# ------------------------------------------------------------------------------- RPCs


def parse_geom(text: str, source: str = ".geom"):
    """A rasterio RPC from an OSSIM keyword list (``ossimRpcModel`` / ``ossimPleiadesModel``,
    polynomial format B: the NITF RPC00B term order GDAL uses)."""
    from rasterio.rpc import RPC

    kv = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            kv[key.strip()] = value.strip()
    if kv.get("polynomial_format", "B") != "B":
        raise MultiviewError(f"{source}: polynomial_format {kv['polynomial_format']!r}; only B (RPC00B) is read")
    try:
        coeff = {name: [float(kv[f"{name}_{i:02d}"]) for i in range(20)]
                 for name in ("line_num_coeff", "line_den_coeff", "samp_num_coeff", "samp_den_coeff")}
        scalars = {k: float(kv[k]) for k in ("height_off", "height_scale", "lat_off", "lat_scale", "line_off",
                                             "line_scale", "long_off", "long_scale", "samp_off", "samp_scale")}
    except KeyError as exc:
        raise MultiviewError(f"{source}: RPC keyword {exc.args[0]} missing") from None
    return RPC(**scalars, **coeff)


def read_view(path: Path) -> tuple[np.ndarray, object, tuple[float, float]]:
    """(samples (H, W) float64, RPC, (row, column) of the file's pixel (0, 0) in the RPC's image).

    The RPC comes from the TIFF's RPC tags, else from ``NAME.geom`` beside it; a crop of a scene
    keeps the scene's RPC and says where it lies by its (pixel) transform."""
    import rasterio

    with rasterio.open(path) as ds:
        samples = ds.read(1).astype(np.float64)
        rpc = ds.rpcs
        t = ds.transform
        offset = (float(t.f), float(t.c)) if (t.a, t.b, t.d, t.e) == (1.0, 0.0, 0.0, 1.0) else (0.0, 0.0)
    if rpc is None:
        geom = Path(path).with_suffix(".geom")
        if not geom.is_file():
            raise MultiviewError(f"{path}: no RPC in the TIFF tags and no {geom.name} beside it")
        rpc = parse_geom(geom.read_text(), str(geom))
    return samples, rpc, offset


# ------------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class GeoGrid:
    """The shared geographic grid of a target: pixel (i, j) has its centre at latitude
    ``-(i + 0.5)·step_lat`` and longitude ``(j + 0.5)·step_lon`` (indices on a global lattice)."""

    step_lat: float  # degrees a row
    step_lon: float  # degrees a column

    @classmethod
    def at(cls, lat_ref: float, gsd_m: float) -> "GeoGrid":
        step = gsd_m / M_PER_DEG
        return cls(step, step / math.cos(math.radians(lat_ref)))

    def lonlat(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(cols) + 0.5) * self.step_lon, -(np.asarray(rows) + 0.5) * self.step_lat

    def index(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """Fractional (row, column) of ground points."""
        return -np.asarray(lat) / self.step_lat - 0.5, np.asarray(lon) / self.step_lon - 0.5


class Heights:
    """Heights [m] of ground points: a constant, or a DEM (bilinear in its pixels)."""

    def __init__(self, constant: float | None = None, dem: Path | None = None):
        self.constant, self.dem = constant, None
        if dem is not None:
            import rasterio

            with rasterio.open(dem) as ds:
                self.dem, self.transform = ds.read(1).astype(np.float64), ~ds.transform
                nodata = ds.nodata
            if nodata is not None:
                self.dem[self.dem == nodata] = np.nan

    def __call__(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        if self.dem is None:
            return np.full(np.shape(lon), float(self.constant))
        col, row = self.transform * (np.asarray(lon), np.asarray(lat))
        h = ndimage.map_coordinates(self.dem, [np.ravel(row) - 0.5, np.ravel(col) - 0.5], order=1, mode="nearest")
        if np.isnan(h).any() or (np.ravel(row).min() < 0 or np.ravel(row).max() > self.dem.shape[0]
                                 or np.ravel(col).min() < 0 or np.ravel(col).max() > self.dem.shape[1]):
            raise MultiviewError("the DEM does not cover the view's footprint")
        return h.reshape(np.shape(lon))


def project(rpc, lon: np.ndarray, lat: np.ndarray, h: np.ndarray, offset: tuple) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) in the view's file, centres at integers, of ground points: GDAL's RPC transformer."""
    from rasterio.transform import RPCTransformer

    with RPCTransformer(rpc) as tr:
        rows, cols = tr.rowcol(np.ravel(lon), np.ravel(lat), zs=np.ravel(h), op=lambda v: v)
    rows = np.asarray(rows, float) - 0.5 - offset[0]
    cols = np.asarray(cols, float) - 0.5 - offset[1]
    return rows.reshape(np.shape(lon)), cols.reshape(np.shape(lon))


def footprint(rpc, shape: tuple, offset: tuple, height: float) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) of the view's four corner pixels at ``height``."""
    from rasterio.transform import RPCTransformer

    h, w = shape
    rows = np.array([0, 0, h - 1, h - 1], float) + offset[0]
    cols = np.array([0, w - 1, w - 1, 0], float) + offset[1]
    with RPCTransformer(rpc) as tr:
        lon, lat = tr.xy(rows, cols, zs=[height] * 4, offset="center")
    return np.asarray(lon), np.asarray(lat)


@dataclass(frozen=True)
class Tile:
    """A block of the grid: origin (row, column) on the lattice, and its size [px]."""

    origin: tuple[int, int]
    size: tuple[int, int]


def inner_tile(grid: GeoGrid, lon: np.ndarray, lat: np.ndarray, max_side: int, margin: int = 8,
               shift: tuple[float, float] = (0.0, 0.0)) -> Tile:
    """The largest lattice-aligned block inside a footprint quadrilateral's inner box (less ``margin`` px),
    sides multiples of 64, each at most ``max_side``, centred in the box. ``shift`` [grid px]: a relative
    correction (see :func:`orthorectify`); the corrected footprint lies ``shift`` before the RPC's."""
    rows, cols = grid.index(lon, lat)
    rows, cols = np.asarray(rows) - shift[0], np.asarray(cols) - shift[1]
    top = np.sort(rows)[1] + margin
    bottom = np.sort(rows)[2] - margin
    left = np.sort(cols)[1] + margin
    right = np.sort(cols)[2] - margin
    sides = []
    for lo, hi in ((top, bottom), (left, right)):
        side = min(max_side, int((hi - lo - LATTICE_PX) // SIDE_PX) * SIDE_PX)
        if side < SIDE_PX:
            raise MultiviewError("the view's footprint holds no 64 px tile of the grid")
        sides.append(side)
    origin = tuple(int(math.ceil(((lo + hi - s) / 2) / LATTICE_PX) * LATTICE_PX)
                   for (lo, hi), s in zip(((top, bottom), (left, right)), sides))
    return Tile(origin, tuple(sides))


def orthorectify(samples: np.ndarray, rpc, offset: tuple, grid: GeoGrid, tile: Tile, heights: Heights,
                 shift: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, float]:
    """The view resampled onto ``tile`` (cubic B-splines), with its ground sampled ``shift`` grid px off
    (the relative correction); and the fraction of tile pixels the view did not see (filled nearest)."""
    r = np.arange(tile.size[0]) + tile.origin[0] + shift[0]
    c = np.arange(tile.size[1]) + tile.origin[1] + shift[1]
    rr, cc = np.meshgrid(r, c, indexing="ij")
    lon, lat = grid.lonlat(rr, cc)
    rows, cols = project(rpc, lon, lat, heights(lon, lat), offset)
    outside = (rows < -0.5) | (rows > samples.shape[0] - 0.5) | (cols < -0.5) | (cols > samples.shape[1] - 0.5)
    coeffs = ndimage.spline_filter(samples, order=3)
    out = ndimage.map_coordinates(coeffs, [rows, cols], order=3, mode="nearest", prefilter=False)
    return out, float(outside.mean())


# ------------------------------------------------------------------------------- correction


def thumbnail(image: np.ndarray, factor: int, lo: float, hi: float) -> np.ndarray:
    """Block mean ``factor``× smaller, quantised to 8 bits between ``lo`` and ``hi`` (what is sent)."""
    h, w = (s // factor * factor for s in image.shape)
    small = image[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    return np.clip(np.round(255.0 * (small - lo) / max(hi - lo, 1e-9)), 0, 255).astype(np.uint8)


def thumbnail_bytes(thumb: np.ndarray) -> bytes:
    """The thumbnail as sent over the ISLs: its two u16 sides and its deflated samples."""
    return np.asarray(thumb.shape, "<u2").tobytes() + zlib.compress(thumb.tobytes(), 9)


def common_window(a: Tile, b: Tile) -> tuple[slice, slice, slice, slice] | None:
    """Slices of the common ground of two tiles, in each tile: (rows a, cols a, rows b, cols b)."""
    top, left = max(a.origin[0], b.origin[0]), max(a.origin[1], b.origin[1])
    bottom = min(a.origin[0] + a.size[0], b.origin[0] + b.size[0])
    right = min(a.origin[1] + a.size[1], b.origin[1] + b.size[1])
    if bottom - top < 32 or right - left < 32:
        return None
    return (slice(top - a.origin[0], bottom - a.origin[0]), slice(left - a.origin[1], right - a.origin[1]),
            slice(top - b.origin[0], bottom - b.origin[0]), slice(left - b.origin[1], right - b.origin[1]))


def correction_peer(tiles: dict, sat: int) -> tuple[int, tuple] | None:
    """The higher-priority (lower-numbered) satellite ``sat`` corrects against, and their common window
    (:func:`common_window`): of those sharing ground with it, the one sharing the most (ties: priority).
    The representative for a pair; in a triplet the third view may share more with the second."""
    best = None
    for u in range(sat):
        w = common_window(tiles[u], tiles[sat])
        if w is not None:
            area = (w[0].stop - w[0].start) * (w[1].stop - w[1].start)
            if best is None or area > best[0]:
                best = (area, u, w)
    return None if best is None else (best[1], best[2])


def _tapered(x: np.ndarray) -> np.ndarray:
    """``x`` less its mean, under a 2-D Hann window: no mean or window edge for a correlation to lock on."""
    return (x.astype(np.float64) - x.mean()) * np.outer(np.hanning(x.shape[0]), np.hanning(x.shape[1]))


def shift_between(reference: np.ndarray, moving: np.ndarray, upsample: int = 20) -> tuple[float, float]:
    """(rows, columns) by which ``moving`` must be sampled further to match ``reference`` (sub-pixel phase
    correlation, scikit-image).

    Each window's mean is removed and a Hann taper applied, and the cross-power spectrum is normalised
    (phase correlation proper). Plain cross-correlation of untapered windows is ruled by their mean and
    their edges, whose peak sits at zero shift: on the Marseille triplet it returned 0.4 px for a third
    view whose RPC is 158 px off the second's (measured by template matching), so the correction did
    nothing and the residual measured with it looked excellent."""
    from skimage.registration import phase_cross_correlation

    # the whole pixels: phase correlation, robust to a large shift; then the fraction: cross-correlation of
    # the tapered common part (the phase-normalised peak is biased by a tenth of a pixel on a smooth scene)
    coarse, _, _ = phase_cross_correlation(_tapered(reference), _tapered(moving), normalization="phase")
    sy, sx = (int(v) for v in coarse)
    H, W = reference.shape
    a = reference[max(sy, 0):H + min(sy, 0), max(sx, 0):W + min(sx, 0)]
    b = moving[max(-sy, 0):H + min(-sy, 0), max(-sx, 0):W + min(-sx, 0)]
    if min(a.shape) < 16:
        return -float(sy), -float(sx)
    fine, _, _ = phase_cross_correlation(_tapered(a), _tapered(b), upsample_factor=upsample, normalization=None)
    return -float(sy + fine[0]), -float(sx + fine[1])


# ------------------------------------------------------------------------------- the run


@dataclass
class ViewSet:
    """One set of simultaneous views: its name, its files (priority order), and an optional DEM."""

    name: str
    files: list
    dem: Path | None = None


@dataclass
class GriddedSet:
    name: str
    tiles: dict  # sat -> Tile
    images: dict  # sat -> raw samples on the grid (H, W)
    fill: dict
    shifts: dict  # sat -> (rows, cols) correction applied [grid px]
    residual_px: dict  # sat -> residual misregistration against its correction peer after correction [px]
    uncorrected_px: dict  # sat -> the same without the correction: |correction + residual| [px]
    correction_bytes: dict  # sat -> thumbnail bytes received
    grid_time_s: dict  # sat -> on-board seconds: orthorectification (both passes) and correlation
    heights: object = None
    grid: GeoGrid | None = None
    peers: dict = field(default_factory=dict)  # sat -> the higher-priority view it corrected against


def grid_set(views: ViewSet, cfg) -> GriddedSet:
    """Put every view of a set on the shared grid, with the relative correction (``cfg``: the scenario)."""
    data = [read_view(Path(f)) for f in views.files]
    lat_ref = float(np.mean([rpc.lat_off for _, rpc, _ in data]))
    grid = GeoGrid.at(lat_ref, cfg.grid.gsd_m)
    base_h = cfg.grid.height_m if cfg.grid.height_m is not None else float(np.mean([rpc.height_off for _, rpc, _ in data]))
    heights = Heights(dem=views.dem) if views.dem is not None else Heights(constant=base_h)
    out = GriddedSet(views.name, {}, {}, {}, {}, {}, {}, {}, {}, heights, grid)
    corners = {}
    for sat, (samples, rpc, offset) in enumerate(data):
        corners[sat] = footprint(rpc, samples.shape, offset, base_h if views.dem is None else
                                 float(np.nanmean(heights(*footprint(rpc, samples.shape, offset, base_h)))))
        out.tiles[sat] = inner_tile(grid, *corners[sat], cfg.grid.max_tile_px)
    # the first view is the representative; the others correct against its thumbnail
    ref = 0
    lo, hi = np.percentile(data[ref][0], [0.1, 99.9])
    for sat, (samples, rpc, offset) in enumerate(data):
        t0 = time.perf_counter()
        out.images[sat], out.fill[sat] = orthorectify(samples, rpc, offset, grid, out.tiles[sat], heights)
        out.grid_time_s[sat] = time.perf_counter() - t0
    f = cfg.correction.thumbnail_factor
    thumbs: dict = {}  # sat -> the thumbnail it sends, of its tile once corrected
    for sat, (samples, rpc, offset) in enumerate(data):
        found = correction_peer(out.tiles, sat)
        out.shifts[sat], out.correction_bytes[sat] = (0.0, 0.0), 0
        if sat == ref or found is None:
            out.residual_px[sat] = out.uncorrected_px[sat] = float("nan") if sat != ref else 0.0
            thumbs[sat] = thumbnail(out.images[sat], f, lo, hi)
            continue
        peer, (ra, ca, rb, cb) = found
        shift = (0.0, 0.0)
        if cfg.correction.enabled:
            t0 = time.perf_counter()
            # what the satellite can do: its own thumbnail against the peer's. An RPC bias moves the whole
            # footprint, by up to a third of a tile on the Marseille triplet, so the tiles' nominal common ground
            # may barely hold the same scene: first the whole thumbnails, each where its tile sits on the grid;
            # the tile then goes where the corrected footprint is, and the shift is refined over the common
            # ground it now shares (a second look at the thumbnails already received)
            own = thumbnail(out.images[sat], f, lo, hi)
            candidates = [(0.0, 0.0), _thumbnail_shift(own, thumbs[peer], (ra, ca, rb, cb), f),
                          _canvas_shift(own, out.tiles[sat].origin, thumbs[peer], out.tiles[peer].origin, f)]
            coarse = max(candidates, key=lambda v: _match_score(own, out.tiles[sat].origin, thumbs[peer],
                                                                out.tiles[peer].origin, v, f))
            out.tiles[sat] = inner_tile(grid, *corners[sat], cfg.grid.max_tile_px, shift=coarse)
            moved, _ = orthorectify(samples, rpc, offset, grid, out.tiles[sat], heights, coarse)
            received, shift = {peer}, coarse
            refound = correction_peer(out.tiles, sat)
            if refound is not None:
                peer, (ra, ca, rb, cb) = refound  # the tile is final: this is also the residual's window
                fine = _thumbnail_shift(thumbnail(moved, f, lo, hi), thumbs[peer], (ra, ca, rb, cb), f)
                shift = (coarse[0] + fine[0], coarse[1] + fine[1])
                received.add(peer)
            out.shifts[sat] = shift
            out.images[sat], out.fill[sat] = orthorectify(samples, rpc, offset, grid, out.tiles[sat], heights, shift)
            out.grid_time_s[sat] += time.perf_counter() - t0
            out.correction_bytes[sat] = sum(len(thumbnail_bytes(thumbs[u])) for u in received)
        thumbs[sat] = thumbnail(out.images[sat], f, lo, hi)
        out.peers[sat] = peer
        # the residual, at full resolution over the final common ground; without the correction the view
        # would have been off by the correction plus that residual
        residual = shift_between(out.images[peer][ra, ca], out.images[sat][rb, cb])
        out.residual_px[sat] = float(np.hypot(*residual))
        out.uncorrected_px[sat] = float(np.hypot(shift[0] + residual[0], shift[1] + residual[1]))
    return out


def _canvas_shift(own: np.ndarray, own_origin: tuple, peer: np.ndarray, peer_origin: tuple, f: int) -> tuple:
    """The shift [grid px, whole thumbnail pixels] of a satellite's tile onto a peer's, from the whole
    thumbnails, each placed on a common canvas where its tile's origin puts it (padded to twice the union,
    so the correlation does not wrap): a shift of up to the tiles' overlap is found, however little of
    their nominal common ground shows the same scene."""
    from skimage.registration import phase_cross_correlation

    top, left = min(own_origin[0], peer_origin[0]), min(own_origin[1], peer_origin[1])
    at = {k: (int(round((o[0] - top) / f)), int(round((o[1] - left) / f)))
          for k, o in (("own", own_origin), ("peer", peer_origin))}
    H = 2 * max(at["own"][0] + own.shape[0], at["peer"][0] + peer.shape[0])
    W = 2 * max(at["own"][1] + own.shape[1], at["peer"][1] + peer.shape[1])
    canvases = {}
    for k, thumb in (("own", own), ("peer", peer)):
        x = _tapered(thumb)
        c = np.zeros((H, W))
        c[at[k][0]:at[k][0] + x.shape[0], at[k][1]:at[k][1] + x.shape[1]] = x
        canvases[k] = c
    shift, _, _ = phase_cross_correlation(canvases["peer"], canvases["own"], normalization="phase")
    return -f * float(shift[0]), -f * float(shift[1])


def _match_score(own: np.ndarray, own_origin: tuple, peer: np.ndarray, peer_origin: tuple, shift: tuple, f: int,
                 least: int = 1024) -> float:
    """Correlation coefficient of two thumbnails over the ground they share once ``own`` is corrected by
    ``shift`` [grid px]; −∞ where they share fewer than ``least`` thumbnail pixels (or a fifth of ``own``,
    if fewer): a spurious peak of the correlation often sits at a large shift with a sliver of overlap."""
    d = [int(round((own_origin[k] - peer_origin[k] - shift[k]) / f)) for k in (0, 1)]  # own j ↔ peer j + d
    lo = [max(0, -d[k]) for k in (0, 1)]
    hi = [min(own.shape[k], peer.shape[k] - d[k]) for k in (0, 1)]
    if hi[0] - lo[0] < 4 or hi[1] - lo[1] < 4 or (hi[0] - lo[0]) * (hi[1] - lo[1]) < min(least, own.size / 5):
        return -np.inf
    a = own[lo[0]:hi[0], lo[1]:hi[1]].astype(np.float64).ravel()
    b = peer[lo[0] + d[0]:hi[0] + d[0], lo[1] + d[1]:hi[1] + d[1]].astype(np.float64).ravel()
    if a.std() == 0 or b.std() == 0:
        return -np.inf
    return float(np.corrcoef(a, b)[0, 1])


def _thumbnail_shift(own: np.ndarray, peer: np.ndarray, window: tuple, f: int) -> tuple[float, float]:
    """The shift [grid px] of a satellite's tile onto a peer's, from its own thumbnail ``own`` and the
    peer's over their common ``window`` (full-resolution slices, :func:`common_window`)."""
    ra, ca, rb, cb = window
    ta = (slice(ra.start // f, ra.stop // f), slice(ca.start // f, ca.stop // f))
    tb = (slice(rb.start // f, rb.stop // f), slice(cb.start // f, cb.stop // f))
    n = (min(ta[0].stop - ta[0].start, tb[0].stop - tb[0].start), min(ta[1].stop - ta[1].start, tb[1].stop - tb[1].start))
    dy, dx = shift_between(peer[ta][:n[0], :n[1]], own[tb][:n[0], :n[1]])
    return f * dy, f * dx


def view_sets(scenario) -> list[ViewSet]:
    """The scenario's sets; ``data.scenes`` (a user's own views), when given, is one set in their order."""
    from dlrc_agents.common.data import scene_names

    if scenario.data.scenes:
        files = list(scene_names(scenario.data.scenes).values())
        return [ViewSet("custom", files)]
    sets = []
    for s in scenario.data.sets:
        files = list(scene_names(s.scenes).values())
        dem = next(iter(scene_names([s.dem]).values())) if s.dem else None
        sets.append(ViewSet(s.name, files, dem))
    return sets


def run_multiview(scenario, run) -> dict:
    """Run a validated multiview scenario in ``run``; return its summary."""
    from edgespacecom.progress import progress, stage

    from dlrc_agents.codecs.registry import load_codec
    from dlrc_agents.dlrc.onboard import DLRCConfig

    c = scenario.codec
    # one 1-band model per λ of the scenario: the saving depends on the rate (at a lower rate the
    # codec's quantisation is coarse against the views' differences, so more of each view is predictable)
    codecs = {lmbda: load_codec(c.architecture, lmbda=lmbda, checkpoint=c.checkpoint, bands=1) for lmbda in c.lambdas}
    for lmbda, codec in codecs.items():
        if codec.bands is None or codec.bands.channels != 1:
            raise MultiviewError(f"codec: the multiview kind codes panchromatic views with a 1-band model "
                                 f"(λ={lmbda:g} is not one)")
    sets = view_sets(scenario)
    run.begin()
    # copy once; predict once per calibration (none, gain_bias, registered), on the same views
    base_cfg = DLRCConfig(**scenario.dlrc.core())
    cfgs = [replace(base_cfg, mode=m, calibration=k) for m in scenario.dlrc.modes()
            for k in (scenario.dlrc.calibrations() if m == "predict" else ["none"])]
    # where prediction was chosen, position by position (the limits figure): the last predict setting's,
    # the scenario's most capable calibration, at the first λ, kept from its own run
    last_predict = next((c_ for c_ in reversed(cfgs) if c_.mode == "predict"), None)
    first = c.lambdas[0]
    rows, gridded, predicted = [], {}, {}
    stage(f"multiview: {len(sets)} set(s), modes {scenario.dlrc.modes()}, 1-band {c.architecture} "
          f"λ={', '.join(f'{v:g}' for v in c.lambdas)}")
    for vs in progress(sets, desc="multiview sets", unit="set"):
        g = grid_set(vs, scenario)
        gridded[vs.name] = g
        columns = _view_columns(vs, g)
        preferred = g.peers if scenario.correction.predict_from == "correction_peer" else None
        for lmbda, codec in codecs.items():
            keep = predicted.setdefault(vs.name, {}) if lmbda == first and last_predict is not None else None
            rows += _code_views(codec, lmbda, g, cfgs, columns, last_predict, keep, preferred)
    table = pd.DataFrame(rows)
    write_table(run.out_dir / "multiview_patches.csv", table)
    results = summarise_sets(table)
    summary = {"kind": "multiview", "name": scenario.name, "model": c.architecture,
               "weights": {f"{lmbda:g}": codec.source for lmbda, codec in codecs.items()}, "results": results}
    write_figure(run.out_dir / "multiview_views.png", views_figure(gridded, table[table["lambda"] == first]))
    write_figure(run.out_dir / "multiview_saving.png", saving_figure(table))
    if predicted:
        write_figure(run.out_dir / "multiview_limits.png", limits_figure(gridded, predicted))
    return run.finish(summary)


def _view_columns(vs, g) -> dict:
    """Per satellite, the results columns of its view on the grid (the same for every λ and setting)."""
    return {s: {"set": vs.name, "view": Path(vs.files[s]).name, "overlap_fraction": _overlap_fraction(g.tiles, s),
                "residual_misregistration_px": g.residual_px[s], "uncorrected_misregistration_px": g.uncorrected_px[s],
                "correction_shift_px": float(np.hypot(*g.shifts[s])), "geo_fill_fraction": g.fill[s],
                "geo_grid_time_s": g.grid_time_s[s], "tile": f"{g.tiles[s].size[0]}x{g.tiles[s].size[1]}@{g.tiles[s].origin}",
                "correction_bytes": g.correction_bytes[s], "correction_peer": g.peers.get(s, -1)} for s in g.tiles}


def _code_views(codec, lmbda: float, g, cfgs, columns: dict, keep_setting, keep: dict | None,
                preferred: dict | None = None) -> list[dict]:
    """The rows of one λ's model on a gridded set: the codec alone and DLRC in every setting of ``cfgs``,
    the correction's bytes added to each view's exchange; ``keep`` collects where ``keep_setting`` predicted.
    ``preferred``: {sat: peer} each view's references come from first (``correction.predict_from:
    correction_peer``: the view it corrected against), or None (DLRC's priority rule)."""
    from dlrc_agents.studies.rd import evaluate_images, setting_label

    images = {s: codec.bands.to_model(im[:, :, None]) for s, im in g.images.items()}
    clipped = {s: codec.bands.clipped_fraction(im[:, :, None]) for s, im in g.images.items()}
    origins = {s: t.origin for s, t in g.tiles.items()}
    rows, baselines = [], {}
    for cfg in cfgs:
        for r in evaluate_images(codec, images, cfg, baselines, origins, keep if cfg is keep_setting else None,
                                 preferred=preferred):
            s = r["satellite"]
            r.update(columns[s], clipped_fraction=clipped[s], exchange_bytes=r["exchange_bytes"] + columns[s]["correction_bytes"],
                     setting=setting_label(cfg.mode, cfg.calibration), **{"lambda": lmbda})
            rows.append(r)
    return rows


def _overlap_fraction(tiles: dict, sat) -> float:
    """Fraction of ``sat``'s tile that a higher-priority (lower-numbered) satellite's tile also covers."""
    t = tiles[sat]
    mask = np.zeros(t.size, bool)
    for u in range(sat):
        w = common_window(t, tiles[u])
        if w is not None:
            mask[w[0], w[1]] = True
    return float(mask.mean())


def summarise_sets(table: pd.DataFrame) -> list[dict]:
    """Per set, λ and setting (mode, and predict's calibration): bpp of the codec alone and with DLRC
    (every byte), saving, ΔPSNR, exactness, copied / predicted and inexact positions, ISL bytes and the
    residual misregistration."""
    out = []
    for (name, lmbda, setting), g in table.groupby(["set", "lambda", "setting"], sort=False):
        base, dl = g["baseline_bpp_sent"].mean(), g["dlrc_bpp_sent"].mean()
        others = g[g["priority"] > 0]
        out.append({
            "set": name, "lambda": float(lmbda), "mode": g["mode"].iloc[0], "calibration": g["calibration"].iloc[0], "setting": setting,
            "views": int(len(g)),
            "overlap_fraction": float(others["overlap_fraction"].mean()) if len(others) else 0.0,
            "baseline_bpp": float(base), "dlrc_bpp": float(dl), "bpp_reduction": float(1 - dl / base),
            "delta_psnr": float(g["dlrc_psnr"].mean() - g["baseline_psnr"].mean()),
            "decode_exact": bool(g["decode_exact"].all()),
            "identical_to_codec_alone": bool(g["identical_to_codec_alone"].all()),
            "copied_fraction": float(others["copied_fraction"].mean()) if len(others) else 0.0,
            "copied_inexact_fraction": float(others["copied_inexact_fraction"].mean()) if len(others) else 0.0,
            "exchange_bytes_per_satellite": float(g["exchange_bytes"].mean()),
            "residual_misregistration_px": float(others["residual_misregistration_px"].mean()) if len(others) else 0.0,
            "uncorrected_misregistration_px": float(others["uncorrected_misregistration_px"].mean()) if len(others) else 0.0,
            "clipped_fraction": float(g["clipped_fraction"].mean()),
            "geo_grid_time_s": float(g["geo_grid_time_s"].mean()),
            "baseline_psnr": float(g["baseline_psnr"].mean()),
        })
    return out


def views_figure(gridded: dict, table: pd.DataFrame):
    """Each set's views on the shared grid side by side, the positions the lower-priority views coded
    from a peer marked (copy: copied; predict: predicted), per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(table["setting"]))
    n = max(len(g.images) for g in gridded.values())
    fig, axes = plt.subplots(len(gridded), n, figsize=(3.3 * n, 3.4 * len(gridded)), squeeze=False)
    for row, (name, g) in enumerate(gridded.items()):
        lo, hi = np.percentile(g.images[0], [1, 99])
        left = min(t.origin[1] for t in g.tiles.values())
        top = min(t.origin[0] for t in g.tiles.values())
        for s in range(n):
            ax = axes[row, s]
            ax.axis("off")
            if s not in g.images:
                continue
            t = g.tiles[s]
            extent = (t.origin[1] - left, t.origin[1] - left + t.size[1], t.origin[0] - top + t.size[0], t.origin[0] - top)
            ax.imshow(g.images[s], cmap="gray", vmin=lo, vmax=hi, extent=extent)
            sel = table[(table["set"] == name) & (table["satellite"] == s)]
            title = f"{name}: view {s + 1}"
            if s > 0 and len(sel):
                title += "\n" + ", ".join(f"{m}: {100 * sel[sel['setting'] == m]['copied_fraction'].iloc[0]:.0f} %"
                                         for m in modes if len(sel[sel["setting"] == m]))
                title += f"\nresidual {sel['residual_misregistration_px'].iloc[0]:.2f} px"
            ax.set_title(title, fontsize=7)
            ax.set_xlim(0, max(u.origin[1] - left + u.size[1] for u in g.tiles.values()))
            ax.set_ylim(max(u.origin[0] - top + u.size[0] for u in g.tiles.values()), 0)
            if s > 0:  # the common ground with the representative
                w = common_window(g.tiles[0], t)
                if w is not None:
                    y0, x0 = w[2].start + t.origin[0] - top, w[3].start + t.origin[1] - left
                    ax.add_patch(plt.Rectangle((x0, y0), w[3].stop - w[3].start, w[2].stop - w[2].start,
                                               fill=False, ec="tab:green", lw=1))
    fig.suptitle("Views on the shared grid (green: ground the representative also holds; title: positions "
                 "coded from a peer per mode)", fontsize=8)
    fig.tight_layout()
    return fig


def local_disparity(reference: np.ndarray, moving: np.ndarray, block: int = 64) -> np.ndarray:
    """Magnitude [px] of the local shift between two co-gridded images, per ``block``² block (phase
    correlation): the parallax and correction error left after the global correction (NaN: flat block)."""
    rows, cols = reference.shape[0] // block, reference.shape[1] // block
    out = np.full((rows, cols), np.nan)
    for i in range(rows):
        for j in range(cols):
            a = reference[i * block:(i + 1) * block, j * block:(j + 1) * block]
            b = moving[i * block:(i + 1) * block, j * block:(j + 1) * block]
            if a.std() > 1e-6 and b.std() > 1e-6:
                out[i, j] = float(np.hypot(*shift_between(a, b, upsample=10)))
    return out


def limits_figure(gridded: dict, predicted: dict):
    """Where prediction fails: for each view after the first, the latent positions coded as a residual
    (predict mode) beside the local shift left against the representative (64 px blocks: parallax from
    relief, and the correction's error), and the DEM's heights where the set has one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(name, s) for name, g in gridded.items() for s in g.images if s > 0]
    fig, axes = plt.subplots(len(panels), 3, figsize=(10, 3.1 * len(panels)), squeeze=False)
    for row, (name, s) in enumerate(panels):
        g = gridded[name]
        t, ref = g.tiles[s], g.tiles[0]
        pred = predicted[name][s].reshape(t.size[0] // LATTICE_PX, t.size[1] // LATTICE_PX)
        a = axes[row, 0]
        a.imshow(pred, cmap="Greens", vmin=0, vmax=1, extent=(0, t.size[1], t.size[0], 0))
        a.set_title(f"{name} view {s + 1}: predicted positions ({100 * pred.mean():.0f} %)", fontsize=7)
        w = common_window(ref, t)
        a = axes[row, 1]
        if w is not None:
            disp = local_disparity(g.images[0][w[0], w[1]], g.images[s][w[2], w[3]])
            im = a.imshow(disp, cmap="magma", vmin=0, vmax=max(2.0, float(np.nanmax(disp)) if np.isfinite(disp).any() else 2),
                          extent=(w[3].start, w[3].stop, w[2].stop, w[2].start))
            fig.colorbar(im, ax=a, fraction=0.046, label="local shift [px]")
            a.set_xlim(0, t.size[1])
            a.set_ylim(t.size[0], 0)
        a.set_title("local shift against the representative (64 px blocks)", fontsize=7)
        a = axes[row, 2]
        if g.heights is not None and g.heights.dem is not None:
            rr, cc = np.meshgrid(np.arange(t.size[0]) + t.origin[0], np.arange(t.size[1]) + t.origin[1], indexing="ij")
            im = a.imshow(g.heights(*g.grid.lonlat(rr, cc)), cmap="terrain")
            fig.colorbar(im, ax=a, fraction=0.046, label="DEM height [m]")
            a.set_title("DEM (SRTM 3\")", fontsize=7)
        else:
            a.imshow(g.images[s], cmap="gray")
            a.set_title("the view on the grid (no DEM)", fontsize=7)
        for a in axes[row]:
            a.tick_params(labelsize=6)
    fig.tight_layout()
    return fig


def saving_figure(table: pd.DataFrame):
    """Saving per set, setting and λ against the residual misregistration after the correction (the mean
    over the views corrected against a peer, as the summary gives it); one marker per λ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    lambdas = list(dict.fromkeys(table["lambda"]))
    markers = "o^sDv<>"
    colours = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(table["setting"]))}
    for (mode, lmbda), g in table.groupby(["setting", "lambda"], sort=False):
        per = g.groupby("set").agg(base=("baseline_bpp_sent", "mean"), dl=("dlrc_bpp_sent", "mean"))
        residual = g[g["priority"] > 0].groupby("set")["residual_misregistration_px"]
        per["res"] = residual.agg(lambda v: np.nanmean(v) if np.isfinite(v).any() else 0.0).reindex(per.index).fillna(0.0)
        label = mode if len(lambdas) == 1 else f"{mode}, λ={lmbda:g}"
        ax.scatter(per["res"], 100 * (1 - per["dl"] / per["base"]), label=label, s=30, color=colours[mode],
                   marker=markers[lambdas.index(lmbda) % len(markers)])
        for name, r in per.iterrows():
            ax.annotate(name, (r["res"], 100 * (1 - r["dl"] / r["base"])), fontsize=6)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("residual misregistration after the correction [px]")
    ax.set_ylabel("bpp saving, every byte [%]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def format_multiview_summary(summary: dict) -> str:
    rows = [{"set": r["set"], "λ": f"{r['lambda']:g}", "mode": r.get("setting", r["mode"]), "overlap": f"{100 * r['overlap_fraction']:.0f} %",
             "bpp alone": f"{r['baseline_bpp']:.4f}", "bpp DLRC": f"{r['dlrc_bpp']:.4f}",
             "saving": f"{100 * r['bpp_reduction']:.1f} %", "ΔPSNR": f"{r['delta_psnr']:+.3f}",
             "exact": r["decode_exact"], "= alone": r["identical_to_codec_alone"],
             "from peer": f"{100 * r['copied_fraction']:.0f} %", "inexact": f"{100 * r['copied_inexact_fraction']:.0f} %",
             "ISL B/sat": f"{r['exchange_bytes_per_satellite']:.0f}",
             "residual px": f"{r['residual_misregistration_px']:.2f}", "PSNR": f"{r['baseline_psnr']:.2f}"}
            for r in summary["results"]]
    return f"{summary['name']}: {summary['model']} (1 band)\n" + pd.DataFrame(rows).to_string(index=False)
