"""Bitstream container of one satellite's DLRC output, decodable from the bytes alone.

Layout (little-endian), version 3: a fixed binary header, because every byte goes over
a downlink (a JSON header cost ~250 bytes, 0.03 bpp at 256²)::

    magic b"DLRC" (4) | version u8 | architecture code u8 | map form u8 | map coding u8
    context fill u8 (context models: what a copy from another satellite put in the context)
    fingerprint 8 bytes (sha256 prefix of the weights) | λ f32 (NaN: unknown)
    satellite u16 | priority rank u16 | image H, W u16 | latent C, H, W u16 | z H, W u16
    dense offset u32 | retained positions u32 | map satellites u8, then their ids u16 each
    section lengths: z, y, maps u32
    z string | y string | map section: raw LZMA2 of int32 — the assignment maps it carries,
    in the order of the header's list, either as they are ('lzma', the paper) or as the
    prediction symbols of :func:`encode_maps` ('predictive', the default; dense maps are
    walked in the codec's decoding order, where each new number is the next one)
    CRC-32 of everything before it u32

The ground refuses a stream whose magic, version, length or checksum is wrong,
or whose model fingerprint differs from the decoder's model, with a clear
:class:`BitstreamError`, before any entropy decoding.
"""

from __future__ import annotations

import lzma
import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"DLRC"
VERSION = 3
#: Architecture codes of the header (append only: codes are part of the format).
ARCHITECTURE_CODES = ("bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor", "cheng2020-attn",
                      "elic2022-official", "elic2022-chandelier")
_FIXED = struct.Struct("<4sBBBBB8sfHHHHHHHHHIIB")
_SECTIONS = struct.Struct("<III")


class BitstreamError(ValueError):
    """A stream that cannot be decoded: foreign, truncated, corrupted or for another model."""


MAP_FORMS = ("dense", "references")


#: Raw LZMA2 (no .xz container: its ~60 bytes of headers and checks would cost more than
#: a small map; the container's CRC-32 already covers the section).
LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
LZMA_DICT_SIZE = 64 << 20  # preset 9's dictionary, which the decoder keeps


def lzma_compress(data: bytes) -> bytes:
    """Raw LZMA2 at preset 9e, the dictionary sized to the input (≥ 4 KiB, a power of two).

    Preset 9's 64 MiB dictionary makes the encoder allocate and clear its match-finder
    tables first: ~50 ms for a 1 KiB map, which the mission charged to every round. A
    dictionary at least as long as the input leaves every match in reach, so the stream
    decodes with :data:`LZMA_FILTERS` (the decoder's dictionary only has to be as large)
    and is in practice byte-identical to the 64 MiB encoder's (a test checks real maps).
    """
    dict_size = min(max(4096, 1 << (len(data) - 1).bit_length()), LZMA_DICT_SIZE)
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=[{**LZMA_FILTERS[0], "dict_size": dict_size}])


MAP_CODINGS = ("lzma", "predictive")
CONTEXT_FILLS = ("representative", "prediction")


def pack_maps(maps: dict) -> bytes:
    """LZMA of the assignment maps flattened as int32, as the paper sends them (empty: no bytes).

    Kept for reporting the paper's map cost; streams use :func:`encode_maps`."""
    if not maps:
        return b""
    flat = np.concatenate([np.asarray(maps[s], dtype="<i4") for s in sorted(maps)])
    return lzma_compress(flat.tobytes())


def _zigzag(d: np.ndarray) -> np.ndarray:
    return np.where(d >= 0, 2 * d, -2 * d - 1)


def _unzigzag(z: np.ndarray) -> np.ndarray:
    return np.where(z % 2 == 0, z // 2, -(z + 1) // 2)


def _expected_new(flat: np.ndarray, form: str, start: int, sats: list, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(is_new, value a new entry would take) for a flattened map sequence."""
    if form == "dense":  # a new representative is the next dense number: one more than any before
        prev_max = np.maximum.accumulate(np.concatenate([[start - 1], flat[:-1]]))
        return flat == prev_max + 1, prev_max + 1
    expected = np.concatenate([int(s) * n + np.arange(n) for s in sats])  # references: own position
    return flat == expected, expected


def encode_maps(maps: dict, form: str, start: int, n: int) -> np.ndarray:
    """Prediction symbols of maps (in the dict's order): 0 for a newly coded vector, else
    1 + zigzag(entry − (previous copy + 1)) — overlaps copy runs of consecutive vectors, so
    nearly everything is 0 and LZMA codes it in a fraction of a bit per position."""
    sats = list(maps)
    flat = np.concatenate([np.asarray(maps[s], dtype=np.int64) for s in sats])
    is_new, _ = _expected_new(flat, form, start, sats, n)
    sym = np.zeros(flat.size, dtype=np.int64)
    copies = flat[~is_new]
    previous = np.concatenate([[-1], copies[:-1]])
    sym[~is_new] = 1 + _zigzag(copies - previous - 1)
    return sym


def decode_maps(sym: np.ndarray, form: str, start: int, sats: list, n: int) -> dict:
    """Inverse of :func:`encode_maps`."""
    sym = np.asarray(sym, dtype=np.int64)
    if np.any(sym < 0):
        raise BitstreamError("assignment map symbols out of range")
    is_new = sym == 0
    flat = np.empty(sym.size, dtype=np.int64)
    flat[~is_new] = np.cumsum(1 + _unzigzag(sym[~is_new] - 1)) - 1
    if form == "dense":
        flat[is_new] = start + np.arange(int(is_new.sum()))
    else:
        _, expected = _expected_new(np.zeros(sym.size, dtype=np.int64), form, start, sats, n)
        flat[is_new] = expected[is_new]
    return {int(s): flat[i * n:(i + 1) * n] for i, s in enumerate(sats)}


def _lzma(values: np.ndarray) -> bytes:
    if np.any(values > np.iinfo(np.int32).max) or np.any(values < np.iinfo(np.int32).min):
        raise BitstreamError("assignment map value does not fit int32")
    return lzma_compress(values.astype("<i4").tobytes())


def unpack_maps(data: bytes, expected_values: int | None = None) -> np.ndarray:
    """The int32 values of a map section. With ``expected_values`` (what the header declares) the
    decompressor never produces more than that: a section that would expand further (a crafted
    "LZMA bomb" under a valid CRC) is refused before it can allocate."""
    if expected_values is None:
        return np.frombuffer(lzma.decompress(data, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS), dtype="<i4")
    want = 4 * expected_values
    dec = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    out = dec.decompress(data, max_length=want)
    if len(out) != want or not dec.eof or dec.unused_data:
        raise BitstreamError(f"assignment maps: the section does not hold the {expected_values} values "
                             "the header declares")
    return np.frombuffer(out, dtype="<i4")


#: Bounds on header fields (a 16384² image is far beyond any patch or scene the tool codes).
MAX_IMAGE_PX = 16384
MAX_CHANNELS = 1024
LATENT_STRIDE, HYPER_STRIDE = 16, 64  # every architecture the container names downsamples this much


def check_header(ih: int, iw: int, c: int, yh: int, yw: int, zh: int, zw: int, retained: int, offset: int,
                 sat: int, map_sats, z_len: int, y_len: int) -> None:
    """Refuse a header whose declared sizes are inconsistent or out of bounds, before any allocation:
    the latent and hyper-latent grids follow from the image size and the codecs' strides, the
    retained count fits the grid, map ids are distinct, and the strings are not empty."""
    if not (1 <= ih <= MAX_IMAGE_PX and 1 <= iw <= MAX_IMAGE_PX):
        raise BitstreamError(f"satellite {sat}: image size {ih}x{iw} out of bounds (1..{MAX_IMAGE_PX})")
    if (yh, yw) != (math.ceil(ih / LATENT_STRIDE), math.ceil(iw / LATENT_STRIDE)):
        raise BitstreamError(f"satellite {sat}: latent grid {yh}x{yw} does not follow from the image {ih}x{iw}")
    if (zh, zw) != (math.ceil(ih / HYPER_STRIDE), math.ceil(iw / HYPER_STRIDE)):
        raise BitstreamError(f"satellite {sat}: hyper-latent grid {zh}x{zw} does not follow from the image {ih}x{iw}")
    if not 1 <= c <= MAX_CHANNELS:
        raise BitstreamError(f"satellite {sat}: {c} latent channels out of bounds (1..{MAX_CHANNELS})")
    if retained > yh * yw:
        raise BitstreamError(f"satellite {sat}: {retained} retained positions in a {yh}x{yw} grid")
    if len(set(map_sats)) != len(map_sats):
        raise BitstreamError(f"satellite {sat}: the map list names a satellite twice")
    if z_len == 0:
        raise BitstreamError(f"satellite {sat}: empty z string")
    if y_len == 0 and retained > 0:
        raise BitstreamError(f"satellite {sat}: empty y string for {retained} retained positions")


@dataclass
class SatelliteBitstream:
    model: str
    fingerprint: str
    lmbda: float | None
    satellite: int
    priority: int  # rank, 0 = highest
    image_shape: tuple[int, int]  # pixels (H, W)
    y_shape: tuple[int, int, int]  # (C, H, W)
    z_shape: tuple[int, int]
    offset: int  # first dense number of this satellite's retained representatives
    retained: int  # number of coded positions
    z_string: bytes
    y_string: bytes
    maps: dict = field(default_factory=dict)  # sat -> (H·W,) int array, the maps this stream carries
    map_form: str = "dense"  # 'dense' (paper: shared dense numbering) or 'references' (owner·H·W + q)
    map_coding: str = "predictive"  # 'lzma': the int32 map as is (paper); 'predictive': symbols of encode_maps
    context_fill: str = "representative"  # context models: see dlrc.context (hyperprior: unused)
    _map_bytes: bytes | None = field(default=None, repr=False, compare=False)  # as read by from_bytes

    def _prediction_order(self) -> np.ndarray | None:
        """Dense maps are predicted in decoding order (None: raster order, nothing to permute)."""
        from ..codecs import family
        from .context import decode_order

        fam = family(self.model)
        if self.map_form != "dense" or fam != "checkerboard":
            return None
        return decode_order(fam, self.y_shape[1], self.y_shape[2])

    def map_section(self) -> bytes:
        """The bytes of the map section as this stream sends it."""
        if self._map_bytes is not None:
            return self._map_bytes
        if not self.maps:
            return b""
        n = self.y_shape[1] * self.y_shape[2]
        if self.map_coding == "predictive":
            order = self._prediction_order()
            maps = self.maps if order is None else {s: np.asarray(m)[order] for s, m in self.maps.items()}
            return _lzma(encode_maps(maps, self.map_form, self.offset, n))
        return _lzma(np.concatenate([np.asarray(self.maps[s], dtype=np.int64) for s in self.maps]))

    def to_bytes(self) -> bytes:
        map_sats = list(self.maps)  # in the order given (priority order for joint dense maps)
        map_bytes = self.map_section()
        try:
            arch = ARCHITECTURE_CODES.index(self.model)
        except ValueError:
            raise BitstreamError(f"architecture {self.model!r} has no bitstream code") from None
        head = _FIXED.pack(
            MAGIC, VERSION, arch, MAP_FORMS.index(self.map_form), MAP_CODINGS.index(self.map_coding),
            CONTEXT_FILLS.index(self.context_fill), bytes.fromhex(self.fingerprint),
            float("nan") if self.lmbda is None else self.lmbda, self.satellite, self.priority, *self.image_shape,
            *self.y_shape, *self.z_shape, self.offset, self.retained, len(map_sats),
        ) + struct.pack(f"<{len(map_sats)}H", *map_sats) + _SECTIONS.pack(len(self.z_string), len(self.y_string),
                                                                          len(map_bytes))
        body = head + self.z_string + self.y_string + map_bytes
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes, expect_fingerprint: str | None = None) -> "SatelliteBitstream":
        if len(data) < 6 or data[:4] != MAGIC:
            raise BitstreamError("not a DLRC bitstream (bad magic)")
        if data[4] != VERSION:
            raise BitstreamError(f"unsupported DLRC bitstream version {data[4]} (this decoder reads {VERSION})")
        if len(data) < _FIXED.size + _SECTIONS.size + 4:
            raise BitstreamError("DLRC bitstream truncated (shorter than its header)")
        (crc,) = struct.unpack_from("<I", data, len(data) - 4)
        if zlib.crc32(data[:-4]) != crc:
            raise BitstreamError("DLRC bitstream checksum mismatch: truncated or corrupted")
        (_, _, arch, form, coding, fill, fp, lmbda, sat, prio, ih, iw, c, yh, yw, zh, zw, offset, retained,
         n_maps) = _FIXED.unpack_from(data, 0)
        pos = _FIXED.size
        if (arch >= len(ARCHITECTURE_CODES) or form >= len(MAP_FORMS) or coding >= len(MAP_CODINGS)
                or fill >= len(CONTEXT_FILLS)):
            raise BitstreamError(f"DLRC bitstream header unreadable: architecture code {arch}, map form {form}")
        try:
            map_sats = struct.unpack_from(f"<{n_maps}H", data, pos)
            pos += 2 * n_maps
            z_len, y_len, m_len = _SECTIONS.unpack_from(data, pos)
        except struct.error:
            raise BitstreamError("DLRC bitstream header unreadable") from None
        pos += _SECTIONS.size
        if pos + z_len + y_len + m_len != len(data) - 4:
            raise BitstreamError("DLRC bitstream length does not match its header")
        check_header(ih, iw, c, yh, yw, zh, zw, retained, offset, sat, map_sats, z_len, y_len)
        model, fingerprint = ARCHITECTURE_CODES[arch], fp.hex()
        if expect_fingerprint is not None and fingerprint != expect_fingerprint:
            raise BitstreamError(
                f"bitstream was made by model {model} ({fingerprint}), "
                f"the decoder has another model ({expect_fingerprint})"
            )
        z = data[pos:pos + z_len]
        y = data[pos + z_len:pos + z_len + y_len]
        m = data[pos + z_len + y_len:pos + z_len + y_len + m_len]
        maps = {}
        if map_sats:
            n = yh * yw
            try:
                flat = unpack_maps(m, n * len(map_sats))
            except lzma.LZMAError as exc:
                raise BitstreamError(f"satellite {sat}: assignment maps unreadable: {exc}") from None
            if MAP_CODINGS[coding] == "predictive":
                maps = decode_maps(flat, MAP_FORMS[form], offset, list(map_sats), n)
            else:
                maps = {int(s): flat[i * n:(i + 1) * n].astype(np.int64) for i, s in enumerate(map_sats)}
        out = cls(model, fingerprint, None if math.isnan(lmbda) else float(lmbda), sat, prio, (ih, iw), (c, yh, yw),
                  (zh, zw), offset, retained, z, y, maps, MAP_FORMS[form], MAP_CODINGS[coding], CONTEXT_FILLS[fill], m)
        order = out._prediction_order() if maps and MAP_CODINGS[coding] == "predictive" else None
        if order is not None:
            for s_, walked in maps.items():
                raster = np.empty_like(walked)
                raster[order] = walked
                maps[s_] = raster
        return out
