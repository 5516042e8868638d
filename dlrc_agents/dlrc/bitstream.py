"""Bitstream container of one satellite's DLRC output, decodable from the bytes alone.

Layout (little-endian), version 1::

    magic  b"DLRC"        4 bytes
    version               u8
    header length         u32, then the header: UTF-8 JSON (model, fingerprint, λ,
                          shapes, satellite id, priority rank, offsets, sections)
    z string, y string, map section (LZMA of the int32 assignment maps it carries)
    CRC-32 of everything before it   u32

The ground refuses a stream whose magic, version, length or checksum is wrong,
or whose model fingerprint differs from the decoder's model, with a clear
:class:`BitstreamError`, before any entropy decoding.
"""

from __future__ import annotations

import json
import lzma
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"DLRC"
VERSION = 1


class BitstreamError(ValueError):
    """A stream that cannot be decoded: foreign, truncated, corrupted or for another model."""


def pack_maps(maps: dict) -> bytes:
    """LZMA of the assignment maps, flattened in satellite-id order as int32 (empty: no bytes)."""
    if not maps:
        return b""
    flat = np.concatenate([np.asarray(maps[s], dtype="<i4") for s in sorted(maps)])
    return lzma.compress(flat.tobytes(), preset=9 | lzma.PRESET_EXTREME)


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

    def to_bytes(self) -> bytes:
        map_sats = sorted(self.maps)
        map_bytes = pack_maps(self.maps)
        header = {
            "model": self.model, "fingerprint": self.fingerprint, "lambda": self.lmbda,
            "satellite": self.satellite, "priority": self.priority, "image_shape": list(self.image_shape),
            "y_shape": list(self.y_shape), "z_shape": list(self.z_shape), "offset": self.offset,
            "retained": self.retained, "map_satellites": map_sats,
            "sections": [len(self.z_string), len(self.y_string), len(map_bytes)],
        }
        head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
        body = MAGIC + struct.pack("<BI", VERSION, len(head)) + head + self.z_string + self.y_string + map_bytes
        return body + struct.pack("<I", zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes, expect_fingerprint: str | None = None) -> "SatelliteBitstream":
        if len(data) < 13 or data[:4] != MAGIC:
            raise BitstreamError("not a DLRC bitstream (bad magic)")
        version, head_len = struct.unpack_from("<BI", data, 4)
        if version != VERSION:
            raise BitstreamError(f"unsupported DLRC bitstream version {version} (this decoder reads {VERSION})")
        (crc,) = struct.unpack_from("<I", data, len(data) - 4)
        if zlib.crc32(data[:-4]) != crc:
            raise BitstreamError("DLRC bitstream checksum mismatch: truncated or corrupted")
        try:
            header = json.loads(data[9:9 + head_len])
            z_len, y_len, m_len = header["sections"]
        except (ValueError, KeyError) as exc:
            raise BitstreamError(f"DLRC bitstream header unreadable: {exc}") from None
        start = 9 + head_len
        if start + z_len + y_len + m_len != len(data) - 4:
            raise BitstreamError("DLRC bitstream length does not match its header")
        if expect_fingerprint is not None and header["fingerprint"] != expect_fingerprint:
            raise BitstreamError(
                f"bitstream was made by model {header['model']} ({header['fingerprint']}), "
                f"the decoder has another model ({expect_fingerprint})"
            )
        z = data[start:start + z_len]
        y = data[start + z_len:start + z_len + y_len]
        m = data[start + z_len + y_len:start + z_len + y_len + m_len]
        maps = {}
        if header["map_satellites"]:
            flat = np.frombuffer(lzma.decompress(m), dtype="<i4")
            n = header["y_shape"][1] * header["y_shape"][2]
            for i, sat in enumerate(header["map_satellites"]):
                maps[int(sat)] = flat[i * n:(i + 1) * n].astype(np.int64)
        return cls(header["model"], header["fingerprint"], header["lambda"], header["satellite"], header["priority"],
                   tuple(header["image_shape"]), tuple(header["y_shape"]), tuple(header["z_shape"]),
                   header["offset"], header["retained"], z, y, maps)
