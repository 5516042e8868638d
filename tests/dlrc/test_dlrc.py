"""DLRC on real CompressAI models (randomly initialised, after update()): hashing, de-duplication,
bit-exact ground decoding from bytes alone, and refusal of bad streams and checkpoints."""

import numpy as np
import pytest
import torch

from dlrc_agents.codecs.registry import CodecError, build_model, codec_from_model, export_checkpoint, load_checkpoint
from dlrc_agents.dlrc.arbiter import arbitrate
from dlrc_agents.dlrc.bitstream import BitstreamError, SatelliteBitstream
from dlrc_agents.dlrc.onboard import DLRCConfig, encode_group
from dlrc_agents.dlrc.reconstructor import reconstruct
from dlrc_agents.dlrc.recognizer import Recognizer, mix64
from dlrc_agents.dlrc.selector import apply_strategy, select

from tests.conftest import crops, random_checkpoint

torch.manual_seed(0)


@pytest.fixture(scope="module", params=["bmshj2018-hyperprior", "mbt2018-mean"])
def codec(request):
    torch.manual_seed(1)
    return codec_from_model(build_model(request.param, 32, 48), request.param, 32, 48)


# ----------------------------------------------------------------------- Recognizer


def _naive_signature(rotations, v):
    """One vector at a time, straight from the paper's definition."""
    sig = np.zeros(1, dtype=np.uint64)
    for R in rotations:
        p = R @ v
        j = int(np.argmax(np.abs(p)))
        sig = mix64(np.array([2 * j + (p[j] < 0)]), sig)
    return int(sig[0])


def test_recognizer_matches_definition_and_is_shared():
    rng = np.random.default_rng(3)
    latent = rng.normal(size=(48, 6, 5))
    a, b = Recognizer(48, 20, seed=7), Recognizer(48, 20, seed=7)
    sig = a.signatures(latent)
    assert sig.dtype == np.uint64 and sig.shape == (30,)
    np.testing.assert_array_equal(sig, b.signatures(latent.copy()))  # another "satellite"
    flat = latent.reshape(48, -1).T
    assert [_naive_signature(a.rotations, v) for v in flat] == sig.tolist()
    assert len(set(sig.tolist())) == 30  # distinct random vectors, distinct signatures
    assert not np.array_equal(sig, Recognizer(48, 20, seed=8).signatures(latent))
    # rotations are orthogonal
    np.testing.assert_allclose(a.rotations[0] @ a.rotations[0].T, np.eye(48), atol=1e-12)


def test_recognizer_groups_identical_and_near_identical_vectors():
    rng = np.random.default_rng(4)
    v = rng.normal(size=48)
    latent = np.stack([v, v, v + 1e-9 * rng.normal(size=48), 3.0 * v, -v, rng.normal(size=48)], axis=1)[:, :, None]
    sig = Recognizer(48, 20, seed=0).signatures(latent)
    assert sig[0] == sig[1] == sig[2] == sig[3]  # cross-polytope LSH depends on direction only
    assert sig[4] != sig[0] and sig[5] != sig[0]


def test_hadamard_rotation_is_the_explicit_matrix_product():
    """Each round's transform equals H_d·D_last·(H_d·D_shared) of the zero-padded vector, with H_d
    from scipy's Sylvester construction: the Kronecker factorisation is checked, not assumed."""
    from scipy.linalg import hadamard

    from dlrc_agents.dlrc.recognizer import sign_diagonals

    rng = np.random.default_rng(5)
    C, k, d = 48, 6, 64
    v = rng.normal(size=(C, 7)).astype(np.float32)
    for applications in (1, 2, 3):
        rec = Recognizer(C, k, seed=9, rotation="hadamard", applications=applications)
        assert rec.dimension == d
        got = rec.rotate(torch.from_numpy(v)).numpy()
        signs = sign_diagonals(d, k + 1, applications, 9)
        H = hadamard(d)
        x = np.zeros((d, 7))
        x[:C] = v
        for a in range(applications - 1):
            x = H @ (signs[k, a][:, None] * x)
        for r in range(k):
            np.testing.assert_allclose(got[r], H @ (signs[r, applications - 1][:, None] * x), rtol=1e-5, atol=1e-3)
        codes = rec.codes(v.T)
        want = np.array([[2 * np.argmax(np.abs(got[r][:, j])) + (got[r][np.argmax(np.abs(got[r][:, j])), j] < 0)
                          for j in range(7)] for r in range(k)])
        np.testing.assert_array_equal(codes, want)
        assert codes.max() < 2 * d
    # (H D)/√d is orthogonal: a rotation up to scale
    D = np.diag(sign_diagonals(d, 1, 1, 0)[0, 0])
    np.testing.assert_allclose((hadamard(d) @ D) @ (hadamard(d) @ D).T / d, np.eye(d), atol=1e-12)


@pytest.mark.parametrize("applications", [2, 3])
def test_hadamard_hashes_collide_like_haar_rotations_on_sparse_vectors(applications):
    """Per-round collision probability of pairs 15° and 30° apart, for vectors whose energy sits in a
    few channels (as latents' does): two sign-flip + Hadamard stages match a Haar rotation within
    sampling error; one stage does not (FALCONN's advice: more than one rotation for sparse data)."""
    rng = np.random.default_rng(6)
    C, k, n = 48, 32, 2000
    base = rng.normal(size=(n, C)) * (rng.random((n, C)) < 0.15)  # ~7 active channels a vector
    base[np.abs(base).sum(1) == 0, 0] = 1.0
    dense = Recognizer(C, k, seed=1)
    fast, one = Recognizer(C, k, 1, "hadamard", applications), Recognizer(C, k, 1, "hadamard", 1)
    for degrees in (15, 30):
        g = rng.normal(size=base.shape)
        g -= (g * base).sum(1, keepdims=True) / (base * base).sum(1, keepdims=True) * base
        g *= np.linalg.norm(base, axis=1, keepdims=True) / np.linalg.norm(g, axis=1, keepdims=True)
        other = np.cos(np.radians(degrees)) * base + np.sin(np.radians(degrees)) * g
        rate = {name: (r.codes(base) == r.codes(other)).mean() for name, r in
                (("dense", dense), ("fast", fast), ("one", one))}
        assert abs(rate["fast"] - rate["dense"]) < 0.03, rate
        assert rate["one"] < rate["dense"] - 0.1, rate


# -------------------------------------------------------------- Selector and Arbiter


def test_selector_keeps_smallest_index_and_means():
    sig = np.array([5, 3, 5, 9, 3, 5], dtype=np.uint64)
    s = select(sig)
    np.testing.assert_array_equal(s.representative, [0, 1, 0, 3, 1, 0])
    np.testing.assert_array_equal(s.unique_positions, [0, 1, 3])
    latent = np.arange(12, dtype=np.float32).reshape(2, 1, 6)
    mean = apply_strategy(latent, s, "mean")
    np.testing.assert_allclose(mean[0, 0], [(0 + 2 + 5) / 3, 2.5, 7 / 3, 3, 2.5, 7 / 3])
    assert apply_strategy(latent, s, "original") is latent


def test_arbiter_priority_dense_map_and_consistency():
    sigs = {
        0: np.array([1, 2, 2, 3], dtype=np.uint64),
        1: np.array([3, 4, 1, 4], dtype=np.uint64),
        2: np.array([5, 3, 6, 6], dtype=np.uint64),
    }
    arb = arbitrate(sigs)
    assert arb.order == [0, 1, 2] and arb.total == 6
    np.testing.assert_array_equal(arb.assignment[0], [0, 1, 1, 2])
    np.testing.assert_array_equal(arb.retained[1], [1])  # only signature 4 is new
    np.testing.assert_array_equal(arb.assignment[1], [2, 3, 0, 3])
    np.testing.assert_array_equal(arb.assignment[2], [4, 2, 5, 5])
    # another priority: satellite 2 first
    arb2 = arbitrate(sigs, priority={2: 0, 0: 1, 1: 2})
    assert arb2.order == [2, 0, 1]
    np.testing.assert_array_equal(arb2.assignment[2], [0, 1, 2, 2])
    np.testing.assert_array_equal(arb2.assignment[0], [3, 4, 4, 1])
    # every satellite computes the same result whatever order it received the sets in
    for perm in ([2, 1, 0], [1, 0, 2]):
        again = arbitrate({k: sigs[k] for k in perm})
        for sat in sigs:
            np.testing.assert_array_equal(again.assignment[sat], arb.assignment[sat])


def _arbitrate_by_definition(sigs: dict, order: list, decoding) -> tuple:
    """The Arbiter's decisions position by position: a signature belongs to the first satellite (in
    priority order) and position (in decoding order) that holds it; dense numbers count owners."""
    owner, retained, assignment = {}, {}, {}
    for sat in order:
        steps = range(len(sigs[sat])) if decoding is None else decoding
        retained[sat], assignment[sat] = [], np.zeros(len(sigs[sat]), dtype=np.int64)
        for p in steps:
            s = int(sigs[sat][p])
            if s not in owner:
                owner[s] = len(owner)
                retained[sat].append(p)
            assignment[sat][p] = owner[s]
    return retained, assignment, len(owner)


def test_arbiter_matches_its_definition_on_random_groups():
    rng = np.random.default_rng(11)
    for trial in range(150):
        n = int(rng.integers(1, 40))
        sigs = {int(s): rng.integers(0, int(rng.integers(1, 60)), n).astype(np.uint64)
                for s in rng.permutation(20)[:int(rng.integers(1, 9))]}
        priority = {s: int(rng.integers(0, 5)) for s in sigs} if trial % 2 else None
        decoding = rng.permutation(n) if trial % 3 == 0 else None
        arb = arbitrate(sigs, priority, decoding)
        want_order = sorted(sigs, key=(lambda s: (priority[s], s)) if priority else None)
        retained, assignment, total = _arbitrate_by_definition(sigs, want_order, decoding)
        assert arb.order == want_order and arb.total == total
        offset = 0
        for sat in want_order:
            np.testing.assert_array_equal(arb.retained[sat], retained[sat])
            np.testing.assert_array_equal(arb.assignment[sat], assignment[sat])
            assert arb.offsets[sat] == offset
            offset += len(retained[sat])


# ------------------------------------------------------------ exact ground decoding


OFFSETS = [(0, 0), (64, 32), (128, 128), (16, 192), (300, 300)]


@pytest.mark.parametrize("strategy", ["original", "mean"])
@pytest.mark.parametrize("priority", [None, {4: 0, 2: 1, 0: 2, 3: 3, 1: 4}])
@pytest.mark.parametrize("transport", ["joint", "per_satellite", "references"])
def test_ground_decodes_exactly_what_satellites_intended(codec, scene, strategy, priority, transport):
    images = crops(scene, OFFSETS)
    cfg = DLRCConfig(rounds=20, seed=11, representative=strategy, priority=priority, map_transport=transport)
    group = encode_group(codec, images, cfg)
    total_positions = sum(a.size for a in group.arbitration.assignment.values())
    assert group.arbitration.total < 0.8 * total_positions  # overlap really removed vectors
    streams = list(group.streams.values())[::-1]  # arrival order does not matter
    decoded = reconstruct(codec, streams)
    for sat in images:
        assert torch.equal(decoded[sat]["y_tilde"], group.intended[sat]), sat
        expected = codec.model.g_s(group.intended[sat][None]).clamp(0, 1)
        assert torch.equal(decoded[sat]["x_hat"], expected)
    # retained vectors are exactly the satellites' own ŷ
    for sat in images:
        C = group.latents[sat].y_hat.shape[1]
        pos = torch.as_tensor(group.arbitration.retained[sat])
        assert torch.equal(decoded[sat]["y_tilde"].reshape(C, -1)[:, pos], group.latents[sat].y_hat[0].reshape(C, -1)[:, pos])


@pytest.mark.parametrize("transport", ["joint", "references"])
def test_ground_decodes_exactly_with_hadamard_rotations(codec, scene, transport):
    """The fast Recognizer changes only the signatures: the ground still rebuilds ỹ bit for bit."""
    images = crops(scene, OFFSETS)
    group = encode_group(codec, images, DLRCConfig(rounds=20, seed=11, rotation="hadamard", map_transport=transport))
    assert group.arbitration.total < 0.8 * sum(a.size for a in group.arbitration.assignment.values())
    decoded = reconstruct(codec, list(group.streams.values())[::-1])
    for sat in images:
        assert torch.equal(decoded[sat]["y_tilde"], group.intended[sat]), sat


def test_incomplete_views_still_decode_exactly(codec, scene):
    """A peer that timed out for some satellites: each arbitrates on what it heard (reference maps)."""
    from dlrc_agents.dlrc.onboard import analyse, finish, intended_from_references, model_entropy

    images = crops(scene, OFFSETS[:4])
    rec = Recognizer(codec.M, 20, 3)
    states = {s: analyse(codec, rec, s, x) for s, x in images.items()}
    for st in states.values():
        model_entropy(codec, st, "original")
    heard = {0: {0, 1, 2, 3}, 1: {0, 1, 2, 3}, 2: {1, 2, 3}, 3: {2, 3}}  # 2 missed 0; 3 missed 0 and 1
    streams, maps = [], {}
    for s, view in heard.items():
        arb = arbitrate({u: states[u].selection.signatures for u in view})
        st = finish(codec, states[s], arb, "references", members=tuple(images))
        assert st.map_form == "references"
        maps[s] = st.maps[s]
        streams.append(st.to_bytes())
    # satellite 3 heard neither 0 nor 1, so it never copies from them
    n = states[3].selection.signatures.size
    assert not np.isin(maps[3] // n, [0, 1]).any()
    intended = intended_from_references(maps, {s: states[s].latent.y_hat for s in states})
    decoded = reconstruct(codec, streams[::-1])
    for s in images:
        assert torch.equal(decoded[s]["y_tilde"], intended[s]), s
    # a stream that copies from a satellite whose stream never arrived is refused by name
    with pytest.raises(BitstreamError, match=r"satellite\(s\) \[0\]"):
        reconstruct(codec, streams[1:])


def test_without_overlap_only_in_image_duplicates_go(codec, scene):
    images = crops(scene, [(0, 0), (512, 512)])
    group = encode_group(codec, images, DLRCConfig())
    decoded = reconstruct(codec, list(group.streams.values()))
    for sat in images:
        assert torch.equal(decoded[sat]["y_tilde"], group.intended[sat])


# ------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def one_group(scene):
    torch.manual_seed(2)
    codec = codec_from_model(build_model("bmshj2018-hyperprior", 32, 48), "bmshj2018-hyperprior", 32, 48)
    return codec, encode_group(codec, crops(scene, OFFSETS[:3]), DLRCConfig())


def test_truncated_flipped_and_foreign_streams_are_refused(one_group):
    codec, group = one_group
    good = list(group.streams.values())
    with pytest.raises(BitstreamError, match="stream 1 of 3: DLRC bitstream checksum"):
        reconstruct(codec, [good[0][:-7]] + good[1:])
    flipped = bytearray(good[1])
    flipped[len(flipped) // 2] ^= 0x10
    with pytest.raises(BitstreamError, match="checksum"):
        reconstruct(codec, [good[0], bytes(flipped), good[2]])
    with pytest.raises(BitstreamError, match="not a DLRC bitstream"):
        reconstruct(codec, [b"\x89PNG\r\n\x1a\n" + bytes(64)] + good[1:])
    bumped = bytearray(good[0])
    bumped[4] = 99
    with pytest.raises(BitstreamError, match="version 99"):
        reconstruct(codec, [bytes(bumped)] + good[1:])
    with pytest.raises(BitstreamError, match="missing"):
        reconstruct(codec, good[1:])


def test_stream_for_another_model_is_refused(one_group):
    codec, group = one_group
    torch.manual_seed(5)
    other = codec_from_model(build_model("bmshj2018-hyperprior", 32, 48), "bmshj2018-hyperprior", 32, 48)
    with pytest.raises(BitstreamError, match="another model"):
        reconstruct(other, list(group.streams.values()))


def test_container_roundtrip(one_group):
    _, group = one_group
    for data in group.streams.values():
        parsed = SatelliteBitstream.from_bytes(data)
        assert parsed.to_bytes() == data


def test_checkpoint_roundtrip_and_wrong_architecture(tmp_path):
    torch.manual_seed(3)
    model = build_model("mbt2018-mean", 32, 48)
    model.update(force=True)
    path = export_checkpoint(model, tmp_path / "m.pt", architecture="mbt2018-mean", N=32, M=48, lmbda=0.0067,
                             steps=1, seed=0, data=["x"])
    codec = load_checkpoint(path, "mbt2018-mean")
    assert codec.lmbda == 0.0067 and codec.N == 32
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        # learned parameters are the fp16-rounded originals (tables are rebuilt by update())
        ref = {k: v.half().float() for k, v in model.named_parameters()}
        for k, v in codec.model.named_parameters():
            assert torch.equal(v, ref[k]), k
        assert codec.model(x)["x_hat"].shape == x.shape
    with pytest.raises(CodecError, match="holds a 'mbt2018-mean' model, not 'bmshj2018-hyperprior'"):
        load_checkpoint(path, "bmshj2018-hyperprior")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CodecError, match="weights_only"):
        load_checkpoint(tmp_path / "bad.pt", "mbt2018-mean")


def test_predictive_map_coding_roundtrip_and_size(one_group):
    from dlrc_agents.dlrc.arbiter import reference_map
    from dlrc_agents.dlrc.bitstream import _lzma, decode_maps, encode_maps, pack_maps

    _, group = one_group
    arb = group.arbitration
    maps = {s: arb.assignment[s] for s in arb.order}  # priority order, as the joint stream carries them
    n = maps[arb.order[0]].size
    back = decode_maps(encode_maps(maps, "dense", 0, n), "dense", 0, arb.order, n)
    assert all(np.array_equal(back[s], maps[s]) for s in maps)
    for s in arb.order[1:]:  # one satellite's own dense map starts at its offset
        one = decode_maps(encode_maps({s: maps[s]}, "dense", arb.offsets[s], n), "dense", arb.offsets[s], [s], n)
        assert np.array_equal(one[s], maps[s])
        refs = reference_map(arb, s, n)
        again = decode_maps(encode_maps({s: refs}, "references", 0, n), "references", 0, [s], n)
        assert np.array_equal(again[s], refs)
    # random maps with arbitrary copies survive too
    rng = np.random.default_rng(0)
    sigs = {s: rng.integers(0, 60, 256).astype(np.uint64) for s in range(4)}
    rand = arbitrate(sigs)
    rmaps = {s: rand.assignment[s] for s in rand.order}
    assert all(np.array_equal(decode_maps(encode_maps(rmaps, "dense", 0, 256), "dense", 0, rand.order, 256)[s],
                              rmaps[s]) for s in rmaps)
    # overlapping patches copy runs of vectors: the predictive symbols are mostly 0 and code smaller
    assert len(_lzma(encode_maps(maps, "dense", 0, n))) < len(pack_maps(maps))


def test_map_lzma_dictionary_sized_to_input(one_group):
    """Maps are LZMA'd with a dictionary fitted to their size (fast); the bytes decode with the
    stream format's fixed filters and equal those of the preset's 64 MiB dictionary."""
    import lzma

    from dlrc_agents.dlrc.bitstream import LZMA_FILTERS, encode_maps, lzma_compress, unpack_maps

    _, group = one_group
    arb = group.arbitration
    maps = {s: arb.assignment[s] for s in arb.order}
    n = maps[arb.order[0]].size
    rng = np.random.default_rng(1)
    payloads = [np.asarray(encode_maps(maps, "dense", 0, n), dtype="<i4"),
                np.concatenate([np.asarray(maps[s], dtype="<i4") for s in maps]),
                rng.integers(0, 5, 70_000).astype("<i4"), np.zeros(0, dtype="<i4")]
    for values in payloads:
        raw = values.tobytes()
        coded = lzma_compress(raw)
        assert coded == lzma.compress(raw, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
        assert np.array_equal(unpack_maps(coded), values)


def test_damaged_checkpoints_are_refused_by_name(tmp_path):
    """A flipped byte in the tensor data, NaN weights, or missing metadata: a CodecError naming the file."""
    good = random_checkpoint(tmp_path / "good.pt", seed=3, lmbda=0.01)
    load_checkpoint(good)  # intact: loads
    payload = torch.load(good, weights_only=True)
    key = "g_a.0.weight"
    payload["state_dict"][key] = payload["state_dict"][key].clone()
    flat = payload["state_dict"][key].view(-1)
    flat[7] = -flat[7] if flat[7] != 0 else 1.0  # what one flipped sign bit in the file does
    torch.save(payload, tmp_path / "flipped.pt")
    with pytest.raises(CodecError, match=r"flipped.pt: its tensors do not match their recorded sha256"):
        load_checkpoint(tmp_path / "flipped.pt")
    payload = torch.load(good, weights_only=True)
    payload["state_dict"][key] = torch.full_like(payload["state_dict"][key], float("nan"))
    payload.pop("tensors_sha256")
    torch.save(payload, tmp_path / "nan.pt")
    with pytest.raises(CodecError, match=r"nan.pt: non-finite values in g_a.0.weight"):
        load_checkpoint(tmp_path / "nan.pt", allow_unverified=True)
    payload = torch.load(good, weights_only=True)
    payload.pop("architecture")
    torch.save(payload, tmp_path / "noarch.pt")
    with pytest.raises(CodecError, match=r"noarch.pt: metadata lacks architecture"):
        load_checkpoint(tmp_path / "noarch.pt")


def test_shipped_checkpoints_carry_their_checksum():
    """Every shipped checkpoint records its tensors' sha256 in its own metadata (so a copy verifies
    anywhere), recomputed here independently of the loader: the stored tensors (8-bit codes, fp16,
    buffers) and the 8-bit scales."""
    import hashlib

    from dlrc_agents.codecs.registry import WEIGHTS_DIR

    assert len(list(WEIGHTS_DIR.glob("*.pt"))) >= 6
    for path in WEIGHTS_DIR.glob("*.pt"):
        payload = torch.load(path, weights_only=True)
        assert payload["storage"] == "int8", path.name  # what ships (docs/training.md, Weight storage)
        state = {**payload["state_dict"], **{f"int8_scales/{k}": v for k, v in payload["int8_scales"].items()}}
        h = hashlib.sha256()
        for key in sorted(state):
            t = state[key].contiguous()
            h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode() + t.view(torch.uint8).numpy().tobytes())
        assert h.hexdigest() == payload["tensors_sha256"], path.name


def test_a_flipped_byte_in_a_copy_of_a_shipped_checkpoint_is_refused(tmp_path):
    """The outside campaign's case: a copy of a shipped checkpoint, one byte of its tensor data flipped,
    loaded from outside the weights folder."""
    import zipfile

    from dlrc_agents.codecs.registry import WEIGHTS_DIR

    src = WEIGHTS_DIR / "bmshj2018-hyperprior_lambda0.0067.pt"
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:  # a byte in the middle of the largest tensor's record
        info = max(z.infolist(), key=lambda i: i.file_size)
        at = info.header_offset + len(info.FileHeader()) + info.file_size // 2
    data[at] ^= 0x01
    (tmp_path / "copy.pt").write_bytes(bytes(data))
    with pytest.raises(CodecError, match=r"copy.pt: its tensors do not match their recorded sha256"):
        load_checkpoint(tmp_path / "copy.pt")


def test_a_checkpoint_without_a_checksum_is_refused_unless_allowed(tmp_path, caplog, monkeypatch):
    good = random_checkpoint(tmp_path / "good.pt", seed=3, lmbda=0.01)
    payload = torch.load(good, weights_only=True)
    payload.pop("tensors_sha256")
    torch.save(payload, tmp_path / "legacy.pt")
    torch.save(payload["state_dict"], tmp_path / "bare.pt")
    with pytest.raises(CodecError, match=r"legacy.pt carries no checksum.*--allow-unverified-weights"):
        load_checkpoint(tmp_path / "legacy.pt")
    with pytest.raises(CodecError, match=r"bare.pt is a bare state_dict"):
        load_checkpoint(tmp_path / "bare.pt", "bmshj2018-hyperprior")
    with caplog.at_level("WARNING"):
        load_checkpoint(tmp_path / "legacy.pt", allow_unverified=True)
    assert "legacy.pt carries no checksum of its tensors" in caplog.text
    monkeypatch.setenv("EDGESPACECOM_ALLOW_UNVERIFIED_WEIGHTS", "1")  # what --allow-unverified-weights sets
    load_checkpoint(tmp_path / "bare.pt", "bmshj2018-hyperprior")


# ------------------------------------------------------------ past the CRC


def _with_header(stream: bytes, **changes) -> bytes:
    """The stream with header fields changed and its CRC-32 recomputed (what the CRC cannot catch)."""
    from dlrc_agents.dlrc.bitstream import pack_container, split_container

    c = split_container(stream)
    c.fields.update(changes)
    return pack_container(c)


def _with_sections(stream: bytes, z: bytes | None = None, y: bytes | None = None, maps: bytes | None = None) -> bytes:
    from dlrc_agents.dlrc.bitstream import pack_container, split_container

    c = split_container(stream)
    c.strings = [o if n is None else n for o, n in zip(c.strings, (z, y))]
    if maps is not None:
        c.map_section = maps
    return pack_container(c)


def test_crc_valid_lies_are_refused_before_any_work(one_group):
    import lzma
    import time

    from dlrc_agents.dlrc.bitstream import LZMA_FILTERS

    codec, group = one_group
    good = list(group.streams.values())
    target = next(b for b in good if SatelliteBitstream.from_bytes(b).maps)
    rest = [b for b in good if b is not target]
    bomb = lzma.compress(bytes(20_000_000), format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)  # 20 MB of zeros
    cases = {
        "does not hold the": _with_sections(target, maps=bomb),
        "hyper-latent grid": _with_header(target, z_h=65535, z_w=65535),
        "latent grid 16x9": _with_header(target, latent_w=9),
        "image size 0x256": _with_header(target, image_h=0),
        "stream labelled mbt2018-mean": _with_header(target, architecture=1),
        "empty z string": _with_sections(target, z=b""),
        "empty y string": _with_sections(target, y=b""),
        "retained positions in a": _with_header(target, retained=10_000),
        "not a set holding it": _with_header(target, satellite=7),
        "mixed with capture": _with_header(target, capture=5),
        "unknown flags": _with_header(target, flags=8),
        "a predictive stream holds": _with_header(target, flags=4),
        "a codec-alone stream with maps": _with_header(target, flags=1),
    }
    for message, bad in cases.items():
        start = time.perf_counter()
        with pytest.raises(BitstreamError, match=message):
            reconstruct(codec, [bad] + rest)
        assert time.perf_counter() - start < 2.0, message
    import dataclasses

    at = dataclasses.replace(codec, lmbda=0.01)  # a decoder that knows its λ refuses a stream relabelled
    with pytest.raises(BitstreamError, match=r"made at λ=0.5, the model is λ=0.01"):
        reconstruct(at, [_with_header(target, lmbda=0.5)] + rest)


def test_varints_match_leb128_and_refuse_what_they_cannot_be():
    """Section lengths and predictive map symbols are LEB128 varints: the values of the format's
    definition (300 is 0xAC 0x02), a round trip, and a count, overlong or truncated run refused."""
    from dlrc_agents.dlrc.bitstream import BitstreamError, pack_varints, unpack_varints

    assert pack_varints([0, 1, 127, 128, 300, 16384]) == b"\x00\x01\x7f\x80\x01\xac\x02\x80\x80\x01"
    values = np.random.default_rng(0).integers(0, 1 << 34, 500)
    assert np.array_equal(unpack_varints(pack_varints(values), 500), values)
    for data, count in ((b"\x80", 1), (b"\x01\x02", 1), (b"\x80\x80\x80\x80\x80\x01", 1), (b"", 1), (b"\x01", 0)):
        with pytest.raises(BitstreamError, match="assignment maps"):
            unpack_varints(data, count)
    with pytest.raises(BitstreamError, match="varint range"):
        pack_varints([-1])
