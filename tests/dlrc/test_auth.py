"""The container past the CRC: capture ids and members, the codec alone in the same container,
and streams authenticated by a mission key (HMAC-SHA256)."""

import hashlib
import hmac
import struct
import zlib

import pytest
import torch

from dlrc_agents.codecs.registry import build_model, codec_from_model
from dlrc_agents.dlrc.alone import decode_alone, encode_alone
from dlrc_agents.dlrc.auth import MissionKeyError, mission_key
from dlrc_agents.dlrc.bitstream import TAG_BYTES, BitstreamError, SatelliteBitstream, pack_container, split_container
from dlrc_agents.dlrc.onboard import DLRCConfig, encode_group
from dlrc_agents.dlrc.reconstructor import reconstruct

from tests.conftest import crops

KEY = bytes(range(32))
HEADER_OFFSETS = {"capture": 22}  # magic 4, six u8, fingerprint 8, λ f32


def _recrc(raw) -> bytes:
    return bytes(raw[:-4]) + struct.pack("<I", zlib.crc32(bytes(raw[:-4])))
OFFSETS = [(0, 0), (64, 32), (128, 128)]


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(3)
    return codec_from_model(build_model("bmshj2018-hyperprior", 32, 48), "bmshj2018-hyperprior", 32, 48)


@pytest.fixture(scope="module")
def captures(codec, scene):
    """Two captures of the same satellites, authenticated, and one unauthenticated."""
    cfg = DLRCConfig(map_transport="references")
    return {
        1: list(encode_group(codec, crops(scene, OFFSETS), cfg, capture=1, key=KEY).streams.values()),
        2: list(encode_group(codec, crops(scene, [(32, 0), (0, 96), (96, 96)]), cfg, capture=2, key=KEY).streams.values()),
        "plain": list(encode_group(codec, crops(scene, OFFSETS), cfg, capture=1).streams.values()),
    }


def test_authenticated_streams_decode_exactly_as_plain_ones(codec, captures):
    with_key = reconstruct(codec, captures[1], key=KEY, capture=1)
    plain = reconstruct(codec, captures["plain"], capture=1)
    for sat in plain:
        assert torch.equal(with_key[sat]["y_tilde"], plain[sat]["y_tilde"])
    # the tag is an HMAC-SHA256 over every byte before it, checked against Python's hmac directly
    data = captures[1][0]
    body, tag = data[:-4 - TAG_BYTES], data[-4 - TAG_BYTES:-4]
    assert tag == hmac.new(KEY, body, hashlib.sha256).digest()
    assert len(data) == len(captures["plain"][0]) + TAG_BYTES


def test_the_key_refuses_what_the_crc_cannot(codec, captures):
    good = captures[1]
    c = split_container(good[1])
    c.strings[1] = bytes(b ^ 0x01 for b in c.strings[1])  # y string altered, CRC recomputed, no key
    altered = pack_container(c)
    with pytest.raises(BitstreamError, match="not authenticated"):
        reconstruct(codec, [good[0], altered, good[2]], key=KEY)
    forged = pack_container(split_container(altered), key=b"\x07" * 32)  # re-signed under another key
    with pytest.raises(BitstreamError, match="authentication failed"):
        reconstruct(codec, [good[0], forged, good[2]], key=KEY)
    raw = bytearray(good[1])  # a flipped tag byte, CRC recomputed
    raw[-5] ^= 0xFF
    with pytest.raises(BitstreamError, match="authentication failed"):
        reconstruct(codec, [good[0], _recrc(raw), good[2]], key=KEY)
    with pytest.raises(BitstreamError, match="ground has no mission key"):
        reconstruct(codec, good)
    with pytest.raises(BitstreamError, match="not authenticated"):
        reconstruct(codec, captures["plain"], key=KEY)


def test_streams_of_another_capture_are_refused(codec, captures):
    replayed = [captures[1][0], captures[2][1], captures[1][2]]  # satellite 1's stream of capture 2
    with pytest.raises(BitstreamError, match="stream of capture 2 .* mixed with capture 1"):
        reconstruct(codec, replayed, key=KEY)
    with pytest.raises(BitstreamError, match="stream of capture 2, the ground expects 1"):
        reconstruct(codec, captures[2], key=KEY, capture=1)
    # relabelling the capture (tag kept, CRC recomputed) breaks the tag: a replay cannot be made to fit
    raw = bytearray(captures[2][1])
    at = HEADER_OFFSETS["capture"]
    raw[at:at + 4] = struct.pack("<I", 1)
    assert split_container(_recrc(raw)).fields["capture"] == 1
    with pytest.raises(BitstreamError, match="authentication failed"):
        reconstruct(codec, [captures[1][0], _recrc(raw), captures[1][2]], key=KEY)


def test_codec_alone_container_decodes_as_compressai(codec, scene):
    x = crops(scene, [(0, 0)])[0]
    out = codec.model.compress(x)
    reference = codec.model.decompress(out["strings"], out["shape"])["x_hat"].clamp(0, 1)
    for key in (None, KEY):
        data = encode_alone(codec, x, satellite=3, capture=9, members=(1, 3)).to_bytes(key)
        assert len(data) > sum(len(s[0]) for s in out["strings"])  # the strings, then header, CRC (and tag)
        assert torch.equal(decode_alone(codec, data, key, capture=9), reference)
        p = SatelliteBitstream.from_bytes(data, key=key)
        assert p.codec_alone and p.members == (1, 3) and p.capture == 9
    with pytest.raises(BitstreamError, match="capture 9, the ground expects 8"):
        decode_alone(codec, data, KEY, capture=8)
    c = split_container(data)
    c.strings[0] = c.strings[0][:-1]
    with pytest.raises(BitstreamError, match="authentication failed"):
        decode_alone(codec, pack_container(c, b"\x01" * 32), KEY)
    dlrc_stream = list(encode_group(codec, crops(scene, OFFSETS[:2]), DLRCConfig()).streams.values())[0]
    with pytest.raises(BitstreamError, match="DLRC stream where the codec alone"):
        decode_alone(codec, dlrc_stream)
    with pytest.raises(BitstreamError, match="codec-alone stream among DLRC"):
        reconstruct(codec, [encode_alone(codec, x).to_bytes()])


def test_mission_key_comes_from_the_environment(tmp_path):
    assert mission_key({}) is None
    assert mission_key({"DLRC_MISSION_KEY": KEY.hex()}) == KEY
    path = tmp_path / "mission.key"
    path.write_bytes(KEY)
    assert mission_key({"DLRC_MISSION_KEY_FILE": str(path)}) == KEY
    with pytest.raises(MissionKeyError, match="DLRC_MISSION_KEY: the mission key has 4 bytes"):
        mission_key({"DLRC_MISSION_KEY": "00112233"})
    with pytest.raises(MissionKeyError, match="DLRC_MISSION_KEY: not hexadecimal"):
        mission_key({"DLRC_MISSION_KEY": "zz"})
    with pytest.raises(MissionKeyError, match="missing.key: cannot read"):
        mission_key({"DLRC_MISSION_KEY_FILE": str(tmp_path / "missing.key")})
