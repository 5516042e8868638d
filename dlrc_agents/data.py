"""Earth-observation scenes: reading RGB images and sampling training crops.

Scenes are read in place (GeoTIFF through rasterio, PNG/JPEG through Pillow) as
uint8 arrays (H, W, 3). Multi-band scenes keep their first three bands (NAIP:
R, G, B). 16-bit scenes are scaled to 8 bits by their 0.1/99.9 percentiles.
"""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
from PIL import Image

#: The training split of ../shared/data/eo (see its README): never the test split.
DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eo"
TRAIN_GLOBS = ("rgb/train/*.tif", "rgb/train/*.png", "revisit/naip/naip_*_20[01][0-8]*.tif")
TEST_GLOBS = ("rgb/test/*.tif",)


class DataError(ValueError):
    """An image that cannot be used; the message names the file."""


def expand_scenes(patterns, root: Path | None = None) -> list[Path]:
    """Paths from a list of paths or globs (relative ones are tried against ``root`` too)."""
    found: list[Path] = []
    for pattern in patterns:
        candidates = sorted(glob.glob(str(pattern)))
        if not candidates and root is not None and not Path(pattern).is_absolute():
            candidates = sorted(glob.glob(str(root / pattern)))
        if not candidates:
            raise DataError(f"data.scenes: {pattern} matches no file")
        found.extend(Path(c) for c in candidates)
    return found


def read_rgb(path: str | Path) -> np.ndarray:
    """An RGB uint8 image (H, W, 3) from a GeoTIFF, PNG or JPEG file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such image")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import rasterio

            with rasterio.open(path) as src:
                bands = src.read(indexes=list(range(1, min(3, src.count) + 1)))
            image = np.moveaxis(bands, 0, -1)
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
