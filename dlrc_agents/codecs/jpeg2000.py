"""JPEG 2000 (what Earth-observation satellites fly today) through OpenJPEG, with rate control.

The binding is GDAL's JP2OpenJPEG driver as rasterio ships it (OpenJPEG 2.5 inside the rasterio
wheel): it takes 1 to N bands of 8 or 16 bits and exposes OpenJPEG's rate allocation as a target
size (``QUALITY``: the codestream's size in per cent of the raw samples), which imagecodecs'
binding does not (its ``level`` is a PSNR target) and glymur needs a system libopenjp2 for. We
write raw J2K codestreams (no JP2 boxes): the bytes counted are everything a decoder needs,
main header included, and the ground decodes them through the same library.

``mct``: the multi-component transform (the irreversible colour transform ICT, or RCT with
``reversible``) over the first three components, as OpenJPEG applies it; GDAL's driver applies it
to 3- and 4-band images only (:data:`MCT_BANDS`), and :func:`encode` refuses to claim it otherwise. ``reversible``: the 5/3 integer wavelet (lossless at full rate) instead of
the 9/7.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

#: Band counts the multi-component transform applies to (GDAL's driver: the first three of 3 or 4 bands;
#: with more it is not applied, so no row may claim it).
MCT_BANDS = (3, 4)
#: Bits a sample of each dtype the codec takes.
SAMPLE_BITS = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}


@contextlib.contextmanager
def _quiet():
    """Codestreams carry no georeferencing: GDAL's warning about it says nothing here."""
    import rasterio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        yield


def encode(image: np.ndarray, bpp: float, mct: bool = True, reversible: bool = False, resolutions: int = 6) -> bytes:
    """A J2K codestream of ``image`` (H, W) or (H, W, B), uint8 or uint16, at about ``bpp`` bits per
    pixel (all bands together) by OpenJPEG's rate allocation."""
    from rasterio.io import MemoryFile

    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.dtype not in SAMPLE_BITS:
        raise ValueError(f"JPEG 2000 takes (H, W[, B]) uint8 or uint16, got {array.dtype} {array.shape}")
    if not bpp > 0:
        raise ValueError(f"JPEG 2000 target bpp must be > 0, got {bpp}")
    if mct and array.shape[2] not in MCT_BANDS:
        mct = False  # nothing to decorrelate with one or two bands; GDAL ignores it beyond four
    h, w, bands = array.shape
    raw_bpp = bands * SAMPLE_BITS[array.dtype]
    quality = min(100.0, 100.0 * bpp / raw_bpp)
    levels = max(1, min(resolutions, int(np.log2(max(1, min(h, w)))) - 1))
    with _quiet(), MemoryFile() as mem:
        with mem.open(driver="JP2OpenJPEG", width=w, height=h, count=bands, dtype=array.dtype.name,
                      CODEC="J2K", QUALITY=f"{quality:.6g}", REVERSIBLE="YES" if reversible else "NO",
                      YCC="YES" if mct else "NO", RESOLUTIONS=str(levels),
                      NBITS=str(SAMPLE_BITS[array.dtype])) as dst:
            dst.write(np.moveaxis(array, -1, 0))
        return mem.read()


def decode(data: bytes, expect: tuple[int, int, int] | None = None) -> np.ndarray:
    """(H, W, B) samples of a J2K codestream, decoded by the same library. With ``expect`` (H, W, B),
    a codestream whose main header says otherwise is refused before any sample is decoded (a
    damaged header could otherwise ask for any amount of memory)."""
    from rasterio.io import MemoryFile

    with _quiet(), MemoryFile(bytes(data)) as mem, mem.open(driver="JP2OpenJPEG") as src:
        found = (src.height, src.width, src.count)
        if expect is not None and found != tuple(expect):
            raise ValueError(f"the codestream holds {found[0]}x{found[1]} px in {found[2]} band(s), "
                             f"expected {expect[0]}x{expect[1]} in {expect[2]}")
        return np.moveaxis(src.read(), 0, -1)


def psnr(reference: np.ndarray, decoded: np.ndarray, peak: float | None = None) -> float:
    """PSNR [dB] over all bands, peak the dtype's maximum (255, 65535) unless given."""
    ref = np.asarray(reference, dtype=np.float64)
    dec = np.asarray(decoded, dtype=np.float64).reshape(ref.shape)
    peak = peak if peak is not None else float(np.iinfo(np.asarray(reference).dtype).max)
    mse = float(np.mean((ref - dec) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak**2 / mse)


def rd_point(image: np.ndarray, bpp: float, mct: bool = True) -> dict:
    """Code and decode ``image`` at target ``bpp``: the bpp actually spent (whole codestream), the
    decoded samples and the PSNR against the input."""
    data = encode(image, bpp, mct)
    decoded = decode(data)
    h, w = image.shape[:2]
    return {"bpp": 8 * len(data) / (h * w), "bytes": len(data), "decoded": decoded.reshape(np.shape(image)),
            "psnr": psnr(image, decoded)}


def jpeg2000_point(image: np.ndarray, bpp: float, mct: bool) -> dict:
    """Code ``image`` as a J2K codestream at target ``bpp`` and decode it from those bytes: bpp, PSNR, MS-SSIM."""
    from ..common.imaging import quality, to_tensor

    data = encode(image, bpp, mct)
    decoded = decode(data)
    psnr, msssim = quality(to_tensor(image), to_tensor(decoded))
    return {"bpp": 8 * len(data) / (image.shape[0] * image.shape[1]), "psnr": psnr, "ms_ssim": msssim}
