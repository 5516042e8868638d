"""Captures that are not pixel-identical: misregistration, radiometry, noise, and the shared grid.

A satellite's capture is a P×P image whose pixel (i, j) (row, column, centres at integer
coordinates) sees the ground point ``g = A·(i, j) + t`` of the scene, in scene pixels: the
scene is the ground truth on its own sampling grid. ``A = s·R(θ)`` (GSD scale s, rotation θ
about the patch centre) and ``t`` the patch's origin plus its shift (integer off the latent
grid, and sub-pixel). The scene is sampled there with cubic B-splines (scipy), then the sensor
applies a per-band gain and bias and Gaussian noise, and quantises to 8 bits.

The shared geographic grid (:func:`to_geo_grid`) is what on-board orthorectification does:
the satellite knows A and t (its pointing and ephemeris), and resamples its capture onto a
P×P tile of a grid common to every satellite of the target: the scene's own sampling, tile
origins snapped to a multiple of the codec's latent stride. Overlapping ground then lands on
the same latent positions again. Tile pixels whose ground the capture did not see (at most
half a stride at the edges, more under rotation) take the nearest captured pixel and are
counted (``fill_fraction``).

Written with scipy.ndimage (``map_coordinates``): no library models a push-broom capture's
geometry and radiometry together; each step here is one small function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..common.imaging import to_tensor

#: What each perturbation axis draws per satellite at level v (seeded, independent per satellite).
AXES = {
    "offset": "integer shift off the latent grid, uniform in {0..v} px per axis",
    "subpixel": "sub-pixel shift, uniform in [0, v) px per axis",
    "rotation": "rotation about the patch centre, uniform in [-v, v] degrees",
    "scale": "ground sampling distance × (1 + u), u uniform in [-v, v]",
    "radiometric": "per band: gain 1 + u, u uniform in [-v, v], and bias uniform in [-v/2, v/2] of full scale",
    "noise": "Gaussian sensor noise, standard deviation v [DN of 0–255]",
}


@dataclass(frozen=True)
class CaptureGeometry:
    """How one satellite saw the ground: ground = A·(i, j) + t, in scene pixels."""

    matrix: tuple  # A, ((a00, a01), (a10, a11))
    translation: tuple  # t, (ty, tx)

    @property
    def A(self) -> np.ndarray:
        return np.asarray(self.matrix, dtype=float)

    @property
    def t(self) -> np.ndarray:
        return np.asarray(self.translation, dtype=float)

    def ground(self, pixels: np.ndarray) -> np.ndarray:
        """Ground coordinates (2, n) of capture pixels (2, n)."""
        return self.A @ pixels + self.t[:, None]

    def pixels(self, ground: np.ndarray) -> np.ndarray:
        """Capture pixel coordinates (2, n) of ground points (2, n) (the inverse map)."""
        return np.linalg.solve(self.A, ground - self.t[:, None])

    def moved(self, by: tuple[float, float]) -> "CaptureGeometry":
        """The same capture with its ground coordinates shifted by ``by`` (row, column) pixels."""
        return CaptureGeometry(self.matrix, tuple(self.t + np.asarray(by, float)))

    def integer_translation(self) -> tuple[int, int] | None:
        """(ty, tx) when the capture is an integer translation of the scene, else None."""
        if np.allclose(self.A, np.eye(2), atol=1e-12) and np.allclose(self.t, np.round(self.t), atol=1e-9):
            return int(round(self.t[0])), int(round(self.t[1]))
        return None


@dataclass(frozen=True)
class Perturbation:
    """One satellite's departures from the ideal protocol."""

    shift: tuple = (0.0, 0.0)  # (dy, dx) [px], added to the grid-aligned origin
    rotation_deg: float = 0.0
    scale: float = 1.0  # ground pixels per capture pixel
    gain: tuple = (1.0, 1.0, 1.0)  # per band
    bias: tuple = (0.0, 0.0, 0.0)  # per band, fraction of full scale
    noise_dn: float = 0.0  # σ of Gaussian noise [DN]

    def geometry(self, origin: tuple[int, int], patch: int) -> CaptureGeometry:
        """The capture's map for a patch whose ideal origin is ``origin`` (y, x)."""
        th = math.radians(self.rotation_deg)
        a = self.scale * np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
        c = np.full(2, (patch - 1) / 2.0)
        t = np.asarray(origin, float) + np.asarray(self.shift, float) + c - a @ c  # rotate about the centre
        if self.rotation_deg == 0.0 and self.scale == 1.0:
            a = np.eye(2)
        return CaptureGeometry(tuple(map(tuple, a)), tuple(t))


def draw_perturbation(levels: dict, bands: int, rng: np.random.Generator) -> Perturbation:
    """One satellite's perturbation for ``levels`` ({axis: v}, axes of :data:`AXES`; absent: 0)."""
    unknown = set(levels) - set(AXES)
    if unknown:
        raise ValueError(f"unknown perturbation axis {sorted(unknown)[0]!r}; one of {sorted(AXES)}")
    v = {axis: float(levels.get(axis, 0.0)) for axis in AXES}
    shift = np.zeros(2)
    if v["offset"]:
        shift += rng.integers(0, int(v["offset"]) + 1, size=2)
    if v["subpixel"]:
        shift += rng.uniform(0.0, v["subpixel"], size=2)
    rotation = float(rng.uniform(-v["rotation"], v["rotation"])) if v["rotation"] else 0.0
    scale = 1.0 + float(rng.uniform(-v["scale"], v["scale"])) if v["scale"] else 1.0
    gain, bias = np.ones(bands), np.zeros(bands)
    if v["radiometric"]:
        gain = 1.0 + rng.uniform(-v["radiometric"], v["radiometric"], size=bands)
        bias = rng.uniform(-v["radiometric"] / 2, v["radiometric"] / 2, size=bands)
    return Perturbation(tuple(shift), rotation, scale, tuple(gain), tuple(bias), v["noise"])


def sample(image: np.ndarray, coords: np.ndarray, order: int = 3) -> np.ndarray:
    """``image`` (H, W, B) at the (2, n) coordinates: float (n, B), cubic B-spline, the nearest
    edge pixel beyond the border. Only the window around the coordinates is filtered."""
    H, W = image.shape[:2]
    margin = 8  # the spline prefilter's influence decays by ~0.27 a pixel: 8 px is below 1e-4
    y0 = int(max(0, math.floor(coords[0].min()) - margin))
    x0 = int(max(0, math.floor(coords[1].min()) - margin))
    y1 = int(min(H, math.ceil(coords[0].max()) + margin + 1))
    x1 = int(min(W, math.ceil(coords[1].max()) + margin + 1))
    if y1 <= y0 or x1 <= x0:  # entirely outside: nearest edge pixels
        y0, y1, x0, x1 = 0, H, 0, W
    window = image[y0:y1, x0:x1].astype(np.float64)
    local = coords - np.array([[y0], [x0]], dtype=float)
    return np.stack([ndimage.map_coordinates(window[..., b], local, order=order, mode="nearest")
                     for b in range(image.shape[2])], axis=-1)


def pixel_grid(height: int, width: int | None = None) -> np.ndarray:
    """(2, H·W) integer pixel coordinates (row, column), raster order."""
    ii, jj = np.mgrid[0:height, 0:width or height]
    return np.stack([ii.ravel(), jj.ravel()]).astype(float)


def quantise(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def capture(scene: np.ndarray, origin: tuple[int, int], patch: int, perturbation: Perturbation,
            rng: np.random.Generator) -> tuple[np.ndarray, CaptureGeometry]:
    """The P×P uint8 capture of ``scene`` (H, W, B) by a satellite whose ideal patch origin is
    ``origin``, and its geometry. An unperturbed capture is the scene's crop, bit for bit."""
    geometry = perturbation.geometry(origin, patch)
    shift = geometry.integer_translation()
    H, W = scene.shape[:2]
    if shift is not None and 0 <= shift[0] <= H - patch and 0 <= shift[1] <= W - patch:
        values = scene[shift[0]:shift[0] + patch, shift[1]:shift[1] + patch].astype(np.float64)
    else:
        values = sample(scene, geometry.ground(pixel_grid(patch))).reshape(patch, patch, -1)
    gain, bias = np.asarray(perturbation.gain), np.asarray(perturbation.bias)
    if np.any(gain != 1.0) or np.any(bias != 0.0):
        values = values * gain + 255.0 * bias
    if perturbation.noise_dn:
        values = values + rng.normal(0.0, perturbation.noise_dn, size=values.shape)
    return quantise(values), geometry


@dataclass(frozen=True)
class GridTile:
    """A capture resampled onto the shared grid: the tile, its ground origin, and the fraction
    of its pixels the capture did not see (filled from the nearest captured pixel)."""

    image: np.ndarray
    origin: tuple[int, int]
    fill_fraction: float


def snapped_origin(geometry: CaptureGeometry, patch: int, stride: int) -> tuple[int, int]:
    """The tile origin on the shared grid: the ground under the capture's centre, less half a
    patch, rounded to a multiple of ``stride`` (the grid's origin is the scene's pixel (0, 0))."""
    centre = geometry.ground(np.full((2, 1), (patch - 1) / 2.0))[:, 0] - (patch - 1) / 2.0
    return int(round(centre[0] / stride)) * stride, int(round(centre[1] / stride)) * stride


def to_geo_grid(image: np.ndarray, geometry: CaptureGeometry, stride: int) -> GridTile:
    """Resample a capture (P, P, B) onto the shared grid (P×P tile, origin a multiple of ``stride``)."""
    patch = image.shape[0]
    origin = snapped_origin(geometry, patch, stride)
    ground = pixel_grid(patch) + np.asarray(origin, float)[:, None]
    at = geometry.pixels(ground)
    outside = np.any((at < -0.5) | (at > patch - 0.5), axis=0)
    shift = geometry.integer_translation()
    if shift is not None:  # an integer shift: the tile is the capture moved, no interpolation
        dy, dx = origin[0] - shift[0], origin[1] - shift[1]
        iy = np.clip(np.arange(patch) + dy, 0, patch - 1)
        ix = np.clip(np.arange(patch) + dx, 0, patch - 1)
        tile = image[iy][:, ix]
    else:
        tile = quantise(sample(image, at).reshape(patch, patch, -1))
    return GridTile(tile, origin, float(outside.mean()))


def resampling_psnr(image: np.ndarray, geometry: CaptureGeometry, tile: GridTile) -> float:
    """PSNR [dB] of the capture against itself sent through the grid and back (tile resampled to
    the capture's pixels), over the capture pixels whose ground the tile covers: what orthorectifying
    on board costs before any coding. Infinite for an integer shift (no interpolation)."""
    if geometry.integer_translation() is not None:
        return float("inf")
    patch = image.shape[0]
    ground = geometry.ground(pixel_grid(patch)) - np.asarray(tile.origin, float)[:, None]
    inside = np.all((ground >= 0) & (ground <= patch - 1), axis=0)
    back = quantise(sample(tile.image, ground[:, inside]))
    err = (back.astype(np.float64) - image.reshape(-1, image.shape[2])[inside]) ** 2
    mse = float(err.mean()) if err.size else 0.0
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


@dataclass
class CapturedGroup:
    """One condition of one draw: each satellite's image as it enters the encoder, and per
    satellite the shared grid's fill fraction, resampling PSNR and on-board seconds."""

    images: dict  # sat -> (1, 3, P, P) float in [0, 1]
    perturbations: dict  # sat -> Perturbation
    fill: dict = field(default_factory=dict)
    resample_psnr: dict = field(default_factory=dict)
    grid_time_s: dict = field(default_factory=dict)
    # sat -> (row, column) [px] of its tile's pixel (0, 0) on the ground grid: the shared grid's snapped
    # origin, or as captured the origin the satellite meant to image (its pointing; the capture's own
    # misregistration is unknown to it)
    origins: dict = field(default_factory=dict)


def capture_group(views: dict, obs, levels: dict, geo_grid: bool, stride: int,
                  rng: np.random.Generator) -> CapturedGroup:
    """The captures of a draw under ``levels`` (:func:`dlrc_agents.studies.capture.draw_perturbation`), each
    satellite seeing ``views[sat]`` ((scene, where its pixel (0, 0) lies on the ground grid): the scene,
    or its date of a revisit stack, georeferenced); with ``geo_grid``
    resampled onto the shared grid (timed, as the satellite would run it)."""
    import time

    out = CapturedGroup({}, {})
    for sat, origin in enumerate(obs.offsets):
        scene, at = views[sat]
        perturbation = draw_perturbation(levels, scene.shape[2], rng)
        image, geometry = capture(scene, origin, obs.patch, perturbation, rng)
        geometry = geometry.moved(at)  # the scene's own pixels -> the ground grid
        out.perturbations[sat] = perturbation
        out.origins[sat] = (int(round(origin[0] + at[0])), int(round(origin[1] + at[1])))
        if geo_grid:
            t0 = time.perf_counter()
            tile = to_geo_grid(image, geometry, stride)
            out.grid_time_s[sat] = time.perf_counter() - t0
            out.fill[sat], out.resample_psnr[sat] = tile.fill_fraction, resampling_psnr(image, geometry, tile)
            image = tile.image
            out.origins[sat] = tuple(int(v) for v in tile.origin)
        out.images[sat] = to_tensor(image)
    return out


def describe_levels(levels: dict) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in levels.items()) or "aligned"
