"""The codec alone (the baseline world) in the same container as DLRC.

CompressAI's ``compress()`` strings go into a :class:`~.bitstream.SatelliteBitstream` flagged
*codec alone*, with the header, model fingerprint, capture id, CRC-32 and (with a mission key)
HMAC of every DLRC stream: the ground checks the baseline's bytes as strictly as DLRC's, and
both worlds count the same kind of bytes on the downlink.
"""

from __future__ import annotations

import hashlib
import math

import torch

from compressai.entropy_models import EntropyBottleneck

from .bitstream import HYPER_STRIDE, LATENT_STRIDE, BitstreamError, DecodeBounds, SatelliteBitstream
from ..codecs.overread import padded


def compressai_strings(codec) -> int:
    """How many strings CompressAI's ``compress()`` writes for one image: ŷ's and ẑ's, and for ELIC
    an anchor and a non-anchor string per channel group."""
    if codec.family == "checkerboard":
        return 2 * len(codec.model.latent_codec["y"].groups) + 1
    return 2


def compressai_shape(codec, latent_hw: tuple[int, int], z_hw: tuple[int, int]):
    """The ``shape`` argument CompressAI's ``decompress()`` takes, from the header's grids: the
    hyper-latent's (H, W), and for ELIC also each channel group's (C_k, H, W)."""
    if codec.family == "checkerboard":
        groups = codec.model.latent_codec["y"].groups
        return {"y": [torch.Size([g, *latent_hw]) for g in groups], "hyper": torch.Size(z_hw)}
    return torch.Size(z_hw)


@torch.no_grad()
def encode_alone(codec, x: torch.Tensor, satellite: int = 0, capture: int = 0, members: tuple = ()
                 ) -> SatelliteBitstream:
    """``x`` (1, 3, H, W) in [0, 1] coded by the codec alone, as a container."""
    return alone_stream(codec, codec.model.compress(x), tuple(x.shape[-2:]), satellite, capture, members)


def alone_stream(codec, out: dict, image_hw: tuple[int, int], satellite: int = 0, capture: int = 0,
                 members: tuple = ()) -> SatelliteBitstream:
    """The container of what CompressAI's ``compress()`` returned (``out``) for an image of ``image_hw``."""
    h, w = image_hw
    y_hw = (math.ceil(h / LATENT_STRIDE), math.ceil(w / LATENT_STRIDE))
    z_hw = (math.ceil(h / HYPER_STRIDE), math.ceil(w / HYPER_STRIDE))
    if out["shape"] != compressai_shape(codec, y_hw, z_hw):
        raise BitstreamError(f"{codec.architecture}: compress() returned shape {out['shape']}, "
                             f"the container expects {compressai_shape(codec, y_hw, z_hw)}")
    strings = tuple(s[0] for s in out["strings"])  # one image: one string per list
    return SatelliteBitstream(
        model=codec.architecture, fingerprint=codec.fingerprint, lmbda=codec.lmbda, satellite=int(satellite),
        priority=0, image_shape=(h, w), y_shape=(codec.M, *y_hw), z_shape=z_hw, offset=0,
        retained=y_hw[0] * y_hw[1], z_string=b"", y_string=b"", capture=capture,
        members=tuple(members) or (int(satellite),), codec_strings=strings)


@torch.no_grad()
def decode_alone(codec, data: bytes, key: bytes | None = None, capture: int | None = None,
                 bounds: DecodeBounds | None = None) -> torch.Tensor:
    """x̂ (1, 3, H, W) of a codec-alone container, checked against ``codec`` (architecture,
    fingerprint, λ, channels), the ground's mission ``key``, the ``capture`` it expects and the
    sizes it expects (``bounds``; default the absolute pixel limit), before any decoding."""
    p = read_alone(data, codec.fingerprint, key, capture, bounds)
    check_against_model(codec, p)
    if len(p.codec_strings) != compressai_strings(codec):
        raise BitstreamError(f"satellite {p.satellite}: {len(p.codec_strings)} strings, {codec.architecture} "
                             f"writes {compressai_strings(codec)}")
    shape = compressai_shape(codec, p.y_shape[1:], p.z_shape)
    # every string padded for the most symbols any of them holds (ŷ's and ẑ's): see dlrc_agents.codecs.overread
    z_channels = max(m.channels for m in codec.model.modules() if isinstance(m, EntropyBottleneck))
    symbols = p.y_shape[0] * p.y_shape[1] * p.y_shape[2] + z_channels * p.z_shape[0] * p.z_shape[1]
    x_hat = codec.model.decompress([[padded(s, symbols)] for s in p.codec_strings], shape)["x_hat"]
    return x_hat[..., :p.image_shape[0], :p.image_shape[1]].clamp_(0, 1)


def read_alone(data: bytes, fingerprint: str, key: bytes | None, capture: int | None,
               bounds: DecodeBounds | None = None) -> SatelliteBitstream:
    """A codec-alone container parsed and checked against the ``fingerprint`` of the codec that
    decodes it, the mission ``key`` and the ``capture`` the ground expects (None: any)."""
    try:
        p = SatelliteBitstream.from_bytes(data, expect_fingerprint=fingerprint, key=key, bounds=bounds)
    except BitstreamError as exc:  # before its header is read, the stream is named by what it is
        if str(exc).startswith("satellite "):
            raise
        raise BitstreamError(f"codec-alone stream: {exc}") from None
    if not p.codec_alone:
        raise BitstreamError(f"satellite {p.satellite}: a DLRC stream where the codec alone was expected")
    if capture is not None and p.capture != capture:
        raise BitstreamError(f"satellite {p.satellite}: stream of capture {p.capture}, the ground expects {capture}")
    return p


def check_against_model(codec, p: SatelliteBitstream) -> None:
    """Every header field the decoder relies on, against the model it decodes with."""
    if p.model != codec.architecture:
        raise BitstreamError(f"satellite {p.satellite}: stream labelled {p.model}, the decoder has {codec.architecture}")
    if p.y_shape[0] != codec.M:
        raise BitstreamError(f"satellite {p.satellite}: {p.y_shape[0]} latent channels, the model has {codec.M}")
    same = (p.lmbda is None and codec.lmbda is None) or (
        p.lmbda is not None and codec.lmbda is not None and math.isclose(p.lmbda, codec.lmbda, rel_tol=1e-6))
    if not same:
        raise BitstreamError(f"satellite {p.satellite}: stream made at λ={p.lmbda}, the model is λ={codec.lmbda}")


# ---------------------------------------------------------------- JPEG 2000, the codec satellites fly today

#: The fingerprint a JPEG 2000 container carries: the codec is the standard, not a set of weights.
JPEG2000_FINGERPRINT = hashlib.sha256(b"ISO/IEC 15444-1 J2K codestream, OpenJPEG").hexdigest()[:16]


def encode_alone_jpeg2000(image, bpp: float, satellite: int = 0, capture: int = 0, members: tuple = (),
                          mct: bool = True) -> SatelliteBitstream:
    """An 8-bit image (H, W, B) coded by JPEG 2000 at ``bpp``, as a codec-alone container (header,
    capture, members, CRC and, with a key, HMAC as for the learned codecs; latent_c holds the band count)."""
    from dlrc_agents.codecs import jpeg2000

    h, w = image.shape[:2]
    bands = 1 if image.ndim == 2 else image.shape[2]
    y_hw = (math.ceil(h / LATENT_STRIDE), math.ceil(w / LATENT_STRIDE))
    z_hw = (math.ceil(h / HYPER_STRIDE), math.ceil(w / HYPER_STRIDE))
    return SatelliteBitstream(
        model="jpeg2000", fingerprint=JPEG2000_FINGERPRINT, lmbda=None, satellite=int(satellite), priority=0,
        image_shape=(h, w), y_shape=(bands, *y_hw), z_shape=z_hw, offset=0, retained=y_hw[0] * y_hw[1],
        z_string=b"", y_string=b"", capture=capture, members=tuple(members) or (int(satellite),),
        codec_strings=(jpeg2000.encode(image, bpp, mct),))


def decode_alone_jpeg2000(data: bytes, key: bytes | None = None, capture: int | None = None,
                          bounds: DecodeBounds | None = None):
    """The samples (H, W, B) of a JPEG 2000 codec-alone container, decoded from its codestream by the
    library that wrote it, after the container's checks; the codestream must match the header."""
    from dlrc_agents.codecs import jpeg2000

    p = read_alone(data, JPEG2000_FINGERPRINT, key, capture, bounds)
    if p.model != "jpeg2000":  # the fingerprint already says so; the label must agree
        raise BitstreamError(f"satellite {p.satellite}: expected a JPEG 2000 codec-alone stream, got {p.model}")
    if len(p.codec_strings) != 1:
        raise BitstreamError(f"satellite {p.satellite}: {len(p.codec_strings)} strings, JPEG 2000 writes 1")
    try:  # the codestream's own header must agree with the container's before anything is decoded
        return jpeg2000.decode(p.codec_strings[0], expect=(*p.image_shape, p.y_shape[0]))
    except Exception as exc:  # that, or OpenJPEG's own refusal of a damaged codestream
        raise BitstreamError(f"satellite {p.satellite}: JPEG 2000 codestream refused ({exc})") from None
