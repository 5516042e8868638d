"""Bitstream container of one satellite's output, decodable from the bytes alone.

Both worlds use it: DLRC streams (the retained latent vectors and the assignment maps) and
the codec alone (CompressAI's own strings, as ``compress()`` writes them), so the baseline
is as protected as DLRC and every byte either world sends is counted the same way.

Layout (little-endian), version 4: a fixed binary header, because every byte goes over
a downlink (a JSON header cost ~250 bytes, 0.03 bpp at 256²)::

    magic b"DLRC" (4) | version u8 | flags u8 (1: codec alone, 2: authenticated, 4: predictive)
    architecture code u8 | map form u8 | map coding u8
    context fill u8 (context models: what a copy from another satellite put in the context)
    fingerprint 8 bytes (sha256 prefix of the weights) | λ f32 (NaN: unknown)
    capture id u32 | satellite u16 | priority rank u16 | image H, W u16 | latent C, H, W u16
    z H, W u16 | dense offset u32 | retained positions u32 | members u8 | map satellites u8
    the capture's member ids u16 each | the map satellites' ids u16 each
    strings u8, then each one's length u32 | map section length u32
    strings (DLRC: z then y; predictive DLRC (:mod:`.predict`): z, y, then its side string;
    codec alone: CompressAI's strings in its order)
    map section: raw LZMA2 of int32 — the assignment maps it carries, in the order of the
    header's list, either as they are ('lzma', the paper) or as the prediction symbols of
    :func:`encode_maps` ('predictive', the default; dense maps are walked in the codec's
    decoding order, where each new number is the next one)
    HMAC-SHA256 of everything before it (32 bytes, only when authenticated)
    CRC-32 of everything before it u32

The capture id and member list name the observation the stream belongs to: the ground
refuses a set of streams from different captures, or one from a satellite that is not a
member. The CRC-32 catches accidents; with a mission key (:mod:`.auth`) the HMAC refuses
any stream that was altered, forged or replayed into another capture.

The ground refuses a stream whose magic, version, length, checksum or tag is wrong, whose
declared sizes are inconsistent, or whose model fingerprint differs from the decoder's
model, with a clear :class:`BitstreamError`, before any entropy decoding.
"""

from __future__ import annotations

import hashlib
import hmac
import lzma
import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"DLRC"
VERSION = 5  # 5: section lengths and predictive map symbols as LEB128 varints (were u32 / int32)
#: Architecture codes of the header (append only: codes are part of the format).
ARCHITECTURE_CODES = ("bmshj2018-hyperprior", "mbt2018-mean", "mbt2018", "cheng2020-anchor", "cheng2020-attn",
                      "elic2022-official", "elic2022-chandelier",
                      "jpeg2000",  # codec alone only: one J2K codestream (see .alone)
                      "bmshj2018-hyperprior-vr")  # the header's λ and fingerprint name the level coded at
#: The fixed header, field by field (names as :func:`split_container` returns them).
HEADER_FIELDS = ("magic", "version", "flags", "architecture", "map_form", "map_coding", "context_fill",
                 "fingerprint", "lmbda", "capture", "satellite", "priority", "image_h", "image_w", "latent_c",
                 "latent_h", "latent_w", "z_h", "z_w", "offset", "retained", "n_members", "n_maps")
_FIXED = struct.Struct("<4sBBBBBB8sfIHHHHHHHHHIIBB")
FLAG_CODEC_ALONE, FLAG_AUTHENTICATED, FLAG_PREDICTIVE = 1, 2, 4
TAG_BYTES = 32  # HMAC-SHA256
MAX_STRINGS = 64  # ELIC writes 11 strings; no codec the container names writes more than a few dozen


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


#: A predictive map symbol takes at most this many varint bytes (7 bits each): < 2^35, beyond any map's
#: zigzagged jump (references are < 2^31).
_VARINT_MAX_BYTES = 5


def pack_varints(values: np.ndarray) -> bytes:
    """Non-negative integers as LEB128 varints (7 bits a byte, high bit: more follow). A predictive map's
    symbols are nearly all 0 or 1: a byte each instead of int32's four, which LZMA then codes in fewer
    bytes (on the Giza pair's reference map 26 bytes instead of 41, measured). Vectorised by hand: the
    standard library and numpy have no varint packer."""
    v = np.asarray(values, dtype=np.int64)
    if v.size and (v.min() < 0 or v.max() >= 1 << (7 * _VARINT_MAX_BYTES)):
        raise BitstreamError("a value out of the varint range (0 to 2^35 − 1)")
    v = v.astype(np.uint64)
    nbytes = np.ones(v.size, dtype=np.int64)
    for k in range(1, _VARINT_MAX_BYTES):
        nbytes += v >= np.uint64(1 << (7 * k))
    starts = np.concatenate([[0], np.cumsum(nbytes)[:-1]]).astype(np.int64)
    out = np.zeros(int(nbytes.sum()), dtype=np.uint8)
    for k in range(_VARINT_MAX_BYTES):
        has = nbytes > k
        more = np.where(nbytes[has] > k + 1, 0x80, 0).astype(np.uint64)
        out[starts[has] + k] = ((v[has] >> np.uint64(7 * k)) & np.uint64(0x7F)) | more
    return out.tobytes()


def unpack_varints(data: bytes, count: int) -> np.ndarray:
    """Exactly ``count`` LEB128 varints from ``data`` (:func:`pack_varints`); anything else is refused."""
    b = np.frombuffer(data, dtype=np.uint8)
    ends = np.nonzero((b & 0x80) == 0)[0]
    if len(ends) != count or (b.size and ends[-1] != b.size - 1) or (count == 0 and b.size):
        raise BitstreamError(f"assignment maps: the section does not hold the {count} values the header declares")
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if lengths.max() > _VARINT_MAX_BYTES:
        raise BitstreamError("assignment maps: a symbol longer than the varint range")
    group = np.repeat(np.arange(count), lengths)
    shift = (np.arange(b.size) - starts[group]) * 7
    return np.add.reduceat((b & 0x7F).astype(np.int64) << shift, starts)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """One LEB128 varint of at most :data:`_VARINT_MAX_BYTES` bytes at ``pos``: (value, position after it)."""
    value = 0
    for k in range(_VARINT_MAX_BYTES):
        if pos + k >= len(data):
            raise BitstreamError("DLRC bitstream header unreadable (a section length runs past the end)")
        byte = data[pos + k]
        value |= (byte & 0x7F) << (7 * k)
        if not byte & 0x80:
            return value, pos + k + 1
    raise BitstreamError("DLRC bitstream header unreadable (a section length longer than the varint range)")


def _lzma(values: np.ndarray) -> bytes:
    if np.any(values > np.iinfo(np.int32).max) or np.any(values < np.iinfo(np.int32).min):
        raise BitstreamError("assignment map value does not fit int32")
    return lzma_compress(values.astype("<i4").tobytes())


def unpack_map_bytes(data: bytes, max_bytes: int) -> bytes:
    """A map section's LZMA decompressed to at most ``max_bytes`` (what the header's sizes allow): a section
    that would expand further (a crafted "LZMA bomb" under a valid CRC) is refused before it can allocate."""
    dec = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    out = dec.decompress(data, max_length=max_bytes + 1)
    if len(out) > max_bytes or not dec.eof or dec.unused_data:
        raise BitstreamError("assignment maps: the section does not hold the values the header declares "
                             f"(it expands past {max_bytes} bytes)")
    return out


def unpack_maps(data: bytes, expected_values: int | None = None) -> np.ndarray:
    """The int32 values of a map section; with ``expected_values`` (what the header declares) exactly
    that many, decompressed with :func:`unpack_map_bytes`' bound."""
    if expected_values is None:
        return np.frombuffer(lzma.decompress(data, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS), dtype="<i4")
    out = unpack_map_bytes(data, 4 * expected_values)
    if len(out) != 4 * expected_values:
        raise BitstreamError(f"assignment maps: the section does not hold the {expected_values} values "
                             "the header declares")
    return np.frombuffer(out, dtype="<i4")


#: Bounds on header fields (a 16384² image is far beyond any patch or scene the tool codes).
MAX_IMAGE_PX = 16384
MAX_CHANNELS = 1024
LATENT_STRIDE, HYPER_STRIDE = 16, 64  # every architecture the container names downsamples this much


#: What a standalone decode (no expected capture size) accepts at most [pixels a stream]: 1024². A
#: larger declared image is refused from its header, before any allocation or entropy decoding.
#: Decoders that know the capture size pass it (:class:`DecodeBounds`), which is tighter.
DEFAULT_MAX_DECODE_PX = 1024 * 1024
#: The same for the autoregressive context models, which decode position by position in Python: 512²
#: (about 2.5 s here; 1024² took 10 s).
DEFAULT_MAX_DECODE_PX_SERIAL = 512 * 512
SERIAL_ARCHITECTURES = ("mbt2018", "cheng2020-anchor", "cheng2020-attn")


@dataclass(frozen=True)
class DecodeBounds:
    """What the ground expects of the streams it decodes, checked on the header before any allocation:
    ``images`` the image sizes (H, W) a stream may declare (None: any within ``max_pixels``), ``members``
    the most satellites a capture may name, ``max_pixels`` the absolute limit a stream's image."""

    images: frozenset | None = None
    members: int | None = None
    max_pixels: int | None = None  # None: DEFAULT_MAX_DECODE_PX, or _SERIAL for the autoregressive models

    @classmethod
    def expect(cls, sizes, members: int | None = None) -> "DecodeBounds":
        """Bounds for captures of the given (H, W) sizes (one pair, or an iterable of pairs)."""
        one = isinstance(sizes, tuple) and len(sizes) == 2 and all(isinstance(v, int) for v in sizes)
        pairs = frozenset([sizes] if one else (tuple(v) for v in sizes))
        return cls(pairs, members, max(h * w for h, w in pairs))

    def check(self, f: dict, members) -> None:
        sat, size = f["satellite"], (f["image_h"], f["image_w"])
        if self.images is not None and size not in self.images:
            raise BitstreamError(f"satellite {sat}: declares a {size[0]}x{size[1]} image; the ground expects "
                                 + " or ".join(f"{h}x{w}" for h, w in sorted(self.images)))
        limit = self.max_pixels
        if limit is None:
            serial = f["architecture"] < len(ARCHITECTURE_CODES) and ARCHITECTURE_CODES[f["architecture"]] in SERIAL_ARCHITECTURES
            limit = DEFAULT_MAX_DECODE_PX_SERIAL if serial else DEFAULT_MAX_DECODE_PX
        if size[0] * size[1] > limit:
            raise BitstreamError(f"satellite {sat}: declares a {size[0]}x{size[1]} image, more than the "
                                 f"{limit} pixels this decoder accepts")
        if self.members is not None and len(members) > self.members:
            raise BitstreamError(f"satellite {sat}: names {len(members)} satellites in its capture; the ground "
                                 f"expects at most {self.members}")


@dataclass
class Container:
    """A container split into its parts, before any check past the length and the CRC-32
    (what :func:`split_container` returns and :func:`pack_container` writes)."""

    fields: dict  # HEADER_FIELDS → value (n_members and n_maps follow from the lists when packed)
    members: tuple
    map_sats: tuple
    strings: list
    map_section: bytes
    tag: bytes = b""


def pack_container(c: Container, key: bytes | None = None) -> bytes:
    """The bytes of ``c``; with a mission ``key`` the HMAC-SHA256 tag is computed and the
    authenticated flag set, without one it is cleared."""
    fields = dict(c.fields, n_members=len(c.members), n_maps=len(c.map_sats))
    fields["flags"] = (fields["flags"] & ~FLAG_AUTHENTICATED) | (FLAG_AUTHENTICATED if key else 0)
    try:
        head = (_FIXED.pack(*(fields[f] for f in HEADER_FIELDS)) + struct.pack(f"<{len(c.members)}H", *c.members)
                + struct.pack(f"<{len(c.map_sats)}H", *c.map_sats)
                + struct.pack("<B", len(c.strings)) + pack_varints([*map(len, c.strings), len(c.map_section)]))
    except struct.error as exc:
        raise BitstreamError(f"satellite {fields['satellite']}: header field out of range ({exc})") from None
    body = head + b"".join(c.strings) + c.map_section
    if key:
        body += hmac.new(key, body, hashlib.sha256).digest()
    return body + struct.pack("<I", zlib.crc32(body))


def split_container(data: bytes) -> Container:
    """Parts of a container whose magic, version, CRC-32 and section lengths hold (nothing more
    is checked: see :meth:`SatelliteBitstream.from_bytes`)."""
    if len(data) < 6 or data[:4] != MAGIC:
        raise BitstreamError("not a DLRC bitstream (bad magic)")
    if data[4] != VERSION:
        raise BitstreamError(f"unsupported DLRC bitstream version {data[4]} (this decoder reads {VERSION})")
    if len(data) < _FIXED.size + 6:  # string count, map length, CRC-32
        raise BitstreamError("DLRC bitstream truncated (shorter than its header)")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != crc:
        raise BitstreamError("DLRC bitstream checksum mismatch: truncated or corrupted")
    fields = dict(zip(HEADER_FIELDS, _FIXED.unpack_from(data, 0)))
    pos = _FIXED.size
    try:
        members = struct.unpack_from(f"<{fields['n_members']}H", data, pos)
        pos += 2 * len(members)
        map_sats = struct.unpack_from(f"<{fields['n_maps']}H", data, pos)
        pos += 2 * len(map_sats)
        (n_strings,) = struct.unpack_from("<B", data, pos)
        if n_strings > MAX_STRINGS:
            raise BitstreamError(f"satellite {fields['satellite']}: {n_strings} strings (at most {MAX_STRINGS})")
        pos += 1
        values = []
        for _ in range(n_strings + 1):
            value, pos = _read_varint(data, pos)
            values.append(value)
        *lengths, m_len = values
    except struct.error:
        raise BitstreamError("DLRC bitstream header unreadable") from None
    tag_len = TAG_BYTES if fields["flags"] & FLAG_AUTHENTICATED else 0
    if pos + sum(lengths) + m_len + tag_len != len(data) - 4:
        raise BitstreamError(f"satellite {fields['satellite']}: bitstream length does not match its header")
    strings = []
    for n in lengths:
        strings.append(data[pos:pos + n])
        pos += n
    return Container(fields, members, map_sats, strings, data[pos:pos + m_len],
                     data[pos + m_len:pos + m_len + tag_len])


def check_tag(data: bytes, c: Container, key: bytes | None) -> None:
    """With a mission key, the stream must carry a valid HMAC-SHA256 over all its bytes before
    the tag; without one, an authenticated stream cannot be trusted and is refused too."""
    sat = c.fields["satellite"]
    if key is None:
        if c.tag:
            raise BitstreamError(f"satellite {sat}: the stream is authenticated and the ground has no mission key")
        return
    if not c.tag:
        raise BitstreamError(f"satellite {sat}: the stream is not authenticated and the ground requires a mission key")
    body = data[:len(data) - 4 - TAG_BYTES]
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), c.tag):
        raise BitstreamError(f"satellite {sat}: authentication failed (altered, forged, or coded under another key)")


def check_header(f: dict, members, map_sats, strings: list) -> None:
    """Refuse a header whose declared sizes are inconsistent or out of bounds, before any allocation:
    the latent and hyper-latent grids follow from the image size and the codecs' strides, the
    retained count fits the grid, the satellite and its map ids are members of the capture, ids are
    distinct, and the strings are not empty."""
    sat, ih, iw, c = f["satellite"], f["image_h"], f["image_w"], f["latent_c"]
    yh, yw, zh, zw, retained = f["latent_h"], f["latent_w"], f["z_h"], f["z_w"], f["retained"]
    if f["flags"] & ~(FLAG_CODEC_ALONE | FLAG_AUTHENTICATED | FLAG_PREDICTIVE):
        raise BitstreamError(f"satellite {sat}: unknown flags {f['flags']:#x}")
    if f["flags"] & FLAG_CODEC_ALONE and f["flags"] & FLAG_PREDICTIVE:
        raise BitstreamError(f"satellite {sat}: a codec-alone stream cannot be predictive")
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
    if len(set(members)) != len(members) or sat not in members:
        raise BitstreamError(f"satellite {sat}: the member list {list(members)[:8]} is not a set holding it")
    if len(set(map_sats)) != len(map_sats) or not set(map_sats) <= set(members):
        raise BitstreamError(f"satellite {sat}: the map list names a satellite twice or one outside the capture")
    if f["flags"] & FLAG_CODEC_ALONE:
        if map_sats or retained != yh * yw or f["offset"] != 0 or not strings or not all(strings):
            raise BitstreamError(f"satellite {sat}: a codec-alone stream with maps, empty strings or partial coding")
        return
    if f["flags"] & FLAG_PREDICTIVE:
        # every position is coded (alone or as a residual); the stream's own reference map says which
        # positions have a reference, so it carries exactly that map
        if (len(strings) != 3 or retained != yh * yw or f["offset"] != 0 or tuple(map_sats) not in ((sat,), ())
                or MAP_FORMS[f["map_form"]] != "references"):
            raise BitstreamError(f"satellite {sat}: a predictive stream holds z, y and side strings, every position "
                                 "and its own reference map (or none: it references nothing)")
        if not strings[0] or not strings[1]:
            raise BitstreamError(f"satellite {sat}: empty z or y string")
        return
    if len(strings) != 2:
        raise BitstreamError(f"satellite {sat}: a DLRC stream holds 2 strings (z, y), not {len(strings)}")
    if not strings[0]:
        raise BitstreamError(f"satellite {sat}: empty z string")
    if not strings[1] and retained > 0:
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
    capture: int = 0  # the observation this stream belongs to (a round or capture id, u32)
    members: tuple = ()  # the capture's satellites (empty: this satellite alone)
    codec_strings: tuple = ()  # codec alone: CompressAI's strings in its order (then z/y_string are unused)
    side_string: bytes | None = None  # predictive DLRC (.predict): β, the flags' frequency and rANS flags
    _map_bytes: bytes | None = field(default=None, repr=False, compare=False)  # as read by from_bytes

    @property
    def codec_alone(self) -> bool:
        return bool(self.codec_strings)

    @property
    def predictive(self) -> bool:
        return self.side_string is not None

    def _prediction_order(self) -> np.ndarray | None:
        """Dense maps are predicted in decoding order (None: raster order, nothing to permute)."""
        from dlrc_agents.codecs.registry import family
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
            return lzma_compress(pack_varints(encode_maps(maps, self.map_form, self.offset, n)))
        return _lzma(np.concatenate([np.asarray(self.maps[s], dtype=np.int64) for s in self.maps]))

    def to_bytes(self, key: bytes | None = None) -> bytes:
        """The container's bytes; with a mission ``key`` (:mod:`.auth`) authenticated by HMAC-SHA256."""
        try:
            arch = ARCHITECTURE_CODES.index(self.model)
        except ValueError:
            raise BitstreamError(f"architecture {self.model!r} has no bitstream code") from None
        flags = (FLAG_CODEC_ALONE if self.codec_alone else 0) | (FLAG_PREDICTIVE if self.predictive else 0)
        values = (MAGIC, VERSION, flags, arch, MAP_FORMS.index(self.map_form),
                  MAP_CODINGS.index(self.map_coding), CONTEXT_FILLS.index(self.context_fill),
                  bytes.fromhex(self.fingerprint), float("nan") if self.lmbda is None else self.lmbda, self.capture,
                  self.satellite, self.priority, *self.image_shape, *self.y_shape, *self.z_shape, self.offset,
                  self.retained, 0, 0)
        strings = list(self.codec_strings) if self.codec_alone else [self.z_string, self.y_string]
        if self.predictive:
            strings.append(self.side_string)
        members = tuple(self.members) or (self.satellite,)
        # map satellites in the order given (priority order for joint dense maps)
        return pack_container(Container(dict(zip(HEADER_FIELDS, values)), members, tuple(self.maps), strings,
                                        self.map_section()), key)

    @classmethod
    def from_bytes(cls, data: bytes, expect_fingerprint: str | None = None,
                   key: bytes | None = None, bounds: DecodeBounds | None = None) -> "SatelliteBitstream":
        """Parse and check a container; ``key``: the mission key the ground holds (None: none);
        ``bounds``: the sizes the ground expects (default: :data:`DEFAULT_MAX_DECODE_PX` alone)."""
        c = split_container(data)
        check_tag(data, c, key)
        f = c.fields
        sat = f["satellite"]
        if (f["architecture"] >= len(ARCHITECTURE_CODES) or f["map_form"] >= len(MAP_FORMS)
                or f["map_coding"] >= len(MAP_CODINGS) or f["context_fill"] >= len(CONTEXT_FILLS)):
            raise BitstreamError(f"satellite {sat}: header unreadable: architecture code {f['architecture']}, "
                                 f"map form {f['map_form']}, map coding {f['map_coding']}")
        check_header(f, c.members, c.map_sats, c.strings)
        (bounds or DecodeBounds()).check(f, c.members)
        model, fingerprint = ARCHITECTURE_CODES[f["architecture"]], f["fingerprint"].hex()
        if expect_fingerprint is not None and fingerprint != expect_fingerprint:
            raise BitstreamError(
                f"satellite {sat}: bitstream was made by model {model} ({fingerprint}), "
                f"the decoder has another model ({expect_fingerprint})"
            )
        form, coding = MAP_FORMS[f["map_form"]], MAP_CODINGS[f["map_coding"]]
        yh, yw = f["latent_h"], f["latent_w"]
        maps = {}
        if c.map_sats:
            n = yh * yw
            try:
                if coding == "predictive":
                    flat = unpack_varints(unpack_map_bytes(c.map_section, _VARINT_MAX_BYTES * n * len(c.map_sats)),
                                          n * len(c.map_sats))
                else:
                    flat = unpack_maps(c.map_section, n * len(c.map_sats))
            except lzma.LZMAError as exc:
                raise BitstreamError(f"satellite {sat}: assignment maps unreadable: {exc}") from None
            if coding == "predictive":
                maps = decode_maps(flat, form, f["offset"], list(c.map_sats), n)
            else:
                maps = {int(s): flat[i * n:(i + 1) * n].astype(np.int64) for i, s in enumerate(c.map_sats)}
        elif c.map_section:
            raise BitstreamError(f"satellite {sat}: a map section without map satellites")
        alone = bool(f["flags"] & FLAG_CODEC_ALONE)
        lmbda = f["lmbda"]
        out = cls(model, fingerprint, None if math.isnan(lmbda) else float(lmbda), sat, f["priority"],
                  (f["image_h"], f["image_w"]), (f["latent_c"], yh, yw), (f["z_h"], f["z_w"]), f["offset"],
                  f["retained"], b"" if alone else c.strings[0], b"" if alone else c.strings[1], maps, form, coding,
                  CONTEXT_FILLS[f["context_fill"]], f["capture"], tuple(c.members),
                  tuple(c.strings) if alone else (),
                  c.strings[2] if f["flags"] & FLAG_PREDICTIVE else None, c.map_section)
        order = out._prediction_order() if maps and coding == "predictive" else None
        if order is not None:
            for s_, walked in maps.items():
                raster = np.empty_like(walked)
                raster[order] = walked
                maps[s_] = raster
        return out
