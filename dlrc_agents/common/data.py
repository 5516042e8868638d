"""Earth-observation scenes: reading RGB images and sampling training crops.

Scenes are named through the data registry (``eo:rgb/test/*.tif``, see
:mod:`edgespacecom.datasets`) or by file path, and read in place (GeoTIFF through
rasterio, PNG/JPEG through Pillow) as uint8 arrays (H, W, 3). Multi-band scenes keep
their first three bands (NAIP: R, G, B). 16-bit scenes are scaled to 8 bits by their
0.1/99.9 percentiles.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import math
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from edgespacecom.datasets import DataError, is_data_name, registry

#: The training split of the EO data (its README): OpenAerialMap and NEON scenes and the NAIP
#: revisits 2010–2018. NAIP 2009, also training data, is held out as the validation split
#: (model selection and training length, :data:`VALIDATION_GLOBS`); never the test split.
TRAIN_GLOBS = ("eo:rgb/train/*.tif", "eo:rgb/train/*.png", "eo:revisit/naip/naip_*_201[0-8]*.tif")
VALIDATION_GLOBS = ("eo:revisit/naip/naip_*_2009*.tif",)
TEST_GLOBS = ("eo:rgb/test/*.tif",)

__all__ = ["DataError", "TRAIN_GLOBS", "VALIDATION_GLOBS", "TEST_GLOBS", "expand_scenes", "scene_names", "scene_label", "read_rgb",
           "scene_date", "years_between", "task_input_files"]


def expand_scenes(patterns) -> list[Path]:
    """Local files from registry names and globs over them (``eo:...``), or file paths and globs.

    A registered file that is not fetched yet stops with the fetch command (DataMissing).
    """
    found: list[Path] = []
    for pattern in patterns:
        if is_data_name(pattern):
            found.extend(registry().resolve([pattern]))
            continue
        candidates = sorted(glob.glob(str(pattern)))
        if not candidates:
            raise DataError(f"data.scenes: {pattern} matches no file")
        found.extend(Path(c) for c in candidates)
    return found


def scene_label(name: str) -> str:
    """The file name of a portable scene name (``eo:rgb/test/x.tif`` -> ``x.tif``), for tables."""
    return Path(name.split(":", 1)[-1]).name


def scene_names(patterns) -> dict[str, Path]:
    """{portable name: local path} of every scene ``patterns`` name: registry names stay names,
    a user's file is named by its file name (never a host path)."""
    out: dict[str, Path] = {}
    for pattern in patterns:
        if is_data_name(pattern):
            reg = registry()
            out.update(zip((e.name for e in reg.select([pattern])), reg.resolve([pattern])))
        else:
            for path in expand_scenes([pattern]):
                name = f"file:{path.name}"
                if name in out and out[name] != path:  # same file name in another folder
                    name = f"file:{path.parent.name}/{path.name}"
                suffix = 2
                while name in out and out[name] != path:
                    name, suffix = f"file:{path.parent.name}/{path.name}#{suffix}", suffix + 1
                out[name] = path
    return out


def scene_date(name: str) -> dt.date:
    """The acquisition date a revisit file's name ends in (``..._20190904.tif``: YYYYMMDD;
    ``landsat_2020.tif``: YYYY, taken as 1 July)."""
    stem = Path(str(name).split(":", 1)[-1]).stem
    match = re.search(r"(\d{8}|\d{4})$", stem)
    if match is None:
        raise DataError(f"{name}: a revisit file's name must end in its date (YYYYMMDD or YYYY)")
    digits = match.group(1)
    try:
        if len(digits) == 8:
            return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        return dt.date(int(digits), 7, 1)
    except ValueError:
        raise DataError(f"{name}: {digits} is not a date") from None


def years_between(a: dt.date, b: dt.date) -> float:
    """|a − b| in years of 365.25 days."""
    return abs((a - b).days) / 365.25


@contextlib.contextmanager
def open_raster(path):
    """``rasterio.open(path)`` with the warning about rasters without a geotransform silenced (aerial
    crops, chips and in-memory codestreams are fine without one)."""
    import rasterio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            yield src


def pixel_origins(paths: dict, grid_pixels: int = 1) -> dict[str, tuple[float, float]]:
    """Where each north-up GeoTIFF of a revisit stack sits on one ground grid: {name: (row, column)}
    of its pixel (0, 0) in pixels of a grid whose lines are multiples of ``grid_pixels`` pixel sizes
    in map coordinates (the grid is absolute, not any file's). Files must share CRS and pixel size;
    files without georeferencing sit at (0, 0)."""
    found = {}
    for name, path in paths.items():
        with open_raster(path) as src:
            found[name] = (src.crs, src.transform)
    if all(crs is None for crs, _ in found.values()):
        return {name: (0.0, 0.0) for name in paths}
    crss = {str(crs) for crs, _ in found.values()}
    sizes = {(round(t.a, 9), round(t.e, 9)) for _, t in found.values()}
    rotated = [name for name, (_, t) in found.items() if t.b or t.d]
    if len(crss) > 1 or len(sizes) > 1 or rotated:
        raise DataError(f"data.scenes: a revisit stack needs one CRS and one north-up pixel size, found "
                        f"{sorted(crss)} and {sorted(sizes)}")
    (a, e), = sizes
    step_x, step_y = abs(a) * grid_pixels, abs(e) * grid_pixels
    x0 = math.floor(min(t.c for _, t in found.values()) / step_x) * step_x
    y0 = math.ceil(max(t.f for _, t in found.values()) / step_y) * step_y
    return {name: ((y0 - t.f) / abs(e), (t.c - x0) / abs(a)) for name, (_, t) in found.items()}


def read_rgb(path: str | Path, bands: list[int] | None = None) -> np.ndarray:
    """An RGB uint8 image (H, W, 3) from a GeoTIFF, PNG or JPEG file; ``bands`` (1-based, three)
    picks a GeoTIFF's bands (default the first three)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such image")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            with open_raster(path) as src:
                if bands is not None and max(bands) > src.count:
                    raise DataError(f"{path}: data.bands names band {max(bands)}, the file has {src.count}")
                data = src.read(indexes=list(bands) if bands else list(range(1, min(3, src.count) + 1)))
            image = np.moveaxis(data, 0, -1)
        else:
            with Image.open(path) as im:
                image = np.asarray(im.convert("RGB"))
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot be read as an image ({exc})") from None
    if image.ndim != 3 or image.shape[-1] < 3:
        raise DataError(f"{path}: needs 3 bands, has {image.shape[-1] if image.ndim == 3 else 1}")
    if image.dtype != np.uint8:
        lo, hi = np.percentile(image, [0.1, 99.9])
        image = np.clip((image.astype(np.float64) - lo) / max(hi - lo, 1e-9) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image[..., :3])


def nodata_fraction(crop: np.ndarray) -> float:
    """Fraction of pixels that are no-data (black in every band)."""
    return float(np.mean(np.all(crop == 0, axis=-1)))


class CropSampler:
    """Seeded random crops of ``size`` pixels from a list of scenes, skipping mostly-no-data crops.

    Scenes are drawn with probability proportional to their area, so large scenes
    are not under-sampled; horizontal/vertical flips augment the crops.

    ``max_downscale`` > 1 takes each crop from a region ``f`` times larger, ``f`` uniform
    in [1, max_downscale], and resamples it to ``size`` (Lanczos, antialiased), as Ballé
    et al. (2017) downsampled their training photographs: it removes the source's own
    compression artefacts (the OpenAerialMap scenes are JPEG-in-TIFF, 8×8 blocks included)
    and brings the 0.1 m scenes towards the coarser ground sampling of the sensors the
    models serve. 1 (the default) crops at the native resolution and draws exactly the
    same crops as before the option existed.
    """

    def __init__(self, scenes: list[np.ndarray], size: int, seed: int, max_nodata: float = 0.1,
                 max_downscale: float = 1.0):
        if max_downscale < 1:
            raise DataError(f"max_downscale must be >= 1, got {max_downscale}")
        self.scenes = [s for s in scenes if min(s.shape[:2]) >= size]
        if not self.scenes:
            raise DataError(f"no training scene is at least {size}x{size} pixels")
        area = np.array([s.shape[0] * s.shape[1] for s in self.scenes], dtype=float)
        self.weights = area / area.sum()
        self.size = size
        self.max_nodata = max_nodata
        self.max_downscale = float(max_downscale)
        self.rng = np.random.default_rng(seed)

    def crop(self) -> np.ndarray:
        for _ in range(1000):
            scene = self.scenes[self.rng.choice(len(self.scenes), p=self.weights)]
            side = self.size
            if self.max_downscale > 1:
                factor = self.rng.uniform(1.0, self.max_downscale)
                side = min(int(round(self.size * factor)), min(scene.shape[:2]))
            y = self.rng.integers(0, scene.shape[0] - side + 1)
            x = self.rng.integers(0, scene.shape[1] - side + 1)
            crop = scene[y:y + side, x:x + side]
            if nodata_fraction(crop) <= self.max_nodata:
                if side != self.size:
                    crop = np.asarray(Image.fromarray(crop).resize((self.size, self.size), Image.LANCZOS))
                if self.rng.random() < 0.5:
                    crop = crop[:, ::-1]
                if self.rng.random() < 0.5:
                    crop = crop[::-1]
                return crop
        raise DataError("could not find a crop with little enough no-data after 1000 tries")

    def batch(self, n: int) -> np.ndarray:
        """(n, 3, size, size) float32 in [0, 1]."""
        crops = np.stack([self.crop() for _ in range(n)])
        return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def read_band_set(patterns: str | list[str], bands: list[int] | None = None,
                  rows: tuple[int, int] | None = None) -> np.ndarray:
    """The raw samples (H, W, B) of a band set: registry names or path patterns matching either one
    multi-band raster (all its bands) or several single-band rasters of one shape, stacked in the
    order of the patterns and, within one, of the names (a Sentinel-2 chip's B02, B03, B04, B08).
    ``bands`` (1-based) picks of the stack. Signed 16-bit data (Sen1Floods11's int16 reflectance,
    no-data 0) is clipped at 0 and returned as uint16; 8- and 16-bit data keep their type.
    ``rows`` = (first, end) keeps those rows only: a spatial split of a scene that is the only one of
    its kind (the training, validation and test parts of one Sentinel-2 chip)."""
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    pattern = " + ".join(patterns)
    paths = [p for one in patterns for p in sorted(expand_scenes([one]), key=lambda p: p.name)]
    if not paths:
        raise DataError(f"{pattern}: matches no raster")
    arrays = []
    for path in paths:
        try:
            with open_raster(path) as src:
                if len(paths) > 1 and src.count != 1:
                    raise DataError(f"{path}: a band set of several files takes single-band rasters, "
                                    f"this one has {src.count}")
                arrays.append(np.moveaxis(src.read(), 0, -1))
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{path}: cannot be read as a raster ({exc})") from None
    if len({a.shape[:2] for a in arrays}) > 1:
        raise DataError(f"{pattern}: the band files differ in size ({sorted({a.shape[:2] for a in arrays})})")
    stack = np.concatenate(arrays, axis=-1)
    if bands is not None:
        if max(bands) > stack.shape[-1] or min(bands) < 1:
            raise DataError(f"{pattern}: bands {bands} out of 1..{stack.shape[-1]}")
        stack = stack[..., [b - 1 for b in bands]]
    if rows is not None:
        first, end = rows
        if not 0 <= first < end <= stack.shape[0]:
            raise DataError(f"{pattern}: rows {first}:{end} out of 0:{stack.shape[0]}")
        stack = stack[first:end]
    if stack.dtype.kind == "i":
        stack = np.clip(stack, 0, np.iinfo(np.uint16).max).astype(np.uint16)
    elif stack.dtype not in (np.uint8, np.uint16):
        raise DataError(f"{pattern}: samples of type {stack.dtype}; band sets are 8- or 16-bit integers")
    return np.ascontiguousarray(stack)


def parse_band_set_spec(spec: str) -> tuple[list[str], tuple[int, int] | None]:
    """``PATTERN[,PATTERN...][@FIRST:END]`` (the command line's band sets) -> (patterns, rows):
    ``eo:segmentation/sentinel2_oncloudn_cloud/chip_1/B0*.tif`` or
    ``eo:multispectral/sentinel2_sen1floods11/*_S2Hand.tif@0:256`` (rows 0–255 only)."""
    body, _, window = spec.partition("@")
    patterns = [p for p in body.split(",") if p]
    if not patterns:
        raise DataError(f"band set {spec!r}: no file pattern")
    if not window:
        return patterns, None
    match = re.fullmatch(r"(\d+):(\d+)", window)
    if not match or int(match[1]) >= int(match[2]):
        raise DataError(f"band set {spec!r}: rows must read @FIRST:END with FIRST < END")
    return patterns, (int(match[1]), int(match[2]))


class BandCropSampler(CropSampler):
    """:class:`CropSampler` over raw N-band samples (8 or 16 bits), normalised per band by
    ``normalise`` ((n, H, W, B) raw -> float32 (n, B, H, W) in [0, 1]); no resampling."""

    def __init__(self, scenes: list[np.ndarray], size: int, seed: int, normalise, max_nodata: float = 0.1):
        super().__init__(scenes, size, seed, max_nodata=max_nodata)
        self.normalise = normalise

    def batch(self, n: int) -> np.ndarray:
        return self.normalise(np.stack([self.crop() for _ in range(n)]))


def task_input_files(task) -> dict[str, Path]:
    """{portable name: file} of every chip and label of a segmentation task's train, validation and test parts."""
    inputs = {}
    for chip in task.train + task.validation + task.test:
        inputs.update(scene_names(chip.files))
        inputs.update(scene_names([chip.label]))
    return inputs
