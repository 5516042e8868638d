"""The ground's work is bounded by what it expects: a container declaring a larger image than the
capture size (or, standalone, than the absolute limit) is refused from its header, in well under a
second and with no allocation, even with a consistent header and a recomputed CRC."""

import resource
import time

import numpy as np
import pytest
import torch

from dlrc_agents.codecs.registry import build_model, codec_from_model
from dlrc_agents.dlrc.alone import decode_alone, encode_alone
from dlrc_agents.dlrc.bitstream import (DEFAULT_MAX_DECODE_PX, HYPER_STRIDE, LATENT_STRIDE, BitstreamError,
                                        DecodeBounds, lzma_compress, pack_container, split_container)
from dlrc_agents.dlrc.onboard import DLRCConfig, encode_group
from dlrc_agents.dlrc.reconstructor import reconstruct

from tests.conftest import crops


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    return codec_from_model(build_model("bmshj2018-hyperprior", 32, 48), "bmshj2018-hyperprior", 32, 48)


def _declare(stream: bytes, h: int, w: int, zero_maps: bool = False) -> bytes:
    """The stream with another declared image size, every grid consistent with it, CRC recomputed (no key)."""
    c = split_container(stream)
    c.fields.update(image_h=h, image_w=w, latent_h=-(-h // LATENT_STRIDE), latent_w=-(-w // LATENT_STRIDE),
                    z_h=-(-h // HYPER_STRIDE), z_w=-(-w // HYPER_STRIDE))
    if c.fields["flags"] & 1:  # codec alone: every position coded
        c.fields["retained"] = c.fields["latent_h"] * c.fields["latent_w"]
    if zero_maps:  # dense maps of all-zero symbols for the whole declared grid (the outside campaign's case)
        c.map_section = lzma_compress(bytes(4 * c.fields["latent_h"] * c.fields["latent_w"] * len(c.map_sats)))
    return pack_container(c)


def _refused_quickly(call, match):
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(BitstreamError, match=match):
        call()
    assert time.perf_counter() - t0 < 1.0
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024 < 100 * 2**20


def test_a_dlrc_round_declaring_4096_squared_is_refused_standalone(codec, scene):
    group = encode_group(codec, crops(scene, [(0, 0), (64, 32)]), DLRCConfig())
    top, other = (group.streams[s] for s in (0, 1))
    big = _declare(top, 4096, 4096, zero_maps=True)
    _refused_quickly(lambda: reconstruct(codec, [big, other], synthesize=False), "4096x4096 image, more than")
    assert 4096 * 4096 > DEFAULT_MAX_DECODE_PX


@pytest.mark.parametrize("size", [(8192, 8192), (16383, 8192)])
def test_codec_alone_streams_declaring_huge_images_are_refused(codec, scene, size):
    x = crops(scene, [(0, 0)])[0]
    big = _declare(encode_alone(codec, x, 0, 0, (0,)).to_bytes(), *size)
    _refused_quickly(lambda: decode_alone(codec, big), f"{size[0]}x{size[1]} image")


def test_a_declared_size_other_than_the_expected_capture_is_refused(codec, scene):
    group = encode_group(codec, crops(scene, [(0, 0), (64, 32)]), DLRCConfig(map_transport="references"))
    bounds = DecodeBounds.expect((256, 256), 2)
    assert len(reconstruct(codec, list(group.streams.values()), synthesize=False, bounds=bounds)) == 2
    other = _declare(group.streams[1], 512, 512)
    _refused_quickly(lambda: reconstruct(codec, [group.streams[0], other], bounds=bounds), "expects 256x256")
    x = crops(scene, [(0, 0)])[0]
    alone = _declare(encode_alone(codec, x, 0, 0, (0,)).to_bytes(), 128, 128)
    _refused_quickly(lambda: decode_alone(codec, alone, bounds=bounds), "expects 256x256")


def test_more_members_than_expected_are_refused(codec, scene):
    group = encode_group(codec, crops(scene, [(0, 0), (64, 32), (32, 96)]), DLRCConfig(map_transport="references"))
    with pytest.raises(BitstreamError, match="at most 2"):
        reconstruct(codec, list(group.streams.values()), bounds=DecodeBounds.expect((256, 256), 2))


def test_bounds_from_sizes():
    b = DecodeBounds.expect([(448, 448), (512, 512)], 3)
    assert b.images == {(448, 448), (512, 512)} and b.max_pixels == 512 * 512 and b.members == 3
    assert DecodeBounds.expect((256, 256)).images == {(256, 256)}
    assert DecodeBounds().max_pixels is None  # the defaults: 1024², 512² for autoregressive models
